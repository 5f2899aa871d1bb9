"""`mcpgate demo-api`: a small HTTP API to try mcpgate with, no Internet needed.

The quickstart's tools call it (`scripts/up` starts it beside the gateway; in a cluster
`examples/quickstart/demo-api.yaml` runs it from the same image), and every other
example can be tried against it with `mcpgate up --upstream ORIGIN=URL`:

- `GET /posts` (`userId`, `_limit`), `GET /posts/{id}`, `POST /posts`: a blog of 100
  posts by 10 users, kept in memory (writes are echoed with a new id, not stored);
- `POST .../token`: an OAuth2 token endpoint that grants any client credentials;
- anything else: a description of the request (method, path, query, JSON body, and
  the *names* of the headers that arrived, so you can see which auth was applied).

It never echoes a header value: a demo should not teach an API to reflect credentials.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from mcpgate.gateway.app import read_body

__all__ = ["POSTS", "DemoApi", "serve_demo"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
POSTS: list[dict[str, Any]] = [
    {
        "userId": (n - 1) // 10 + 1,
        "id": n,
        "title": f"post {n}: {_WORDS[n % 10]} {_WORDS[(n * 3) % 10]}",
        "body": f"The text of post {n}, written by user {(n - 1) // 10 + 1}.",
    }
    for n in range(1, 101)
]
_MAX_BODY = 1 << 20


class DemoApi:
    """The demo API as a plain ASGI app."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive, _MAX_BODY)
        if body is None:
            await _json(send, 413, {"error": "body over 1 MiB"})
            return
        status, payload = self.answer(
            scope["method"],
            scope["path"],
            parse_qs(scope.get("query_string", b"").decode("latin-1")),
            body,
            [name.decode("latin-1").lower() for name, _ in scope["headers"]],
        )
        await _json(send, status, payload)

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: list[str]
    ) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["posts"] and method == "GET":
            posts = POSTS
            if "userId" in query:
                posts = [p for p in posts if str(p["userId"]) in query["userId"]]
            limit = _int(query.get("_limit", [""])[0])
            return 200, posts[:limit] if limit is not None and limit >= 0 else posts
        if len(parts) == 2 and parts[0] == "posts" and method == "GET":
            number = _int(parts[1])
            found = [p for p in POSTS if p["id"] == number]
            return (200, found[0]) if found else (404, {"error": f"no post {parts[1][:20]}"})
        if parts == ["posts"] and method == "POST":
            fields = _object(body)
            if fields is None:
                return 400, {"error": "send a JSON object"}
            return 201, {**fields, "id": len(POSTS) + 1}
        if parts and parts[-1] == "token" and method == "POST":
            form = parse_qs(body.decode("latin-1"))
            if form.get("grant_type") != ["client_credentials"]:
                return 400, {"error": "unsupported_grant_type"}
            token = f"demo-token-{next(self._tokens)}"
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        return 200, {
            "method": method,
            "path": path,
            "query": query,
            "json": _object(body) if body else None,
            "headers": sorted(set(headers)),
        }


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _object(body: bytes) -> Any:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def _json(send: Send, status: int, payload: Any) -> None:
    data = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def serve_demo(host: str, port: int) -> None:
    """Serve the demo API until SIGINT or SIGTERM; PortUnavailable if the port is not had."""
    import uvicorn

    from mcpgate.gateway.server import StoppableServer, listen

    server = StoppableServer(
        uvicorn.Config(DemoApi(), log_level="warning", access_log=False, lifespan="on")
    )
    server.take_signals()
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"mcpgate demo-api: serving at http://{shown}:{port}\n")
    server.run(sockets=[sock])
