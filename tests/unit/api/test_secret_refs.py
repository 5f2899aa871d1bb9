"""The Secret keys a data source reads are found by walking its model
(`api.common.secret_key_refs`), so every `SecretKeyRef` field is mounted and checked,
including one added later, with the field's path for messages."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from mcpgate.api import HttpApiDataSourceSpec, McpServerSpec, SecretKeyRef
from mcpgate.api.common import KubeModel, secret_key_refs
from mcpgate.api.datasource import AUTH_BLOCKS


def _ref_field_paths(model: type[BaseModel], path: str = "") -> set[str]:
    """The wire path of every field typed `SecretKeyRef` (optional or not), from the
    classes alone."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        here = f"{path}.{info.alias or name}" if path else (info.alias or name)
        for kind in _types(info.annotation):
            if kind is SecretKeyRef:
                found.add(here)
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= _ref_field_paths(kind, here)
    return found


def _types(annotation: Any) -> list[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (
        typing.Union,
        typing.Annotated,
    ):
        return [t for arg in typing.get_args(annotation) for t in _types(arg)]
    return [annotation]


def _ref(name: str) -> dict[str, str]:
    return {"name": name, "key": "k"}


# Per auth type, the block with every Secret reference it can hold.
FULLEST: dict[str, dict[str, Any]] = {
    "ApiKey": {"valueSecretRef": _ref("a")},
    "Bearer": {"tokenSecretRef": _ref("b")},
    "Basic": {"usernameSecretRef": _ref("c"), "passwordSecretRef": _ref("d")},
    "OAuth2ClientCredentials": {
        "tokenUrl": "https://login.example.com/token",
        "clientIdSecretRef": _ref("e"),
        "clientSecretSecretRef": _ref("f"),
    },
    "AwsSigV4": {
        "region": "eu-west-1",
        "service": "execute-api",
        "accessKeyIdSecretRef": _ref("g"),
        "secretAccessKeySecretRef": _ref("h"),
        "sessionTokenSecretRef": _ref("i"),
    },
}


def _spec(auth_type: str) -> HttpApiDataSourceSpec:
    block = AUTH_BLOCKS[auth_type][1]
    return HttpApiDataSourceSpec.model_validate(
        {
            "baseUrl": "https://api.example.com",
            "tls": {"caSecretRef": _ref("ca")},
            "auth": {"type": auth_type, block: FULLEST[auth_type]},
        }
    )


def test_every_secret_key_ref_field_of_a_data_source_is_found() -> None:
    assert set(FULLEST) == set(AUTH_BLOCKS), "a new auth type: add its fullest block here"
    found = {path for auth in FULLEST for path, _ in secret_key_refs(_spec(auth))}
    assert found == _ref_field_paths(HttpApiDataSourceSpec)
    assert "auth.bearer.tokenSecretRef" in found
    assert "auth.oauth2ClientCredentials.clientSecretSecretRef" in found


def test_paths_and_refs_in_field_order() -> None:
    assert secret_key_refs(_spec("Basic")) == [
        ("tls.caSecretRef", SecretKeyRef(name="ca", key="k")),
        ("auth.basic.usernameSecretRef", SecretKeyRef(name="c", key="k")),
        ("auth.basic.passwordSecretRef", SecretKeyRef(name="d", key="k")),
    ]


def test_unset_refs_are_not_listed() -> None:
    spec = HttpApiDataSourceSpec.model_validate({"baseUrl": "http://127.0.0.1:1"})
    assert secret_key_refs(spec) == []


def test_a_new_ref_field_is_found_without_more_code() -> None:
    class Hmac(KubeModel):
        signing_key_secret_ref: SecretKeyRef
        rounds: int = 1

    class NewAuth(KubeModel):
        hmac: Hmac | None = None
        extra: list[Hmac] = []
        named: dict[str, Hmac] = {}

    auth = NewAuth.model_validate(
        {
            "hmac": {"signingKeySecretRef": _ref("one")},
            "extra": [{"signingKeySecretRef": _ref("two")}],
            "named": {"x": {"signingKeySecretRef": _ref("three")}},
        }
    )
    assert [(path, ref.name) for path, ref in secret_key_refs(auth, "auth")] == [
        ("auth.hmac.signingKeySecretRef", "one"),
        ("auth.extra[0].signingKeySecretRef", "two"),
        ("auth.named.x.signingKeySecretRef", "three"),
    ]


def test_a_server_spec_holds_no_key_ref() -> None:
    """Its one Secret is the whole key Secret (`SecretRef`), mounted whole."""
    assert _ref_field_paths(McpServerSpec) == set()
