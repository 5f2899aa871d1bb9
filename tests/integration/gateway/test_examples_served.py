"""Every example, run as `mcpgate up -f examples/<case>` runs it, with its data sources
pointed at a loopback upstream: every tool is listed with its schema, and every tool call
reaches the upstream with the template's method and path and the example's credentials."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mcpgate.manifests import load_manifests

from support.gateway import gateway_from_manifests, mcp_session
from support.paths import EXAMPLE_DIRS
from support.upstream import RecordingUpstream, TokenServer

SAMPLES: dict[str, Any] = {
    "String": "s-1",
    "Integer": 3,
    "Number": 1.5,
    "Boolean": True,
    "Object": {"k": "v"},
}


def _sample(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return schema["enum"][-1]
    if schema["type"] == "array":
        kind = schema["items"]["type"]
        return [next(v for k, v in SAMPLES.items() if k.lower() == kind)]
    return next(v for k, v in SAMPLES.items() if k.lower() == schema["type"])


def _arguments(input_schema: dict[str, Any]) -> dict[str, Any]:
    return {name: _sample(prop) for name, prop in input_schema["properties"].items()}


def _secret_value(folder: Path, name: str, key: str) -> str:
    manifests = load_manifests([folder])
    return manifests.secrets[("default", name)].values[key].decode()


def _overrides(folder: Path, upstream: RecordingUpstream) -> dict[str, dict[str, Any]]:
    """Point every data source at the upstream, keeping its base path; an OAuth2 token URL
    goes to a token server that checks what the example configures."""
    manifests = load_manifests([folder])
    out: dict[str, dict[str, Any]] = {}
    for (_, name), source in manifests.data_sources.items():
        path = urlsplit(source.spec.base_url).path
        fields: dict[str, Any] = {"base_url": upstream.url + path}
        oauth = source.spec.auth.oauth2_client_credentials
        if oauth is not None:
            assert oauth.client_secret_secret_ref is not None
            token = TokenServer(
                upstream,
                client_id=oauth.client_id or "",
                client_secret=_secret_value(
                    folder, oauth.client_secret_secret_ref.name, oauth.client_secret_secret_ref.key
                ),
                client_authentication=oauth.client_authentication,
                scopes=tuple(oauth.scopes),
                audience=oauth.audience,
                extra_params=oauth.extra_params,
            )
            fields["token_url"] = token.url
        out[name] = fields
    return out


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
async def test_example_serves_its_tools(folder: Path, upstream: RecordingUpstream) -> None:
    manifests = load_manifests([folder])
    (server,) = manifests.servers.values()
    sources = {name: ds for (_, name), ds in manifests.data_sources.items()}
    overrides = _overrides(folder, upstream)
    headers = {"authorization": "Bearer caller-token"}
    keys_ref = server.spec.authorization.api_key_secret_ref
    if keys_ref is not None:
        secret = manifests.secrets[("default", keys_ref.name)]
        headers["x-api-key"] = next(iter(secret.values.values())).decode()

    async with gateway_from_manifests([folder], overrides=overrides) as gw:
        async with mcp_session(gw.url, headers=headers) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            assert set(listed) == {t.name for t in server.spec.tools}
            for tool in server.spec.tools:
                schema = listed[tool.name].input_schema
                assert set(schema["properties"]) == {p.name for p in tool.parameters}
                assert set(schema["required"]) == {p.name for p in tool.parameters if p.required}
                before = len(upstream.requests)
                result = await client.call_tool(tool.name, _arguments(schema))
                assert result.is_error is False, result.content
                sent = [r for r in upstream.requests[before:] if "token" not in r.path]
                assert len(sent) == 1, tool.name
                (seen,) = sent
                base_path = urlsplit(sources[tool.data_source].spec.base_url).path.rstrip("/")
                literal = tool.request.path.split("/:", 1)[0].split(":", 1)[0]
                assert seen.method == tool.request.method
                assert seen.path.startswith(base_path + literal), (seen.path, tool.name)
                _assert_auth(folder, sources[tool.data_source], seen, server)
                assert seen.header("x-api-key") is None or (
                    sources[tool.data_source].spec.auth.type == "ApiKey"
                    and sources[tool.data_source].spec.auth.api_key is not None
                    and sources[tool.data_source].spec.auth.api_key.name.lower() == "x-api-key"
                )


def _assert_auth(folder: Path, source: Any, seen: Any, server: Any) -> None:
    auth = source.spec.auth
    match auth.type:
        case "None":
            forwarded = server.spec.authorization.type == "BearerPassthrough"
            assert seen.header("authorization") == ("Bearer caller-token" if forwarded else None)
        case "ApiKey":
            key = auth.api_key
            value = _secret_value(folder, key.value_secret_ref.name, key.value_secret_ref.key)
            if key.in_ == "Header":
                assert seen.header(key.name) == key.prefix + value
            else:
                assert (key.name, value) in seen.query_params()
        case "Bearer":
            ref = auth.bearer.token_secret_ref
            assert (
                seen.header("authorization") == f"Bearer {_secret_value(folder, ref.name, ref.key)}"
            )
        case "Basic":
            basic = auth.basic
            user = basic.username or _secret_value(
                folder, basic.username_secret_ref.name, basic.username_secret_ref.key
            )
            password = _secret_value(
                folder, basic.password_secret_ref.name, basic.password_secret_ref.key
            )
            expected = base64.b64encode(f"{user}:{password}".encode()).decode()
            assert seen.header("authorization") == f"Basic {expected}"
        case "OAuth2ClientCredentials":
            assert (seen.header("authorization") or "").startswith("Bearer tok-")
        case "AwsSigV4":
            ref = auth.aws_sig_v4.access_key_id_secret_ref
            key_id = _secret_value(folder, ref.name, ref.key)
            assert (seen.header("authorization") or "").startswith(
                f"AWS4-HMAC-SHA256 Credential={key_id}/"
            )
            assert seen.header("x-amz-date")
