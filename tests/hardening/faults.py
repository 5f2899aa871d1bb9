"""A fault-injecting HTTP/1.1 server on loopback, written on raw asyncio streams.

A framework server cannot reset a connection in the middle of a body, trickle a body
past a timeout, never send its headers or answer with a broken status line; this one
can. It runs in a thread of its own with its own event loop (as a downstream API is a
process of its own), binds 127.0.0.1 on a free port, records every request as it
arrived (raw head, body, arrival time) and answers by the request path:

    <prefix>/c/<case>/<key>     a data-source call; <key> makes each call's target
                                unique, so `attempts(target)` counts one call's retries
    /token/<case>               an OAuth2 token endpoint

Cases (one path segment, arguments joined by "-"):

    ok                  200 {"ok": true}
    echo                200, the request as JSON (method, target, headers, body)
    status-<code>       <code> with a JSON body that echoes the request's headers and
                        target (an API that reflects credentials back; some do)
    flaky-<code>-<n>    <code> for the first n attempts of the target, then 200
    retry-<kind>-<v>    429 with Retry-After for the first attempt, then 200; kind `s`
                        (v seconds), `date` (an HTTP date v seconds ahead), `past`
                        (an HTTP date in the past), `bad` (an unparsable value)
    hang                reads the request, never answers
    slowheaders         sends the status line, then one header byte every 50 ms
    slowbody            sends the headers (Content-Length 50,000), then one byte every 50 ms
    reset               headers, 100 of 10,000 body bytes, then a TCP RST
    close               closes the connection without an answer
    shortbody           Content-Length 1000, 10 bytes, then FIN
    badchunk            chunked encoding with an invalid chunk size
    bigdeclared         Content-Length over the cap (`cap` attribute), then the bytes
    bigchunked          chunked, no length, 4 x the cap
    bomb                gzip Content-Encoding: 64 KiB on the wire, 64 MiB decoded
    gzip                gzip Content-Encoding: a small JSON object (the bomb's control)
    badjson             200 application/json that is not JSON
    deepjson-<depth>    200 application/json, an object nested <depth> levels
    binary              200 text/plain with bytes that are not UTF-8
    nolength            200 without Content-Length, body delimited by closing
    redirect            302 to `redirect_to` (another origin)
    loop                307 to its own target (an endless redirect loop)
    badstatus           a status line that is not HTTP
    garbage             binary junk instead of a response
    hugeheader          200 with a 100 KB header
    cookie              200 with Set-Cookie carrying the cookie canary

Token cases: ok (the access-token canary, expires_in 3600), noexp (no expires_in),
malformed (200, not JSON), array (200, a JSON array), 500, hang, echo (401
invalid_client whose description repeats the form it got, client secret included).

A first byte that cannot start an HTTP request (a TLS ClientHello) is answered with a
plain 400, as an HTTP server does when https is spoken to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import functools
import ipaddress
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from hardening.canaries import CANARIES

__all__ = [
    "HANDLED_FAULTS",
    "FaultServer",
    "FaultServerProcess",
    "RawRequest",
    "self_signed_cert",
]

# Every fault class above that the gateway answers correctly (a tool error naming the
# data source, within its timeout): what test_downstream_load.py and bench/faults.py
# cycle through on a failing data source.
HANDLED_FAULTS = (
    "hang",
    "slowheaders",
    "slowbody",
    "reset",
    "close",
    "shortbody",
    "status-500",
    "status-502",
    "status-503",
    "retry-s-0",
    "retry-s-3600",
    "bigchunked",
    "redirect",
    "loop",
    "badstatus",
    "garbage",
)


@dataclass(frozen=True)
class RawRequest:
    """One request as the server read it off the socket."""

    method: str
    target: str  # as sent, percent-encoding intact
    headers: tuple[tuple[str, str], ...]  # names as sent, values latin-1 decoded
    head: bytes  # request line and header block as received
    body: bytes
    at: float  # time.monotonic() when the head was complete

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def self_signed_cert(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh self-signed certificate (also its own CA) for `host`: (cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpgate hardening")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _http_date(offset: float) -> str:
    return email.utils.formatdate(time.time() + offset, usegmt=True)


_REASONS = {
    200: "OK",
    204: "No Content",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzip-compressed (about 64 KiB): made once, it costs 0.3 s of CPU."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    data = b"".join(compressor.compress(b"\0" * (1 << 20)) for _ in range(64))
    return data + compressor.flush()


@functools.cache
def _small_gzip() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(b'{"ok": true, "gzip": "small"}') + compressor.flush()


class _Drop(Exception):
    """The case is done with the connection: close it."""


class FaultServer:
    """See the module docs. `start()`/`stop()`, or use it as a context manager."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, prefix: str = "/api") -> None:
        self.tls = tls
        self.prefix = prefix.rstrip("/")
        self.cap = 64 * 1024  # what `bigdeclared`/`bigchunked` exceed
        self.redirect_to = "http://127.0.0.1:9/elsewhere"
        self.requests: list[RawRequest] = []
        self.connections = 0
        self.closed_by_client = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self.prefix

    def start(self) -> FaultServer:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(lambda _loop, _context: None)  # failed TLS handshakes

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                asyncio.start_server(
                    self._serve,
                    "127.0.0.1",
                    0,
                    ssl=self.tls,
                    limit=1 << 20,
                    backlog=4096,
                    ssl_handshake_timeout=5 if self.tls else None,
                )
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault server did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.call_later(0.05, loop.stop)

        loop.call_soon_threadsafe(close)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the tests read -----------------------------------------------------------

    def requests_to(self, target_prefix: str) -> list[RawRequest]:
        with self._lock:
            return [r for r in self.requests if r.target.startswith(target_prefix)]

    def attempts(self, target_prefix: str) -> int:
        return len(self.requests_to(target_prefix))

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    # -- serving -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            while True:
                request = await self._read_request(reader, writer)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                if not await self._dispatch(request, reader, writer):
                    return
        except (_Drop, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            return
        except asyncio.CancelledError:
            raise
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> RawRequest | None:
        first = await reader.read(1)
        if not first:
            return None
        if not first.isalpha():  # a TLS ClientHello, or junk: what an HTTP server answers
            writer.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return None
        try:
            head = first + await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None
        at = time.monotonic()
        lines = head[:-4].split(b"\r\n")
        method, target, _version = lines[0].decode("latin-1").split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name, value.strip(" \t")))
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        return RawRequest(method, target, tuple(headers), head, body, at)

    async def _dispatch(
        self, request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        path = request.path
        if path == "/_stats":  # for a server in another process: how many requests so far
            with self._lock:
                served = sum(1 for r in self.requests if r.path != "/_stats")
            return await self._respond(writer, 200, {"requests": served})
        if path.startswith("/token/"):
            return await self._token(request, unquote(path.split("/")[2]), reader, writer)
        rest = path[len(self.prefix) :] if path.startswith(self.prefix) else path
        parts = [unquote(p) for p in rest.strip("/").split("/")]
        case = parts[1] if len(parts) > 1 and parts[0] == "c" else "ok"
        name, *args = case.split("-")
        handler: Callable[..., Any] | None = getattr(self, f"_case_{name}", None)
        if handler is None:
            return await self._respond(writer, 200, {"ok": True, "case": case})
        result: bool = await handler(request, args, reader, writer)
        return result

    # -- writing -------------------------------------------------------------------------

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: Any,
        *,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> bool:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}"]
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
        await writer.drain()
        return True

    @staticmethod
    def _echo(request: RawRequest) -> dict[str, Any]:
        return {
            "method": request.method,
            "target": request.target,
            "headers": [list(h) for h in request.headers],
            "body": request.body.decode("latin-1"),
        }

    @staticmethod
    async def _wait_closed(reader: asyncio.StreamReader, limit: float = 60.0) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(limit):
                while await reader.read(65536):
                    pass

    def _attempt_number(self, request: RawRequest) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.target == request.target)

    # -- cases -----------------------------------------------------------------------------

    async def _case_ok(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(w, 200, {"ok": True})

    async def _case_echo(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(w, 200, self._echo(request))

    async def _case_status(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        status = int(args[0])
        body = {"error": "injected", "echo": self._echo(request)}
        return await self._respond(w, status, body)

    async def _case_flaky(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        status, fails = int(args[0]), int(args[1])
        if self._attempt_number(request) <= fails:
            return await self._respond(w, status, {"error": "flaky"})
        return await self._respond(w, 200, {"ok": True, "attempt": self._attempt_number(request)})

    async def _case_retry(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        kind, value = args[0], float(args[1])
        if self._attempt_number(request) > 1:
            return await self._respond(w, 200, {"ok": True})
        retry_after = {
            "s": str(int(value)),
            "date": _http_date(value),
            "past": _http_date(-3600),
            "bad": "soon-ish",
        }[kind]
        return await self._respond(
            w, 429, {"error": "slow down"}, headers=(("Retry-After", retry_after),)
        )

    async def _case_hang(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        await self._wait_closed(r)
        raise _Drop

    async def _case_slowheaders(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Slow: " + b"s" * 2000:
            w.write(bytes([byte]))
            await w.drain()
            await asyncio.sleep(0.05)
        raise _Drop

    async def _case_slowbody(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n"
        )
        for _ in range(2000):
            w.write(b" ")
            await w.drain()
            await asyncio.sleep(0.05)
        raise _Drop

    async def _case_reset(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000\r\n\r\n")
        w.write(b"x" * 100)
        await w.drain()
        await asyncio.sleep(0.02)
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()
        raise _Drop

    async def _case_close(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        raise _Drop

    async def _case_shortbody(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n")
        w.write(b"0123456789")
        await w.drain()
        raise _Drop

    async def _case_badchunk(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        w.write(b"5\r\nhello\r\nzz\r\nbroken\r\n0\r\n\r\n")
        await w.drain()
        await asyncio.sleep(0.05)
        raise _Drop

    async def _case_bigdeclared(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        size = self.cap + 1
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\n\r\n"
        w.write(head.encode())
        w.write(b"x" * size)
        await w.drain()
        return True

    async def _case_bigchunked(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"y" * 8192
        for _ in range(4 * self.cap // len(chunk)):
            w.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await w.drain()
        w.write(b"0\r\n\r\n")
        await w.drain()
        return True

    async def _case_bomb(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        data = gzip_bomb()
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)
        )
        w.write(data)
        await w.drain()
        return True

    async def _case_gzip(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        data = _small_gzip()
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)
        )
        w.write(data)
        await w.drain()
        return True

    async def _case_badjson(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(w, 200, b'{"unterminated": [1, 2, ')

    async def _case_deepjson(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        depth = int(args[0])
        return await self._respond(w, 200, b'{"a":' * depth + b"1" + b"}" * depth)

    async def _case_binary(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(w, 200, b"\xff\xfe\xfd bytes", content_type="text/plain")

    async def _case_nolength(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
        w.write(b'\r\n{"n": 1}')
        await w.drain()
        raise _Drop

    async def _case_redirect(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(
            w, 302, {"moved": True}, headers=(("Location", self.redirect_to + "/stolen"),)
        )

    async def _case_loop(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(w, 307, b"", headers=(("Location", request.target),))

    async def _case_badstatus(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(b"HTTP/1.1 OK-ISH maybe\r\nContent-Length: 0\r\n\r\n")
        await w.drain()
        raise _Drop

    async def _case_garbage(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        w.write(bytes(range(256)) * 4)
        await w.drain()
        raise _Drop

    async def _case_hugeheader(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        return await self._respond(w, 200, {"ok": True}, headers=(("X-Huge", "h" * 100_000),))

    async def _case_cookie(self, request: RawRequest, args: list[str], r: Any, w: Any) -> bool:
        cookie = f"session={CANARIES['cookie']}; Path=/; HttpOnly"
        return await self._respond(
            w,
            200,
            {"ok": True, "cookie_sent": request.header("cookie")},
            headers=(("Set-Cookie", cookie),),
        )

    # -- token endpoint ------------------------------------------------------------------

    async def _token(
        self,
        request: RawRequest,
        case: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        token = CANARIES["oauth_access_token"]
        if case == "ok":
            return await self._respond(
                writer, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            )
        if case == "noexp":
            return await self._respond(writer, 200, {"access_token": token, "token_type": "Bearer"})
        if case == "malformed":
            return await self._respond(writer, 200, b"<html>login</html>", content_type="text/html")
        if case == "array":
            return await self._respond(writer, 200, [token])
        if case == "500":
            return await self._respond(writer, 500, {"error": "server_error"})
        if case == "hang":
            await self._wait_closed(reader)
            raise _Drop
        if case == "echo":
            description = (
                f"bad client: {request.body.decode('latin-1')} {request.header('authorization')}"
            )
            return await self._respond(
                writer, 401, {"error": "invalid_client", "error_description": description}
            )
        return await self._respond(writer, 404, {"error": "no such token case"})


@contextlib.contextmanager
def fault_servers(count: int = 1, **kwargs: Any) -> Iterator[list[FaultServer]]:
    servers = [FaultServer(**kwargs).start() for _ in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def refused_port() -> tuple[socket.socket, int]:
    """A socket bound to a loopback port and never listening: connections are refused.
    Keep the socket open while the port must stay refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


class FaultServerProcess:
    """A `FaultServer` in a child process (`python -m hardening.faults`), so that load
    tests measure the gateway and the client, not a server sharing the test's GIL.
    `count()` asks the server over HTTP how many requests it has had."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self.prefix = "/api"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self.prefix

    def __enter__(self) -> FaultServerProcess:
        tests = Path(__file__).resolve().parents[1]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(tests), env.get("PYTHONPATH", "")])
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hardening.faults"],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def count(self) -> int:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as answer:  # noqa: S310
            requests: int = json.loads(answer.read())["requests"]
        return requests

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()  # the child stops when its stdin closes
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)


def _serve_until_stdin_closes() -> None:
    with FaultServer() as server:
        server.cap = 64 * 1024
        print(server.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    _serve_until_stdin_closes()
