"""Tool calls end to end: manifests -> the real translation -> the real gateway -> a real
upstream, driven by the official MCP client. The upstream checks exactly what arrives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse, PlainTextResponse, Response

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.config import gateway_config

from support.gateway import RunningGateway, mcp_session, running_gateway
from support.upstream import RecordedRequest, RecordingUpstream

TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_invoice",
        "description": "Fetch one invoice.",
        "dataSource": "billing",
        "parameters": [
            {"name": "id", "type": "String", "required": True},
            {"name": "expand", "type": "Boolean"},
            {"name": "limit", "type": "Integer", "default": 10},
            {"name": "tags", "type": "Array", "items": {"type": "String"}},
            {"name": "trace", "type": "String"},
        ],
        "request": {
            "path": "/invoices/:id",
            "query": {"expand": ":expand", "limit": ":limit", "tag": ":tags", "v": "2"},
            "headers": {"X-Trace": "inv-:trace", "X-Static": "yes"},
        },
    },
    {
        "name": "create_note",
        "description": "Create a note.",
        "dataSource": "billing",
        "parameters": [
            {"name": "invoice", "type": "Integer", "required": True},
            {"name": "text", "type": "String", "required": True},
            {"name": "amount", "type": "Number"},
            {"name": "meta", "type": "Object"},
            {"name": "urgent", "type": "Boolean", "default": False},
            {"name": "kind", "type": "String", "enum": ["memo", "claim"]},
        ],
        "request": {
            "method": "POST",
            "path": "/invoices/:invoice/notes",
            "body": {
                "text": ":text",
                "amount": ":amount",
                "meta": ":meta",
                "urgent": ":urgent",
                "summary": "note on :invoice (:kind)",
                "kind": ":kind",
                "literal": "type:receipt",
            },
        },
    },
    {
        "name": "delete_note",
        "description": "Delete a note.",
        "dataSource": "billing",
        "parameters": [{"name": "note", "type": "String", "required": True}],
        "request": {"method": "DELETE", "path": "/notes/:note:archive"},
    },
]


def _models(
    base_url: str, tools: list[dict[str, Any]] | None = None
) -> tuple[McpServer, dict[str, HttpApiDataSource]]:
    server = McpServer.model_validate(
        {"metadata": {"name": "billing-mcp"}, "spec": {"tools": tools or TOOLS}}
    )
    source = HttpApiDataSource.model_validate(
        {
            "metadata": {"name": "billing"},
            "spec": {"baseUrl": f"{base_url}/api", "headers": {"Accept": "application/json"}},
        }
    )
    return server, {"billing": source}


@pytest.fixture
async def gateway(upstream: RecordingUpstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    server, sources = _models(upstream.url)
    async with running_gateway(
        gateway_config(
            server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
        )
    ) as gw:
        yield gw


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_input_schemas(gateway: RunningGateway, mode: Any) -> None:
    async with mcp_session(gateway.url, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["get_invoice"].input_schema
    assert schema["type"] == "object"
    assert schema["required"] == ["id"]
    props = schema["properties"]
    assert props["id"]["type"] == "string"
    assert props["expand"]["type"] == "boolean"
    assert props["limit"] == {"type": "integer", "default": 10}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    create = tools["create_note"].input_schema["properties"]
    assert create["amount"]["type"] == "number"
    assert create["meta"]["type"] == "object"
    assert create["kind"]["enum"] == ["memo", "claim"]
    assert tools["delete_note"].annotations is not None
    assert tools["delete_note"].annotations.destructive_hint is True
    assert tools["delete_note"].annotations.idempotent_hint is True


async def test_get_with_path_query_and_headers(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool(
            "get_invoice", {"id": "INV-1", "expand": True, "tags": ["a", "b c"], "trace": "t1"}
        )
    assert result.is_error is False
    assert result.structured_content == {"ok": True}
    (seen,) = upstream.requests
    assert (seen.method, seen.path) == ("GET", "/api/invoices/INV-1")
    assert seen.query_params() == [
        ("expand", "true"),
        ("limit", "10"),
        ("tag", "a"),
        ("tag", "b c"),
        ("v", "2"),
    ]
    assert seen.header("x-trace") == "inv-t1"
    assert seen.header("x-static") == "yes"
    assert seen.header("accept") == "application/json"
    assert seen.body == b""


@pytest.mark.parametrize(
    ("value", "raw_segment"),
    [
        ("../admin", "..%2Fadmin"),
        ("%2e%2e/", "%252e%252e%2F"),
        ("http://other-host/", "http%3A%2F%2Fother-host%2F"),
        ("?x=1#", "%3Fx%3D1%23"),
        ("a b", "a%20b"),
    ],
)
async def test_path_value_is_one_encoded_segment(
    gateway: RunningGateway, upstream: RecordingUpstream, value: str, raw_segment: str
) -> None:
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool("get_invoice", {"id": value})
    assert result.is_error is False
    (seen,) = upstream.requests  # the host did not change: our upstream got it
    assert seen.raw_path == f"/api/invoices/{raw_segment}"
    assert ("x", "1") not in seen.query_params()


async def test_absent_optionals_are_left_out(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    async with mcp_session(gateway.url) as client:
        await client.call_tool("get_invoice", {"id": "7"})
    (seen,) = upstream.requests
    assert seen.query_params() == [("limit", "10"), ("v", "2")]
    assert seen.header("x-trace") == "inv-"


async def test_post_body_is_typed(gateway: RunningGateway, upstream: RecordingUpstream) -> None:
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool(
            "create_note",
            {"invoice": 42, "text": "paid", "amount": 12.5, "meta": {"by": ["me"]}, "kind": "memo"},
        )
    assert result.is_error is False
    (seen,) = upstream.requests
    assert (seen.method, seen.path) == ("POST", "/api/invoices/42/notes")
    assert seen.header("content-type") == "application/json"
    assert seen.json() == {
        "text": "paid",
        "amount": 12.5,
        "meta": {"by": ["me"]},
        "urgent": False,
        "summary": "note on 42 (memo)",
        "kind": "memo",
        "literal": "type:receipt",
    }


async def test_absent_body_fields_are_left_out(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    async with mcp_session(gateway.url) as client:
        await client.call_tool("create_note", {"invoice": 1, "text": "x"})
    assert upstream.requests[0].json() == {
        "text": "x",
        "urgent": False,
        "summary": "note on 1 ()",
        "literal": "type:receipt",
    }


async def test_literal_colon_words_stay(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    async with mcp_session(gateway.url) as client:
        await client.call_tool("delete_note", {"note": "n1"})
    (seen,) = upstream.requests
    assert (seen.method, seen.path) == ("DELETE", "/api/notes/n1:archive")


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({}, "argument 'id' is required"),
        ({"id": 5}, "argument 'id' must be a string"),
        ({"id": "x", "limit": "ten"}, "argument 'limit' must be an integer"),
        ({"id": "x", "expand": "yes"}, "argument 'expand' must be a boolean"),
        ({"id": "x", "tags": [1]}, "argument 'tags' item 0 must be a string"),
        ({"id": "x", "bogus": 1}, "unknown argument 'bogus'"),
        ({"id": ".."}, "must not be"),
        ({"id": ""}, "must not be empty"),
        ({"id": "x", "trace": "a\r\nX-Evil: 1"}, "makes header X-Trace invalid"),
    ],
)
async def test_bad_arguments_are_tool_errors_and_nothing_is_sent(
    gateway: RunningGateway, upstream: RecordingUpstream, arguments: dict[str, Any], says: str
) -> None:
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool("get_invoice", arguments)
    assert result.is_error is True
    assert says in result.content[0].text  # type: ignore[union-attr]
    assert "X-Evil" not in result.content[0].text  # type: ignore[union-attr]
    assert upstream.requests == []


async def test_enum_is_enforced(gateway: RunningGateway, upstream: RecordingUpstream) -> None:
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool("create_note", {"invoice": 1, "text": "x", "kind": "x"})
    assert result.is_error is True
    assert upstream.requests == []


def _answer(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    def handler(_: RecordedRequest) -> Response:
        return Response(body, status_code=status, media_type=content_type, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("status", "body", "content_type", "text", "structured"),
    [
        (
            200,
            b'{"id": "7", "total": 3}',
            "application/json",
            '{"id": "7", "total": 3}',
            {"id": "7", "total": 3},
        ),
        (200, b"[1, 2]", "application/json", "[1, 2]", None),
        (200, b"plain text", "text/plain", "plain text", None),
        (200, b'{"broken": ', "application/json", '{"broken": ', None),
        (204, b"", "application/json", "", None),
    ],
)
async def test_success_results(
    gateway: RunningGateway,
    upstream: RecordingUpstream,
    status: int,
    body: bytes,
    content_type: str,
    text: str,
    structured: Any,
) -> None:
    upstream.set_handler(_answer(status, body, content_type))
    async with mcp_session(gateway.url, mode="legacy") as client:
        result = await client.call_tool("get_invoice", {"id": "7"})
    assert result.is_error is False
    assert result.content[0].text == text  # type: ignore[union-attr]
    assert result.structured_content == structured


@pytest.mark.parametrize("status", [400, 404, 409, 500])
async def test_failure_statuses_are_tool_errors_with_an_excerpt(
    gateway: RunningGateway, upstream: RecordingUpstream, status: int
) -> None:
    upstream.set_handler(_answer(status, json.dumps({"error": "nope " * 1000}).encode()))
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool("create_note", {"invoice": 1, "text": "x"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error is True
    assert text.startswith(f"data source billing answered {status}")
    assert "nope" in text
    assert len(text) < 2048 + 200
    assert len(upstream.requests) == 1  # POST is never retried


async def test_redirect_is_a_tool_error_and_is_not_followed(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    from support.upstream import running_upstream

    async with running_upstream() as other:
        upstream.set_handler(
            lambda _: PlainTextResponse(
                "moved", status_code=302, headers={"location": f"{other.url}/steal"}
            )
        )
        async with mcp_session(gateway.url) as client:
            result = await client.call_tool("get_invoice", {"id": "7"})
        assert result.is_error is True
        assert "302" in result.content[0].text  # type: ignore[union-attr]
        assert other.requests == []


async def test_cookies_are_never_replayed(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    upstream.set_handler(
        lambda _: JSONResponse({"ok": True}, headers={"set-cookie": "session=caller-one; Path=/"})
    )
    async with mcp_session(gateway.url) as client:
        await client.call_tool("get_invoice", {"id": "1"})
        await client.call_tool("get_invoice", {"id": "2"})
    assert [r.header("cookie") for r in upstream.requests] == [None, None]


async def test_ten_megabyte_request_gets_413(gateway: RunningGateway) -> None:
    import httpx

    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"x" * 10_000_000 + b'"}'
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await http.post(
            gateway.url,
            content=body,
            headers={"content-type": "application/json", "accept": "application/json"},
        )
    assert reply.status_code == 413


async def test_oversized_response_is_a_tool_error(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    server, sources = _models(upstream.url)
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    config = config.model_copy(
        update={"limits": config.limits.model_copy(update={"max_response_bytes": 64 * 1024})}
    )
    upstream.set_handler(_answer(200, b"x" * (200 * 1024), "text/plain"))
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        result = await client.call_tool("get_invoice", {"id": "7"})
    assert result.is_error is True
    assert "larger than the 64 KiB limit" in result.content[0].text  # type: ignore[union-attr]


async def test_retries_get_on_503_honouring_retry_after(
    gateway: RunningGateway, upstream: RecordingUpstream
) -> None:
    answers = iter([(503, {"retry-after": "0"}), (429, {"retry-after": "0"}), (200, {})])

    def flaky(_: RecordedRequest) -> Response:
        status, headers = next(answers)
        return JSONResponse({"status": status}, status_code=status, headers=headers)

    upstream.set_handler(flaky)
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool("get_invoice", {"id": "7"})
    assert result.is_error is False
    assert len(upstream.requests) == 3


async def test_post_is_not_retried(gateway: RunningGateway, upstream: RecordingUpstream) -> None:
    upstream.set_handler(_answer(503, b"{}"))
    async with mcp_session(gateway.url) as client:
        result = await client.call_tool("create_note", {"invoice": 1, "text": "x"})
    assert result.is_error is True
    assert len(upstream.requests) == 1


async def test_connection_refused_names_the_data_source(refused_url: str, tmp_path: Path) -> None:
    server, sources = _models(refused_url)
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        result = await client.call_tool("get_invoice", {"id": "7"})
    assert result.is_error is True
    assert result.content[0].text.startswith("data source billing:")  # type: ignore[union-attr]


async def test_a_request_without_a_body_has_no_content_type(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    """Neither aiohttp's application/octet-stream for a POST, PUT or PATCH nor a
    Content-Type set by the data source or the tool: a request without a body carries none.
    A request with a body carries the tool's or the default one."""
    tools: list[dict[str, Any]] = [
        {
            "name": f"bare_{method.lower()}",
            "dataSource": "billing",
            "request": {
                "method": method,
                "path": f"/bare/{method}",
                "headers": {"Content-Type": "application/json"},
            },
        }
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ]
    tools.append(
        {
            "name": "post_plain",
            "dataSource": "billing",
            "request": {"method": "POST", "path": "/plain"},
        }
    )
    tools.append(
        {
            "name": "post_body",
            "dataSource": "billing",
            "request": {"method": "POST", "path": "/body", "body": {"a": 1}},
        }
    )
    server, sources = _models(upstream.url, tools)
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        for tool in tools:
            assert (await client.call_tool(tool["name"], {})).is_error is False
    assert len(upstream.requests) == len(tools)
    for seen in upstream.requests:
        expected = ["application/json"] if seen.path == "/api/body" else []
        assert seen.header_values("content-type") == expected, (seen.method, seen.path)
        assert (seen.body != b"") == (seen.path == "/api/body")


async def test_a_101_answer_is_a_tool_error(tmp_path: Path) -> None:
    """A 1xx final answer is no result: 101 Switching Protocols counted as success before."""
    got: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server, sources = _models(f"http://127.0.0.1:{port}")
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    try:
        async with running_gateway(config) as gw, mcp_session(gw.url) as client:
            result = await client.call_tool("get_invoice", {"id": "7"})
    finally:
        listener.close()
    assert got  # the request reached the server
    assert result.is_error is True
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("data source billing answered 101 Switching Protocols"), text
