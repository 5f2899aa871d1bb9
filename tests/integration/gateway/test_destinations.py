"""The destination rule (API.md "Destinations"), through the real gateway and its real
HTTP clients. Loopback cases connect for real (to this machine). Link-local, metadata
and unspecified cases never open a socket: names resolve through a stub, and a net at
the connect hook fails the test (without connecting) if anything but a loopback
address ever got a socket, so a bug here cannot send traffic off the machine.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import httpcore
import pytest

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway import destinations as destinations_module
from mcpgate.gateway import tools as tools_module
from mcpgate.gateway.destinations import Destinations, why_refused
from mcpgate.render.config import gateway_config

from support.gateway import mcp_session, running_gateway
from support.upstream import RecordingUpstream, TokenServer

REFUSED = [
    "127.0.0.1",
    "127.5.6.7",
    "::1",
    "::ffff:127.0.0.1",
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "fe80::1",
    "fe80::1%2",
    "fd00:ec2::254",
    "0.0.0.0",  # noqa: S104 (an address judged, never bound)
    "0.1.2.3",
    "::",
]
ALLOWED = ["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fc00::1", "93.184.216.34"]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address: str) -> None:
    assert why_refused(address, allow_loopback=False) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_private_and_public_addresses_stay_allowed(address: str) -> None:
    assert why_refused(address, allow_loopback=False) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.2"])
def test_loopback_is_allowed_only_when_asked(address: str) -> None:
    assert why_refused(address, allow_loopback=True) is None
    assert why_refused("169.254.169.254", allow_loopback=True) is not None


# Names the stub resolver answers, and what it answers for them.
STUB_NAMES = {
    "metadata.test": "169.254.169.254",
    "metadata6.test": "fd00:ec2::254",
    "zero.test": "0.0.0.0",  # noqa: S104
    "rebound.test": "127.0.0.1",  # a public-looking name that resolves to loopback
    "api.example.test": "127.0.0.1",  # never a real lookup, even if a test goes wrong
}


class _Net(Destinations):
    """The real rule, plus a net: a socket for anything but loopback fails the test
    before it connects."""

    escaped: list[str] = []

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        sock = super().socket_factory(addr_info)
        if not ipaddress.ip_address(addr_info[4][0].split("%")[0]).is_loopback:
            sock.close()
            _Net.escaped.append(addr_info[4][0])
            raise OSError("test net: this connection would have left the machine")
        return sock


class _StubResolver:
    def __init__(self) -> None:
        self.inner = destinations_module.aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[Any]:
        if host in STUB_NAMES:
            address = STUB_NAMES[host]
            v6 = ":" in address
            return [
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET6 if v6 else socket.AF_INET,
                    "proto": 0,
                    "flags": 0,
                }
            ]
        return await self.inner.resolve(host, port, family)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    _Net.escaped = []
    monkeypatch.setattr(tools_module, "Destinations", _Net)
    monkeypatch.setattr(destinations_module.aiohttp, "DefaultResolver", _StubResolver)

    async def lookup(host: str, port: int) -> list[Any]:
        address = STUB_NAMES.get(host, host)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(destinations_module, "lookup", lookup)
    real_connect = httpcore.AnyIOBackend.connect_tcp

    async def guarded(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if not ipaddress.ip_address(host).is_loopback:
            _Net.escaped.append(host)
            raise httpcore.ConnectError("test net: this connection would have left the machine")
        return await real_connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guarded)
    return _Net.escaped


def _config(base_urls: dict[str, str], tmp_path: Path, *, loopback: bool, auth: Any = None) -> Any:
    sources = {
        name: HttpApiDataSource.model_validate(
            {"metadata": {"name": name}, "spec": {"baseUrl": url, "auth": auth or {"type": "None"}}}
        )
        for name, url in base_urls.items()
    }
    server = McpServer.model_validate(
        {
            "metadata": {"name": "dest"},
            "spec": {
                "tools": [
                    {"name": f"t-{name}", "dataSource": name, "request": {"path": "/x"}}
                    for name in base_urls
                ]
            },
        }
    )
    return gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=loopback
    )


async def _texts(config: Any) -> dict[str, str]:
    texts = {}
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        for tool in config.tools:
            result = await client.call_tool(tool.name, {})
            (content,) = result.content
            texts[tool.data_source] = ("error: " if result.is_error else "ok: ") + getattr(
                content, "text", ""
            )
    return texts


async def test_a_cluster_gateway_refuses_loopback_and_metadata_addresses(
    net: list[str], upstream: RecordingUpstream, tmp_path: Path
) -> None:
    port = upstream.url.rsplit(":", 1)[1]
    urls = {
        "loopback": upstream.url,
        "localhost": f"http://localhost:{port}",
        "rebound": f"http://rebound.test:{port}",
        "mapped": f"http://[::ffff:127.0.0.1]:{port}",
        "metadata": "http://169.254.169.254/latest/meta-data",
        "metadata-name": "http://metadata.test/latest",
        "metadata6": "http://[fd00:ec2::254]/",
        "metadata6-name": "http://metadata6.test/",
        "zero": "http://0.0.0.0:1/",
        "zero-name": "http://zero.test/",
    }
    texts = await _texts(_config(urls, tmp_path, loopback=False))
    for name, text in texts.items():
        assert text.startswith(f"error: data source {name}: destination not allowed"), text
    assert upstream.requests == []  # nothing reached the loopback upstream either
    assert net == []  # and no socket was ever made for the others


async def test_loopback_is_reached_where_allowed_and_metadata_never(
    net: list[str], upstream: RecordingUpstream, tmp_path: Path
) -> None:
    port = upstream.url.rsplit(":", 1)[1]
    urls = {
        "loopback": upstream.url,
        "rebound": f"http://rebound.test:{port}",
        "metadata": "http://169.254.169.254/",
        "metadata-name": "http://metadata.test/",
    }
    texts = await _texts(_config(urls, tmp_path, loopback=True))
    assert texts["loopback"].startswith("ok: ")
    assert texts["rebound"].startswith("ok: ")
    assert "destination not allowed" in texts["metadata"]
    assert "destination not allowed" in texts["metadata-name"]
    assert len(upstream.requests) == 2
    assert net == []


async def test_token_endpoints_are_under_the_same_rule(
    net: list[str], upstream: RecordingUpstream, tmp_path: Path
) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "secret").write_text("client-secret-value")
    TokenServer(upstream, client_id="cid", client_secret="client-secret-value", path="/token")

    def oauth(token_url: str) -> dict[str, Any]:
        return {
            "type": "OAuth2ClientCredentials",
            "oauth2ClientCredentials": {
                "tokenUrl": token_url,
                "clientId": "cid",
                "clientSecretSecretRef": {"name": "c", "key": "secret"},
            },
        }

    port = upstream.url.rsplit(":", 1)[1]
    for token_url, loopback in [
        ("https://metadata.test/token", True),
        (f"http://127.0.0.1:{port}/token", False),
    ]:
        config = _config(
            {"api": "https://api.example.test"}, tmp_path, loopback=loopback, auth=oauth(token_url)
        )
        text = (await _texts(config))["api"]
        assert text.startswith("error: "), text
        assert "destination not allowed" in text, text
    assert upstream.requests == []
    assert net == []
