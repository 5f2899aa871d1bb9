"""The models follow API.md: every field its YAML shows exists, spelled the same, and the
reference page stays equal to what the models generate."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.crd import KINDS, crd
from mcpgate.api.reference import reference_markdown
from mcpgate.render.config import tool_annotations

from support.kube_schema import schema_nodes
from support.paths import DOCS, ROOT

API_MD = ROOT.parent / "shared" / "API.md"


def _api_md_objects() -> list[dict[str, Any]]:
    if not API_MD.exists():
        pytest.skip("../shared/API.md is not beside this checkout")
    blocks = re.findall(r"```yaml\n(.*?)```", API_MD.read_text(), flags=re.S)
    docs = [yaml.safe_load(b) for b in blocks]
    return [
        d
        for d in docs
        if isinstance(d, dict) and d.get("kind") in ("McpServer", "HttpApiDataSource")
    ]


def _key_paths(value: Any, path: str = "") -> set[str]:
    """Paths of every mapping key, in schema_nodes' notation (`.spec.tools[].name`)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            out.add(f"{path}.{key}")
            out |= _key_paths(child, f"{path}.{key}")
    elif isinstance(value, list):
        for child in value:
            out |= _key_paths(child, f"{path}[]")
    return out


# Fields API.md shows that open issues bring, by the subtree that holds them. The test
# fails when one of them appears in the CRDs, so that its line goes with the issue.
PENDING = {
    ".spec.auth.tokenExchange": "#18 token exchange",
    ".spec.authorization.oauth2": "#18 inbound OAuth2",
    ".spec.publicUrl": "#18 inbound OAuth2 (RFC 9728 resource URL)",
    ".spec.toolAccess": "#18 tool access",
    ".spec.openAPI": "#17 OpenAPI documents",
    ".status.openAPI": "#17 OpenAPI documents",
}


def _pending(path: str) -> str | None:
    return next((k for k in PENDING if path == k or path.startswith((k + ".", k + "["))), None)


def test_every_field_api_md_shows_exists_in_the_crd() -> None:
    objects = _api_md_objects()
    assert {o["kind"] for o in objects} == {"McpServer", "HttpApiDataSource"}
    for obj in objects:
        kind = next(k for k in KINDS if k.kind == obj["kind"])
        schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        known = {path for path, _ in schema_nodes(schema)}
        shown = {
            p
            for p in _key_paths(obj)
            if not p.startswith(".metadata")
            # free maps whose keys are the user's (headers, query, body, labels...)
            and not re.search(
                r"\.(headers|query|body|extraParams|labels|annotations|"
                r"nodeSelector|affinity|conditions|resources)\.",
                p + ".",
            )
        }
        assert len(shown) > 20
        assert {p for p in shown - known if _pending(p) is None} == set(), obj["kind"]
        landed = {p for p in shown & known if _pending(p) is not None}
        assert landed == set(), f"these fields exist now: drop their PENDING entries {landed}"


def test_reference_page_is_generated_from_the_models() -> None:
    assert (DOCS / "api.md").read_text() == reference_markdown(), (
        "run `python -m mcpgate.api.reference > docs/api.md`"
    )


def test_defaults_match_api_md() -> None:
    source = HttpApiDataSource.model_validate(
        {"metadata": {"name": "d"}, "spec": {"baseUrl": "http://a.example.com"}}
    )
    assert source.spec.auth.type == "None"
    assert source.spec.timeout_seconds == 30
    server = McpServer.model_validate({"metadata": {"name": "s"}, "spec": {}})
    assert server.spec.authorization.type == "None"
    assert server.spec.wanted_replicas == 1
    assert server.spec.service.port == 8080
    key = HttpApiDataSource.model_validate(
        {
            "metadata": {"name": "d"},
            "spec": {
                "baseUrl": "http://a.example.com",
                "auth": {"type": "ApiKey", "apiKey": {"valueSecretRef": {"name": "s", "key": "k"}}},
            },
        }
    ).spec.auth.api_key
    assert key is not None
    assert (key.in_, key.name, key.prefix) == ("Header", "X-API-Key", "")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", {"readOnlyHint": True, "openWorldHint": True}),
        # The MCP default of destructiveHint is true: for POST, PUT and PATCH it is said.
        ("POST", {"destructiveHint": False, "openWorldHint": True}),
        ("PUT", {"destructiveHint": False, "idempotentHint": True, "openWorldHint": True}),
        ("PATCH", {"destructiveHint": False, "openWorldHint": True}),
        ("DELETE", {"destructiveHint": True, "idempotentHint": True, "openWorldHint": True}),
    ],
)
def test_tool_annotation_defaults(method: str, expected: dict[str, bool]) -> None:
    server = McpServer.model_validate(
        {
            "metadata": {"name": "s"},
            "spec": {
                "tools": [
                    {"name": "t", "dataSource": "d", "request": {"method": method, "path": "/x"}}
                ]
            },
        }
    )
    assert tool_annotations(server.spec.tools[0]) == expected


def test_given_annotations_override_the_defaults() -> None:
    server = McpServer.model_validate(
        {
            "metadata": {"name": "s"},
            "spec": {
                "tools": [
                    {
                        "name": "t",
                        "dataSource": "d",
                        "request": {"method": "GET", "path": "/x"},
                        "annotations": {"readOnlyHint": False, "title": "T"},
                    }
                ]
            },
        }
    )
    assert tool_annotations(server.spec.tools[0]) == {
        "readOnlyHint": False,
        "openWorldHint": True,
        "title": "T",
    }


def test_a_tool_title_is_optional_and_bounded() -> None:
    def server(title: object) -> McpServer:
        tool: dict[str, object] = {"name": "t", "dataSource": "d", "request": {"path": "/x"}}
        if title is not None:
            tool["title"] = title
        return McpServer.model_validate({"metadata": {"name": "s"}, "spec": {"tools": [tool]}})

    assert server(None).spec.tools[0].title is None
    assert server("Get an invoice").spec.tools[0].title == "Get an invoice"
    with pytest.raises(ValidationError, match="title"):
        server("x" * 254)
