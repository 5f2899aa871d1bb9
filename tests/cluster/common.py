"""One small McpServer over one Bearer data source, made the way a user makes it (kubectl
apply), and an async poll for MCP calls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cluster.kube import Kube, gateway_url, ready_pod
from support.gateway import mcp_session
from support.objects import bearer, data_source, mcp_server, secret, tool
from support.poll import wait_for_sync
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


def exercise_every_permission(kube: Kube, ns: str, upstream: RecordingUpstream) -> None:
    """Make the operator use each permission of the chart's rules in `ns`: every owned kind
    created, patched back after drift and (the optional ones) deleted, and a Warning Event
    (a BearerPassthrough server over a data source with its own auth)."""
    deploy(kube, ns, upstream)
    passthrough = mcp_server(
        "pass",
        tools=[tool("get_item", SOURCE)],
        authorization={"type": "BearerPassthrough", "apiKeySecretRef": {"name": "pass-keys"}},
    )
    kube.apply([secret("pass-keys", {"agent": "fake-pass-key"}), passthrough], ns)

    def patch(spec: dict[str, Any]) -> None:
        kube.kubectl(
            "-n", ns, "patch", "mcpserver", SERVER, "--type=merge", "-p", json.dumps({"spec": spec})
        )

    def holds(check: Callable[[], bool], what: str) -> None:
        wait_for_sync(check, within=90, interval=0.5, what=what)

    patch({"replicas": 2})
    holds(lambda: kube.exists("poddisruptionbudget", SERVER, ns), "a PDB")
    patch(
        {
            "replicas": None,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
            "resources": {"requests": {"cpu": "50m"}},
        }
    )
    holds(lambda: kube.exists("horizontalpodautoscaler", SERVER, ns), "an HPA")
    # Drift on every owned kind: each is patched back.
    kinds = ("configmap/srv-config", "service/srv", "deployment/srv", "horizontalpodautoscaler/srv")
    for kind in kinds:
        kube.kubectl("-n", ns, "label", kind, "app.kubernetes.io/part-of-")

    def restored() -> bool:
        for kind in kinds:
            name = kind.split("/")[1]
            labels = kube.get(kind.split("/")[0], name, ns)["metadata"]["labels"]
            assert labels.get("app.kubernetes.io/part-of") == "mcpgate", kind
        return True

    holds(restored, "labels put back")
    patch({"autoscaling": None, "resources": None, "replicas": 2})
    holds(lambda: not kube.exists("horizontalpodautoscaler", SERVER, ns), "the HPA removed")
    holds(lambda: kube.exists("poddisruptionbudget", SERVER, ns), "a PDB again")
    kube.kubectl("-n", ns, "label", "poddisruptionbudget", SERVER, "app.kubernetes.io/part-of-")
    holds(
        lambda: (
            "app.kubernetes.io/part-of"
            in kube.get("poddisruptionbudget", SERVER, ns)["metadata"]["labels"]
        ),
        "the PDB's label put back",
    )
    patch({"replicas": 1})
    holds(lambda: not kube.exists("poddisruptionbudget", SERVER, ns), "the PDB removed")
    holds(
        lambda: bool(
            kube.items("events", ns, "--field-selector", "involvedObject.name=pass,type=Warning")
        ),
        "a Warning Event",
    )
    kube.wait_ready(ns, f"mcpserver/{SERVER}")
