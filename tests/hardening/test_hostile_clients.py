"""Hostile clients against a real `mcpgate gateway` subprocess: malformed JSON-RPC,
wrong protocol versions, unknown methods and tools, huge and deeply nested bodies,
foreign origins, and many slow connections held open (slowloris), while the gateway
must stay ready, keep answering normal calls and keep its memory bounded.

The gateway runs with `authorization: None` (the worst case: every hostile request
reaches the body parser) and serves tools against a healthy upstream in another
process. The slow-connection and big-body cases print figures (RSS, latencies);
MCPGATE_HARDENING_LOAD=1 scales them up (1000 slow sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hardening.faults import FaultServerProcess
from hardening.gateways import HEADERS, GatewayProcess, figures, percentile, record, rpc, scale
from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.config import gateway_config

ALLOWED_ORIGIN = "https://console.example.com"
MAX_BODY = 1024 * 1024  # the default request size limit (API.md: 1 MiB)


@dataclass
class Env:
    gateway: GatewayProcess
    upstream: FaultServerProcess


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("hostile")
    with FaultServerProcess() as upstream:
        source = HttpApiDataSource.model_validate(
            {
                "metadata": {"name": "api"},
                "spec": {"baseUrl": upstream.base_url, "timeoutSeconds": 5},
            }
        )
        obj = [{"name": "o", "type": "Object", "required": True}]
        tools = [
            {
                "name": "get_ok",
                "dataSource": "api",
                "parameters": [{"name": "key", "type": "String", "required": True}],
                "request": {"path": "/c/ok/:key"},
            },
            {
                "name": "post_obj",
                "dataSource": "api",
                "parameters": obj,
                "request": {"method": "POST", "path": "/c/echo/b", "body": {"o": ":o"}},
            },
            {
                "name": "get_query",
                "dataSource": "api",
                "parameters": obj,
                "request": {"path": "/c/echo/q", "query": {"q": ":o"}},
            },
        ]
        server = McpServer.model_validate(
            {
                "metadata": {"name": "hostile"},
                "spec": {"allowedOrigins": [ALLOWED_ORIGIN], "tools": tools},
            }
        )
        config = gateway_config(
            server, {"api": source}, credentials_dir=str(folder), allow_loopback_destinations=True
        )
        gateway = GatewayProcess(config, folder / "gateway", log_level="info").start()
        try:
            yield Env(gateway, upstream)
        finally:
            assert gateway.stop() == 0


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def _post(
    http: httpx.AsyncClient, env: Env, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    reply = await http.post(
        env.gateway.url, content=content, headers={**HEADERS, **(headers or {})}
    )
    record("json-rpc answer: hostile", reply.text)
    return reply


def _error(reply: httpx.Response) -> dict[str, Any]:
    assert reply.headers["content-type"] == "application/json", reply.text
    body = reply.json()
    assert body["jsonrpc"] == "2.0"
    assert set(body["error"]) <= {"code", "message", "data"}
    error: dict[str, Any] = body["error"]
    error["id"] = body["id"]
    return error


async def _still_serving(http: httpx.AsyncClient, env: Env) -> None:
    assert (await http.get(env.gateway.base + "/readyz")).status_code == 200
    reply = await _post(
        http,
        env,
        json.dumps(rpc("tools/call", {"name": "get_ok", "arguments": {"key": "x"}})).encode(),
    )
    assert reply.status_code == 200
    assert reply.json()["result"]["isError"] is False


# --- malformed JSON-RPC -------------------------------------------------------------------

PARSE, INVALID, NOT_FOUND, PARAMS = -32700, -32600, -32601, -32602
MALFORMED: list[tuple[str, bytes, int, int]] = [
    # (id, body, HTTP status, JSON-RPC code); the default protocol revision (2025-03-26)
    # answers errors about a known request id with 200, the rest with 400.
    ("empty", b"", 400, PARSE),
    ("whitespace", b"  \n ", 400, PARSE),
    ("truncated", b'{"jsonrpc": "2.0", "id": 1, "method": "pi', 400, PARSE),
    ("trailing-garbage", b'{"jsonrpc":"2.0","id":1,"method":"ping"} x', 400, PARSE),
    ("nan", b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":NaN}}', 400, PARSE),
    ("invalid-utf8", b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}', 400, PARSE),
    ("lone-surrogate", b'{"jsonrpc":"2.0","id":1,"method":"\\ud800"}', 400, PARSE),
    ("utf8-bom", b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"method":"ping"}', 400, PARSE),
    ("null", b"null", 400, INVALID),
    ("number", b"42", 400, INVALID),
    ("string", b'"ping"', 400, INVALID),
    ("empty-batch", b"[]", 400, INVALID),
    ("empty-object", b"{}", 400, INVALID),
    ("jsonrpc-1.0", b'{"jsonrpc":"1.0","id":1,"method":"ping"}', 400, INVALID),
    ("jsonrpc-number", b'{"jsonrpc":2.0,"id":1,"method":"ping"}', 400, INVALID),
    ("no-method", b'{"jsonrpc":"2.0","id":1}', 200, INVALID),
    ("method-number", b'{"jsonrpc":"2.0","id":1,"method":5}', 200, INVALID),
    ("method-object", b'{"jsonrpc":"2.0","id":1,"method":{"x":1}}', 200, INVALID),
    ("id-true", b'{"jsonrpc":"2.0","id":true,"method":"ping"}', 400, INVALID),
    ("id-object", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', 400, INVALID),
    ("id-array", b'{"jsonrpc":"2.0","id":[1],"method":"ping"}', 400, INVALID),
    ("id-null", b'{"jsonrpc":"2.0","id":null,"method":"ping"}', 400, INVALID),
    ("params-array", b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}', 200, PARAMS),
    ("params-string", b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"x"}', 200, PARAMS),
    (
        "call-without-name",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}',
        200,
        PARAMS,
    ),
    (
        "call-name-number",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}',
        200,
        PARAMS,
    ),
    ("unknown-method", b'{"jsonrpc":"2.0","id":1,"method":"tools/cal"}', 200, NOT_FOUND),
    ("rpc-discover", b'{"jsonrpc":"2.0","id":"a","method":"rpc.discover"}', 200, NOT_FOUND),
    (
        "unknown-tool",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm_rf"}}',
        200,
        PARAMS,
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
async def test_malformed_json_rpc_gets_the_right_protocol_error(
    env: Env, http: httpx.AsyncClient, body: bytes, status: int, code: int
) -> None:
    reply = await _post(http, env, body)
    assert reply.status_code == status, reply.text
    error = _error(reply)
    assert error["code"] == code, error
    assert len(error["message"]) < 200
    if status == 400:
        assert error["id"] is None  # nothing a client could match it to


@pytest.mark.parametrize("arguments", [[], "x", 1, [{"o": {}}]])
async def test_non_object_arguments_are_a_protocol_error(
    env: Env, http: httpx.AsyncClient, arguments: Any
) -> None:
    before = env.upstream.count()
    body = json.dumps(rpc("tools/call", {"name": "post_obj", "arguments": arguments})).encode()
    error = _error(await _post(http, env, body))
    assert error["code"] == -32602
    assert error["message"] == "params.arguments must be an object"
    assert env.upstream.count() == before  # nothing was sent downstream


@pytest.mark.parametrize(
    ("arguments", "what"),
    [({"o": 1}, "must be an object"), ({}, "o"), ({"o": {}, "p": 1}, "p")],
)
async def test_bad_arguments_are_tool_errors_not_protocol_errors(
    env: Env, http: httpx.AsyncClient, arguments: Any, what: str
) -> None:
    before = env.upstream.count()
    body = json.dumps(rpc("tools/call", {"name": "post_obj", "arguments": arguments})).encode()
    reply = await _post(http, env, body)
    result = reply.json()["result"]
    assert result["isError"] is True
    assert what in result["content"][0]["text"]
    assert env.upstream.count() == before  # nothing was sent downstream


async def test_responses_and_notifications_from_clients_get_202(
    env: Env, http: httpx.AsyncClient
) -> None:
    for body in (
        b'{"jsonrpc":"2.0","id":7,"result":{}}',
        b'{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"}}',
        b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
        # no id: a notification, so nothing runs
        b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_ok"}}',
    ):
        reply = await _post(http, env, body)
        assert reply.status_code == 202, (body, reply.text)


async def test_huge_ids_and_method_names_are_answered_not_fatal(
    env: Env, http: httpx.AsyncClient
) -> None:
    big_id = "i" * 200_000
    reply = await _post(http, env, json.dumps(rpc("ping", id_=big_id)).encode())
    assert reply.status_code == 200
    assert reply.json()["id"] == big_id
    reply = await _post(http, env, json.dumps(rpc("m" * 500_000)).encode())
    assert reply.status_code == 200
    assert _error(reply)["code"] == NOT_FOUND
    await _still_serving(http, env)


# --- protocol versions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "status"),
    [
        (None, 200),
        ("2026-07-28", 200),
        ("2025-11-25", 200),
        ("2025-06-18", 200),
        ("2025-03-26", 200),
        ("2024-11-05", 400),
        ("2025-13-40", 400),
        ("latest", 400),
        ("2025-06-18, 2025-03-26", 400),
        ("9" * 8000, 400),
        ("", 200),  # an empty header is read as an absent one: 2025-03-26
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else repr(v)[:12],
)
async def test_protocol_versions(
    env: Env, http: httpx.AsyncClient, version: str | None, status: int
) -> None:
    headers = {} if version is None else {"mcp-protocol-version": version}
    reply = await _post(http, env, json.dumps(rpc("tools/list")).encode(), headers)
    assert reply.status_code == status, reply.text
    if status == 400:
        error = _error(reply)
        assert error["id"] is None
        assert len(reply.content) < 1000  # the echo of the version is cut short
    else:
        assert len(reply.json()["result"]["tools"]) == 3


@pytest.mark.parametrize("asked", [None, 5, ["2025-06-18"], {"v": 1}, "2099-01-01", "x" * 10_000])
async def test_initialize_with_odd_protocol_versions(
    env: Env, http: httpx.AsyncClient, asked: Any
) -> None:
    params: dict[str, Any] = {"capabilities": {}, "clientInfo": {"name": "h", "version": "0"}}
    if asked is not None:
        params["protocolVersion"] = asked
    reply = await _post(http, env, json.dumps(rpc("initialize", params)).encode())
    assert reply.status_code == 200
    assert reply.json()["result"]["protocolVersion"] == "2025-11-25"


# --- huge and deep bodies -------------------------------------------------------------------


async def _raw(port: int, data: bytes, *, trickle: float = 0.0, read_for: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection; return what came back within `read_for`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if trickle:
            with contextlib.suppress(ConnectionError):  # the gateway may answer and close early
                for start in range(0, len(data), 65536):
                    writer.write(data[start : start + 65536])
                    await writer.drain()
                    await asyncio.sleep(trickle)
        else:
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(read_for):
                while b"\r\n\r\n" not in answer or not answer.endswith((b"}", b"\r\n\r\n")):
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    answer += chunk
        return answer
    finally:
        writer.close()


def _head(headers: str) -> bytes:
    return (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\n{headers}\r\n"
    ).encode()


async def test_a_huge_declared_length_gets_413_before_any_body(env: Env) -> None:
    started = time.monotonic()
    answer = await _raw(env.gateway.port, _head("Content-Length: 1000000000000\r\n"))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 2


async def test_a_chunked_body_over_the_limit_gets_413(env: Env) -> None:
    chunk = b"x" * 65536
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2 * MAX_BODY // len(chunk))
    )
    answer = await _raw(
        env.gateway.port, _head("Transfer-Encoding: chunked\r\n") + body + b"0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_a_chunked_body_trickled_past_the_limit_gets_413(env: Env) -> None:
    chunk = b" " * 65536
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk) + 2)
    )
    answer = await _raw(
        env.gateway.port, _head("Transfer-Encoding: chunked\r\n") + body, trickle=0.02
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_a_body_at_the_limit_is_read(env: Env, http: httpx.AsyncClient) -> None:
    message = json.dumps(rpc("ping")).encode()
    body = message + b" " * (MAX_BODY - len(message))
    reply = await _post(http, env, body)
    assert reply.status_code == 200
    assert reply.json()["result"] == {}
    reply = await _post(http, env, body + b" ")
    assert reply.status_code == 413
    await _still_serving(http, env)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("tool", ["post_obj", "get_query"])
@pytest.mark.parametrize("depth", [50, 300])
async def test_deeply_nested_arguments_are_sent_as_json(
    env: Env, http: httpx.AsyncClient, tool: str, depth: int
) -> None:
    body = json.dumps(rpc("tools/call", {"name": tool, "arguments": {"o": _nested(depth)}}))
    reply = await _post(http, env, body.encode())
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["result"]["isError"] is False


async def test_nesting_beyond_the_parser_limit_is_a_parse_error(
    env: Env, http: httpx.AsyncClient
) -> None:
    reply = await _post(http, env, _deep_call("post_obj", 1100))
    assert reply.status_code == 400
    assert _error(reply)["code"] == PARSE
    await _still_serving(http, env)


@pytest.mark.parametrize("tool", ["post_obj", "get_query"])
async def test_arguments_just_under_the_parser_limit_are_not_a_crash(
    env: Env, http: httpx.AsyncClient, tool: str
) -> None:
    """Regression (found by this suite, fixed since): tool arguments nested about 950-1020
    levels deep (under orjson's 1024 parse limit) raise RecursionError in templates.py
    (CompiledTool.prepare: _dumps falls back to json.dumps, _text to _compact_json),
    which prepare() and ToolRunner.call did not catch: HTTP 500"""
    reply = await _post(http, env, _deep_call(tool, 1015))
    assert reply.status_code == 200, reply.status_code
    assert "result" in reply.json()


def _deep_call(tool: str, depth: int) -> bytes:
    """A tools/call whose argument `o` is nested `depth` levels (too deep for json.dumps)."""
    head = (
        '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
        f'"params":{{"name":"{tool}","arguments":{{"o":'
    )
    return (head + '{"a":' * depth + "1" + "}" * depth + "}}}").encode()


# --- origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (ALLOWED_ORIGIN, True),
        ("HTTPS://Console.Example.COM", True),
        ("https://console.example.com:443", True),
        ("https://console.example.com/", True),
        ("http://console.example.com", False),
        ("https://console.example.com:8443", False),
        ("https://console.example.com.evil.example", False),
        ("https://evil.example/https://console.example.com", False),
        ("https://sub.console.example.com", False),
        ("null", False),
        ("", False),
        ("https://console.example.com/path", False),
        ("file://", False),
    ],
)
async def test_foreign_origins_get_403_before_anything_else(
    env: Env, http: httpx.AsyncClient, origin: str, allowed: bool
) -> None:
    body = json.dumps(rpc("tools/call", {"name": "get_ok", "arguments": {"key": "o"}})).encode()
    before = env.upstream.count()
    reply = await _post(http, env, body, {"origin": origin})
    if allowed:
        assert reply.status_code == 200
        assert reply.headers["access-control-allow-origin"] == origin
    else:
        assert reply.status_code == 403, reply.text
        assert "access-control-allow-origin" not in reply.headers
        assert env.upstream.count() == before
    preflight = await http.options(
        env.gateway.url, headers={"origin": origin, "access-control-request-method": "POST"}
    )
    assert (preflight.status_code == 204) == allowed


# --- many slow connections ---------------------------------------------------------------------


async def _slow_socket(port: int, until: float, closed: list[int]) -> None:
    """Headers one byte at a time, never finished, until `until` (slowloris)."""
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Padding: " + b"p" * 100_000
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed.append(1)
        return
    try:
        index = 0
        while time.monotonic() < until:
            writer.write(head[index : index + 1])
            index += 1
            await writer.drain()
            await asyncio.sleep(random.uniform(0.3, 0.9))  # noqa: S311
            if reader.at_eof():
                closed.append(1)
                return
    except ConnectionError:
        closed.append(1)
    finally:
        writer.close()


async def test_slow_connections_do_not_take_the_gateway_down(env: Env) -> None:
    sockets = scale(200, 1000)
    seconds = scale(3, 15)
    port = env.gateway.port
    rss_before, fds_before = env.gateway.rss_kib(), env.gateway.open_fds()
    until = time.monotonic() + seconds
    closed: list[int] = []
    slow = [asyncio.create_task(_slow_socket(port, until, closed)) for _ in range(sockets)]
    await asyncio.sleep(0.5)  # let them connect
    probes: list[float] = []
    ready_failures = call_failures = 0
    rss_peak, fds_peak = rss_before, fds_before
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < until - 0.3:
            started = time.monotonic()
            ready = await http.get(env.gateway.base + "/readyz")
            ready_failures += ready.status_code != 200
            reply = await http.post(
                env.gateway.url,
                json=rpc("tools/call", {"name": "get_ok", "arguments": {"key": "probe"}}),
                headers=HEADERS,
            )
            call_failures += reply.status_code != 200 or reply.json()["result"]["isError"]
            probes.append(time.monotonic() - started)
            rss_peak = max(rss_peak, env.gateway.rss_kib())
            fds_peak = max(fds_peak, env.gateway.open_fds())
            await asyncio.sleep(0.2)
    await asyncio.gather(*slow)
    await asyncio.sleep(0.3)
    figures(
        "slow connections (slowloris)",
        {
            "slow sockets held open": sockets,
            "seconds": seconds,
            "sockets the gateway closed while they trickled": len(closed),
            "gateway open fds before / peak": f"{fds_before} / {fds_peak}",
            "gateway RSS before / peak / after (MiB)": (
                f"{rss_before / 1024:.1f} / {rss_peak / 1024:.1f}"
                f" / {env.gateway.rss_kib() / 1024:.1f}"
            ),
            "RSS per slow socket (KiB)": round((rss_peak - rss_before) / sockets, 1),
            "probes (readyz + tools/call)": len(probes),
            "readyz failures": ready_failures,
            "tools/call failures": call_failures,
            "probe p50 / p99 (ms)": (
                f"{percentile(probes, 50) * 1000:.1f} / {percentile(probes, 99) * 1000:.1f}"
            ),
        },
    )
    assert env.gateway.alive()
    assert ready_failures == 0
    assert call_failures == 0
    assert len(probes) >= seconds  # the gateway kept answering all along
    assert (rss_peak - rss_before) / sockets < 256  # KiB per slow connection: bounded


async def _big_body(port: int, size: int, done: list[bytes]) -> None:
    message = json.dumps(rpc("ping")).encode()
    body = message + b" " * (size - len(message))
    done.append(
        await _raw(port, _head(f"Content-Length: {size}\r\n") + body, trickle=0.05, read_for=30)
    )


async def test_concurrent_bodies_near_the_limit_cost_bounded_memory(env: Env) -> None:
    """Each connection may make the gateway hold up to the request limit (1 MiB): memory
    grows with concurrent big bodies, bounded per connection (there is no global limit
    on connections: see docs/reliability.md)."""
    connections = scale(24, 128)
    rss_before = env.gateway.rss_kib()
    done: list[bytes] = []
    tasks = [
        asyncio.create_task(_big_body(env.gateway.port, MAX_BODY - 1024, done))
        for _ in range(connections)
    ]
    peak = rss_before
    while not all(t.done() for t in tasks):
        peak = max(peak, env.gateway.rss_kib())
        await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    growth = (peak - rss_before) / 1024
    figures(
        "concurrent request bodies near the 1 MiB limit",
        {
            "connections": connections,
            "answered 200": sum(a.startswith(b"HTTP/1.1 200") for a in done),
            "gateway RSS before / peak (MiB)": f"{rss_before / 1024:.1f} / {peak / 1024:.1f}",
            "RSS growth per connection (MiB)": round(growth / connections, 2),
        },
    )
    assert all(a.startswith(b"HTTP/1.1 200") for a in done), [a[:60] for a in done]
    assert growth < connections * 3 + 32
    assert env.gateway.alive()


# --- oversized request heads ----------------------------------------------------------------

MAX_HEAD = 32 * 1024  # API.md: request headers over 32 KiB in all, or over 100 fields, get 431
MAX_FIELDS = 100


def _ping_request(extra_headers: str, *, target: str = "/mcp") -> bytes:
    """A complete ping request: `_head`'s four fields plus `extra_headers`, then the body."""
    body = json.dumps(rpc("ping")).encode()
    head = _head(f"Content-Length: {len(body)}\r\n{extra_headers}")
    return head.replace(b"POST /mcp ", f"POST {target} ".encode(), 1) + body


def _head_of(request: bytes) -> int:
    return request.index(b"\r\n\r\n") + 4


def _padded_to(size: int) -> bytes:
    """A ping whose head (request line to the blank line, inclusive) is exactly `size` bytes."""
    bare = _head_of(_ping_request("X-Pad: \r\n"))
    request = _ping_request(f"X-Pad: {'p' * (size - bare)}\r\n")
    assert _head_of(request) == size
    return request


async def test_a_head_of_exactly_32_kib_is_served(env: Env) -> None:
    answer = await _raw(env.gateway.port, _padded_to(MAX_HEAD))
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def test_a_head_one_byte_over_32_kib_gets_431(env: Env) -> None:
    answer = await _raw(env.gateway.port, _padded_to(MAX_HEAD + 1))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert any("request refused with 431" in line for line in env.gateway.log_lines())


async def test_100_header_fields_are_served_and_101_get_431(env: Env) -> None:
    def fields(count: int) -> str:  # `_ping_request` already has 4 fields
        return "".join(f"X-F{n}: v\r\n" for n in range(count - 4))

    served = await _raw(env.gateway.port, _ping_request(fields(MAX_FIELDS)))
    assert served.startswith(b"HTTP/1.1 200"), served[:200]
    refused = await _raw(env.gateway.port, _ping_request(fields(MAX_FIELDS + 1)))
    assert refused.startswith(b"HTTP/1.1 431"), refused[:200]


async def test_a_long_target_counts_toward_the_head(env: Env) -> None:
    answer = await _raw(env.gateway.port, _ping_request("", target="/mcp?" + "q" * MAX_HEAD))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


async def test_an_oversized_head_gets_431_before_origin_or_auth(env: Env) -> None:
    """A foreign Origin would be 403: the size is refused first."""
    request = _ping_request(f"Origin: https://evil.example\r\nX-Pad: {'p' * MAX_HEAD}\r\n")
    answer = await _raw(env.gateway.port, request)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


async def test_pipelined_requests_near_the_limit_are_all_served(env: Env) -> None:
    """Several requests in one write: the head count starts again with each request."""
    requests = [_padded_to(MAX_HEAD - 100), _ping_request(""), _padded_to(MAX_HEAD)]
    reader, writer = await asyncio.open_connection("127.0.0.1", env.gateway.port)
    try:
        writer.write(b"".join(requests))
        answers = b""
        async with asyncio.timeout(10):
            while answers.count(b"HTTP/1.1 200") < len(requests):
                chunk = await reader.read(65536)
                assert chunk, answers
                answers += chunk
    finally:
        writer.close()
    assert answers.count(b"HTTP/1.1 ") == len(requests)


async def test_an_oversized_head_after_a_served_request_on_one_connection_gets_431(
    env: Env,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", env.gateway.port)
    try:
        writer.write(_ping_request(""))
        async with asyncio.timeout(10):
            first = await reader.readuntil(b"\r\n\r\n")
            length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        writer.write(_padded_to(MAX_HEAD + 1))
        async with asyncio.timeout(10):
            second = await reader.read()
        assert second.startswith(b"HTTP/1.1 431"), second[:200]
    finally:
        writer.close()


async def test_a_malformed_head_still_gets_400(env: Env) -> None:
    answer = await _raw(env.gateway.port, b"POST /mcp HTTP/1.1\r\nBad Header\r\n\r\n" * 3)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert answer.count(b"HTTP/1.1") == 1


async def _flood(port: int, first: bytes, line: bytes, total: int, answers: list[bytes]) -> None:
    """Send `first`, then `line` again and again up to `total` bytes, never ending the head;
    keep what came back (the gateway may answer and reset before everything is sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = b""
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(first)
            batch = line * max(1, 65536 // len(line))
            for _ in range(0, total, len(batch)):
                writer.write(batch)
                await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(10):
                while chunk := await reader.read(65536):
                    answer += chunk
    finally:
        writer.close()
        answers.append(answer)


@pytest.mark.parametrize("which", ["mcp", "metrics"])
async def test_megabytes_of_headers_get_431_and_memory_stays_bounded(
    env: Env, http: httpx.AsyncClient, which: str
) -> None:
    """The attack of issue #15: one socket sending 8 MB of header lines grew the gateway
    by 184 MiB. Now each head is cut at 32 KiB, whatever its shape: many lines, one
    endless header value, an endless target; on the metrics port as on the MCP port."""
    port = env.gateway.port if which == "mcp" else env.gateway.metrics_port
    rss_before = env.gateway.rss_kib()
    total = scale(8, 64) * 1024 * 1024
    start = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    shapes = [
        (start, b"X-Pad: " + b"p" * 200 + b"\r\n"),  # many header lines
        (start + b"X-Pad: ", b"p" * 4096),  # one header value, never ended
        (b"POST /mcp?", b"q" * 4096),  # a request target, never ended
    ]
    rounds = 3
    answers: list[bytes] = []
    peak = rss_before
    for _ in range(rounds):
        tasks = [
            asyncio.create_task(_flood(port, first, line, total, answers)) for first, line in shapes
        ]
        while not all(t.done() for t in tasks):
            peak = max(peak, env.gateway.rss_kib())
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)
    growth_mib = (peak - rss_before) / 1024
    figures(
        f"oversized request heads ({which} port)",
        {
            "connections": rounds * len(shapes),
            "MiB sent per connection (at most)": total // (1024 * 1024),
            "answered 431": sum(a.startswith(b"HTTP/1.1 431") for a in answers),
            "gateway RSS before / peak (MiB)": f"{rss_before / 1024:.1f} / {peak / 1024:.1f}",
        },
    )
    assert len(answers) == rounds * len(shapes)
    assert all(a.startswith(b"HTTP/1.1 431") or a == b"" for a in answers), answers
    assert any(a.startswith(b"HTTP/1.1 431") for a in answers), answers
    assert growth_mib < 32
    await _still_serving(http, env)


async def test_the_gateway_is_still_serving_and_logged_no_traceback(
    env: Env, http: httpx.AsyncClient
) -> None:
    await _still_serving(http, env)
    tracebacks = [line for line in env.gateway.log_lines() if "Traceback" in line]
    assert tracebacks == [], tracebacks[:1]
