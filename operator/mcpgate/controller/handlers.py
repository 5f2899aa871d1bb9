"""The kopf handlers: thin, each a few lines that call the reconciler.

- McpServer create/update/resume: reconcile it (kopf retries on TemporaryError).
- HttpApiDataSource events: its status, then every McpServer using it.
- Secret events: everything referencing the Secret (found through indexes).
  Secrets are seen only by an index that keeps key names and an event handler,
  never by a create/update handler, which would copy Secret data into an
  annotation and need patch rights on Secrets (DESIGN.md).
- Events of owned objects (Deployment status, hand edits, deletions): their
  owner is reconciled, which repairs drift and follows Available.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from mcpgate.api import API_GROUP, CRD_VERSION
from mcpgate.api.crd import KINDS as CRD_KINDS
from mcpgate.controller.kube import Conflict, KubeClient, KubeError
from mcpgate.controller.reconcile import Reconciler, State, secret_names
from mcpgate.render.objects import OWNED_KINDS, labels
from mcpgate.render.refs import SecretInfo
from mcpgate.render.settings import RenderSettings

__all__ = ["ControllerMemo", "ControllerSettings", "make_registry", "secret_info"]

log = logging.getLogger("mcpgate.operator")

_MANAGED = {"app.kubernetes.io/managed-by": labels("x")["app.kubernetes.io/managed-by"]}
_PLURALS = {kind.kind: kind.plural for kind in CRD_KINDS}
_SERVERS = (API_GROUP, CRD_VERSION, _PLURALS["McpServer"])
_SOURCES = (API_GROUP, CRD_VERSION, _PLURALS["HttpApiDataSource"])


@dataclass(frozen=True)
class ControllerSettings:
    render: RenderSettings
    watch_server_timeout: int = 300
    peering: str | None = None  # a KopfPeering name, for more than one operator replica


@dataclass
class ControllerMemo:
    """The operator's state, as kopf's `memo` (given to `kopf.operator(memo=...)`). kopf
    gives each object's handlers a shallow copy of it, so the reconciler that the startup
    handler sets here is the one every handler uses."""

    settings: ControllerSettings
    kube: KubeClient
    reconciler: Reconciler | None = None

    def ready(self) -> Reconciler:
        assert self.reconciler is not None, "set by the startup handler, before any watch"
        return self.reconciler


def _state(kwargs: Mapping[str, Any]) -> State:
    return State(
        servers=kwargs["mcpgate_servers"],
        data_sources=kwargs["mcpgate_sources"],
        secrets=kwargs["mcpgate_secrets"],
        source_users=kwargs["mcpgate_source_users"],
        secret_users=(kwargs["mcpgate_secret_users"], kwargs["mcpgate_secret_users_ds"]),
    )


def _warn(body: dict[str, Any], reason: str, message: str) -> None:
    kopf.warn(cast(kopf.Body, body), reason=reason, message=message)


async def _retrying(what: str, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Conflicts and API errors of a reconcile become kopf retries (with backoff)."""
    try:
        await action()
    except Conflict as err:
        raise kopf.TemporaryError(f"{what}: conflict ({err.reason}); retrying", delay=1) from None
    except KubeError as err:
        raise kopf.TemporaryError(f"{what}: {err}", delay=5) from None


