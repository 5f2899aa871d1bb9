"""Property tests end to end: hypothesis-generated arguments of every parameter type, in
every template position (path, query, header, body), through the real gateway to a raw
server that records each request byte for byte.

Whatever the arguments: the request goes to the data source's host under its base
path, the path keeps the template's segments (each value one segment), the query keeps
the template's keys, headers never gain a line (no header appears that the template
does not name), the body is the typed JSON the template says, and arguments that do
not fit are an isError result with nothing sent. The unit tests check the same rules on
CompiledTool; these check what actually goes over the wire.

Integers are drawn within +-2**53 (the interoperable JSON range, RFC 7493): beyond 64
bits orjson parses an integer as a float, so a larger Integer argument reaches the API
rounded (see docs/reliability.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.faults import FaultServer, RawRequest
from hardening.gateways import HEADERS, gateway_in_thread, record, rpc
from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.config import gateway_config

from support.gateway import RunningGateway

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FORBIDDEN_IN_HEADERS = {chr(c) for c in (*range(0x09), *range(0x0A, 0x20), 0x7F)}
TRANSPORT_HEADERS = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "content-length",
    "connection",
}

PARAMS = [
    {"name": "s", "type": "String", "required": True},
    {"name": "i", "type": "Integer", "required": True},
    {"name": "n", "type": "Number", "required": True},
    {"name": "b", "type": "Boolean", "required": True},
    {"name": "a", "type": "Array", "items": {"type": "String"}, "required": True},
    {"name": "ai", "type": "Array", "items": {"type": "Integer"}, "required": True},
    {"name": "ao", "type": "Array", "items": {"type": "Object"}, "required": True},
    {"name": "o", "type": "Object", "required": True},
    {"name": "opt", "type": "String"},
]
PATH = "/c/echo/:s/x-:i-y/:n/:b/:a/:o/items:batchGet"
QUERY = {
    "s": ":s",
    "i": ":i",
    "n": ":n",
    "b": ":b",
    "a": ":a",
    "ai": ":ai",
    "o": ":o",
    "mix": "<:s|:i|:n|:opt>",
    "opt": ":opt",
    "fixed": "type:invoice",
}
HEADER_TEMPLATES = {
    "X-S": ":s",
    "X-Mix": "[:s|:i|:n|:b|:a|:o]",
    "X-Opt": ":opt",
    "X-Static": "fixed",
}
BODY = {
    "s": ":s",
    "i": ":i",
    "n": ":n",
    "b": ":b",
    "a": ":a",
    "ai": ":ai",
    "ao": ":ao",
    "o": ":o",
    "opt": ":opt",
    "text": "v=:n;:s",
    "nested": {"list": [":a", ":o", "lit-:s", ":opt"], "deep": {"x": ":i"}},
}


@dataclass
class Env:
    gateway: RunningGateway
    server: FaultServer
    http: httpx.Client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with FaultServer() as server:
        source = HttpApiDataSource.model_validate(
            {
                "metadata": {"name": "api"},
                "spec": {"baseUrl": server.base_url, "timeoutSeconds": 10},
            }
        )
        tools = [
            {"name": "path", "request": {"path": PATH}},
            {"name": "query", "request": {"path": "/c/echo/q", "query": QUERY}},
            {"name": "headers", "request": {"path": "/c/echo/h", "headers": HEADER_TEMPLATES}},
            {"name": "body", "request": {"method": "PUT", "path": "/c/echo/b", "body": BODY}},
        ]
        for tool in tools:
            tool.update(dataSource="api", parameters=PARAMS)
        server_model = McpServer.model_validate(
            {"metadata": {"name": "props"}, "spec": {"tools": tools}}
        )
        config = gateway_config(
            server_model,
            {"api": source},
            credentials_dir=str(tmp_path_factory.mktemp("props")),
            allow_loopback_destinations=True,
        )
        with gateway_in_thread(config) as gateway, httpx.Client(timeout=30) as http:
            yield Env(gateway, server, http)


# --- strategies ---------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=5)
ARGUMENTS = st.fixed_dictionaries(
    {
        "s": TEXT | st.sampled_from(["", ".", "..", "a/b", "?x=1#f", "%2F", "\r\nX-Evil: 1", "é"]),
        "i": st.integers(-(2**53), 2**53),
        "n": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
        "b": st.booleans(),
        "a": st.lists(TEXT, max_size=4),
        "ai": st.lists(st.integers(-(2**53), 2**53), max_size=4),
        "ao": st.lists(OBJECTS, max_size=3),
        "o": OBJECTS,
    },
    optional={"opt": TEXT},
)


# --- expectations -------------------------------------------------------------------------


def _text(value: Any) -> str:
    """API.md's text form of a value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _same(received: str, value: Any) -> bool:
    """Whether a text-form value arrived intact (numbers compared as numbers)."""
    if isinstance(value, str):
        return received == value
    if isinstance(value, float):
        return (
            math.isclose(float(received), value, rel_tol=0, abs_tol=0) or float(received) == value
        )
    return bool(json.loads(received) == value)


