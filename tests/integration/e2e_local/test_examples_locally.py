"""Every example tried locally as examples/README.md says: `mcpgate demo-api`, then
`mcpgate up -f examples/<folder> --upstream '*=<demo>'`, and every tool called with the
official MCP client and the headers the README's table gives. The demo API reports
which headers arrived (never their values), so each call shows the credential the
data source applies, or the caller's forwarded one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpgate.demo import POSTS, DemoApi
from mcpgate.manifests import load_manifests

from support.gateway import gateway_from_manifests, mcp_session, serve_in_thread
from support.paths import EXAMPLE_DIRS, EXAMPLES

README = (EXAMPLES / "README.md").read_text()
ROW = re.compile(r"^\| `(?P<folder>[a-z0-9-]+)` \| (?P<headers>[^|]+) \| (?P<sees>[^|]+) \|$", re.M)


def readme_headers(folder: str) -> dict[str, str]:
    """The MCP request headers the README's table gives for a folder."""
    rows = {m["folder"]: m["headers"].strip() for m in ROW.finditer(README)}
    assert folder in rows, f"examples/README.md does not say how to try {folder} locally"
    if rows[folder] == "none":
        return {}
    pairs = re.findall(r"`([A-Za-z-]+): ([^`]+)`", rows[folder])
    return {name: value.replace("<anything>", "caller-token-1234") for name, value in pairs}


def arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for every required parameter, of its type (or its first enum value)."""
    samples = {"string": "1", "integer": 1, "number": 1, "boolean": True, "object": {}}
    out: dict[str, Any] = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        if "enum" in prop:
            out[name] = prop["enum"][0]
        elif prop.get("type") == "array":
            out[name] = [samples[prop["items"]["type"]]]
        else:
            out[name] = samples[prop["type"]]
    return out


def test_the_readme_command_is_the_one_tested() -> None:
    assert "mcpgate demo-api &\n" in README
    assert "--upstream '*=http://127.0.0.1:8081'" in README


@pytest.fixture(scope="module")
def demo() -> Any:
    with serve_in_thread(DemoApi()) as base:
        yield base


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
async def test_every_tool_of_every_example_answers_locally(demo: str, folder: Path) -> None:
    headers = readme_headers(folder.name)
    manifests = load_manifests([folder])
    (server,) = manifests.servers.values()
    sources = {name: ds for (_, name), ds in manifests.data_sources.items()}
    passthrough = server.spec.authorization.type == "BearerPassthrough"
    async with gateway_from_manifests([folder], upstreams={"*": demo}) as gw:
        async with mcp_session(gw.url, headers=headers) as client:
            tools = (await client.list_tools()).tools
            assert tools
            echoed = 0
            for tool in tools:
                result = await client.call_tool(tool.name, arguments(tool.input_schema))
                assert result.is_error is False, (tool.name, result.content)
                seen = result.structured_content
                if not isinstance(seen, dict) or "headers" not in seen:
                    continue  # the blog's own answers
                echoed += 1
                spec = sources[
                    next(t for t in server.spec.tools if t.name == tool.name).data_source
                ]
                auth = spec.spec.auth
                if auth.api_key is not None and auth.api_key.in_ == "Query":
                    assert auth.api_key.name in seen["query"], tool.name
                elif auth.api_key is not None:
                    assert auth.api_key.name.lower() in seen["headers"], tool.name
                elif auth.type != "None" or passthrough:
                    assert "authorization" in seen["headers"], tool.name
                else:
                    assert "authorization" not in seen["headers"], tool.name
                assert "x-api-key" not in seen["headers"] or auth.api_key is not None
    assert echoed or folder.name == "quickstart", "no call reached the demo's echo"


def test_the_demo_blog(demo: str) -> None:
    posts = httpx.get(f"{demo}/posts", params={"userId": 3, "_limit": 2}).json()
    assert [p["id"] for p in posts] == [21, 22]
    assert httpx.get(f"{demo}/posts/7").json() == POSTS[6]
    assert httpx.get(f"{demo}/posts/101").status_code == 404
    created = httpx.post(f"{demo}/posts", json={"title": "t", "body": "b", "userId": 1})
    assert (created.status_code, created.json()["id"]) == (201, 101)
    assert httpx.post(f"{demo}/posts", json=[1]).status_code == 400


def test_the_demo_grants_client_credentials_only(demo: str) -> None:
    good = httpx.post(f"{demo}/oauth2/token", data={"grant_type": "client_credentials"})
    assert good.json()["token_type"] == "Bearer"
    assert good.json()["access_token"].startswith("demo-token-")
    bad = httpx.post(f"{demo}/oauth2/token", data={"grant_type": "password"})
    assert bad.status_code == 400


def test_the_demo_names_headers_but_never_echoes_a_value(demo: str) -> None:
    canary = "CANARY-demo-value-5d1e"
    reply = httpx.post(
        f"{demo}/anything/here?x=1",
        json={"a": 1},
        headers={"Authorization": f"Bearer {canary}", "X-Api-Key": canary},
    )
    seen = reply.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/anything/here"
    assert seen["query"] == {"x": ["1"]}
    assert seen["json"] == {"a": 1}
    assert {"authorization", "x-api-key"} <= set(seen["headers"])
    assert canary not in reply.text
