"""Small manifests and emulator helpers for the operator's hardening tests.

Every Secret value is a canary; `dump_to_sink` hands every object the operator could
have written (all but Secrets) to the leak sink.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from hardening.canaries import CANARIES, SINK

from support.kube_api import KubeApi

__all__ = [
    "MCP",
    "SOURCES",
    "bearer_source",
    "condition",
    "delete",
    "deployment_becomes_ready",
    "deployments_become_ready",
    "dump_to_sink",
    "patch",
    "read",
    "ready_status",
    "secret",
    "server",
    "standard_objects",
    "wait_for",
]

T = TypeVar("T")
MCP = "mcpgate.io/v1alpha1/mcpservers"
SOURCES = "mcpgate.io/v1alpha1/httpapidatasources"
_PLURALS = {
    "McpServer": "apis/mcpgate.io/v1alpha1/namespaces/{ns}/mcpservers",
    "HttpApiDataSource": "apis/mcpgate.io/v1alpha1/namespaces/{ns}/httpapidatasources",
    "Secret": "api/v1/namespaces/{ns}/secrets",
    "Deployment": "apis/apps/v1/namespaces/{ns}/deployments",
}


def secret(ns: str, name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": type_,
        "stringData": data,
    }


def bearer_source(ns: str, name: str = "api") -> dict[str, Any]:
    """A Bearer data source reading Secret `api-token`, key `token`."""
    return {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "HttpApiDataSource",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "baseUrl": "https://api.example.com/v1",
            "auth": {
                "type": "Bearer",
                "bearer": {"tokenSecretRef": {"name": "api-token", "key": "token"}},
            },
        },
    }


def server(
    ns: str,
    name: str = "srv",
    *,
    source: str = "api",
    keys: str | None = None,
    description: str = "v0",
    path: str = "/items/:id",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tools": [
            {
                "name": "get_item",
                "description": description,
                "dataSource": source,
                "parameters": [{"name": "id", "type": "String", "required": True}],
                "request": {"path": path},
            }
        ]
    }
    if keys is not None:
        spec["authorization"] = {"type": "ApiKey", "apiKeySecretRef": {"name": keys}}
    return {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def standard_objects(ns: str, name: str = "srv", *, keys: bool = False) -> list[dict[str, Any]]:
    """A Bearer data source with its Secret, and a server using it (with a key Secret)."""
    objects = [
        secret(ns, "api-token", {"token": CANARIES["operator_secret"]}),
        bearer_source(ns),
        server(ns, name, keys="keys" if keys else None),
    ]
    if keys:
        objects.insert(0, secret(ns, "keys", {"alice": CANARIES["operator_apikey"]}))
    return objects


def read(api: KubeApi, resource: str, ns: str, name: str) -> dict[str, Any]:
    obj = api.read(resource, ns, name)
    assert obj is not None, f"{resource} {ns}/{name} does not exist"
    return obj


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    raise LookupError(kind)


def ready_status(api: KubeApi, ns: str, name: str) -> tuple[str, str]:
    cond = condition(read(api, MCP, ns, name), "Ready")
    return cond["status"], cond["reason"]


def _url(api: KubeApi, kind: str, ns: str, name: str, sub: str = "") -> str:
    return f"{api.server}/{_PLURALS[kind].format(ns=ns)}/{name}{'/' + sub if sub else ''}"


def patch(api: KubeApi, kind: str, ns: str, name: str, body: dict[str, Any], sub: str = "") -> None:
    reply = httpx.patch(
        _url(api, kind, ns, name, sub),
        content=json.dumps(body),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert reply.status_code == 200, reply.text


def delete(api: KubeApi, kind: str, ns: str, name: str) -> None:
    reply = httpx.delete(_url(api, kind, ns, name))
    assert reply.status_code in (200, 202), reply.text


def deployment_becomes_ready(api: KubeApi, ns: str, name: str) -> None:
    """What the Deployment controller and kubelet would report once pods run."""
    deployment = read(api, "apps/v1/deployments", ns, name)
    replicas = deployment["spec"].get("replicas", 1)
    status = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }
    patch(api, "Deployment", ns, name, {"status": status}, "status")


async def deployments_become_ready(api: KubeApi, ns: str, names: list[str]) -> None:
    """`deployment_becomes_ready` for many Deployments at once."""
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(name: str) -> None:
            deployment = read(api, "apps/v1/deployments", ns, name)
            replicas = deployment["spec"].get("replicas", 1)
            status = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
            reply = await http.patch(
                _url(api, "Deployment", ns, name, "status"),
                content=json.dumps({"status": status}),
                headers={"content-type": "application/merge-patch+json"},
            )
            assert reply.status_code == 200, reply.text

        await asyncio.gather(*(one(name) for name in names))


async def wait_for(check: Callable[[], T], *, within: float = 15.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy without raising AssertionError or
    LookupError; raise the last failure at the deadline."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = check()
            if result:
                return result
            failure: Exception = AssertionError(
                f"{what or check}: still {result!r} after {within} s"
            )
        except (AssertionError, LookupError) as err:
            failure = err
        if time.monotonic() > deadline:
            raise failure
        await asyncio.sleep(0.05)


_DUMPED = (
    "v1/configmaps",
    "v1/services",
    "v1/events",
    "apps/v1/deployments",
    "policy/v1/poddisruptionbudgets",
    "autoscaling/v2/horizontalpodautoscalers",
    MCP,
    SOURCES,
)


def dump_to_sink(api: KubeApi, where: str) -> int:
    """Hand every object but Secrets (statuses, annotations, Events, ConfigMaps, ...) to
    the leak sink; returns how many there were."""
    count = 0
    for resource in _DUMPED:
        for obj in api.list_objects(resource):
            SINK.add(f"kubernetes object: {where} {resource}", json.dumps(obj))
            count += 1
    return count
