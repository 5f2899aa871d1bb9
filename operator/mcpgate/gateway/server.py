"""Running the gateway: the MCP app under uvicorn, metrics on a port of their own.

Both ports are served by the same uvicorn server and so by the same bounded HTTP
protocol (http_limits.py): the metrics port is no easier to exhaust than `/mcp`.

uvicorn handles SIGTERM as Kubernetes needs: it stops accepting connections,
lets requests in flight finish (up to the grace period), then runs the app's
lifespan shutdown, which closes the outbound pools.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Literal

import uvicorn
from prometheus_client import make_asgi_app

from mcpgate.gateway import signals
from mcpgate.gateway.app import GatewayApp
from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.http_limits import BoundedHttpToolsProtocol
from mcpgate.gateway.observability import Metrics, configure_logging

__all__ = [
    "PortUnavailable",
    "build_app",
    "is_loopback",
    "listen",
    "serve",
    "serve_app",
    "serving_line",
]

log = logging.getLogger("mcpgate.gateway")

ASGIApp = Callable[..., Awaitable[None]]

GRACEFUL_SHUTDOWN_SECONDS = 25  # below Kubernetes' default 30 s termination grace period


class StoppableServer(uvicorn.Server):
    """uvicorn's server, stopped gracefully by SIGTERM/SIGINT from `take_signals` on."""

    def take_signals(self) -> None:
        """SIGTERM/SIGINT from now on start the graceful shutdown, even before `run`: a
        signal that arrives while the ports are bound and the app starts is not lost,
        and does not kill the process halfway."""
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                signal.signal(sig, self.handle_exit)
        if signals.take():  # one came while the process started: stop at once
            self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT start uvicorn's graceful shutdown, then the process exits
        normally. (uvicorn would re-raise the signal after shutting down, killing the
        process before `mcpgate up` removes its credentials folder.)"""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_app(
    config: GatewayConfig, *, loopback_only: bool = False, metrics: Metrics | None = None
) -> tuple[GatewayApp, CredentialStore]:
    credentials = CredentialStore(config.credentials_dir)
    app = GatewayApp(config, credentials, metrics or Metrics(), loopback_only=loopback_only)
    return app, credentials


class PortUnavailable(Exception):
    """A port cannot be listened on (in use, privileged, or the address is not ours)."""

    def __init__(self, port: int, role: Literal["mcp", "metrics"], reason: str) -> None:
        super().__init__(f"port {port}: {reason}")
        self.port = port
        self.role = role
        self.reason = reason


def listen(host: str, port: int, role: Literal["mcp", "metrics"] = "mcp") -> socket.socket:
    """A listening TCP socket; PortUnavailable (for `role`) if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise PortUnavailable(port, role, err.strerror or str(err)) from None
    return sock


def _by_port(app: ASGIApp, metrics: Metrics, metrics_port: int) -> ASGIApp:
    """One ASGI app for both sockets: requests that arrived on the metrics port get the
    Prometheus exposition, every other request (and the lifespan) goes to `app`."""
    exposition: ASGIApp = make_asgi_app(registry=metrics.registry)

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        server = scope.get("server")
        if scope["type"] == "http" and server is not None and server[1] == metrics_port:
            await exposition(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route


def serve(
    config: GatewayConfig,
    *,
    host: str,
    port: int,
    metrics_port: int,
    loopback_only: bool = False,
    log_level: str = "info",
    audit_log: bool = True,
) -> None:
    """Serve one configuration until SIGTERM or SIGINT (`mcpgate gateway`)."""
    app, _ = build_app(config, loopback_only=loopback_only)
    serve_app(
        app,
        app.metrics,
        host=host,
        port=port,
        metrics_port=metrics_port,
        known_secrets=app.runner.known_secrets,
        log_level=log_level,
        audit_log=audit_log,
        on_listening=lambda: log.info("%s", serving_line(config, host, port, metrics_port)),
    )


def serving_line(config: GatewayConfig, host: str, port: int, metrics_port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return (
        f"serving McpServer {config.server_name}: {len(config.tools)} tools"
        f" at http://{shown}:{port}/mcp, metrics on port {metrics_port}"
    )


def serve_app(
    app: Callable[..., Awaitable[None]],
    metrics: Metrics,
    *,
    host: str,
    port: int,
    metrics_port: int,
    known_secrets: Callable[[], Iterable[str]],
    log_level: str = "info",
    audit_log: bool = True,
    on_listening: Callable[[], None] = lambda: None,
) -> None:
    """Listen on both ports, then serve `app` until SIGTERM or SIGINT. Raises
    PortUnavailable before anything is served or said (`on_listening` runs once both
    ports are had), so no line claims a port that was not had. `audit_log` writes one
    audit line per tool call."""
    if signals.take():  # stopped before it started: nothing to serve or say
        return
    configure_logging(log_level, known_secrets, audit=audit_log)
    sock = listen(host, port)
    try:
        metrics_sock = listen(host, metrics_port, "metrics")
    except PortUnavailable:
        sock.close()
        raise
    server = StoppableServer(
        uvicorn.Config(
            _by_port(app, metrics, metrics_sock.getsockname()[1]),
            host=host,
            port=port,
            http=BoundedHttpToolsProtocol,  # 431 for oversized heads (http_limits.py)
            ws="none",  # no WebSocket upgrades: /mcp is plain HTTP
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the gateway reads no client address; saves a wrapper per request
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=30,
        )
    )
    server.take_signals()
    on_listening()
    # Everything built so far (modules, models, the compiled tools) lives as long as the
    # process: keep it out of the cyclic collector's full passes, which would otherwise
    # walk it again and again under load.
    gc.collect()
    gc.freeze()
    server.run(sockets=[sock, metrics_sock])
