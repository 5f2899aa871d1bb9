"""Running the gateway: the MCP app under uvicorn, metrics on a port of their own.

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
import threading
from collections.abc import Iterator

import uvicorn
from prometheus_client import start_http_server

from mcpgate.gateway.app import GatewayApp
from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.observability import Metrics, configure_logging

__all__ = ["build_app", "is_loopback", "serve"]

log = logging.getLogger("mcpgate.gateway")

GRACEFUL_SHUTDOWN_SECONDS = 25  # below Kubernetes' default 30 s termination grace period


class _Server(uvicorn.Server):
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
    config: GatewayConfig, *, loopback_only: bool = False
) -> tuple[GatewayApp, CredentialStore]:
    credentials = CredentialStore(config.credentials_dir)
    return GatewayApp(config, credentials, Metrics(), loopback_only=loopback_only), credentials


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
    """Serve until SIGTERM or SIGINT; `audit_log` writes one audit line per tool call."""
    app, _ = build_app(config, loopback_only=loopback_only)
    configure_logging(log_level, app.runner.known_secrets, audit=audit_log)
    start_http_server(metrics_port, addr=host, registry=app.metrics.registry)
    log.info(
        "serving McpServer %s: %d tools at http://%s:%d/mcp, metrics on port %d",
        config.server_name,
        len(config.tools),
        host,
        port,
        metrics_port,
    )
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the gateway reads no client address; saves a wrapper per request
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=30,
        )
    )
    # Everything built so far (modules, models, the compiled tools) lives as long as the
    # process: keep it out of the cyclic collector's full passes, which would otherwise
    # walk it again and again under load.
    gc.collect()
    gc.freeze()
    server.run()
