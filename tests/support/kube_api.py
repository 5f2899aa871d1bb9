"""An API-server-like Kubernetes emulator for tests: kmock's emulator with the gaps closed.

(PYTEST_DONT_REWRITE: support modules are imported by tests before pytest can rewrite them.)

No Kubernetes API server can run on these machines, so the operator is tested against
`kmock.KubernetesEmulator` (the kopf author's mock server). kmock 0.8 alone is not
apiserver-like enough for a real kopf operator, kubectl and the `kubernetes` client;
`KubeApi` closes exactly the gaps our operator relies on, each in one documented place,
and adds nothing a real API server would not do. Deliberately NOT emulated (tests must
not depend on any of it): ownerReferences garbage collection (assert ownerReferences
instead), namespace deletion cascades, admission and schema validation or defaulting
(see `kube_schema.py`), server-side apply, strategic-merge list semantics, protobuf,
`/openapi`, field selectors other than metadata.name and metadata.namespace, watch
bookmarks (except the initial-events-end one), and Table output for built-in kinds.
Request bodies must be JSON: protobuf gets 415, so kubectl's typed generators (``kubectl
create namespace|secret|configmap NAME``) fail; apply or create manifests instead.

Closed gaps (the kmock behaviour each line replaces is in DESIGN.md):

- metadata: uid, creationTimestamp, resourceVersion (one global counter), generation
  (1 on create; +1 when anything outside metadata, and outside status for kinds with a
  status subresource, changes; the real server leaves it unset on a few core kinds such
  as ConfigMap), namespace from the URL, ``generateName``.
- answers: 201 on create; 409 AlreadyExists; 409 Conflict on a stale
  metadata.resourceVersion in PATCH or PUT; errors are `Status` objects with the reason
  a real server gives (NotFound, Invalid, BadRequest, UnsupportedMediaType, ...).
- writes: PUT (replace) of objects and of ``/status``; PATCH as merge-patch (RFC 7386),
  json-patch (RFC 6902, a failed ``test`` is 422 as kopf expects) and strategic-merge
  patch for built-in kinds, applied as a merge patch after dropping ``$`` directives
  (custom resources answer 415 to it, as real servers do); a ``/status`` write changes
  only ``.status``; writes to the main resource keep ``.status`` for kinds with a status
  subresource (and drop it on create); a write that changes nothing is not stored, bumps
  no resourceVersion and sends no event.
- Secrets: ``stringData`` is folded into base64 ``data`` and ``type`` defaults to Opaque.
- Namespaces ``default``, ``kube-system``, ``kube-public`` and ``kube-node-lease`` exist
  from the start (kopf serves only existing namespaces) and are Active; objects may
  still be created in namespaces that do not exist (a real server answers 404).
- DELETE honours finalizers (deletionTimestamp, then removal when the last finalizer
  goes) and ``preconditions``; DELETE on a collection deletes what the selectors match.
- ``dryRun=All`` writes are computed and answered, but not stored.
- list: labelSelector (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and
  fieldSelector (metadata.name, metadata.namespace; others are 400 as on a real server),
  ``limit``/``continue``, a ``<Kind>List`` with the current resourceVersion.
- watch: ADDED/MODIFIED/DELETED from a retained event history, so a watch from a
  resourceVersion replays exactly what happened after it (no duplicate ADDED on
  reconnect); without one (or with ``0``) it starts with synthetic ADDED events;
  ``timeoutSeconds``, ``sendInitialEvents``; an object moving in or out of a label
  selector arrives as ADDED or DELETED.
- discovery: ``/api/v1`` says ``groupVersion: v1``; discovery URLs may end with a slash;
  ``/api`` lists ``serverAddressByClientCIDRs``; ``GET /api/v1/namespaces`` and
  ``/api/v1/namespaces/<name>`` route to the namespaces resource; only registered
  resources are served (no guessing from stored objects) and only the ``status``
  subresource is advertised, since it is the only one served.
- CRDs: creating a CustomResourceDefinition registers its served versions (kind, scope,
  shortNames, categories, status subresource, additionalPrinterColumns) and marks it
  Established; deleting it removes the resource and its objects.
- Table: ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` renders custom
  resources from additionalPrinterColumns (JSONPath subset: ``.a.b``, ``[n]``, ``[*]``,
  ``[?(@.k=="v")]``; dates as ages), which is what makes ``kubectl get`` print them.

Test-side API of a running `KubeApi` (thread-safe; it normally serves from its own
thread, see `serve_kube_api`):

- ``server``: ``http://127.0.0.1:PORT``.
- ``calls``: every resource request as `ApiCall` (verb in RBAC terms, group, resource,
  subresource, namespace, name); ``nonresource_calls``: (verb, path) of the rest;
  ``rbac_rules()``: the set of (group, "resource[/subresource]", verb) used.
- ``read(resource, namespace, name)``, ``list_objects(resource, namespace=None)``,
  ``create(obj)``: read and seed objects (deep copies), as the API would.
- ``fail_next(count, status=409, resource=..., verbs=...)``: the next ``count`` matching
  requests answer ``status`` (409, 500, 429, 503, ...) without touching any state.
- ``add_latency(seconds, resource=..., verbs=...)``, ``clear_faults()``.
- ``cut_watches(resource=None)``: end the open watch streams (clients reconnect).
- ``watch_count(resource=None)``: how many watch streams are open.
- ``objects`` (kmock): every object with its version history, for assertions once the
  clients are quiet (it is not locked against the server's thread).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import copy
import dataclasses
import datetime
import functools
import gzip
import importlib.resources
import json
import re
import secrets
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import yaml
from kmock._internal import rendering

__all__ = [
    "BUILTIN_RESOURCES",
    "CRD",
    "WRITE_VERBS",
    "ApiCall",
    "KubeApi",
    "serve_kube_api",
]

T = TypeVar("T")
Obj = dict[str, Any]

#: The built-in resources the operator (and kopf, and kubectl) touch; their discovery
#: data (kind, shortNames, verbs, scope) comes from kmock's bundled k3s discovery dump.
BUILTIN_RESOURCES = (
    "v1/secrets",
    "v1/configmaps",
    "v1/services",
    "v1/events",
    "v1/namespaces",
    "v1/pods",
    "apps/v1/deployments",
    "autoscaling/v2/horizontalpodautoscalers",
    "policy/v1/poddisruptionbudgets",
    "coordination.k8s.io/v1/leases",
    "events.k8s.io/v1/events",
    "apiextensions.k8s.io/v1/customresourcedefinitions",
)
CRD = kmock.resource("apiextensions.k8s.io/v1/customresourcedefinitions")
_SECRETS = kmock.resource("v1/secrets")
_NAMESPACES = kmock.resource("v1/namespaces")
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_DRY_RUN = contextvars.ContextVar("dry_run", default=False)
_MERGE = "application/merge-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"
_JSON_PATCH = "application/json-patch+json"


def _error(status: int, message: str, reason: str | None = None, **details: Any) -> Exception:
    """A `Status` answer, rendered by `KubeApi._render_error` as a real server would."""
    return kmock.KubernetesError(
        status=status,
        reason=reason or _REASONS.get(status, "Unknown"),
        message=message,
        details={k: v for k, v in details.items() if v is not None},
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _qualified(res: kmock.resource) -> str:
    """How error messages name a resource: ``configmaps``, ``mcpservers.mcpgate.io``."""
    return f"{res.plural}.{res.group}" if res.group else str(res.plural)


def _api_version(res: kmock.resource) -> str:
    return f"{res.group}/{res.version}" if res.group else str(res.version)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (kmock's merge refuses to replace a dict by a scalar)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _drop_directives(patch: Any) -> Any:
    """Strategic-merge ``$patch``/``$setElementOrder/...`` keys, which merge-patch lacks."""
    if isinstance(patch, dict):
        return {k: _drop_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [_drop_directives(v) for v in patch]
    return patch


# --- selectors ---------------------------------------------------------------------------

_LABEL_TERM = re.compile(
    r"""\s*(?:
        !\s*(?P<absent>[^\s,!=()]+)
      | (?P<key>[^\s,!=()]+)\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>[^\s,!=()]*)
          | \s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
        )?
    )\s*(?:,|$)""",
    re.VERBOSE,
)
_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


@dataclasses.dataclass(frozen=True)
class Selector:
    """labelSelector and fieldSelector of a list, watch or deletecollection request."""

    labels: tuple[tuple[str, str, frozenset[str]], ...] = ()
    fields: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Selector:
        labels: list[tuple[str, str, frozenset[str]]] = []
        text, pos = params.get("labelSelector", "").strip(), 0
        while pos < len(text):
            m = _LABEL_TERM.match(text, pos)
            if m is None or m.end() == pos:
                raise _error(400, f"unable to parse requirement: {text[pos:]!r}")
            pos = m.end()
            if m["absent"]:
                labels.append((m["absent"], "!", frozenset()))
            elif m["setop"]:
                values = frozenset(v.strip() for v in m["values"].split(","))
                labels.append((m["key"], m["setop"], values))
            else:
                op = "=" if m["op"] == "==" else (m["op"] or "exists")
                labels.append((m["key"], op, frozenset({m["value"] or ""})))
        fields: list[tuple[str, str, str]] = []
        for term in filter(None, params.get("fieldSelector", "").split(",")):
            m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|!=|=)\s*(\S*)\s*", term)
            if m is None:
                raise _error(400, f"invalid field selector: {term!r}")
            if m[1] not in _FIELDS:
                raise _error(400, f"field label not supported: {m[1]}")
            fields.append((m[1], "!=" if m[2] == "!=" else "=", m[3]))
        return cls(tuple(labels), tuple(fields))

    def matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        for key, op, values in self.labels:
            present, value = key in labels, labels.get(key)
            ok = {
                "=": present and value in values,
                "!=": not present or value not in values,
                "in": present and value in values,
                "notin": not present or value not in values,
                "exists": present,
                "!": not present,
            }[op]
            if not ok:
                return False
        for key, op, expected in self.fields:
            section, attr = _FIELDS[key]
            actual = (obj.get(section) or {}).get(attr) or ""
            if (actual == expected) != (op == "="):
                return False
        return True


# --- printer columns ---------------------------------------------------------------------

_JSONPATH_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_-]+)
      | \[(?P<index>\d+)\]
      | \[(?P<star>\*)\]
      | \[\?\(@\.(?P<fkey>[A-Za-z0-9_.-]+)\s*==\s*(?P<q>["'])(?P<fval>.*?)(?P=q)\)\]""",
    re.VERBOSE,
)


