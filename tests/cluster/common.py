"""One small McpServer over one Bearer data source, made the way a user makes it (kubectl
apply), and an async poll for MCP calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cluster.kube import Kube, gateway_url, ready_pod
from support.gateway import mcp_session
from support.objects import bearer, data_source, mcp_server, secret, tool
from support.upstream import RecordingUpstream

T = TypeVar("T")
SERVER = "srv"
SOURCE = "api"


TOKEN = "token-one"


def objects(upstream_url: str, **spec: Any) -> list[dict[str, Any]]:
    return [
        secret("api-token", {"token": TOKEN}),
        data_source(SOURCE, base_url=upstream_url + "/v1", auth=bearer("api-token", "token")),
        mcp_server(
            SERVER, tools=[tool("get_item", SOURCE)], authorization={"type": "None"}, **spec
        ),
    ]


def deploy(kube: Kube, ns: str, upstream: RecordingUpstream, **spec: Any) -> dict[str, Any]:
    """Apply the three objects, wait for Ready: the gateway pod."""
    kube.apply(objects(upstream.url, **spec), ns)
    kube.wait_ready(ns, f"mcpserver/{SERVER}", f"httpapidatasource/{SOURCE}")
    return ready_pod(kube, ns, SERVER)


async def call(kube: Kube, ns: str, item: str = "1") -> Any:
    pod = ready_pod(kube, ns, SERVER)
    async with mcp_session(gateway_url(pod)) as client:
        result = await client.call_tool("get_item", {"id": item})
    assert result.is_error is False, result.content
    return result


async def until(check: Callable[[], Awaitable[T]], *, within: float, what: str) -> T:
    """Await `check` until it returns something truthy without an AssertionError."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
            if result:
                return result
            failure: BaseException = AssertionError(f"{what}: still {result!r}")
        except (AssertionError, LookupError) as err:
            failure = err
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s") from failure
        await asyncio.sleep(0.5)
