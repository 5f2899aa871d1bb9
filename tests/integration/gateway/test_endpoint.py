"""The MCP endpoint's HTTP rules (API.md "The MCP endpoint", "Origins", 401s), over a
real socket, and the official MCP client in both of its modes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import MCPError

from mcpgate.gateway.config import (
    DataSourceConfig,
    GatewayConfig,
    InboundConfig,
    LimitsConfig,
    ParameterConfig,
    RequestConfig,
    ToolConfig,
)

from support.gateway import RunningGateway, mcp_session, running_gateway

JSON = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def _config(tmp_path: Any, **changes: Any) -> GatewayConfig:
    base = GatewayConfig(
        server_name="billing-mcp",
        data_sources={
            "billing": DataSourceConfig(name="billing", base_url="http://127.0.0.1:9/api")
        },
        tools=(
            ToolConfig(
                name="get_invoice",
                description="Fetch one invoice.",
                data_source="billing",
                parameters=(ParameterConfig(name="id", required=True),),
                request=RequestConfig(path="/invoices/:id"),
                annotations={"readOnlyHint": True, "openWorldHint": True},
            ),
        ),
        allowed_origins=("https://console.example.com",),
        limits=LimitsConfig(max_request_bytes=64 * 1024),
        credentials_dir=str(tmp_path),
    )
    return base.model_copy(update=changes)


@pytest.fixture
async def gateway(tmp_path: Any) -> AsyncIterator[RunningGateway]:
    async with running_gateway(_config(tmp_path)) as gw:
        yield gw


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _rpc(method: str, params: dict[str, Any] | None = None, id_: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return message


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_official_client_lists_and_calls(gateway: RunningGateway, mode: Any) -> None:
    async with mcp_session(gateway.url, mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["get_invoice"]
        assert tools[0].input_schema["required"] == ["id"]
        assert tools[0].annotations is not None
        assert tools[0].annotations.read_only_hint is True
        assert tools[0].output_schema is None
        bad = await client.call_tool("get_invoice", {})
        assert bad.is_error
        assert "id" in bad.content[0].text  # type: ignore[union-attr]
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
        assert unknown.value.error.code == -32602


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26"])
async def test_initialize_negotiates_each_handshake_version(
    gateway: RunningGateway, http: httpx.AsyncClient, version: str
) -> None:
    reply = await http.post(
        gateway.url,
        headers=JSON,
        json=_rpc(
            "initialize",
            {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        ),
    )
    assert reply.status_code == 200
    result = reply.json()["result"]
    assert result["protocolVersion"] == version
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["serverInfo"]["name"] == "billing-mcp"


async def test_initialize_with_an_unknown_version_offers_the_newest_handshake(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    reply = await http.post(
        gateway.url,
        headers=JSON,
        json=_rpc("initialize", {"protocolVersion": "2024-01-01", "capabilities": {}}),
    )
    assert reply.json()["result"]["protocolVersion"] == "2025-11-25"


async def test_server_discover(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    reply = await http.post(
        gateway.url,
        headers={**JSON, "mcp-protocol-version": "2026-07-28"},
        json=_rpc("server/discover"),
    )
    result = reply.json()["result"]
    assert result["supportedVersions"] == ["2026-07-28"]
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["resultType"] == "complete"


async def test_missing_version_header_means_2025_03_26(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    reply = await http.post(gateway.url, headers=JSON, json=_rpc("tools/list"))
    assert reply.status_code == 200
    assert "resultType" not in reply.json()["result"]  # not the 2026 shape


async def test_unsupported_version_gets_400(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    reply = await http.post(
        gateway.url, headers={**JSON, "mcp-protocol-version": "2099-01-01"}, json=_rpc("tools/list")
    )
    assert reply.status_code == 400
    assert "2025-06-18" in reply.json()["error"]["data"]["supported"]


async def test_ping_and_unknown_method(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    ping = await http.post(gateway.url, headers=JSON, json=_rpc("ping"))
    assert ping.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
    unknown = await http.post(gateway.url, headers=JSON, json=_rpc("resources/list"))
    assert unknown.json()["error"]["code"] == -32601


async def test_notification_gets_202(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    reply = await http.post(
        gateway.url, headers=JSON, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert reply.status_code == 202
    assert reply.content == b""


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
async def test_only_post(gateway: RunningGateway, http: httpx.AsyncClient, method: str) -> None:
    reply = await http.request(method, gateway.url, headers=JSON)
    assert reply.status_code == 405
    assert reply.headers["allow"] == "POST"


async def test_wrong_accept_gets_406(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    reply = await http.post(
        gateway.url,
        json=_rpc("ping"),
        headers={"content-type": "application/json", "accept": "text/html"},
    )
    assert reply.status_code == 406


async def test_batch_gets_invalid_request(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    reply = await http.post(gateway.url, headers=JSON, json=[_rpc("ping"), _rpc("ping", id_=2)])
    assert reply.json()["error"]["code"] == -32600


async def test_parse_error(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    reply = await http.post(gateway.url, headers=JSON, content=b'{"jsonrpc": "2.0", ')
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == -32700


async def test_deep_nesting_is_a_parse_error(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    reply = await http.post(gateway.url, headers=JSON, content=b"[" * 5000 + b"]" * 5000)
    assert reply.status_code == 400
    assert (await http.get(f"{gateway.base}/readyz")).status_code == 200


async def test_oversized_body_gets_413(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    big = _rpc("tools/call", {"name": "get_invoice", "arguments": {"id": "x" * 100_000}})
    reply = await http.post(gateway.url, headers=JSON, json=big)
    assert reply.status_code == 413


async def test_foreign_origin_is_refused_before_auth(
    tmp_path: Any, http: httpx.AsyncClient
) -> None:
    config = _config(tmp_path, authorization=InboundConfig(type="ApiKey", api_keys_dir="keys"))
    async with running_gateway(config) as gw:
        reply = await http.post(
            gw.url, headers={**JSON, "origin": "https://evil.example.com"}, json=_rpc("ping")
        )
        assert reply.status_code == 403
        allowed = await http.post(
            gw.url, json=_rpc("ping"), headers={**JSON, "origin": "HTTPS://Console.Example.com:443"}
        )
        assert allowed.status_code == 401  # past the origin check, stopped by auth
        assert allowed.headers["access-control-allow-origin"] == "HTTPS://Console.Example.com:443"


async def test_cors_preflight_for_allowed_origins_needs_no_auth(
    tmp_path: Any, http: httpx.AsyncClient
) -> None:
    config = _config(tmp_path, authorization=InboundConfig(type="ApiKey", api_keys_dir="keys"))
    async with running_gateway(config) as gw:
        reply = await http.options(
            gw.url,
            headers={
                "origin": "https://console.example.com",
                "access-control-request-method": "POST",
                "access-control-request-headers": "x-api-key, content-type",
            },
        )
        assert reply.status_code == 204
        allowed = reply.headers["access-control-allow-headers"].lower()
        for header in (
            "authorization",
            "x-api-key",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
        ):
            assert header in allowed
        foreign = await http.options(gw.url, headers={"origin": "https://evil.example.com"})
        assert foreign.status_code == 403


async def test_no_host_restriction_in_a_cluster(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    reply = await http.post(
        gateway.url,
        json=_rpc("ping"),
        headers={**JSON, "host": "billing-mcp.team-a.svc.cluster.local:8080"},
    )
    assert reply.status_code == 200


async def test_loopback_only_refuses_other_hosts(tmp_path: Any, http: httpx.AsyncClient) -> None:
    async with running_gateway(_config(tmp_path), loopback_only=True) as gw:
        ok = await http.post(gw.url, headers=JSON, json=_rpc("ping"))
        assert ok.status_code == 200
        rebound = await http.post(
            gw.url, json=_rpc("ping"), headers={**JSON, "host": "attacker.example.com"}
        )
        assert rebound.status_code == 421


async def test_health_endpoints(gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{gateway.base}/healthz")).status_code == 200
    assert (await http.get(f"{gateway.base}/readyz")).status_code == 200


async def _raw_post(base: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A POST with exactly these header lines (HTTP clients refuse to send two Hosts)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        head = (
            f"POST /mcp HTTP/1.1\r\n{lines}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("name", ["Host", "Origin", "Content-Type", "MCP-Protocol-Version"])
async def test_a_repeated_single_header_gets_400_before_auth(tmp_path: Any, name: str) -> None:
    """Only the first copy used to be checked: a second Host or Origin slipped past."""
    values = {
        "Host": "127.0.0.1",
        "Origin": "https://console.example.com",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-11-25",
    }
    config = _config(tmp_path, authorization=InboundConfig(type="ApiKey", api_keys_dir="keys"))
    body = json.dumps(_rpc("ping")).encode()
    async with running_gateway(config) as gw:
        headers = [(k, v) for k, v in values.items() if k != name]
        twice = await _raw_post(
            gw.base, [*headers, (name, values[name]), (name, values[name])], body
        )
        assert twice.startswith(b"HTTP/1.1 400"), twice[:100]
        assert twice.endswith(f"more than one {name.lower()} header".encode())
        past_origin = name in ("Content-Type", "MCP-Protocol-Version")
        assert (b"access-control-expose-headers" in twice.lower()) is past_origin
        once = await _raw_post(gw.base, [*headers, (name, values[name])], body)
        assert once.startswith(b"HTTP/1.1 401"), once[:100]  # one copy reaches auth


@pytest.mark.parametrize(
    "accept",
    [
        "application/json;q=0",
        "application/json; q=0.0",
        "Application/JSON ;Q=0.000",
        "text/event-stream, application/json;q=0",
        "*/*;q=0",
        "application/json;q=0, */*",  # the most specific range decides
        "application/*;q=0, */*;q=1",
    ],
)
async def test_accept_with_q_0_for_json_gets_406(
    gateway: RunningGateway, http: httpx.AsyncClient, accept: str
) -> None:
    reply = await http.post(
        gateway.url,
        json=_rpc("ping"),
        headers={"content-type": "application/json", "accept": accept},
    )
    assert reply.status_code == 406, accept


@pytest.mark.parametrize(
    "accept",
    [
        "application/json;q=0.001",
        "application/json;q=0.5, text/event-stream",
        "*/*;q=0.1",
        "application/json;q=0, application/json;q=1",
        "text/html;q=0, */*",
        "application/json;q=bogus",
    ],
)
async def test_accept_with_q_above_0_for_json_is_served(
    gateway: RunningGateway, http: httpx.AsyncClient, accept: str
) -> None:
    reply = await http.post(
        gateway.url,
        json=_rpc("ping"),
        headers={"content-type": "application/json", "accept": accept},
    )
    assert reply.status_code == 200, accept


EXPOSED = {"www-authenticate", "mcp-protocol-version", "mcp-session-id"}


def _exposed(reply: httpx.Response) -> set[str]:
    value = reply.headers.get("access-control-expose-headers", "")
    return {h.strip().lower() for h in value.split(",") if h.strip()}


async def test_every_answer_to_an_allowed_origin_exposes_the_mcp_headers(
    tmp_path: Any, http: httpx.AsyncClient
) -> None:
    config = _config(tmp_path, authorization=InboundConfig(type="ApiKey", api_keys_dir="keys"))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k").write_text("a-key-long-enough-to-count")
    origin = {"origin": "https://console.example.com"}
    key = {"x-api-key": "a-key-long-enough-to-count"}
    async with running_gateway(config) as gw:
        answers = {
            "401": await http.post(gw.url, headers={**JSON, **origin}, json=_rpc("ping")),
            "200": await http.post(gw.url, headers={**JSON, **origin, **key}, json=_rpc("ping")),
            "405": await http.get(gw.url, headers={**origin, **key}),
            "406": await http.post(
                gw.url,
                headers={**JSON, **origin, **key, "accept": "text/html"},
                json=_rpc("ping"),
            ),
            "415": await http.post(
                gw.url,
                headers={**JSON, **origin, **key, "content-type": "text/plain"},
                content=b"{}",
            ),
            "404": await http.post(
                gw.url,
                headers={**JSON, **origin, **key, "mcp-protocol-version": "2026-07-28"},
                json=_rpc("no/such"),
            ),
            "204": await http.options(gw.url, headers=origin),
        }
        for status, reply in answers.items():
            assert str(reply.status_code) == status, (status, reply.text)
            assert _exposed(reply) == EXPOSED, status
            assert reply.headers["access-control-allow-origin"] == origin["origin"]
        assert answers["401"].json()["error"]["code"] == -32030
        foreign = await http.post(
            gw.url, headers={**JSON, "origin": "https://evil.example.com"}, json=_rpc("ping")
        )
        assert foreign.status_code == 403
        assert "access-control-expose-headers" not in foreign.headers


async def test_cors_preflight_allows_the_2026_headers(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    reply = await http.options(
        gateway.url,
        headers={"origin": "https://console.example.com", "access-control-request-method": "POST"},
    )
    allowed = {h.strip().lower() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert allowed == {
        "authorization",
        "x-api-key",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "traceparent",
    }


LOOPBACK_ORIGINS = [
    "http://127.0.0.1:5173",
    "http://localhost:8080",
    "http://[::1]:3000",
    "http://LOCALHOST",
]
NOT_LOOPBACK = [
    "https://127.0.0.1:5173",  # the loopback rule is for plain http pages on this machine
    "http://127.0.0.1.evil.example",
    "http://localhost.evil.example:80",
    "http://127.0.0.2:80",
    "null",
]


async def test_loopback_origins_are_allowed_under_up_on_loopback(
    tmp_path: Any, http: httpx.AsyncClient
) -> None:
    """The conformance suite sends the server's own loopback Origin: it got 403."""
    async with running_gateway(_config(tmp_path), loopback_only=True) as gw:
        for origin in [*LOOPBACK_ORIGINS, gw.base, "https://console.example.com"]:
            reply = await http.post(gw.url, headers={**JSON, "origin": origin}, json=_rpc("ping"))
            assert reply.status_code == 200, origin
            assert reply.headers["access-control-allow-origin"] == origin
        for origin in NOT_LOOPBACK:
            reply = await http.post(gw.url, headers={**JSON, "origin": origin}, json=_rpc("ping"))
            assert reply.status_code == 403, origin