def compile_jsonpath(path: str) -> list[re.Match[str]]:
    """The JSONPath subset of printer columns; anything else is Invalid, as on the server."""
    steps, pos = [], 0
    while pos < len(path):
        m = _JSONPATH_STEP.match(path, pos)
        if m is None:
            raise _error(422, f"unsupported JSONPath in printer column: {path!r}")
        steps.append(m)
        pos = m.end()
    return steps


def eval_jsonpath(steps: list[re.Match[str]], obj: Any) -> list[Any]:
    values = [obj]
    for step in steps:
        found: list[Any] = []
        for value in values:
            if step["field"] and isinstance(value, dict) and step["field"] in value:
                found.append(value[step["field"]])
            elif step["index"] and isinstance(value, list) and int(step["index"]) < len(value):
                found.append(value[int(step["index"])])
            elif step["star"] and isinstance(value, list | dict):
                found.extend(value if isinstance(value, list) else value.values())
            elif step["fkey"] and isinstance(value, list):
                for item in value:
                    leaf: Any = item
                    for part in step["fkey"].split("."):
                        leaf = leaf.get(part) if isinstance(leaf, dict) else None
                    if leaf is not None and str(leaf) == step["fval"]:
                        found.append(item)
        values = found
    return values


def human_age(timestamp: str, now: datetime.datetime | None = None) -> str:
    """apimachinery's ``duration.HumanDuration``, as the server renders date columns."""
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "<invalid>"
    now = now or datetime.datetime.now(datetime.UTC)
    seconds = int((now - then.replace(tzinfo=datetime.UTC)).total_seconds())
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < -1:
        return "<invalid>"
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 365 * 2 else f"{days // 365}y"


