"""The upstream every benchmark calls: `GET /items/{id}` answering a small JSON object.

Two interchangeable implementations with the same routes and checks:

- nginx (Debian's, `apt-get install nginx-light`), one worker, answering from its config:
  the cheapest server there is, so it is never the bottleneck;
- a raw asyncio + httptools server (`python -m bench.upstream --port N`), for machines
  without nginx (CI): cheap, but a Python process, so figures taken with it say so.

Routes (each auth route answers 401 unless the credential arrives as configured):

    GET  /items/{id}           no auth
    GET  /apikey/items/{id}    X-API-Key: API_KEY
    GET  /basic/items/{id}     Authorization: Basic base64(BASIC_USER:BASIC_PASSWORD)
    GET  /bearer/items/{id}    Authorization: Bearer BEARER_TOKEN
    GET  /oauth2/items/{id}    Authorization: Bearer OAUTH2_TOKEN
    GET  /sigv4/items/{id}     Authorization: AWS4-HMAC-SHA256 Credential=SIGV4_KEY_ID/...
                               (the shape only: nothing here can check a SigV4 signature)
    POST /oauth2/token         client_secret_basic with OAUTH2_CLIENT_ID/SECRET -> a token
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import quote_plus

import httptools

from bench._util import PYTHON, Child, Cores, free_port, http_call, run_fast, start_child

__all__ = [
    "API_KEY",
    "BASIC_PASSWORD",
    "BASIC_USER",
    "BEARER_TOKEN",
    "ITEM_MARKER",
    "OAUTH2_CLIENT_ID",
    "OAUTH2_CLIENT_SECRET",
    "OAUTH2_TOKEN",
    "SIGV4_KEY_ID",
    "SIGV4_SECRET",
    "item_body",
    "start_upstream",
]

API_KEY = "bench-api-key-0123456789"
BASIC_USER = "bench-user"
BASIC_PASSWORD = "bench-password-0123"  # noqa: S105 - a loopback benchmark's credential
BEARER_TOKEN = "bench-bearer-token-0123456789"  # noqa: S105
OAUTH2_CLIENT_ID = "bench-client"
OAUTH2_CLIENT_SECRET = "bench-client-secret-0123"  # noqa: S105
OAUTH2_TOKEN = "bench-access-token-0123456789"  # noqa: S105
SIGV4_KEY_ID = "AKIDBENCHEXAMPLE0000"
SIGV4_SECRET = "bench/sigv4/secret/key/0123456789abcdef"  # noqa: S105

# Text every good answer carries, escaped inside a tool result's text content or not.
ITEM_MARKER = "widget"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_BASIC_HEADER = _basic(BASIC_USER, BASIC_PASSWORD)
_TOKEN_CLIENT_HEADER = _basic(quote_plus(OAUTH2_CLIENT_ID), quote_plus(OAUTH2_CLIENT_SECRET))
_SIGV4_PREFIX = f"AWS4-HMAC-SHA256 Credential={SIGV4_KEY_ID}/"
_TOKEN_BODY = (
    f'{{"access_token":"{OAUTH2_TOKEN}","token_type":"Bearer","expires_in":3600}}'.encode()
)
_UNAUTHORIZED = b'{"error":"unauthorized"}'


def item_body(item_id: str) -> bytes:
    return (
        f'{{"id":{item_id},"name":"{ITEM_MARKER} {item_id}","price":9.99,"stock":42,'
        '"tags":["bench","item"]}'
    ).encode()


# --- nginx --------------------------------------------------------------------------------

_ITEM_NGINX = (
    '\'{"id":$id,"name":"' + ITEM_MARKER + ' $id","price":9.99,"stock":42,'
    '"tags":["bench","item"]}\''
)


def nginx_config(port: int, folder: Path) -> str:
    refuse = "return 401 '" + _UNAUTHORIZED.decode() + "';"
    checks = {  # route -> (variable, operator, value): a 401 when the condition holds
        "apikey": ("$http_x_api_key", "!=", API_KEY),
        "basic": ("$http_authorization", "!=", _BASIC_HEADER),
        "bearer": ("$http_authorization", "!=", f"Bearer {BEARER_TOKEN}"),
        "oauth2": ("$http_authorization", "!=", f"Bearer {OAUTH2_TOKEN}"),
        "sigv4": ("$http_authorization", "!~", "^" + re.escape(_SIGV4_PREFIX)),
    }
    auth_locations = "\n".join(
        f"""        location ~ ^/{name}/items/(?<id>[0-9]+)$ {{
            if ({variable} {operator} "{value}") {{ {refuse} }}
            return 200 {_ITEM_NGINX};
        }}"""
        for name, (variable, operator, value) in checks.items()
    )
    token = _TOKEN_BODY.decode()
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ^/items/(?<id>[0-9]+)$ {{
            return 200 {_ITEM_NGINX};
        }}
{auth_locations}
        location = /oauth2/token {{
            if ($http_authorization != "{_TOKEN_CLIENT_HEADER}") {{ {refuse} }}
            return 200 '{token}';
        }}
        location / {{ return 404 '{{"error":"not found"}}'; }}
    }}
}}
"""


