"""The reconciler against an in-memory API: serialised per object, no write when nothing
changed, transition times kept across reconciles."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from mcpgate.controller.reconcile import Reconciler, State
from mcpgate.render.objects import OWNED_KINDS
from mcpgate.render.refs import SecretInfo
from mcpgate.render.settings import RenderSettings

SERVER: dict[str, Any] = {
    "apiVersion": "mcpgate.io/v1alpha1",
    "kind": "McpServer",
    "metadata": {"name": "s", "namespace": "ns", "uid": "u-1", "generation": 1},
    "spec": {"tools": [{"name": "t", "dataSource": "d", "request": {"path": "/x"}}]},
}
SOURCE: dict[str, Any] = {
    "apiVersion": "mcpgate.io/v1alpha1",
    "kind": "HttpApiDataSource",
    "metadata": {"name": "d", "namespace": "ns", "uid": "u-2", "generation": 1},
    "spec": {
        "baseUrl": "https://api.example.com",
        "auth": {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "c", "key": "t"}}},
    },
}


class FakeKube:
    """Objects by (kind, namespace, name); counts writes and overlapping calls."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.reading = 0
        self.writing = 0
        self.most_reading = 0  # GETs in flight at once
        self.write_overlapped = False  # a write ran while another call was in flight

    async def _step(self, *, write: bool = True) -> None:
        if write:
            self.writing += 1
        else:
            self.reading += 1
        self.most_reading = max(self.most_reading, self.reading)
        if self.writing and (self.reading or self.writing > 1):
            self.write_overlapped = True
        await asyncio.sleep(0.001)
        if write:
            self.writing -= 1
        else:
            self.reading -= 1

    async def get(self, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        await self._step(write=False)
        found = self.objects.get((kind, ns, name))
        return copy.deepcopy(found) if found else None

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        await self._step()
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.writes.append(("create", key[0], key[2]))
        stored = copy.deepcopy(obj)
        stored["metadata"]["generation"] = 1
        self.objects[key] = stored
        return copy.deepcopy(stored)

    async def patch(
        self,
        kind: str,
        ns: str,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        await self._step()
        self.writes.append(("patch" + (f"/{subresource}" if subresource else ""), kind, name))
        stored = self.objects.setdefault((kind, ns, name), {})
        stored.update(copy.deepcopy(patch))
        return copy.deepcopy(stored)

    async def delete(self, kind: str, ns: str, name: str) -> None:
        await self._step()
        self.writes.append(("delete", kind, name))
        self.objects.pop((kind, ns, name), None)


def _reconciler(kube: FakeKube, server: dict[str, Any]) -> tuple[Reconciler, list[Any]]:
    state = State(
        servers={("ns", "s"): [server]},
        data_sources={("ns", "d"): [SOURCE]},
        secrets={("ns", "c"): [SecretInfo("c", frozenset({"t"}), frozenset({"t"}))]},
        source_users={("ns", "d"): ["s"]},
    )
    warnings: list[Any] = []
    reconciler = Reconciler(
        kube,
        RenderSettings(),
        state,  # type: ignore[arg-type]
        lambda body, reason, message: warnings.append(reason),
    )
    return reconciler, warnings


async def test_first_reconcile_creates_then_nothing_more_is_written() -> None:
    kube = FakeKube()
    server = copy.deepcopy(SERVER)
    reconciler, _ = _reconciler(kube, server)
    await reconciler.server("ns", "s")
    created = {kind for op, kind, _ in kube.writes if op == "create"}
    assert created == {"ConfigMap", "Deployment", "Service"}
    assert ("patch/status", "McpServer", "s") in kube.writes
    server["status"] = kube.objects[("McpServer", "ns", "s")]["status"]
    kube.writes.clear()
    await reconciler.server("ns", "s")
    await reconciler.server("ns", "s")
    assert kube.writes == []


async def test_reconciles_of_one_server_never_overlap() -> None:
    kube = FakeKube()
    reconciler, _ = _reconciler(kube, copy.deepcopy(SERVER))
    await asyncio.gather(*(reconciler.server("ns", "s") for _ in range(10)))
    # One reconcile reads its owned objects at once; ten overlapping ones would read 50.
    assert kube.most_reading == len(OWNED_KINDS)
    assert not kube.write_overlapped
    assert sum(1 for op, kind, _ in kube.writes if op == "create" and kind == "Deployment") == 1


async def test_transition_times_survive_a_stale_index() -> None:
    """The index may still hold the old status when the next reconcile runs: the status
    written last is what the next one compares with, so nothing is rewritten."""
    kube = FakeKube()
    server = copy.deepcopy(SERVER)  # its status is never updated here (a stale index)
    reconciler, _ = _reconciler(kube, server)
    await reconciler.server("ns", "s")
    first = kube.objects[("McpServer", "ns", "s")]["status"]
    kube.writes.clear()
    await reconciler.server("ns", "s")
    assert kube.writes == []
    assert kube.objects[("McpServer", "ns", "s")]["status"] == first


async def test_an_invalid_server_reports_its_own_service_port() -> None:
    kube = FakeKube()
    server = copy.deepcopy(SERVER)
    server["spec"]["service"] = {"port": 9000}
    server["spec"]["tools"][0]["request"]["path"] = "/x/:nope"  # UnknownParameter
    reconciler, _ = _reconciler(kube, server)
    await reconciler.server("ns", "s")
    status = kube.objects[("McpServer", "ns", "s")]["status"]
    assert status["url"] == "http://s.ns.svc.cluster.local:9000/mcp"
    assert not [w for w in kube.writes if w[1] != "McpServer"]
