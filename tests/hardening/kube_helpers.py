"""Small manifests and emulator helpers for the operator's hardening tests.

Every Secret value is a canary; `dump_to_sink` hands every object the operator could
have written (all but Secrets) to the leak sink.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from hardening.canaries import CANARIES, SINK
from mcpgate.render.objects import OWNED_KINDS

from support import objects
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
]

MCP = "mcpgate.io/v1alpha1/mcpservers"
SOURCES = "mcpgate.io/v1alpha1/httpapidatasources"
_PLURALS = {
    "McpServer": "apis/mcpgate.io/v1alpha1/namespaces/{ns}/mcpservers",
    "HttpApiDataSource": "apis/mcpgate.io/v1alpha1/namespaces/{ns}/httpapidatasources",
    "Secret": "api/v1/namespaces/{ns}/secrets",
    "Deployment": "apis/apps/v1/namespaces/{ns}/deployments",
}


def secret(ns: str, name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return objects.secret(name, data, namespace=ns, type_=type_)


def bearer_source(ns: str, name: str = "api") -> dict[str, Any]:
    """A Bearer data source reading Secret `api-token`, key `token`."""
    return objects.data_source(
        name,
        namespace=ns,
        base_url="https://api.example.com/v1",
        auth=objects.bearer("api-token", "token"),
    )


def server(
    ns: str,
    name: str = "srv",
    *,
    source: str = "api",
    keys: str | None = None,
    description: str = "v0",
    path: str = "/items/:id",
) -> dict[str, Any]:
    return objects.mcp_server(
        name,
        namespace=ns,
        tools=[
            objects.tool(
                "get_item",
                source,
                path=path,
                description=description,
                parameters=[{"name": "id", "type": "String", "required": True}],
            )
        ],
        authorization=objects.api_key(keys) if keys is not None else None,
    )


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


_DUMPED = (
    *(f"{owned.api_version}/{owned.plural}" for owned in OWNED_KINDS),
    "v1/events",
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