# --- the Python upstream ------------------------------------------------------------------

_ROUTE = re.compile(rb"^/(?:(apikey|basic|bearer|oauth2|sigv4)/)?items/([0-9]+)$")


def _authorized(kind: bytes | None, headers: dict[bytes, bytes]) -> bool:
    if kind is None:
        return True
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if kind == b"apikey":
        return headers.get(b"x-api-key") == API_KEY.encode()
    if kind == b"basic":
        return authorization == _BASIC_HEADER
    if kind == b"bearer":
        return authorization == f"Bearer {BEARER_TOKEN}"
    if kind == b"oauth2":
        return authorization == f"Bearer {OAUTH2_TOKEN}"
    return authorization.startswith(_SIGV4_PREFIX)


def answer(method: bytes, target: bytes, headers: dict[bytes, bytes]) -> tuple[int, bytes]:
    path = target.split(b"?", 1)[0]
    if path == b"/oauth2/token" and method == b"POST":
        if headers.get(b"authorization", b"").decode("latin-1") != _TOKEN_CLIENT_HEADER:
            return 401, b'{"error":"invalid_client"}'
        return 200, _TOKEN_BODY
    match = _ROUTE.match(path)
    if match is None or method != b"GET":
        return 404, b'{"error":"not found"}'
    if not _authorized(match.group(1), headers):
        return 401, _UNAUTHORIZED
    return 200, item_body(match.group(2).decode())


_REASONS = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found"}


class _Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, parsed by httptools (uvicorn's parser)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[bytes, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_message_complete(self) -> None:
        status, body = answer(self._parser.get_method(), self._url, self._headers)
        keep_alive = self._parser.should_keep_alive()
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
            status,
            _REASONS[status],
            len(body),
        )
        if not keep_alive:
            head += b"connection: close\r\n"
        assert self._transport is not None
        self._transport.write(head + b"\r\n" + body)
        if not keep_alive:
            self._transport.close()
        self._url, self._headers = b"", {}


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# --- starting one -------------------------------------------------------------------------


def _ready(port: int) -> bool:
    status, body = http_call(port, "GET", "/items/1")
    return status == 200 and body == item_body("1")


@contextlib.contextmanager
def start_upstream(kind: str, *, logs: Path, cores: Cores) -> Iterator[Child]:
    """The upstream on the client core: `kind` nginx, python or auto (nginx when present)."""
    nginx = shutil.which("nginx")
    if kind == "auto":
        kind = "nginx" if nginx is not None else "python"
    port = free_port()
    if kind == "nginx":
        if nginx is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        folder = logs / "nginx"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "nginx.conf"
        conf.write_text(nginx_config(port, folder))
        command = [nginx, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(conf)]
    else:
        command = [PYTHON, "-m", "bench.upstream", "--port", str(port)]
    with start_child(
        f"upstream-{kind}",
        cores.on(cores.client, command),
        logs=logs,
        ready=lambda: _ready(port),
    ) as child:
        child.url = f"http://127.0.0.1:{port}"
        child.extra["kind"] = kind
        yield child


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmarks' Python upstream")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        run_fast(_serve(args.port))


if __name__ == "__main__":
    main()
