"""The peer: FastMCP built with `FastMCP.from_openapi` on the upstream's `GET /items/{id}`.

`python -m bench.fastmcp_peer --port N --upstream URL` serves the tool `get_item(id)` at
`/mcp` over Streamable HTTP, stateless, JSON answers (no SSE), under uvicorn with the
same settings as mcpgate (uvloop, httptools, no access log). FastMCP's own logging is set
to WARNING so that it pays for no per-request log line mcpgate does not write either.
Its outbound client is the one `from_openapi` documents, an `httpx2.AsyncClient` with a
`base_url`, its keep-alive pool raised to 100 connections like mcpgate's.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

__all__ = ["openapi_spec"]


def openapi_spec(upstream: str) -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "price": {"type": "number"},
            "stock": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "items", "version": "1.0.0"},
        "servers": [{"url": upstream}],
        "paths": {
            "/items/{id}": {
                "get": {
                    "operationId": "get_item",
                    "summary": "Fetch one item by its id.",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "the item",
                            "content": {"application/json": {"schema": item}},
                        }
                    },
                }
            }
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    os.environ.setdefault("FASTMCP_LOG_LEVEL", "WARNING")
    os.environ.setdefault("FASTMCP_SHOW_SERVER_BANNER", "false")

    import httpx2
    import uvicorn
    from fastmcp import FastMCP

    logging.basicConfig(level=logging.WARNING)
    client = httpx2.AsyncClient(
        base_url=args.upstream,
        timeout=30,
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=100),
    )
    mcp = FastMCP.from_openapi(openapi_spec(args.upstream), client=client, name="items")
    app = mcp.http_app(path="/mcp", json_response=True, stateless_http=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