def _call(
    env: Env, tool: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], list[RawRequest]]:
    before = env.server.count()
    reply = env.http.post(
        env.gateway.url,
        json=rpc("tools/call", {"name": tool, "arguments": arguments}),
        headers=HEADERS,
    )
    assert reply.status_code == 200, reply.text[:500]
    result: dict[str, Any] = reply.json()["result"]
    if result["isError"]:
        record("tool result: property", result["content"][0]["text"])
    return result, env.server.requests[before:]


def _arrived_intact(request: RawRequest, port: int) -> None:
    assert request.header("host") == f"127.0.0.1:{port}"
    assert request.target.startswith("/api/c/echo/")


# --- the properties ----------------------------------------------------------------------


@SETTINGS
@given(arguments=ARGUMENTS)
def test_path_values_stay_one_segment_each(env: Env, arguments: dict[str, Any]) -> None:
    result, sent = _call(env, "path", arguments)
    texts = [_text(arguments[k]) for k in ("s", "i", "n", "b", "a", "o")]
    if any(t in ("", ".", "..") for t in texts):
        assert result["isError"]
        assert "part of the path" in result["content"][0]["text"]
        assert sent == []
        return
    assert not result["isError"], result
    (request,) = sent
    _arrived_intact(request, env.server.port)
    segments = request.path.split("/")
    assert len(segments) == len(("", "api", *PATH.strip("/").split("/"))), segments
    _, api, c, echo, s, xiy, n, b, a, o, literal = segments
    assert (api, c, echo, literal) == ("api", "c", "echo", "items:batchGet")
    assert xiy.startswith("x-")
    assert xiy.endswith("-y")
    assert unquote(s) == arguments["s"]
    assert _same(unquote(xiy[2:-2]), arguments["i"])
    assert _same(unquote(n), arguments["n"])
    assert unquote(b) == _text(arguments["b"])
    assert json.loads(unquote(a)) == arguments["a"]
    assert json.loads(unquote(o)) == arguments["o"]


@SETTINGS
@given(arguments=ARGUMENTS)
def test_query_keeps_the_template_keys(env: Env, arguments: dict[str, Any]) -> None:
    result, sent = _call(env, "query", arguments)
    assert not result["isError"], result
    (request,) = sent
    _arrived_intact(request, env.server.port)
    assert request.path == "/api/c/echo/q"
    pairs = parse_qsl(request.query, keep_blank_values=True, strict_parsing=False)
    assert {k for k, _ in pairs} <= set(QUERY)
    got: dict[str, list[str]] = {}
    for key, value in pairs:
        got.setdefault(key, []).append(value)
    assert got["s"] == [arguments["s"]]
    assert _same(got["i"][0], arguments["i"])
    assert len(got["i"]) == 1
    assert _same(got["n"][0], arguments["n"])
    assert got["b"] == [_text(arguments["b"])]
    assert got.get("a", []) == arguments["a"]  # an Array repeats its key
    assert [int(v) for v in got.get("ai", [])] == arguments["ai"]
    assert json.loads(got["o"][0]) == arguments["o"]
    assert got["fixed"] == ["type:invoice"]
    mix = got["mix"][0]
    assert mix.startswith("<")
    assert mix.endswith(">")
    if "opt" in arguments:
        assert got["opt"] == [arguments["opt"]]
    else:
        assert "opt" not in got


