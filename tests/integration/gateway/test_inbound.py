"""Inbound authorization (API.md "Inbound authorization"), with a real upstream that
records whether anything reached it and which headers it saw."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import MCPError

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.config import gateway_config

from support.gateway import RunningGateway, mcp_session, running_gateway
from support.paths import replace_file
from support.upstream import RecordingUpstream

KEY_ALICE = "alice-key-0f9e8d7c"
KEY_BOB = "bob-key-1a2b3c4d"
JSON = {"content-type": "application/json", "accept": "application/json"}
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "open_get", "arguments": {}},
}


def _config(mode: str, upstream_url: str, creds: Path) -> Any:
    authorization: dict[str, Any] = {"type": mode}
    if mode != "None":
        authorization["apiKeySecretRef"] = {"name": "mcp-keys"}
    server = McpServer.model_validate(
        {
            "metadata": {"name": "billing-mcp"},
            "spec": {
                "authorization": authorization,
                "tools": [
                    {"name": "open_get", "dataSource": "open-api", "request": {"path": "/open"}},
                    {
                        "name": "closed_get",
                        "dataSource": "closed-api",
                        "request": {"path": "/closed"},
                    },
                ],
            },
        }
    )
    sources = {
        "open-api": HttpApiDataSource.model_validate(
            {"metadata": {"name": "open-api"}, "spec": {"baseUrl": upstream_url}}
        ),
        "closed-api": HttpApiDataSource.model_validate(
            {
                "metadata": {"name": "closed-api"},
                "spec": {
                    "baseUrl": upstream_url,
                    "auth": {
                        "type": "Bearer",
                        "bearer": {"tokenSecretRef": {"name": "c", "key": "t"}},
                    },
                },
            }
        ),
    }
    replace_file(creds / "c" / "t", "own-token-5566")
    return gateway_config(
        server, sources, credentials_dir=str(creds), allow_loopback_destinations=True
    )


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    replace_file(tmp_path / "mcp-keys" / "alice", KEY_ALICE + "\n")
    replace_file(tmp_path / "mcp-keys" / "empty", "")
    return tmp_path


@pytest.fixture(params=["ApiKey", "BearerPassthrough"])
async def keyed(
    request: pytest.FixtureRequest, upstream: RecordingUpstream, creds: Path
) -> AsyncIterator[RunningGateway]:
    async with running_gateway(_config(request.param, upstream.url, creds)) as gw:
        yield gw


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _headers(key: str | None = KEY_ALICE, authorization: str | None = "Bearer caller") -> Any:
    headers = dict(JSON)
    if key is not None:
        headers["x-api-key"] = key
    if authorization is not None:
        headers["authorization"] = authorization
    return headers


@pytest.mark.parametrize(
    "key",
    # (White space around a header value is not part of it in HTTP: the gateway drops it;
    # tests/hardening/test_inbound_auth.py::test_padded_keys.)
    [
        None,
        "",
        "wrong",
        f"{KEY_ALICE[:5]} {KEY_ALICE[5:]}",
        f"{KEY_ALICE}x",
        KEY_ALICE.upper(),
        "x" * 10_000,
    ],
    ids=["missing", "empty", "wrong", "inner-space", "longer", "case", "very-long"],
)
async def test_bad_keys_get_401_and_nothing_reaches_upstream(
    keyed: RunningGateway, upstream: RecordingUpstream, http: httpx.AsyncClient, key: str | None
) -> None:
    reply = await http.post(keyed.url, headers=_headers(key), json=CALL)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'ApiKey realm="billing-mcp"'
    body = reply.json()
    assert body["id"] is None
    assert body["error"]["code"] == -32030
    assert upstream.requests == []


async def test_two_key_headers_get_401(
    keyed: RunningGateway, upstream: RecordingUpstream, http: httpx.AsyncClient
) -> None:
    headers = [*_headers().items(), ("x-api-key", KEY_ALICE)]
    reply = await http.post(keyed.url, headers=headers, json=CALL)
    assert reply.status_code == 401
    twice = [*_headers().items(), ("authorization", "Bearer other")]
    assert (await http.post(keyed.url, headers=twice, json=CALL)).status_code == 401
    assert upstream.requests == []


async def test_keys_follow_the_secret_without_restart(
    keyed: RunningGateway, creds: Path, http: httpx.AsyncClient
) -> None:
    assert (await http.post(keyed.url, headers=_headers(KEY_BOB), json=CALL)).status_code == 401
    replace_file(creds / "mcp-keys" / "bob", KEY_BOB)
    assert (await http.post(keyed.url, headers=_headers(KEY_BOB), json=CALL)).status_code == 200
    (creds / "mcp-keys" / "alice").unlink()
    assert (await http.post(keyed.url, headers=_headers(KEY_ALICE), json=CALL)).status_code == 401


async def test_official_client_with_a_key(keyed: RunningGateway) -> None:
    async with mcp_session(
        keyed.url, headers={"x-api-key": KEY_ALICE, "authorization": "Bearer caller"}
    ) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"open_get", "closed_get"}


async def test_official_client_without_a_key_is_refused(keyed: RunningGateway) -> None:
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - an ExceptionGroup of MCPError
        async with mcp_session(keyed.url, mode="legacy") as client:
            await client.list_tools()
    group = caught.value
    found = list(group.exceptions) if isinstance(group, BaseExceptionGroup) else [group]
    flat: list[BaseException] = []
    while found:
        item = found.pop()
        if isinstance(item, BaseExceptionGroup):
            found.extend(item.exceptions)
        else:
            flat.append(item)
    assert any(isinstance(e, MCPError) and e.error.code == -32030 for e in flat)


async def test_passthrough_needs_authorization(
    upstream: RecordingUpstream, creds: Path, http: httpx.AsyncClient
) -> None:
    async with running_gateway(_config("BearerPassthrough", upstream.url, creds)) as gw:
        reply = await http.post(gw.url, headers=_headers(authorization=None), json=CALL)
        assert reply.status_code == 401
        only_token = await http.post(gw.url, headers=_headers(key=None), json=CALL)
        assert only_token.status_code == 401
    assert upstream.requests == []


async def test_passthrough_forwards_only_to_auth_none_sources(
    upstream: RecordingUpstream, creds: Path
) -> None:
    caller = "Bearer caller.jwt.token-AbC"
    async with running_gateway(_config("BearerPassthrough", upstream.url, creds)) as gw:
        async with mcp_session(
            gw.url, headers={"x-api-key": KEY_ALICE, "authorization": caller}
        ) as client:
            assert (await client.call_tool("open_get", {})).is_error is False
            assert (await client.call_tool("closed_get", {})).is_error is False
    opened, closed = upstream.requests_to("/open"), upstream.requests_to("/closed")
    assert [r.header_values("authorization") for r in opened] == [[caller]]
    assert [r.header_values("authorization") for r in closed] == [["Bearer own-token-5566"]]
    for seen in upstream.requests:
        assert seen.header("x-api-key") is None


@pytest.mark.parametrize("mode", ["None", "ApiKey"])
async def test_authorization_is_never_forwarded_outside_passthrough(
    upstream: RecordingUpstream, creds: Path, mode: str
) -> None:
    async with (
        running_gateway(_config(mode, upstream.url, creds)) as gw,
        mcp_session(
            gw.url,
            headers={
                "x-api-key": KEY_ALICE,
                "authorization": "Bearer caller",
                "cookie": "sid=1",
                "x-custom": "c",
            },
        ) as client,
    ):
        await client.call_tool("open_get", {})
    (seen,) = upstream.requests_to("/open")
    assert seen.header("authorization") is None
    assert seen.header("x-api-key") is None
    assert seen.header("cookie") is None
    assert seen.header("x-custom") is None


async def test_auth_failures_are_counted(keyed: RunningGateway, http: httpx.AsyncClient) -> None:
    await http.post(keyed.url, headers=_headers("wrong"), json=CALL)
    families = {m.name: m for m in keyed.app.metrics.registry.collect()}
    samples = families["mcpgate_inbound_auth_failures"].samples
    assert any(s.labels.get("reason") == "invalid API key" and s.value == 1 for s in samples)
