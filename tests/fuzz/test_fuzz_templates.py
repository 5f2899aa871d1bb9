"""Fuzz of the templating, and of whole tool calls against an API that echoes everything.

1. Any argument values, through the argument check and the templates: either a tool
   input error, or a request that goes to the data source's host under its base path,
   with no CR, LF or NUL in a header. Never another exception.
2. Any argument values through a real gateway to a loopback API that answers every call
   with an error quoting all it received (path, query, headers, body): the gateway
   answers below 500, and no form of the data source's credential (a canary) is in any
   answer; memory stays bounded over the batch.

Bounded in CI; `MCPGATE_FUZZ=long` runs many more examples (docs/conformance.md).
"""

from __future__ import annotations

import gc
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.arguments import ToolArguments
from mcpgate.gateway.errors import ToolInputError
from mcpgate.gateway.templates import CompiledTool
from mcpgate.render.config import gateway_config

from support.gateway import mcp_session, running_gateway
from support.upstream import RecordedRequest, RecordingUpstream

LONG = os.environ.get("MCPGATE_FUZZ") == "long"
CANARY = "fz-canary-token/7a&9+c="
TOOLS: list[dict[str, Any]] = [
    {
        "name": "everything",
        "dataSource": "api",
        "parameters": [
            {"name": "id", "type": "String", "required": True},
            {"name": "q", "type": "String"},
            {"name": "n", "type": "Number"},
            {"name": "tags", "type": "Array", "items": {"type": "String"}},
            {"name": "meta", "type": "Object"},
            {"name": "flag", "type": "Boolean"},
        ],
        "request": {
            "method": "POST",
            "path": "/items/:id/sub",
            "query": {"q": ":q", "tags": ":tags", "label": "x-:q-y"},
            "headers": {"X-Trace": "t-:id", "X-Q": ":q"},
            "body": {"n": ":n", "meta": ":meta", "text": "id=:id flag=:flag", "tags": ":tags"},
        },
    }
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
strings = st.text(max_size=40) | st.sampled_from(["", ".", "..", "a/b", "?x=1", "#f", "\r\nX: y"])
arguments = st.fixed_dictionaries(
    {},
    optional={
        "id": strings | json_values,
        "q": strings | json_values,
        "n": json_values,
        "tags": st.lists(strings, max_size=4) | json_values,
        "meta": json_values,
        "flag": json_values,
        "extra": json_values,
    },
)


def _models(base_url: str) -> tuple[McpServer, dict[str, HttpApiDataSource]]:
    source = HttpApiDataSource.model_validate(
        {
            "metadata": {"name": "api"},
            "spec": {
                "baseUrl": base_url + "/base",
                "auth": {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "c", "key": "t"}}},
            },
        }
    )
    server = McpServer.model_validate({"metadata": {"name": "fuzz"}, "spec": {"tools": TOOLS}})
    return server, {"api": source}


@settings(max_examples=3000 if LONG else 300, deadline=None)
@given(args=arguments)
def test_templates_send_every_call_to_the_data_source_or_refuse_it(args: dict[str, Any]) -> None:
    server, sources = _models("https://api.example.test")
    config = gateway_config(server, sources, credentials_dir="/nonexistent")
    (tool,) = config.tools
    checker = ToolArguments(tool)
    compiled = CompiledTool(tool, config.data_sources["api"])
    try:
        prepared = compiled.prepare(checker.check(args))
    except ToolInputError:
        return
    target = urlsplit(prepared.url)
    assert (target.scheme, target.netloc) == ("https", "api.example.test")
    assert target.path.startswith("/base/items/")
    assert target.path.endswith("/sub")
    assert target.path.count("/") == 4  # the id is one segment, whatever it holds
    for name, value in prepared.headers:
        assert not any(c in value for c in "\r\n\0"), (name, value)


def _echo(request: RecordedRequest) -> JSONResponse:
    """An API that quotes everything it received in its error, credentials included."""
    return JSONResponse(
        {
            "path": request.raw_path or request.path,
            "query": request.query,
            "headers": dict(request.headers),
            "body": request.body.decode("utf-8", "replace"),
        },
        status_code=400,
    )


def _forms(value: str) -> list[str]:
    return [value, quote(value, safe=""), json.dumps(value)[1:-1], value[: len(value) * 2 // 3]]


@settings(
    max_examples=1000 if LONG else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(arguments, min_size=1, max_size=5))
async def test_no_argument_gets_the_credential_out_of_an_echoing_api(
    batch: list[dict[str, Any]], upstream: RecordingUpstream, tmp_path: Path
) -> None:
    assume(CANARY[:8] not in json.dumps(batch))  # the caller's own text is no leak
    (tmp_path / "c").mkdir(exist_ok=True)
    (tmp_path / "c" / "t").write_text(CANARY)
    upstream.set_handler(_echo)
    server, sources = _models(upstream.url)
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        for args in batch:
            result = await client.call_tool("everything", args)
            text = json.dumps(result.model_dump(mode="json"))
            for form in _forms(CANARY):
                assert form not in text, (args, form)


async def test_memory_stays_bounded_over_a_batch_of_echoed_calls(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "t").write_text(CANARY)
    upstream.set_handler(_echo)
    server, sources = _models(upstream.url)
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )
    args = {"id": "x" * 200, "q": "q" * 2000, "meta": {"k": ["v" * 100] * 20}}
    async with running_gateway(config) as gw, mcp_session(gw.url) as client:
        for _ in range(20):  # warm: pools, caches, compiled patterns
            await client.call_tool("everything", args)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(200 if LONG else 60):
                await client.call_tool("everything", args)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 16 * 1024 * 1024, f"{grown} bytes kept after the batch"