async def test_loopback_origins_are_not_allowed_in_a_cluster(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    for origin in [*LOOPBACK_ORIGINS, gateway.base]:
        reply = await http.post(gateway.url, headers={**JSON, "origin": origin}, json=_rpc("ping"))
        assert reply.status_code == 403, origin


@pytest.mark.parametrize("version", ["2026-07-28", "2025-11-25"])
@pytest.mark.parametrize("arguments", [[], "x", 3, True, [{"id": "1"}]])
async def test_non_object_arguments_get_invalid_params(
    gateway: RunningGateway, http: httpx.AsyncClient, version: str, arguments: Any
) -> None:
    reply = await http.post(
        gateway.url,
        headers={**JSON, "mcp-protocol-version": version},
        json=_rpc("tools/call", {"name": "get_invoice", "arguments": arguments}),
    )
    assert reply.status_code == (400 if version == "2026-07-28" else 200)
    error = reply.json()["error"]
    assert error["code"] == -32602
    assert "arguments" in error["message"]


async def test_bad_arguments_inside_an_object_stay_a_tool_error(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    for arguments in ({}, {"id": 3}, {"id": "1", "other": 1}):
        reply = await http.post(
            gateway.url,
            headers=JSON,
            json=_rpc("tools/call", {"name": "get_invoice", "arguments": arguments}),
        )
        assert reply.status_code == 200
        assert reply.json()["result"]["isError"] is True, arguments


@pytest.mark.parametrize("cursor", ["", "abc", "eyJwYWdlIjoyfQ==", 0, 1, [], {}, True])
async def test_any_cursor_in_tools_list_gets_invalid_params(
    gateway: RunningGateway, http: httpx.AsyncClient, cursor: Any
) -> None:
    """The gateway lists every tool at once and issues no cursor, so none is valid."""
    reply = await http.post(gateway.url, headers=JSON, json=_rpc("tools/list", {"cursor": cursor}))
    assert reply.json()["error"]["code"] == -32602


async def test_tools_list_without_a_cursor_is_served(
    gateway: RunningGateway, http: httpx.AsyncClient
) -> None:
    for params in (None, {}, {"cursor": None}):
        reply = await http.post(gateway.url, headers=JSON, json=_rpc("tools/list", params))
        assert [t["name"] for t in reply.json()["result"]["tools"]] == ["get_invoice"]