def make_registry() -> kopf.OperatorRegistry:
    """Every handler of the operator. What they work with comes in kopf's `memo`, a
    `ControllerMemo`."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, memo: ControllerMemo, **kwargs: Any) -> None:
        ours = memo.settings
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=API_GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{API_GROUP}/finalizer"
        settings.posting.level = logging.WARNING  # Events for warnings and errors only
        settings.watching.server_timeout = ours.watch_server_timeout
        settings.watching.client_timeout = ours.watch_server_timeout + 30
        settings.watching.connect_timeout = 30
        # No worker limit: kopf runs an object's handlers only once every object of the
        # indexed kinds is indexed, and with fewer workers than objects that never happens.
        settings.queueing.worker_limit = None
        settings.networking.request_timeout = 60
        if ours.peering:
            # kopf's peering CRDs (kopf.dev) and RBAC for them are needed; without them
            # kopf warns and runs standalone rather than refusing to start.
            settings.peering.name = ours.peering
        else:
            settings.peering.standalone = True
        # The indexes are live views, given to startup handlers too (empty until the first
        # listing): the reconciler keeps them for the operator's lifetime.
        memo.reconciler = Reconciler(memo.kube, ours.render, _state(kwargs), _warn)

    # --- indexes: what references what, Secrets by key names only ----------------------

    @kopf.index("secrets", id="mcpgate_secrets", registry=registry)
    def mcpgate_secrets(name: str, namespace: str | None, body: kopf.Body, **_: Any) -> Any:
        return {(_ns(namespace), name): secret_info(name, body)}

    @kopf.index(*_SERVERS, id="mcpgate_servers", registry=registry)
    def mcpgate_servers(name: str, namespace: str | None, body: kopf.Body, **_: Any) -> Any:
        return {(_ns(namespace), name): dict(body)}

    @kopf.index(*_SOURCES, id="mcpgate_sources", registry=registry)
    def mcpgate_sources(name: str, namespace: str | None, body: kopf.Body, **_: Any) -> Any:
        return {(_ns(namespace), name): dict(body)}

    @kopf.index(*_SERVERS, id="mcpgate_source_users", registry=registry)
    def mcpgate_source_users(name: str, namespace: str | None, spec: kopf.Spec, **_: Any) -> Any:
        tools = spec.get("tools") or []
        return {(_ns(namespace), t.get("dataSource")): name for t in tools if isinstance(t, dict)}

    @kopf.index(*_SERVERS, id="mcpgate_secret_users", registry=registry)
    def mcpgate_server_secret_users(
        name: str, namespace: str | None, spec: kopf.Spec, **_: Any
    ) -> Any:
        ref = (spec.get("authorization") or {}).get("apiKeySecretRef") or {}
        return {(_ns(namespace), ref["name"]): ("McpServer", name)} if "name" in ref else None

    @kopf.index(*_SOURCES, id="mcpgate_secret_users_ds", registry=registry)
    def mcpgate_source_secret_users(
        name: str, namespace: str | None, spec: kopf.Spec, **_: Any
    ) -> Any:
        ns = _ns(namespace)
        return {(ns, s): ("HttpApiDataSource", name) for s in secret_names(dict(spec))}

    # --- McpServer ------------------------------------------------------------------------

    @kopf.on.resume(*_SERVERS, registry=registry)
    @kopf.on.create(*_SERVERS, registry=registry)
    @kopf.on.update(*_SERVERS, registry=registry)
    async def server_changed(
        name: str, namespace: str | None, memo: ControllerMemo, **_: Any
    ) -> None:
        ns, r = _ns(namespace), memo.ready()
        await _retrying(f"McpServer {ns}/{name}", lambda: r.server(ns, name))

    @kopf.on.delete(*_SERVERS, registry=registry, optional=True)
    def server_deleted(uid: str, memo: ControllerMemo, **_: Any) -> None:
        memo.ready().forget(uid)

    # --- HttpApiDataSource ----------------------------------------------------------------

    @kopf.on.event(*_SOURCES, registry=registry)
    async def source_event(
        name: str, namespace: str | None, type: str, memo: ControllerMemo, **_: Any
    ) -> None:
        r, ns = memo.ready(), _ns(namespace)
        if type != "DELETED":
            await _logged(lambda: r.data_source(ns, name))
        users = list(r.state.source_users.get((ns, name)) or ())
        await _logged(lambda: r.servers(ns, users))

    # --- Secrets --------------------------------------------------------------------------

    @kopf.on.event("secrets", registry=registry)
    async def secret_event(
        name: str, namespace: str | None, memo: ControllerMemo, **_: Any
    ) -> None:
        r, ns = memo.ready(), _ns(namespace)
        if r.state.references_secret(ns, name):  # cheap: most Secrets are not ours
            await _logged(lambda: r.secret_changed(ns, name))

    # --- owned objects --------------------------------------------------------------------

    for owned in OWNED_KINDS:

        @kopf.on.event(
            owned.group,
            owned.version,
            owned.plural,
            labels=_MANAGED,
            registry=registry,
            id=f"owned_{owned.plural}",
        )
        async def owned_event(
            body: kopf.Body, namespace: str | None, memo: ControllerMemo, **_: Any
        ) -> None:
            for ref in body.get("metadata", {}).get("ownerReferences") or []:
                if ref.get("kind") == "McpServer" and ref.get("controller"):
                    await _logged(
                        functools.partial(memo.ready().server, _ns(namespace), ref["name"])
                    )

    return registry


def secret_info(name: str, body: Mapping[str, Any]) -> SecretInfo:
    """What the Secret index keeps of a Secret: key names and whether each value counts as
    empty, never a value."""
    values = {k: _decoded(v) for k, v in (body.get("data") or {}).items()}
    return SecretInfo.from_values(name, values, str(body.get("type", "")))


def _decoded(value: Any) -> bytes:
    """A value of a Secret's `data` (base64; the API server refuses anything else)."""
    try:
        return base64.b64decode(value or b"", validate=True)
    except (binascii.Error, TypeError, ValueError):
        return b""


def _ns(namespace: str | None) -> str:
    """Every kind handled here is namespaced."""
    if namespace is None:
        raise kopf.PermanentError("a namespaced object without a namespace")
    return namespace


_EVENT_RETRY_DELAYS = (0.5, 1, 2, 4, 8, 8, 8, 8)


async def _logged(action: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Event handlers get no retries from kopf: retry API failures here with backoff, so a
    409 or a 500 while reacting to a Secret or a data source does not lose the update."""
    for delay in (*_EVENT_RETRY_DELAYS, None):
        try:
            await action()
            return
        except KubeError as err:
            if delay is None:
                log.error("reconcile failed, giving up until the next change: %s", err)
                return
            log.warning("reconcile failed, retrying in %s s: %s", delay, err)
            await asyncio.sleep(delay)
