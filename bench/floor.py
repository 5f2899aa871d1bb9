"""The floor of a Python data plane: uvicorn and one pooled HTTP client, no MCP.

`python -m bench.floor --port N --upstream URL --client httpx|aiohttp` forwards
`GET /items/{id}` to the upstream and answers its status and body. Nothing else happens
per request (no JSON-RPC, no checks, no metrics), so a gateway cannot be faster than this
on the same server and client stack:

- `httpx`: one `httpx.AsyncClient` with its default transport, pool limits raised to 100
  keep-alive connections (what the issue names as the floor);
- `aiohttp`: one `aiohttp.ClientSession` (the pool mcpgate's transport is built on), a
  stricter floor.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import httpx
import uvicorn

__all__ = ["make_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def make_app(upstream: str, client: str) -> App:
    fetch: Callable[[str], Awaitable[tuple[int, bytes]]]
    state: dict[str, Any] = {}

    async def fetch_httpx(path: str) -> tuple[int, bytes]:
        response = await state["client"].get(path)
        return response.status_code, response.content

    async def fetch_aiohttp(path: str) -> tuple[int, bytes]:
        async with state["client"].get(upstream + path) as response:
            return response.status, await response.read()

    fetch = fetch_httpx if client == "httpx" else fetch_aiohttp

    async def app(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if client == "httpx":
                        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
                        state["client"] = httpx.AsyncClient(base_url=upstream, limits=limits)
                    else:
                        connector = aiohttp.TCPConnector(limit=100)
                        state["client"] = aiohttp.ClientSession(connector=connector)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if client == "httpx":
                        await state["client"].aclose()
                    else:
                        await state["client"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status, body = await fetch(scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--client", choices=["httpx", "aiohttp"], default="httpx")
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.upstream, args.client),
        host="127.0.0.1",
        port=args.port,
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