def _cell(column: Mapping[str, Any], obj: Obj) -> Any:
    """One Table cell, as apiextensions' tableconvertor computes it."""
    found = eval_jsonpath(column["steps"], obj)
    if not found or found[0] is None:
        return None
    value, kind = found[0], column["type"]
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "integer":
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if kind == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        return human_age(value) if isinstance(value, str) else None
    return None


# --- requests ----------------------------------------------------------------------------


class ApiCall(NamedTuple):
    """One resource request, in the terms an RBAC rule and the audit log use."""

    verb: str
    group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def _parse_path(path: str) -> tuple[str | None, str | None, str | None, list[str]]:
    """group, version, URL namespace, remaining parts; like the API server's RequestInfo.

    kmock's parser crashes on ``/api/v1/namespaces`` and reads ``/api/v1/namespaces/x``
    as a namespace with no resource.
    """
    parts = [p for p in path.split("/") if p]
    version: str | None
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        group, version, rest = parts[1], (parts[2] if len(parts) > 2 else None), parts[3:]
    else:
        return None, None, None, []
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    return group, version, namespace, rest


def _parse_request(raw: aiohttp.web.BaseRequest, body: bytes, id: int) -> kmock.Request:
    group, version, namespace, rest = _parse_path(raw.path)
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    if group == "" and plural == "namespaces":
        namespace = None  # the namespace a Namespace lives in is none, whatever RBAC says
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    action: kmock.action | None = None
    if group is not None:
        watch = raw.query.get("watch") in ("true", "1")
        by_method = (
            {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}
            if name is None
            else {
                "GET": kmock.action.FETCH,
                "PATCH": kmock.action.UPDATE,
                "DELETE": kmock.action.DELETE,
            }
        )
        action = kmock.action.WATCH if watch and raw.method == "GET" else by_method.get(raw.method)
    return kmock.Request(
        id=id,
        raw_request=raw,
        method=kmock.method(raw.method),
        url=raw.url.with_path(raw.path.rstrip("/") or "/"),  # the client asks for /api/v1/
        params=dict(raw.query),
        headers=raw.headers,  # case-insensitive, unlike kmock's plain dict
        cookies=dict(raw.cookies),
        body=body,
        text=body.decode("utf-8", "replace"),
        data=data,
        action=action,
        resource=None
        if group is None
        else kmock.resource(group=group, version=version, plural=plural),
        namespace=namespace,
        name=name,
        subresource=subresource,
    )


