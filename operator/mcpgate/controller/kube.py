"""A small async Kubernetes client for the objects the operator writes.

kopf watches; this writes. It speaks JSON over httpx with the connection and
credentials of the `kubernetes` library's configuration (in-cluster or
KUBECONFIG, token refresh included), uses merge patches only, and never reads
a Secret: Secrets reach the operator through kopf's index, as key names.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Any, Final

import httpx

from mcpgate.api import API_GROUP, CRD_VERSION
from mcpgate.api.crd import KINDS as CRD_KINDS
from mcpgate.render.objects import OWNED_KINDS

__all__ = ["KINDS", "Conflict", "KubeClient", "KubeError", "Resource", "authorization_header"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


# Every kind the operator reads or writes by name: the owned kinds, its own and Events.
KINDS: Final = {
    **{o.kind: Resource(o.group, o.version, o.plural) for o in OWNED_KINDS},
    **{k.kind: Resource(API_GROUP, CRD_VERSION, k.plural) for k in CRD_KINDS},
    "Event": Resource("", "v1", "events"),
}

_IN_FLIGHT = 8
_MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class KubeError(Exception):
    """A failed API call: the status and the API server's reason (never a body)."""

    def __init__(self, status: int, reason: str, what: str, message: str = "") -> None:
        # The API server's own message says what it refused ("exceeded quota: ...",
        # "metadata.labels: Invalid value: ..."): kept, short, on one line.
        said = " ".join(message.split())[:300]
        super().__init__(f"{what}: {status} {reason}" + (f": {said}" if said else ""))
        self.status = status
        self.reason = reason
        self.message = said


class Conflict(KubeError):
    """409: someone else wrote first, or the object exists; retry from a fresh read."""


def authorization_header(configuration: Any) -> str | None:
    """The `Authorization` value of a kubernetes-client configuration, its token refreshed
    as the library does (a projected ServiceAccount token rotates hourly). The library
    keeps a kubeconfig's or the pod's token under `BearerToken`; `authorization` is the
    key older releases and hand-made configurations use."""
    for key in ("BearerToken", "authorization"):
        value: str | None = configuration.get_api_key_with_prefix(key)
        if value:
            return value
    return None


class KubeClient:
    """Async access to namespaced objects by kind and name."""

    def __init__(self, configuration: Any) -> None:
        """`configuration`: a `kubernetes.client.Configuration` as loaded by
        `kubernetes.config` (its refresh hook keeps rotating tokens current)."""
        self._configuration = configuration
        verify: ssl.SSLContext | bool = bool(configuration.verify_ssl)
        if configuration.verify_ssl:
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            verify = context
        # A few connections, and no more requests in flight than that: httpx's pool scans
        # every queued request against every connection, so a burst of reconciles with
        # unbounded requests costs quadratic CPU (bench.controller: 64% of the operator).
        self._http = httpx.AsyncClient(
            base_url=configuration.host,
            verify=verify,
            timeout=30.0,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=_IN_FLIGHT, max_keepalive_connections=_IN_FLIGHT),
        )
        self._in_flight = asyncio.Semaphore(_IN_FLIGHT)

    def _auth(self) -> dict[str, str]:
        header = authorization_header(self._configuration)
        return {"Authorization": header} if header else {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        async with self._in_flight:
            response = await self._http.request(
                method, path, json=json, headers={**self._auth(), **(headers or {})}
            )
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 400:
            reason, message = "", ""
            with contextlib.suppress(ValueError, AttributeError):
                answer = response.json()
                reason, message = str(answer.get("reason", "")), str(answer.get("message", ""))
            error = Conflict if response.status_code == 409 else KubeError
            raise error(response.status_code, reason or response.reason_phrase, what, message)
        if not response.content:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._call("GET", KINDS[kind].path(namespace, name), f"get {kind} {name}")

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        created = await self._call(
            "POST",
            KINDS[obj["kind"]].path(meta["namespace"]),
            f"create {obj['kind']} {meta['name']}",
            json=obj,
        )
        assert created is not None
        return created

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): maps merge, lists and `null`s replace."""
        patched = await self._call(
            "PATCH",
            KINDS[kind].path(namespace, name, subresource),
            f"patch {kind} {name}{'/' + subresource if subresource else ''}",
            json=patch,
            headers=_MERGE_PATCH,
        )
        assert patched is not None
        return patched

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            await self._call(
                "DELETE",
                KINDS[kind].path(namespace, name),
                f"delete {kind} {name}",
                json={"propagationPolicy": "Background"},
            )
        except KubeError as err:
            if err.status != 404:
                raise
