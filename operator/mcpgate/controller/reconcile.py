"""Reconciling one McpServer or HttpApiDataSource: read, plan (pure), write the difference.

An unchanged reconcile writes nothing: objects are patched only when
`drift.needs_write` says so, and the status only when it differs. Reconciles of
one object never overlap (a lock per object), whatever triggered them: its own
change, a data source's, a Secret's or an owned object's.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.errors import error_lines, invalid_reason
from mcpgate.controller.drift import merge_patch, needs_write, owned_by
from mcpgate.controller.kube import Conflict, KubeClient, KubeError
from mcpgate.render.conditions import Cond, merge_conditions
from mcpgate.render.objects import OWNED_KINDS
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import ServerPlan, plan_data_source, plan_invalid_server, plan_server
from mcpgate.render.settings import RenderSettings

__all__ = ["Reconciler", "State", "secret_names"]

log = logging.getLogger("mcpgate.operator")

Key = tuple[str, str]  # (namespace, name)
V = TypeVar("V")
WarnFn = Callable[[dict[str, Any], str, str], None]


def _one(index: Mapping[Any, Iterable[V]], key: Any) -> V | None:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


@dataclass
class State:
    """What the operator knows of the cluster: kopf's indexes (live views, kept current by
    the watches), or plain dicts of lists in tests. Secrets are known by key names only."""

    servers: Mapping[Key, Iterable[dict[str, Any]]]
    data_sources: Mapping[Key, Iterable[dict[str, Any]]]
    secrets: Mapping[Key, Iterable[SecretInfo]]
    # (namespace, data source name) -> names of the McpServers using it.
    source_users: Mapping[Key, Iterable[str]]
    # (namespace, Secret name) -> ("McpServer" | "HttpApiDataSource", name) referencing it:
    # one index per kind that references Secrets.
    secret_users: tuple[Mapping[Key, Iterable[tuple[str, str]]], ...] = ()

    def references_secret(self, namespace: str, secret: str) -> bool:
        return any((namespace, secret) in index for index in self.secret_users)

    def server(self, namespace: str, name: str) -> dict[str, Any] | None:
        return _one(self.servers, (namespace, name))

    def data_source(self, namespace: str, name: str) -> dict[str, Any] | None:
        return _one(self.data_sources, (namespace, name))

    def namespace_for(
        self, namespace: str, sources: Iterable[str], secrets: Iterable[str] = ()
    ) -> Namespace:
        """The part of a namespace that references resolve against: the named data sources
        and every Secret they or `secrets` name."""
        space = Namespace(namespace)
        wanted = set(secrets)
        for name in sources:
            body = self.data_source(namespace, name)
            if body is None:
                continue
            wanted |= secret_names(body.get("spec"))
            try:
                space.data_sources[name] = HttpApiDataSource.model_validate(body)
            except ValidationError as err:
                space.invalid_data_sources[name] = "; ".join(error_lines(err))
        for secret in wanted:
            info = _one(self.secrets, (namespace, secret))
            if info is not None:
                space.secrets[secret] = info
        return space

    def users_of_secret(self, namespace: str, secret: str) -> tuple[list[str], list[str]]:
        """(servers, data sources) whose references name the Secret, directly or through a
        data source."""
        users = [u for index in self.secret_users for u in index.get((namespace, secret)) or ()]
        sources = sorted({name for kind, name in users if kind == "HttpApiDataSource"})
        servers = {name for kind, name in users if kind == "McpServer"}
        for source in sources:
            servers.update(self.source_users.get((namespace, source)) or ())
        return sorted(servers), sources


def secret_names(node: Any) -> set[str]:
    """Names in every `...SecretRef` of a spec (raw: it may not parse)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("SecretRef") and isinstance(value, dict) and "name" in value:
                found.add(str(value["name"]))
            else:
                found |= secret_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= secret_names(item)
    return found


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_body(
    plan_status: Mapping[str, Any], previous: Mapping[str, Any], generation: int | None, now: str
) -> dict[str, Any]:
    conditions: list[Cond] = plan_status["conditions"]
    status = {k: v for k, v in plan_status.items() if k != "conditions"}
    status["observedGeneration"] = generation
    status["conditions"] = merge_conditions(
        previous.get("conditions") or [], conditions, generation, now
    )
    return status