def _rbac_verb(request: kmock.Request) -> str:
    method = str(request.method.value)
    if method == "GET" and request.params.get("watch") in ("true", "1"):
        return "watch"
    if request.name is None:
        return {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(
            method, method.lower()
        )
    return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


# --- watches and faults ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Event:
    rv: int
    resource: kmock.resource
    type: str
    obj: Obj
    old: Obj | None = None


@dataclasses.dataclass(eq=False)
class _Watch:
    resource: kmock.resource
    namespace: str | None
    name: str | None
    selector: Selector
    queue: asyncio.Queue[Obj | None] = dataclasses.field(default_factory=asyncio.Queue)

    def sees(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        return (
            (self.namespace is None or meta.get("namespace") == self.namespace)
            and (self.name is None or meta.get("name") == self.name)
            and self.selector.matches(obj)
        )

    def translate(self, event: _Event) -> Obj | None:
        """The event as this watcher sees it: entering or leaving its selection counts."""
        if event.resource != self.resource:
            return None
        now, before = self.sees(event.obj), self.sees(event.old)
        if event.type == "MODIFIED" and now != before:
            return {"type": "ADDED" if now else "DELETED", "object": event.obj}
        return {"type": event.type, "object": event.obj} if now else None


@dataclasses.dataclass
class _Fault:
    remaining: int
    status: int
    verbs: frozenset[str]
    resource: str | None
    name: str | None
    seconds: float = 0.0

    def applies(self, call: ApiCall) -> bool:
        return (
            call.verb in self.verbs
            and self.resource in (None, call.resource, call.rbac_resource)
            and self.name in (None, call.name)
        )


# --- the emulator ------------------------------------------------------------------------


def _sees(reaction: kmock.Reaction, request: kmock.Request) -> bool:
    """``request in reaction._source`` (kmock's semantics) without replaying the history."""
    views = list(reaction._walk(kmock.View))
    if not all(
        isinstance(v, kmock.Root | kmock.Filter | kmock.Priority | kmock.Reaction) for v in views
    ):
        return request in reaction._source
    return all(v.criteria(request) for v in reversed(views) if isinstance(v, kmock.Filter))


@attrs.define(kw_only=True)
class KubeApi(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator, behaving like a real API server where we rely on it.

    State changes happen in the ``_serve_*`` fallbacks (not in kmock's ``_handle``), so
    a kmock reaction that intercepts a request (``api['get /openapi/v2'] << {...}``)
    also stops its side effects, and every write goes through `_commit`.
    """

    calls: list[ApiCall] = attrs.field(factory=list, init=False)
    nonresource_calls: list[tuple[str, str]] = attrs.field(factory=list, init=False)
    _rv: int = attrs.field(default=1, init=False)
    _history: list[_Event] = attrs.field(factory=list, init=False)
    _watches: list[_Watch] = attrs.field(factory=list, init=False)
    _columns: dict[kmock.resource, list[dict[str, Any]]] = attrs.field(factory=dict, init=False)
    _crd_resources: dict[str, list[kmock.resource]] = attrs.field(factory=dict, init=False)
    _faults: list[_Fault] = attrs.field(factory=list, init=False)
    _fault_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        # Discovery, /version and the 404 catch-all from the scaffold; our own object logic.
        kmock.KubernetesScaffold.__attrs_post_init__(self)
        fallback = self.fallback
        fallback[kmock.action.LIST] << self._serve_list
        fallback[kmock.action.WATCH] << self._serve_watch
        fallback[kmock.action.FETCH] << self._serve_fetch
        fallback[kmock.action.CREATE] << 201 << self._serve_create
        fallback[kmock.action.UPDATE] << self._serve_patch
        fallback[kmock.action.DELETE] << self._serve_delete
        fallback[kmock.method.PUT] << self._serve_replace
        fallback[kmock.method.DELETE] << self._serve_delete_collection
        bundled = _bundled_resources()
        for key in BUILTIN_RESOURCES:
            self._resources[key] = attrs.evolve(
                bundled[key], subresources=bundled[key].subresources & {"status"}
            )
        namespaces = self._resources[_NAMESPACES]
        for name in ("default", "kube-node-lease", "kube-public", "kube-system"):
            self._do_create(_NAMESPACES, namespaces, None, {"metadata": {"name": name}})

    # -- plumbing --------------------------------------------------------------------

    @property
    def server(self) -> str:
        """``http://127.0.0.1:PORT`` of the (first) server serving this emulator."""
        return str(self.url).rstrip("/")

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's entry point, with our path parsing, the request log and fault injection."""
        body = await raw_request.read()
        request = _parse_request(raw_request, body, id=len(self._requests))
        self._requests.append(request)
        call = self._record(request)
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            dry_run = request.params.get("dryRun")
            if dry_run not in (None, "All"):
                raise _error(400, f"unsupported dryRun value: {dry_run!r}")
            _DRY_RUN.set(dry_run == "All")  # this request's task only
            content_type = request.headers.get("Content-Type", "application/json")
            if body and "json" not in content_type and request.method.value != "PATCH":
                # protobuf (kubectl's typed generators: create namespace/secret/configmap)
                raise _error(
                    415,
                    f"the body of the request was in an unknown format ({content_type}) - "
                    "accepted media types include: application/json",
                )
            if call is not None:
                await self._inject_faults(call)
            try:
                return await self._handle(request)
            except rendering.StreamingError as e:
                raw_response = e.args[0]
                raise e.__cause__ or e from None
        except Exception as e:
            if not isinstance(e, kmock.KubernetesError) and self._errors:
                self._errors[-1].append(e)  # an emulator bug: fails the test if strict
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(e)
            await self._stream_error(e, raw_response)
            await raw_response.write_eof()
            return raw_response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        """kmock's dispatch (RawHandler._handle), minus its cost, minus the emulator's writes.

        kmock asks ``request in reaction._source``, which runs the whole request history
        through every reaction's filters: quadratic, 50 ms a request after a few thousand.
        For chains of plain filters (ours, and most reactions a test adds) membership is
        just "every filter accepts this request"; other views (slices, groups, streams)
        still get kmock's own check. KubernetesEmulator._handle is skipped on purpose: it
        changes objects before any reaction runs; here the fallbacks do.
        """
        ranked = [tuple(-p for p in payload.priorities) for payload in self._payloads]
        width = max(map(len, ranked), default=0)
        order = sorted(
            range(len(ranked)), key=lambda i: ranked[i] + (0,) * (width - len(ranked[i]))
        )
        for payload in (self._payloads[i] for i in order):
            if payload._disabled.is_set() or not _sees(payload, request):
                continue
            try:
                return await payload(request)
            except rendering.ReactionMismatchError:  # depleted
                payload._disabled.set()
            except NotImplementedError:  # matched, but nothing to answer with
                pass
        raise NotImplementedError("no reaction matches the request")  # the scaffold has a 404

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            status, reason, message = exc.status, exc.reason, exc.message
            details = exc.details or {}
        else:
            status, reason, message = 500, "InternalError", f"emulator error: {exc!r}"
            details = {"causes": [{"message": traceback.format_exc()}]}
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body |= {"message": message, "reason": reason, "details": details, "code": status}
        return aiohttp.web.json_response(body, status=status)

    def _record(self, request: kmock.Request) -> ApiCall | None:
        res = request.resource
        if res is None or res.plural is None or res.group is None:
            self.nonresource_calls.append((request.method.value.lower(), request.url.path))
            return None
        namespace = request.name if res == _NAMESPACES else request.namespace
        call = ApiCall(
            _rbac_verb(request), res.group, res.plural, request.subresource, namespace, request.name
        )
        self.calls.append(call)
        return call

    def rbac_rules(self) -> set[tuple[str, str, str]]:
        """(apiGroup, resource[/subresource], verb) of every resource request served."""
        return {(c.group, c.rbac_resource, c.verb) for c in self.calls}

    def _get_resources(self) -> list[kmock.resource]:
        # Only what is registered: a real server does not infer resources from objects.
        return [kmock.resource(res) for res in self._resources]

    def _in_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the emulator's loop (state is only ever touched there)."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    # -- fault injection ---------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 409,
        *,
        resource: str | None = None,
        name: str | None = None,
        verbs: Collection[str] = WRITE_VERBS,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``; nothing is stored.

        ``resource`` is a plural, optionally with a subresource (``mcpservers/status``);
        ``verbs`` are RBAC verbs (default: every write).
        """
        with self._fault_lock:
            self._faults.append(_Fault(count, status, frozenset(verbs), resource, name))

    def add_latency(
        self,
        seconds: float,
        *,
        resource: str | None = None,
        verbs: Collection[str] = _ALL_VERBS,
    ) -> None:
        """Delay every matching request by ``seconds`` until `clear_faults`."""
        with self._fault_lock:
            self._faults.append(_Fault(-1, 0, frozenset(verbs), resource, None, seconds))

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults.clear()

    async def _inject_faults(self, call: ApiCall) -> None:
        with self._fault_lock:
            delay = sum(f.seconds for f in self._faults if f.seconds and f.applies(call))
            fault = next((f for f in self._faults if f.remaining > 0 and f.applies(call)), None)
            if fault is not None:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining != 0]
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            what = f'{call.resource} "{call.name}"' if call.name else call.resource
            message = (
                f"Operation cannot be fulfilled on {what}: the object has been modified; "
                "please apply your changes to the latest version and try again"
                if fault.status == 409
                else f"injected failure on {call.verb} {what}"
            )
            raise _error(fault.status, message, name=call.name, kind=call.resource)

    def cut_watches(self, resource: str | None = None) -> int:
        """End open watch streams (of one plural, or all); returns how many were cut."""

        def cut() -> int:
            cut = [w for w in self._watches if resource in (None, w.resource.plural)]
            for watch in cut:
                watch.queue.put_nowait(None)
            return len(cut)

        return self._in_loop(cut)

    def watch_count(self, resource: str | None = None) -> int:
        return self._in_loop(
            lambda: sum(resource in (None, w.resource.plural) for w in self._watches)
        )

    # -- objects -------------------------------------------------------------------------

    def _target(self, request: kmock.Request) -> tuple[kmock.resource, kmock.ResourceInfo]:
        res = request.resource
        if res is None or res.plural is None or res not in self._resources:
            raise _error(404, "the server could not find the requested resource")
        info = self._resources[res]
        if request.subresource is not None and (
            request.subresource != "status" or "status" not in info.subresources
        ):
            raise _error(404, "the server could not find the requested resource")
        if request.namespace is not None and not info.namespaced:
            raise _error(404, "the server could not find the requested resource")
        return res, info

    def _custom(self, res: kmock.resource) -> bool:
        """Served from a CRD (every CRD version has printer columns, if only Age)."""
        return res in self._columns

    def _key(
        self, res: kmock.resource, info: kmock.ResourceInfo, namespace: str | None, name: str
    ) -> tuple[kmock.resource, str | None, str]:
        if info.namespaced and namespace is None:
            raise _error(404, "the server could not find the requested resource")
        return res, namespace if info.namespaced else None, name

    def _current(self, key: tuple[kmock.resource, str | None, str]) -> Obj | None:
        if key in self._objects and not self._objects[key].deleted:
            return copy.deepcopy(self._objects[key].raw)
        return None

    def _existing(self, key: tuple[kmock.resource, str | None, str]) -> Obj:
        obj = self._current(key)
        if obj is None:
            res, _, name = key
            raise _error(404, f'{_qualified(res)} "{name}" not found', name=name, kind=res.plural)
        return obj

    def _select(self, res: kmock.resource, namespace: str | None, sel: Selector) -> list[Obj]:
        found = [
            copy.deepcopy(obj.raw)
            for (r, ns, _), obj in self._objects.items()
            if r == res and not obj.deleted and namespace in (None, ns)
        ]
        found = [obj for obj in found if sel.matches(obj)]
        return sorted(
            found, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"])
        )

    def _emit(self, res: kmock.resource, type: str, obj: Obj, old: Obj | None = None) -> None:
        event = _Event(self._rv, res, type, obj, old)
        self._history.append(event)
        for watch in self._watches:
            if (out := watch.translate(event)) is not None:
                watch.queue.put_nowait(out)

    def _commit(
        self,
        key: tuple[kmock.resource, str | None, str],
        info: kmock.ResourceInfo,
        new: Obj | None,
        old: Obj | None,
    ) -> Obj:
        """Store a new state (``None``: deleted) with the next resourceVersion, and notify."""
        res = key[0]
        target = new if new is not None else old
        assert target is not None
        if new is not None and old is not None:
            if _sans_rv(new) == _sans_rv(old):
                return old  # a no-op write: no resourceVersion, no event, like etcd3's store
            if _content(new, info) != _content(old, info):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        meta = target["metadata"]
        if new is not None and meta.get("deletionTimestamp") and not meta.get("finalizers"):
            new = None  # the last finalizer is gone: the object goes now
        if _DRY_RUN.get():
            return target  # validated and computed, but neither stored nor announced
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        if new is None:
            self._objects[key].delete()
            self._emit(res, "DELETED", target)
        elif old is None:
            if key in self._objects:
                self._objects[key].create(new)
            else:
                self._objects[key] = new
            self._emit(res, "ADDED", new)
        else:
            self._objects[key].history.append(new)
            self._emit(res, "MODIFIED", new, old)
        if res == CRD:  # after its own event: its objects' deletions come later
            self._register_crd(target, remove=new is None)
        return target

    def _normalize(self, res: kmock.resource, obj: Obj) -> None:
        """What the API server itself writes into an object of some kinds."""
        if res == _SECRETS:
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                encoded = {
                    k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()
                }
                obj["data"] = dict(obj.get("data") or {}) | encoded
            obj.setdefault("type", "Opaque")
        if res == _NAMESPACES and "status" not in obj:
            obj["status"] = {"phase": "Active"}
        if res == CRD:
            _crd_versions(obj)  # validate before anything is stored
            obj["status"] = _crd_status(obj)

    def _do_create(
        self, res: kmock.resource, info: kmock.ResourceInfo, namespace: str | None, body: Any
    ) -> Obj:
        if not isinstance(body, dict):
            raise _error(400, "the body of the request is not a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.get("metadata")
        meta = obj["metadata"] = dict(meta) if isinstance(meta, dict) else {}
        if obj.get("kind") not in (None, info.kind):
            raise _error(400, f"the kind {obj['kind']!r} does not match {info.kind!r}")
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _error(422, "name or generateName is required", kind=res.plural)
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(alphabet) for _ in range(5)
            )
        if info.namespaced:
            if namespace is None:
                raise _error(404, "the server could not find the requested resource")
            if meta.get("namespace") not in (None, namespace):
                raise _error(
                    400,
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        key = self._key(res, info, namespace, meta["name"])
        if self._current(key) is not None:
            raise _error(
                409,
                f'{_qualified(res)} "{meta["name"]}" already exists',
                reason="AlreadyExists",
                name=meta["name"],
                kind=res.plural,
            )
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(field, None)
        meta |= {"uid": str(uuid.uuid4()), "creationTimestamp": _now(), "generation": 1}
        obj["apiVersion"], obj["kind"] = _api_version(res), info.kind
        if "status" in info.subresources:
            obj.pop("status", None)  # status is set through /status only
        self._normalize(res, obj)
        return self._commit(key, info, obj, None)

    def _update(self, request: kmock.Request, body: Any) -> Obj:
        """PUT and PATCH share this: ``body`` is the full intended object."""
        res, info = self._target(request)
        key = self._key(res, info, request.namespace, str(request.name))
        old = self._existing(key)
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise _error(400, "the body of the request is not a JSON object")
        new, new_meta, old_meta = copy.deepcopy(body), body.get("metadata") or {}, old["metadata"]
        if new_meta.get("resourceVersion") not in (None, "", old_meta["resourceVersion"]):
            raise _error(
                409,
                f'Operation cannot be fulfilled on {_qualified(res)} "{request.name}": the object '
                "has been modified; please apply your changes to the latest version and try again",
                name=request.name,
                kind=res.plural,
            )
        if new_meta.get("name", old_meta["name"]) != old_meta["name"] or new_meta.get(
            "namespace", old_meta.get("namespace")
        ) != old_meta.get("namespace"):
            raise _error(422, "metadata.name and metadata.namespace are immutable", kind=res.plural)
        if request.subresource == "status":
            status, new = new.get("status"), copy.deepcopy(old)
            new.pop("status", None)
            if status is not None:
                new["status"] = status
        else:
            if "status" in info.subresources:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = old["status"]
            new["metadata"] = dict(new.get("metadata") or {})
            for field in ("uid", "creationTimestamp", "generation", "resourceVersion", "name"):
                new["metadata"][field] = old_meta[field]
            for field in ("namespace", "deletionTimestamp", "deletionGracePeriodSeconds"):
                new["metadata"].pop(field, None)
                if field in old_meta:
                    new["metadata"][field] = old_meta[field]
            new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        self._normalize(res, new)
        return self._commit(key, info, new, old)

    def _delete(self, key: tuple[kmock.resource, str | None, str], info: kmock.ResourceInfo) -> Obj:
        old = self._existing(key)
        if not old["metadata"].get("finalizers"):
            return self._commit(key, info, None, old)
        if old["metadata"].get("deletionTimestamp"):
            return old
        new = copy.deepcopy(old)
        new["metadata"] |= {"deletionTimestamp": _now(), "deletionGracePeriodSeconds": 0}
        return self._commit(key, info, new, old)

    def _register_crd(self, crd: Obj, *, remove: bool = False) -> None:
        """Serve (or stop serving) the resources a CustomResourceDefinition defines."""
        name = crd["metadata"]["name"]
        for res in self._crd_resources.pop(name, []):
            self._resources.pop(res, None)
            self._columns.pop(res, None)
            if remove:  # the objects go with their definition
                for key, obj in list(self._objects.items()):
                    if key[0] == res and not obj.deleted:
                        self._commit(key, kmock.ResourceInfo(), None, copy.deepcopy(obj.raw))
        if not remove:
            for res, info, columns in _crd_versions(crd):
                self._resources[res], self._columns[res] = info, columns
                self._crd_resources.setdefault(name, []).append(res)

    # -- HTTP verbs (kmock fallbacks) ------------------------------------------------------

    async def _serve_list(self, request: kmock.Request) -> Obj:
        res, info = self._target(request)
        items = self._select(res, request.namespace, Selector.parse(request.params))
        meta: Obj = {"resourceVersion": str(self._rv)}
        if limit := int(request.params.get("limit") or 0):
            offset = int(request.params.get("continue") or 0)
            if offset + limit < len(items):
                meta |= {
                    "continue": str(offset + limit),
                    "remainingItemCount": len(items) - offset - limit,
                }
            items = items[offset : offset + limit]
        if self._custom(res) and "as=Table" in request.headers.get("Accept", ""):
            return self._table(res, items, request.params, meta)
        return {
            "apiVersion": _api_version(res),
            "kind": f"{info.kind}List",
            "metadata": meta,
            "items": items,
        }

    async def _serve_fetch(self, request: kmock.Request) -> Obj:
        res, info = self._target(request)
        obj = self._existing(self._key(res, info, request.namespace, str(request.name)))
        if self._custom(res) and "as=Table" in request.headers.get("Accept", ""):
            return self._table(res, [obj], request.params, {"resourceVersion": str(self._rv)})
        return obj

    async def _serve_create(self, request: kmock.Request) -> Obj:
        res, info = self._target(request)
        if request.subresource is not None:
            raise _error(405, "create is not supported on this subresource")
        return self._do_create(res, info, request.namespace, request.data)

    async def _serve_replace(self, request: kmock.Request) -> Obj:
        self._target(request)
        if request.name is None:
            raise _error(405, "PUT is only allowed on a named object")
        if isinstance(request.data, dict):
            name = (request.data.get("metadata") or {}).get("name")
            if name != request.name:
                raise _error(
                    400,
                    f"the name of the object ({name}) does not match the name on the URL "
                    f"({request.name})",
                )
        return self._update(request, request.data)

    async def _serve_patch(self, request: kmock.Request) -> Obj:
        res, info = self._target(request)
        old = self._existing(self._key(res, info, request.namespace, str(request.name)))
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        patch = request.data
        if content_type == _JSON_PATCH:
            if not isinstance(patch, list):
                raise _error(400, "a json patch must be a JSON array of operations")
            try:
                new = jsonpatch.apply_patch(old, patch)
            except jsonpatch.JsonPatchTestFailed as e:
                raise _error(422, f"the server rejected our request: {e}") from None
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
                raise _error(422, f"the patch could not be applied: {e}") from None
        elif content_type == _MERGE or (content_type == _STRATEGIC and not self._custom(res)):
            if not isinstance(patch, dict):
                raise _error(400, "a merge patch must be a JSON object")
            new = merge_patch(old, _drop_directives(patch) if content_type == _STRATEGIC else patch)
        else:
            accepted = [_JSON_PATCH, _MERGE] + ([] if self._custom(res) else [_STRATEGIC])
            raise _error(
                415,
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(accepted)}",
            )
        return self._update(request, new)

    async def _serve_delete(self, request: kmock.Request) -> Obj:
        res, info = self._target(request)
        if request.subresource is not None:
            raise _error(405, "delete is not supported on a subresource")
        key = self._key(res, info, request.namespace, str(request.name))
        preconditions = (request.data or {}).get("preconditions") or {}
        current = self._existing(key)["metadata"]
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) not in (None, current[field]):
                raise _error(
                    409,
                    f"Precondition failed: {field} in precondition: {preconditions[field]}, "
                    f"{field} in object meta: {current[field]}",
                )
        return self._delete(key, info)

    async def _serve_delete_collection(self, request: kmock.Request) -> Obj:
        res, info = self._target(request)
        if request.name is not None or request.subresource is not None:
            raise _error(405, "the server does not allow this method on the requested resource")
        items = [
            self._delete(
                self._key(res, info, o["metadata"].get("namespace"), o["metadata"]["name"]), info
            )
            for o in self._select(res, request.namespace, Selector.parse(request.params))
        ]
        return {
            "apiVersion": _api_version(res),
            "kind": f"{info.kind}List",
            "metadata": {},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        res, info = self._target(request)
        watch = _Watch(res, request.namespace, request.name, Selector.parse(request.params))
        since = request.params.get("resourceVersion") or "0"
        initial = since == "0" or request.params.get("sendInitialEvents") == "true"
        events: list[Obj]
        if initial:
            events = [
                {"type": "ADDED", "object": obj}
                for obj in self._select(res, request.namespace, watch.selector)
                if watch.sees(obj)
            ]
        elif since.isdigit():
            events = [e for ev in self._history if ev.rv > int(since) if (e := watch.translate(ev))]
        else:
            raise _error(400, f"invalid resourceVersion: {since!r}")
        if request.params.get("sendInitialEvents") == "true":
            bookmark = {
                "kind": info.kind,
                "apiVersion": _api_version(res),
                "metadata": {
                    "resourceVersion": str(self._rv),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            }
            events.append({"type": "BOOKMARK", "object": bookmark})
        self._watches.append(watch)  # in the same step as the snapshot: no event is missed
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        try:
            yield b""  # send the headers now: the client waits for them before streaming
            for event in events:
                yield event
            async with asyncio.timeout(timeout):
                while (live := await watch.queue.get()) is not None:
                    yield live
        except TimeoutError:
            return
        finally:
            self._watches.remove(watch)

    async def _serve_api(self, request: kmock.Request) -> kmock.Payload:
        # serverAddressByClientCIDRs is required: the kubernetes client fails without it.
        address = f"{request.url.host}:{request.url.port}"
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        # kmock says "groupVersion: /v1" for the core group, and gives subresources all verbs.
        assert request.resource is not None
        group, version = request.resource.group, request.resource.version
        entries: list[Obj] = []
        for res in sorted(self._get_resources(), key=lambda r: str(r.plural)):
            if (res.group, res.version) != (group, version):
                continue
            info = self._resources[res]
            base = {"namespaced": bool(info.namespaced), "kind": info.kind}
            entries.append(
                base
                | {
                    "name": res.plural,
                    "singularName": info.singular or "",
                    "verbs": sorted(info.verbs),
                    "shortNames": sorted(info.shortnames),
                    "categories": sorted(info.categories),
                }
            )
            for sub in sorted(info.subresources):
                entries.append(
                    base
                    | {
                        "name": f"{res.plural}/{sub}",
                        "singularName": "",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not entries:
            raise _error(404, "the server could not find the requested resource")
        group_version = f"{group}/{version}" if group else str(version)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": entries,
        }

    def _table(
        self, res: kmock.resource, items: list[Obj], params: Mapping[str, str], meta: Obj
    ) -> Obj:
        """A meta.k8s.io/v1 Table, as the server renders custom resources for kubectl."""
        columns = self._columns[res]
        definitions = [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "priority": 0,
                "description": "Name must be unique within a namespace.",
            }
        ] + [
            {
                "name": c["name"],
                "type": c["type"],
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": c.get("priority", 0),
            }
            for c in columns
        ]
        include = params.get("includeObject", "Metadata")
        rows = []
        for obj in items:
            row: Obj = {"cells": [obj["metadata"]["name"], *(_cell(c, obj) for c in columns)]}
            if include == "Object":
                row["object"] = obj
            elif include != "None":
                row["object"] = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                }
            rows.append(row)
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "columnDefinitions": definitions,
            "rows": rows,
        }

    # -- test-side access (thread-safe) ---------------------------------------------------

    def _resource_for(self, api_version: str, kind: str) -> kmock.resource:
        group, _, version = api_version.rpartition("/")
        for res in self._get_resources():
            if (res.group, res.version) == (group, version) and self._resources[res].kind == kind:
                return res
        raise LookupError(f"no resource is registered for {api_version} {kind}")

    def create(self, obj: Mapping[str, Any]) -> Obj:
        """Create an object (a manifest) as a POST would, with no request logged."""

        def create() -> Obj:
            res = self._resource_for(str(obj.get("apiVersion")), str(obj.get("kind")))
            namespace = (obj.get("metadata") or {}).get("namespace") or "default"
            return copy.deepcopy(self._do_create(res, self._resources[res], namespace, obj))

        return self._in_loop(create)

    def read(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        """The current object (a deep copy), or None; ``resource`` as in ``v1/configmaps``."""
        res = kmock.resource(resource)
        return self._in_loop(lambda: self._current((res, namespace, name)))

    def list_objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        res = kmock.resource(resource)
        return self._in_loop(lambda: self._select(res, namespace, Selector()))

    def install_crds(self, paths: Iterable[Path]) -> None:
        """Create the CustomResourceDefinitions in YAML files (as ``kubectl create``)."""
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    self.create(doc)


@functools.cache
def _bundled_resources() -> kmock.ResourcesArray:
    """kmock's k3s discovery dump (``load_bundled`` warns about a deprecated API)."""
    data = importlib.resources.files("kmock._internal").joinpath("resources.json.gz")
    bundled = kmock.ResourcesArray()
    bundled.load_data(gzip.decompress(data.read_bytes()))
    return bundled


def _sans_rv(obj: Obj) -> Obj:
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    return obj | {"metadata": meta}


def _content(obj: Obj, info: kmock.ResourceInfo) -> Obj:
    """What ``generation`` tracks: all but metadata, and status if it is a subresource."""
    skip = {"metadata", "status"} if "status" in info.subresources else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


def _crd_versions(crd: Obj) -> list[tuple[kmock.resource, kmock.ResourceInfo, list[Obj]]]:
    """The served versions of a CRD with their discovery data and printer columns."""
    try:
        spec, names, name = crd["spec"], crd["spec"]["names"], crd["metadata"]["name"]
        group, plural, kind = spec["group"], names["plural"], names["kind"]
        if name != f"{plural}.{group}":
            raise _error(422, f"metadata.name must be {plural}.{group}")
        result = []
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            info = kmock.ResourceInfo(
                kind=kind,
                singular=names.get("singular") or kind.lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                verbs=_ALL_VERBS,
                shortnames=names.get("shortNames") or (),
                categories=names.get("categories") or (),
                subresources={"status"} if "status" in (version.get("subresources") or {}) else (),
            )
            columns = version.get("additionalPrinterColumns") or [
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
            ]
            compiled = [dict(c, steps=compile_jsonpath(c["jsonPath"])) for c in columns]
            result.append((kmock.resource(group, version["name"], plural), info, compiled))
    except (KeyError, TypeError, AttributeError) as e:
        raise _error(422, f"invalid CustomResourceDefinition: {e!r}") from None
    return result


def _crd_status(crd: Obj) -> Obj:
    """What the apiextensions controller reports; transition times kept as they were."""
    spec = crd.get("spec") or {}
    previous = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
    now = _now()
    return {
        "acceptedNames": spec.get("names") or {},
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": r,
                "message": m,
                "lastTransitionTime": previous.get(t, {}).get("lastTransitionTime", now),
            }
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }


@contextlib.contextmanager
def serve_kube_api(*, crds: Iterable[Path] = (), strict: bool = True) -> Iterator[KubeApi]:
    """Run a `KubeApi` on 127.0.0.1 (free port) in a thread with its own event loop.

    A thread of its own, as a real API server is a process of its own: the sync
    `kubernetes` client and kubectl can be called from async tests without deadlock, and
    kopf's shutdown (which waits for every task created after it started) never waits for
    the server's connections. With ``strict``, an unexpected exception inside the
    emulator (a bug, not an API error) fails the test at teardown.
    """
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        async with KubeApi(strict=strict) as api, kmock.Server(api):
            api._loop = asyncio.get_running_loop()
            box.update(api=api, stop=stop, loop=api._loop)
            started.set()
            await stop.wait()
            api.cut_watches()  # let the server shut down without waiting for streams

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:
            box["error"] = e
        finally:
            started.set()

    thread = threading.Thread(target=run, name="kube-api", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if "api" not in box:
        raise RuntimeError("the Kubernetes API emulator did not start") from box.get("error")
    api: KubeApi = box["api"]
    try:
        api.install_crds(crds)
        yield api
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=30)
        if "error" in box:
            raise box["error"]
