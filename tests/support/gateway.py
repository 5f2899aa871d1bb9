"""Run the real gateway on loopback for a test, and talk to it with the official MCP client.

    async with running_gateway(config) as gw:       # uvicorn on 127.0.0.1:<free port>
        async with mcp_session(gw.url, headers={"x-api-key": "k"}) as client:
            await client.list_tools()

The server runs in a thread of its own, with its own event loop, as it would in
its own process; the test's loop is free to run upstream servers and clients.
`gw.app` is the GatewayApp (metrics, runner) for white-box checks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpgate.gateway.app import GatewayApp
from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.server import build_app
from mcpgate.local import CredentialsFolder, load_local
from mcpgate.render.settings import RenderSettings

from support.poll import wait_for_sync

__all__ = [
    "RunningGateway",
    "free_port",
    "gateway_from_manifests",
    "mcp_session",
    "running_gateway",
    "serve_in_thread",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningGateway:
    url: str
    base: str
    app: GatewayApp


@contextlib.contextmanager
def serve_in_thread(app: Callable[..., Awaitable[None]]) -> Iterator[str]:
    """Any ASGI app under uvicorn on 127.0.0.1:<free port>, in a thread: its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the gateway's thread ended"
        return bool(server.started)

    wait_for_sync(started, within=10, interval=0.01, what="the gateway's start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextlib.asynccontextmanager
async def running_gateway(
    config: GatewayConfig, *, loopback_only: bool = False
) -> AsyncIterator[RunningGateway]:
    app, _ = build_app(config, loopback_only=loopback_only)
    with serve_in_thread(app) as base:
        yield RunningGateway(url=f"{base}/mcp", base=base, app=app)


@contextlib.asynccontextmanager
async def gateway_from_manifests(
    paths: list[str | Path],
    *,
    server: str | None = None,
    overrides: dict[str, Any] | None = None,
    upstreams: dict[str, str] | None = None,
) -> AsyncIterator[RunningGateway]:
    """What `mcpgate up -f PATH [--upstream ORIGIN=URL]` runs, in-process. `overrides`
    replace data source fields (e.g. {"billing": {"base_url": upstream.url, "token_url":
    ...}}) so examples can point at loopback servers."""
    local, manifests = load_local(paths, server, RenderSettings(), upstreams=upstreams)
    assert local.ready, local.lines
    folder = CredentialsFolder()
    try:
        config = folder.config(local, manifests)
        for name, given in (overrides or {}).items():
            fields = dict(given)
            source = config.data_sources[name]
            token_url = fields.pop("token_url", None)
            if token_url is not None and source.auth.oauth2 is not None:
                oauth2 = source.auth.oauth2.model_copy(update={"token_url": token_url})
                fields["auth"] = source.auth.model_copy(update={"oauth2": oauth2})
            source = source.model_copy(update=fields)
            config = config.model_copy(
                update={"data_sources": {**config.data_sources, name: source}}
            )
        async with running_gateway(config) as gw:
            yield gw
    finally:
        folder.remove()


@contextlib.asynccontextmanager
async def mcp_session(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    mode: Literal["auto", "legacy"] = "auto",
) -> AsyncIterator[Client]:
    """The official SDK client over Streamable HTTP, in auto or legacy mode."""
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client
