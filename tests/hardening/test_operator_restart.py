"""Starting the operator over many existing objects, and stopping it in the middle of
reconciling many servers, then starting a new one: everything converges, nothing is
created twice.

The emulator answers slowly while the first operator works (so it is stopped with
reconciles in flight and objects half made), then at full speed for the second.
MCPGATE_HARDENING_LOAD=1 uses 200 servers instead of 50.

The restart runs with kopf's worker limit above the number of objects: with the
operator's old default (32) it never started reconciling at all when more than 32
objects of one indexed kind existed, which the first test shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from hardening.canaries import CANARIES
from hardening.gateways import figures, scale
from hardening.kube_helpers import (
    MCP,
    bearer_source,
    condition,
    deployments_become_ready,
    dump_to_sink,
    patch,
    read,
    secret,
    server,
)
from mcpgate.controller.handlers import ControllerSettings
from mcpgate.render.settings import RenderSettings

from support.kube import KubeEnv
from support.kube_api import WRITE_VERBS
from support.operator import operator_in_thread
from support.poll import wait_for

RENDER = RenderSettings(image="registry.example.com/mcpgate:hardening")
NS = "fleet"


def _unlimited(count: int) -> ControllerSettings:
    """Settings whose kopf worker limit, if the operator still had one, could not deadlock
    `count` objects (see the first test)."""
    if "worker_limit" in {f.name for f in dataclasses.fields(ControllerSettings)}:
        return ControllerSettings(render=RENDER, worker_limit=10 * count)  # type: ignore[call-arg]
    return ControllerSettings(render=RENDER)


async def test_the_operator_starts_with_more_secrets_than_its_worker_limit(
    kube_env: KubeEnv,
) -> None:
    """Regression (found by this suite, fixed since): with more objects of one indexed kind
    than settings.queueing.worker_limit (handlers.py:46 default 32, set at
    handlers.py:111) the operator deadlocks at startup: each kopf worker indexes its
    object, then waits for every object of every indexed kind to be indexed (kopf
    processing.py), but the objects past the limit never get a worker. 33 Secrets
    anywhere in the watched namespaces are enough"""
    api = kube_env.api
    for index in range(40):  # unrelated Secrets, as every cluster has
        api.create(secret("other", f"unrelated-{index}", {"k": "v"}))
    api.create(secret(NS, "api-token", {"token": CANARIES["operator_secret"]}))
    api.create(bearer_source(NS))
    api.create(server(NS, "one"))
    with operator_in_thread(kube_env, ControllerSettings(render=RENDER)):
        await wait_for(lambda: read(api, "apps/v1/deployments", NS, "one"), within=3)


async def test_a_restart_in_the_middle_of_many_reconciles_converges(kube_env: KubeEnv) -> None:
    """Phase one: 60 % of the servers exist; the operator makes their objects, but every
    status write hangs for 3 s, longer than kopf's 2 s of grace at the stop, so the stop
    cuts every reconcile off before its status. While no operator runs, the other 40 %
    are created and two of the half-made servers change. Phase two: a new operator."""
    api = kube_env.api
    count = scale(50, 200)
    names = [f"s{i:03d}" for i in range(count)]
    first, later = names[: count * 3 // 5], names[count * 3 // 5 :]
    api.create(secret(NS, "api-token", {"token": CANARIES["operator_secret"]}))
    api.create(bearer_source(NS))
    for name in first:
        api.create(server(NS, name, description=f"tool of {name}"))
    api.add_latency(2.5, resource="mcpservers/status")

    def deployments() -> int:
        return len(api.list_objects("apps/v1/deployments", NS))

    settings = _unlimited(count)
    started = time.monotonic()
    with operator_in_thread(kube_env, settings):
        await wait_for(lambda: deployments() >= len(first) // 2, within=scale(30, 200))
        stopped_at = time.monotonic() - started
    at_stop = {
        "deployments": deployments(),
        "configmaps": len(api.list_objects("v1/configmaps", NS)),
        "statuses": sum(1 for o in api.list_objects(MCP, NS) if o.get("status")),
    }
    assert at_stop["statuses"] < len(first), "nothing was cut off"
    api.clear_faults()
    await asyncio.sleep(1.0)  # status writes still sleeping in the emulator land (or not)
    for name in later:
        api.create(server(NS, name, description=f"tool of {name}"))
    changed = {first[0]: "changed while down", first[-1]: "changed too"}
    for name, description in changed.items():
        tool = server(NS, name, description=description)["spec"]["tools"]
        patch(api, "McpServer", NS, name, {"spec": {"tools": tool}})

    calls_before = len(api.calls)
    restarted = time.monotonic()
    with operator_in_thread(kube_env, settings):
        # Generous: a deadline for convergence on a busy 2-core machine, not a timing.
        await wait_for(lambda: deployments() == count, within=scale(180, 400))
        await deployments_become_ready(api, NS, names)

        def all_ready() -> bool:
            return all(condition(read(api, MCP, NS, n), "Ready")["status"] == "True" for n in names)

        await wait_for(all_ready, within=scale(180, 400), what="every server Ready")
        converged = time.monotonic() - restarted
    writes_after_restart = [c for c in api.calls[calls_before:] if c.verb in WRITE_VERBS]

    for resource, suffix in (
        ("apps/v1/deployments", ""),
        ("v1/configmaps", "-config"),
        ("v1/services", ""),
    ):
        found = sorted(o["metadata"]["name"] for o in api.list_objects(resource, NS))
        assert found == sorted(n + suffix for n in names), resource
    for name in names:
        obj = read(api, MCP, NS, name)
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        config = json.loads(read(api, "v1/configmaps", NS, f"{name}-config")["data"]["config.json"])
        assert config["tools"][0]["description"] == changed.get(name, f"tool of {name}")
        uid = obj["metadata"]["uid"]
        for resource, suffix in (("apps/v1/deployments", ""), ("v1/configmaps", "-config")):
            (owner,) = read(api, resource, NS, name + suffix)["metadata"]["ownerReferences"]
            assert owner["uid"] == uid
    creates = [c for c in api.calls if c.verb == "create" and c.namespace == NS]
    figures(
        "operator restart in the middle of reconciling",
        {
            "servers (existing at the first start / created while stopped)": (
                f"{len(first)} / {len(later)}"
            ),
            "stopped after (s)": round(stopped_at, 2),
            "at the stop: deployments / configmaps / statuses": (
                f"{at_stop['deployments']} / {at_stop['configmaps']} / {at_stop['statuses']}"
            ),
            "converged after the restart (s)": round(converged, 2),
            "writes after the restart": len(writes_after_restart),
            "API requests after the restart, per server": round(
                (len(api.calls) - calls_before) / count, 1
            ),
            "create requests in all (3 objects a server)": len(creates),
            "objects per kind at the end": count,
        },
    )
    dump_to_sink(api, "operator restart")