class Reconciler:
    def __init__(
        self, kube: KubeClient, settings: RenderSettings, state: State, warn: WarnFn
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.state = state
        self._warn = warn
        self._locks: dict[Key, asyncio.Lock] = {}
        # The status last written, by uid: the indexes may not have seen it yet, and
        # comparing with an older status would write again with new transition times.
        self._written: dict[str, dict[str, Any]] = {}
        # The notices each server (by uid) was last told of: posted once, again if renewed.
        self._noticed: dict[str, set[tuple[str, str]]] = {}

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # --- McpServer -----------------------------------------------------------------------

    async def server(self, namespace: str, name: str) -> None:
        """Reconcile one McpServer from its latest known body."""
        async with self._lock((namespace, name)):
            body = self.state.server(namespace, name)
            if body is None:
                return  # deleted: owner references take its objects with it
            await self._server(body)

    async def _server(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        namespace, name, uid = meta["namespace"], meta["name"], meta.get("uid", "")
        found = await asyncio.gather(  # one round trip's wait, not five
            *(self.kube.get(o.kind, namespace, o.name(name)) for o in OWNED_KINDS),
            return_exceptions=True,  # every GET ends before a failure is raised
        )
        live: dict[str, dict[str, Any] | None] = {}
        for owned, outcome in zip(OWNED_KINDS, found, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            live[owned.kind] = outcome
        conflicts = [
            f"{kind} {obj['metadata']['name']}"
            for kind, obj in live.items()
            if obj is not None and not owned_by(obj, uid)
        ]
        try:
            server = McpServer.model_validate(body)
        except ValidationError as err:
            plan = plan_invalid_server(
                name,
                namespace,
                invalid_reason(err),
                "; ".join(error_lines(err)),
                settings=self.settings,
                spec=body.get("spec"),
            )
        else:
            keys = server.spec.authorization.api_key_secret_ref
            space = self.state.namespace_for(
                namespace, server.spec.data_source_names(), [keys.name] if keys else []
            )
            plan = plan_server(
                server, space, self.settings, conflicts=conflicts, deployment=live["Deployment"]
            )
            try:
                deployment = await self._apply(plan, live, namespace)
            except Conflict:
                raise  # someone wrote first: retried from a fresh read, nothing to report
            except KubeError as err:
                # Refused (quota, admission, validation): the status says so, current, and
                # the handler's retry (with backoff) tries again.
                refused = plan.apply_failed(f"the API server refused a write: {err}")
                await self._write_status("McpServer", body, refused.status)
                self._warn_new(body, refused)
                raise
            if deployment is not live["Deployment"]:  # Available follows what we just wrote
                plan = plan_server(
                    server, space, self.settings, conflicts=conflicts, deployment=deployment
                )
        await self._write_status("McpServer", body, plan.status)
        self._warn_new(body, plan)

    async def _apply(
        self, plan: ServerPlan, live: dict[str, dict[str, Any] | None], namespace: str
    ) -> dict[str, Any] | None:
        """Create or patch the planned objects, delete the unwanted optional ones; return the
        Deployment as it now is."""
        deployment = live["Deployment"]
        for obj in plan.objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            current = live[kind]
            if not needs_write(obj, current):
                continue
            if current is None:
                result = await self.kube.create(obj)
                log.info("created %s %s/%s", kind, namespace, name)
            else:
                result = await self.kube.patch(kind, namespace, name, merge_patch(obj))
                log.info("updated %s %s/%s", kind, namespace, name)
            if kind == "Deployment":
                deployment = result
        for kind, name in plan.absent:
            if live[kind] is not None:
                await self.kube.delete(kind, namespace, name)
                log.info("deleted %s %s/%s", kind, namespace, name)
        return deployment

    def _warn_new(self, body: dict[str, Any], plan: ServerPlan) -> None:
        """A Warning Event when a warning condition appears or changes reason, and for each
        new notice (WeakApiKey), not on every reconcile."""
        before = {c.get("type"): c for c in (body.get("status") or {}).get("conditions", [])}
        for cond in plan.warnings:
            old = before.get(cond.type)
            if old is None or old.get("status") != cond.status or old.get("reason") != cond.reason:
                self._warn(body, cond.reason, cond.message)
        uid = body.get("metadata", {}).get("uid", "")
        notices = set(plan.notices)
        for reason, message in sorted(notices - self._noticed.get(uid, set())):
            self._warn(body, reason, message)
        self._noticed[uid] = notices

    # --- HttpApiDataSource ----------------------------------------------------------------

    async def data_source(self, namespace: str, name: str) -> None:
        async with self._lock(("HttpApiDataSource/" + namespace, name)):
            body = self.state.data_source(namespace, name)
            if body is None:
                return
            space = self.state.namespace_for(namespace, [name])
            conditions = plan_data_source(name, space, self.settings)
            await self._write_status("HttpApiDataSource", body, {"conditions": conditions})

    # --- both -----------------------------------------------------------------------------

    async def _write_status(
        self, kind: str, body: dict[str, Any], plan_status: Mapping[str, Any]
    ) -> None:
        meta = body["metadata"]
        uid = meta.get("uid") or f"{kind}/{meta['namespace']}/{meta['name']}"
        previous = self._written.get(uid) or body.get("status") or {}
        status = _status_body(plan_status, previous, meta.get("generation"), _now())
        if _same_status(status, previous):
            return
        await self.kube.patch(
            kind, meta["namespace"], meta["name"], {"status": status}, subresource="status"
        )
        self._written[uid] = status

    def forget(self, uid: str) -> None:
        """Drop what is remembered of a deleted object."""
        self._written.pop(uid, None)

    async def servers(self, namespace: str, names: Iterable[str]) -> None:
        for name in names:
            await self.server(namespace, name)

    async def secret_changed(self, namespace: str, secret: str) -> None:
        """A Secret appeared, changed or went: re-check everything that references it."""
        servers, sources = self.state.users_of_secret(namespace, secret)
        for source in sources:
            await self.data_source(namespace, source)
        await self.servers(namespace, servers)


def _same_status(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change anything (transition times are kept by
    merge_conditions while statuses stay, so they compare equal then)."""
    return all(old.get(k) == v for k, v in new.items())
