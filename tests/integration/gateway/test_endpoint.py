"""The MCP endpoint's HTTP rules (API.md "The MCP endpoint", "Origins", 401s), over a
real socket, and the official MCP client in both of its modes."""

from __future__ import annotations

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
