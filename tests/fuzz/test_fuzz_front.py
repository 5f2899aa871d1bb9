"""Fuzz of the HTTP front and the JSON-RPC layer through a real gateway on loopback.

Whatever a client sends (arbitrary JSON values, methods, params, headers), the gateway
answers below 500, within a bound, and its memory stays bounded over the batch. Bounded in
CI (a few dozen examples each); `MCPGATE_FUZZ=long` runs many more (docs/conformance.md).
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.gateway import gateway_from_manifests

__all__: list[str] = []

LONG = os.environ.get("MCPGATE_FUZZ") == "long"
SETTINGS = settings(
    max_examples=2000 if LONG else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MANIFESTS = Path(__file__).parents[1] / "conformance"
# The data source's calls go to a loopback port nothing listens on: fast tool errors.
UPSTREAMS = {"http://conformance-api:8081": "http://127.0.0.1:9"}
TIMEOUT = httpx.Timeout(10.0)  # a hang fails the example instead of stalling the run

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "initialize",
        "server/discover",
        "ping",
        "tools/list",
        "tools/call",
        "notifications/initialized",
    ]
) | st.text(max_size=20)
tool_names = st.sampled_from(["test_simple_text", "test_error_handling"]) | st.text(max_size=10)
params = json_values | st.fixed_dictionaries(
    {"name": tool_names, "arguments": json_values},
    optional={"cursor": json_values, "_meta": json_values},
)
messages = (
    st.fixed_dictionaries(
        {"jsonrpc": st.sampled_from(["2.0"]) | json_values, "method": methods},
        optional={"id": st.integers() | st.text(max_size=8) | json_values, "params": params},
    )
    | json_values
)
header_values = st.text(  # h11 will not send surrounding spaces, so none are drawn
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
versions = st.sampled_from(["2025-11-25", "2025-06-18", "2025-03-26", "2026-07-28"]) | header_values


def _assert_sane(answer: httpx.Response) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text[:500])


async def test_arbitrary_json_rpc_messages_never_crash_the_gateway() -> None:
    async with gateway_from_manifests([MANIFESTS], upstreams=UPSTREAMS) as gw:
        with httpx.Client(timeout=TIMEOUT) as client:

            @SETTINGS
            @given(message=messages, version=versions)
            def check(message: Any, version: str) -> None:
                answer = client.post(
                    gw.url,
                    json=message,
                    headers={"Accept": "application/json", "MCP-Protocol-Version": version},
                )
                _assert_sane(answer)

            tracemalloc.start()
            try:
                check()
                gc.collect()
                before = tracemalloc.get_traced_memory()[0]
                check()
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            # A second batch of the same size must not keep what the first left: generous.
            assert after - before < 32 * 1024 * 1024, (before, after)


async def test_arbitrary_bytes_and_headers_never_crash_the_gateway() -> None:
    async with gateway_from_manifests([MANIFESTS], upstreams=UPSTREAMS) as gw:
        with httpx.Client(timeout=TIMEOUT) as client:

            @SETTINGS
            @given(
                body=st.binary(max_size=300),
                content_type=st.sampled_from(["application/json"]) | header_values,
                accept=st.sampled_from(["application/json, text/event-stream"]) | header_values,
                origin=st.none() | header_values,
                method=st.sampled_from(["POST", "GET", "DELETE", "OPTIONS", "PUT"]),
            )
            def check(
                body: bytes, content_type: str, accept: str, origin: str | None, method: str
            ) -> None:
                headers = {"Content-Type": content_type, "Accept": accept}
                if origin is not None:
                    headers["Origin"] = origin
                _assert_sane(client.request(method, gw.url, content=body, headers=headers))

            check()