@SETTINGS
@given(arguments=ARGUMENTS)
def test_headers_never_gain_a_line(env: Env, arguments: dict[str, Any]) -> None:
    result, sent = _call(env, "headers", arguments)
    expected = {
        "X-S": _text(arguments["s"]),
        "X-Mix": "[" + "|".join(_text(arguments[k]) for k in ("s", "i", "n", "b", "a", "o")) + "]",
        "X-Static": "fixed",
    }
    if "opt" in arguments:
        expected["X-Opt"] = arguments["opt"]
    if any(set(v) & FORBIDDEN_IN_HEADERS for v in expected.values()):
        assert result["isError"]
        assert "control characters" in result["content"][0]["text"]
        assert sent == []
        return
    assert not result["isError"], result
    (request,) = sent
    _arrived_intact(request, env.server.port)
    names = [name.lower() for name, _ in request.headers]
    templated = [n for n in names if n not in TRANSPORT_HEADERS]
    assert sorted(templated) == sorted(n.lower() for n in expected), request.headers
    assert len(names) == len(set(names))  # no header twice
    for name, value in expected.items():
        received = request.header(name)
        assert received is not None
        wire = received.encode("latin-1").decode("utf-8")  # UTF-8 bytes on the wire
        assert wire == value.strip(" \t"), (name, wire, value)


def test_non_ascii_header_values_arrive_as_utf8(env: Env) -> None:
    """Regression (found by this suite, fixed since): non-ASCII header values arrive
    double-encoded ('José' as 'JosÃ©'): outbound.py:127 encodes template headers as
    UTF-8 bytes, transport.py:114 decodes them as latin-1 for aiohttp, which encodes
    header strings as UTF-8 again"""
    arguments = {"s": "José", "i": 1, "n": 1, "b": True, "a": [], "ai": [], "ao": [], "o": {}}
    result, sent = _call(env, "headers", arguments)
    assert not result["isError"]
    (request,) = sent
    assert request.header("x-s").encode("latin-1").decode("utf-8") == "José"


@SETTINGS
@given(arguments=ARGUMENTS)
def test_body_is_the_typed_json_template(env: Env, arguments: dict[str, Any]) -> None:
    result, sent = _call(env, "body", arguments)
    assert not result["isError"], result
    (request,) = sent
    _arrived_intact(request, env.server.port)
    assert request.method == "PUT"
    assert request.header("content-type") == "application/json"
    body = json.loads(request.body)
    expected = {k: arguments[k] for k in ("s", "i", "n", "b", "a", "ai", "ao", "o")}
    expected["text"] = f"v={_text(arguments['n'])};{arguments['s']}"
    nested: list[Any] = [arguments["a"], arguments["o"], f"lit-{arguments['s']}"]
    if "opt" in arguments:
        expected["opt"] = arguments["opt"]
        nested.append(arguments["opt"])
    expected["nested"] = {"list": nested, "deep": {"x": arguments["i"]}}
    assert body == expected


WRONG = {
    "s": st.integers() | st.booleans() | st.lists(TEXT, max_size=2) | OBJECTS,
    "i": st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
    | TEXT
    | st.booleans(),
    "n": TEXT | st.booleans() | st.lists(st.integers(), max_size=2),
    "b": st.integers() | TEXT | st.floats(allow_nan=False, allow_infinity=False),
    "a": st.lists(st.integers() | st.booleans(), min_size=1, max_size=3) | TEXT | OBJECTS,
    "ai": st.lists(
        TEXT
        | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
        min_size=1,
        max_size=3,
    ),
    "ao": st.lists(st.integers() | TEXT, min_size=1, max_size=3),
    "o": st.lists(JSON, max_size=3) | TEXT | st.integers(),
}


@SETTINGS
@given(
    tool=st.sampled_from(["path", "query", "headers", "body"]),
    arguments=ARGUMENTS,
    wrong=st.sampled_from(sorted(WRONG)).flatmap(lambda k: st.tuples(st.just(k), WRONG[k])),
    extra=st.booleans(),
)
def test_arguments_that_do_not_fit_send_nothing(
    env: Env, tool: str, arguments: dict[str, Any], wrong: tuple[str, Any], extra: bool
) -> None:
    name, value = wrong
    bad = {**arguments, name: value}
    if extra:
        bad["not_a_parameter"] = 1
    result, sent = _call(env, tool, bad)
    assert result["isError"], (bad, result)
    assert result["content"][0]["text"].startswith(f"invalid arguments for tool {tool}")
    assert sent == []
