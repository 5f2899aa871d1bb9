"""The gateway's HTTP face: a plain ASGI app serving `/mcp`, `/healthz` and `/readyz`.

Written against ASGI directly rather than a framework: the request path of a
tool call is short and measured (DESIGN.md), and every HTTP rule of API.md's
"The MCP endpoint", "Inbound authorization" and "Origins" is visible here in
the order it applies. Before this app sees a request, the HTTP protocol
(http_limits.py) has answered 431 to a head over 32 KiB or 100 fields. Then:
a repeated Host or Origin (400), Host (loopback only under `mcpgate up`, 421),
Origin (403, before any auth; loopback origins too under `up` on loopback), a
repeated Content-Type or MCP-Protocol-Version (400), method (405), inbound auth (401, or a mode's
403), Accept (406, `q=0` honoured), Content-Type (415), size (413), protocol
version (400), then JSON-RPC. Each refusal up to the size check logs one line
saying why."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.inbound import Refused, build_inbound
from mcpgate.gateway.observability import Metrics, caller_text
from mcpgate.gateway.protocol import (
    DEFAULT_VERSION,
    INVALID_REQUEST,
    PARSE_ERROR,
    SUPPORTED_VERSIONS,
    UNAUTHORIZED,
    UNSUPPORTED_VERSION,
    McpHandler,
    error_body,
)
from mcpgate.gateway.tools import ToolRunner

__all__ = ["GatewayApp", "normalize_origin", "read_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("mcpgate.gateway")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CORS_ALLOW_HEADERS = (
    b"Authorization, x-api-key, Content-Type, Mcp-Session-Id, MCP-Protocol-Version,"
    b" Mcp-Method, Mcp-Name, traceparent"
)
_CORS_EXPOSE_HEADERS = b"WWW-Authenticate, MCP-Protocol-Version, Mcp-Session-Id"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def normalize_origin(origin: str) -> str | None:
    """`scheme://host[:port]`, lowercased, default port dropped; None if malformed."""
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/"):
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _accepts_json(accept: bytes | None) -> bool:
    """Whether `accept` lets the answer be application/json (RFC 9110 12.5.1): the most
    specific range that matches decides, and `q=0` means "not acceptable"."""
    if accept is None:
        return True
    best: tuple[int, float] | None = None  # (specificity, quality)
    for part in accept.split(b","):
        media, *params = part.split(b";")
        specificity = _JSON_RANGES.get(media.strip().lower())
        if specificity is None:
            continue
        quality = _quality(params)
        if best is None or specificity > best[0]:
            best = (specificity, quality)
        elif specificity == best[0]:
            best = (specificity, max(best[1], quality))
    return best is not None and best[1] > 0


_JSON_RANGES = {b"application/json": 2, b"application/*": 1, b"*/*": 0}


def _quality(params: list[bytes]) -> float:
    for param in params:
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"q":
            try:
                return float(value.strip())
            except ValueError:
                return 1.0  # a malformed weight is ignored, as if absent
    return 1.0


class GatewayApp:
    """One McpServer's endpoint. `loopback_only` restricts the Host header (`mcpgate up`)."""

    def __init__(
        self,
        config: GatewayConfig,
        credentials: CredentialStore,
        metrics: Metrics,
        *,
        loopback_only: bool = False,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.runner = ToolRunner(config, credentials, metrics)
        self.handler = McpHandler(config.server_name, self.runner)
        self.inbound = build_inbound(config, credentials)
        self._origins = {o for o in map(normalize_origin, config.allowed_origins) if o}
        self._max_body = config.limits.max_request_bytes
        self._loopback_only = loopback_only
        self.ready = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in ("/mcp", "/mcp/"):
            await self._mcp(scope, receive, send)
        elif path == "/healthz" and scope["method"] in ("GET", "HEAD"):
            await _respond(send, 200, b"ok", b"text/plain")
        elif path == "/readyz" and scope["method"] in ("GET", "HEAD"):
            await _respond(
                send,
                200 if self.ready else 503,
                b"ok" if self.ready else b"starting",
                b"text/plain",
            )
        else:
            await _respond(send, 404, b"not found", b"text/plain")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.runner.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, list[bytes]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, []).append(value)

        def one(name: bytes) -> bytes | None:
            values = headers.get(name)
            return values[0] if values else None

        if await _repeated(send, headers, (b"host", b"origin"), []):
            return
        if self._loopback_only and not self._loopback_host(one(b"host")):
            _refused(421, "Host is not a loopback name")
            await _respond(
                send, 421, b"this server accepts only loopback Host headers", b"text/plain"
            )
            return
        extra: list[tuple[bytes, bytes]] = []
        origin = one(b"origin")
        if origin is not None:
            if not self._origin_allowed(origin.decode("latin-1")):
                _refused(403, "Origin not allowed", origin=caller_text(origin.decode("latin-1")))
                await _respond(send, 403, b"origin not allowed", b"text/plain")
                return
            extra = [
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", _CORS_EXPOSE_HEADERS),
                (b"vary", b"Origin"),
            ]
            if scope["method"] == "OPTIONS":
                await self._preflight(send, extra)
                return
        # Past the Origin check, so a browser may read this refusal too.
        if await _repeated(send, headers, (b"content-type", b"mcp-protocol-version"), extra):
            return
        method = scope["method"]
        if method != "POST":
            _refused(405, f"method {caller_text(method, 16)} (POST only)")
            await _respond(send, 405, b"", b"text/plain", [(b"allow", b"POST"), *extra])
            return

        decision = await self.inbound.check(headers)
        if isinstance(decision, Refused):
            self.metrics.auth_failures.labels(decision.reason).inc()
            _refused(decision.status, decision.reason)
            refusal = "Unauthorized" if decision.status == 401 else "Forbidden"
            body = error_body(None, UNAUTHORIZED, f"{refusal}: {decision.reason}")
            challenge = (b"www-authenticate", decision.challenge)
            await _respond_json(send, decision.status, body, [challenge, *extra])
            return
        if not _accepts_json(one(b"accept")):
            _refused(406, "Accept excludes application/json")
            await _respond_json(
                send,
                406,
                error_body(
                    None, INVALID_REQUEST, "Not Acceptable: Accept must allow application/json"
                ),
                extra,
            )
            return
        content_type = (one(b"content-type") or b"").split(b";", 1)[0].strip().lower()
        if content_type != b"application/json":
            _refused(415, "Content-Type is not application/json")
            await _respond_json(
                send,
                415,
                error_body(None, INVALID_REQUEST, "Unsupported Media Type: send application/json"),
                extra,
            )
            return
        raw = await self._read_body(headers, receive)
        if raw is None:
            _refused(413, f"body over {self._max_body} bytes")
            await _respond_json(
                send,
                413,
                error_body(None, INVALID_REQUEST, f"request body over {self._max_body} bytes"),
                extra,
            )
            return
        version_header = one(b"mcp-protocol-version")
        version = version_header.decode("latin-1") if version_header else DEFAULT_VERSION
        if version not in SUPPORTED_VERSIONS:
            await _respond_json(
                send,
                400,
                error_body(
                    None,
                    UNSUPPORTED_VERSION,
                    f"unsupported protocol version {version[:40]!r}",
                    {"supported": list(SUPPORTED_VERSIONS), "requested": version[:40]},
                ),
                extra,
            )
            return
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await _respond_json(send, 400, error_body(None, PARSE_ERROR, "Parse error"), extra)
            return
        reply = await self.handler.handle(message, version, decision)
        if reply.body is None:
            await _respond(send, 202, b"", b"text/plain", extra)
        else:
            await _respond_json(send, reply.status, reply.body, extra)

    def _origin_allowed(self, origin: str) -> bool:
        allowed = normalize_origin(origin)
        if allowed is None:
            return False
        if allowed in self._origins:
            return True
        # Under `mcpgate up` on loopback a page served from this machine (the server's
        # own origin among them) may call it; in a cluster only allowedOrigins may.
        if not self._loopback_only:
            return False
        parts = urlsplit(allowed)
        return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS

    def _loopback_host(self, host: bytes | None) -> bool:
        if host is None:
            return False
        name = host.decode("latin-1").strip().lower()
        # Drop the port: "[::1]:8080" -> "[::1]", "localhost:8080" -> "localhost".
        bare = name.split("]", 1)[0] + "]" if name.startswith("[") else name.rsplit(":", 1)[0]
        return bare in _LOOPBACK_HOSTS

    async def _preflight(self, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        await _respond(
            send,
            204,
            b"",
            b"text/plain",
            [
                *cors,
                (b"access-control-allow-methods", b"POST, OPTIONS"),
                (b"access-control-allow-headers", _CORS_ALLOW_HEADERS),
                (b"access-control-max-age", b"600"),
            ],
        )

    async def _read_body(self, headers: dict[bytes, list[bytes]], receive: Receive) -> bytes | None:
        """The whole body, or None once it is over the limit (declared or streamed)."""
        declared = headers.get(b"content-length")
        if declared and declared[0].isdigit() and int(declared[0]) > self._max_body:
            return None
        return await read_body(receive, self._max_body)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """An ASGI request's whole body, or None once it is over `limit` bytes (b"" if the
    client went away)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _repeated(
    send: Send,
    headers: dict[bytes, list[bytes]],
    names: tuple[bytes, ...],
    extra: list[tuple[bytes, bytes]],
) -> bool:
    """Answer 400 if one of `names` came more than once: with two copies, one could be
    checked and the other used."""
    for name in names:
        if len(headers.get(name, ())) > 1:
            reason = f"more than one {name.decode()} header"
            _refused(400, reason)
            await _respond(send, 400, reason.encode(), b"text/plain", extra)
            return True
    return False


def _refused(status: int, reason: str, **fields: str) -> None:
    """The log line of a request refused before its body was used: the status and why
    (fixed text; never a key, a token or a header value other than the Origin)."""
    log.info(
        "request refused with %d: %s",
        status,
        reason,
        extra={"fields": {"status": status, "reason": reason, **fields}},
    )


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_json(
    send: Send,
    status: int,
    payload: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await _respond(send, status, _dumps(payload), b"application/json", headers)


def _dumps(payload: dict[str, Any]) -> bytes:
    """The reply as JSON. orjson writes at most 254 levels while it reads 1024: a tool result
    whose structuredContent (a downstream body) is deeper keeps only its text content."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        result = payload.get("result")
        if isinstance(result, dict) and result.pop("structuredContent", None) is not None:
            return orjson.dumps(payload)
        raise
