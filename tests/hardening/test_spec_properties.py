"""Hypothesis-generated specs, valid and invalid, through the operator's whole decision
path: the models, `plan_server` / `plan_invalid_server`, the real `Reconciler` (over an
in-memory API), and the gateway that would load what the operator renders.

Specs come two ways: mutations of the examples' manifests (replace, delete, add,
duplicate fields; template-ish and hostile strings), and tools built from parts
(parameters of every type, templates that use them). The API server's own checks run
first (the CRD schema with its CEL rules, `support.kube_schema`): what it would refuse
never reaches the operator, so the reconcile is only asked about what it accepts.

Properties: nothing but a ValidationError comes out of the models; the reconcile
never raises; an invalid spec ends as Accepted=False with a known reason and a
message, and creates nothing; an accepted spec renders a configuration that the
gateway starts from (two kinds of spec once broke that: see the last two tests).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hardening.canaries import SINK
from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.crd import KINDS, crd
from mcpgate.api.errors import error_lines, invalid_reason
from mcpgate.controller.kube import Conflict
from mcpgate.controller.reconcile import Reconciler, State
from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.server import build_app
from mcpgate.manifests import read_documents
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import plan_invalid_server, plan_server
from mcpgate.render.settings import RenderSettings

from support.kube_schema import CrdValidator
from support.paths import EXAMPLE_DIRS

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
RENDER = RenderSettings()
VALIDATORS = {kind.kind: CrdValidator(crd(kind)) for kind in KINDS}
NS = "props"
ACCEPTED_REASONS = {"InvalidSpec", "UnknownParameter", "DuplicateTool", "NameConflict"}


def _example_objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, SecretInfo]]:
    servers, sources, secrets = [], [], {}
    for folder in EXAMPLE_DIRS:
        for doc in read_documents([folder]):
            body = copy.deepcopy(doc.body)
            body.setdefault("metadata", {})["namespace"] = NS
            if body["kind"] == "McpServer":
                servers.append(body)
            elif body["kind"] == "HttpApiDataSource":
                sources.append(body)
            elif body["kind"] == "Secret":
                values = {k: v.encode() for k, v in (body.get("stringData") or {}).items()}
                name = body["metadata"]["name"]
                secrets[name] = SecretInfo.from_values(name, values, body.get("type", "Opaque"))
    return servers, sources, secrets


SERVERS, SOURCES, SECRETS = _example_objects()
SOURCE_NAMES = sorted({s["metadata"]["name"] for s in SOURCES})

# --- strategies -----------------------------------------------------------------------------

TEMPLATE_STRINGS = [
    "/x/:id",
    "/:typo",
    ":id",
    ":limit",
    "/items/:id/:id",
    "/items:batchGet",
    "type:invoice",
    "",
    "::",
    ":a:b",
    "GET",
    "POST",
    "PATCH",
    "DELETE",
    "String",
    "Integer",
    "Number",
    "Boolean",
    "Array",
    "Object",
    "None",
    "ApiKey",
    "BearerPassthrough",
    "X-Trace",
    "Authorization",
    "x-api-key",
    "Content-Type",
    "https://console.example.com",
    "a\tb",
    "José",
    "1",
    "true",
]
FIELD_NAMES = [
    "name",
    "type",
    "required",
    "enum",
    "default",
    "items",
    "path",
    "query",
    "headers",
    "body",
    "method",
    "dataSource",
    "parameters",
    "request",
    "annotations",
    "description",
    "replicas",
    "autoscaling",
    "resources",
    "authorization",
    "apiKeySecretRef",
    "allowedOrigins",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=12)
    | st.sampled_from(TEMPLATE_STRINGS)
    | st.sampled_from(SOURCE_NAMES)
    | st.sampled_from(["missing-secret", "token", "password", *sorted(SECRETS)])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) under `node`: where a mutation can happen."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _slots(value, out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append((node, index))
            _slots(value, out)
    return out


@st.composite
def mutated(draw: st.DrawFn, documents: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(doc["spec"], [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "duplicate"]))
        if action == "replace":
            container[key] = draw(VALUES)
        elif action == "delete":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(st.sampled_from(FIELD_NAMES))] = draw(VALUES)
        elif action == "duplicate" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    return doc


TYPES = ["String", "Number", "Integer", "Boolean", "Array", "Object"]
ITEM_TYPES = ["String", "Number", "Integer", "Boolean", "Object"]
_JSON_OF = {
    "String": st.text(max_size=8),
    "Number": st.integers(-100, 100) | st.floats(-1e6, 1e6, allow_nan=False),
    "Integer": st.integers(-100, 100),
    "Boolean": st.booleans(),
    "Object": st.dictionaries(st.text(max_size=4), SCALARS, max_size=3),
}
_JSON_OF["Array"] = st.lists(_JSON_OF["Integer"], max_size=3)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)


@st.composite
def built_tool(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """A tool made of parts, valid as often as not: every parameter type, used anywhere."""
    names = draw(
        st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True), max_size=4, unique=True)
    )
    params = []
    for name in names:
        type_ = draw(st.sampled_from(TYPES))
        param: dict[str, Any] = {"name": name, "type": type_, "required": draw(st.booleans())}
        values = _JSON_OF[type_]
        if type_ == "Array":
            item = draw(st.sampled_from(ITEM_TYPES))
            param["items"] = {"type": item}
            values = st.lists(_JSON_OF[item], max_size=3)
        if draw(st.booleans()):
            param["enum"] = draw(st.lists(values, min_size=1, max_size=3))
            if draw(st.booleans()):
                param["default"] = draw(st.sampled_from(param["enum"]))
        elif draw(st.booleans()):
            param["default"] = draw(values)
        params.append(param)
    required = [p["name"] for p in params if p["required"]]
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    segments = draw(
        st.lists(
            st.sampled_from(["items", "v1", "a:b", "x-:" + (required[0] if required else "q")])
            | st.sampled_from([f":{n}" for n in required] or ["static"])
            | st.sampled_from([f":{n}" for n in names] + [":typo", ".", "..", "%2F"]),
            max_size=4,
        )
    )
    placeholder = st.sampled_from([f":{n}" for n in names] or ["plain"])
    request: dict[str, Any] = {
        "method": method,
        "path": "/" + "/".join(segments),
        "query": draw(
            st.dictionaries(
                st.from_regex(r"[a-z]{1,5}", fullmatch=True), placeholder | HEADER_TEXT, max_size=3
            )
        ),
        "headers": draw(
            st.dictionaries(
                st.from_regex(r"X-[A-Za-z]{1,6}", fullmatch=True)
                | st.sampled_from(["Authorization", "X-API-Key", "Content-Type", "X-Amz-Target"]),
                placeholder | st.tuples(HEADER_TEXT, placeholder).map("".join),
                max_size=3,
            )
        ),
    }
    if method in ("POST", "PUT", "PATCH") and draw(st.booleans()):
        request["body"] = draw(
            st.dictionaries(st.text(max_size=5), placeholder | SCALARS, max_size=4)
        )
    return {
        "name": f"t{index}",
        "dataSource": draw(st.sampled_from(SOURCE_NAMES)),
        "parameters": params,
        "request": request,
    }


@st.composite
def built_server(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    tools = [draw(built_tool(i)) for i in range(count)]
    return {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": "built", "namespace": NS},
        "spec": {"tools": tools},
    }


SPECS = mutated(SERVERS) | built_server()

# --- the reconcile, over an in-memory API ----------------------------------------------------


class MemoryKube:
    """The KubeClient methods the Reconciler uses, over a dict; the first write of a given
    kind may answer 409 (`conflict_on`)."""

    def __init__(self, conflict_on: str | None = None) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self._conflict_on = conflict_on

    def _write(self, verb: str, kind: str, name: str) -> None:
        self.writes.append((verb, kind, name))
        if kind == self._conflict_on:
            self._conflict_on = None
            raise Conflict(409, "Conflict", f"{verb} {kind} {name}")

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self._write("create", obj["kind"], meta["name"])
        stored = copy.deepcopy(obj)
        stored["metadata"].setdefault("generation", 1)
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = stored
        return copy.deepcopy(stored)

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self._write("patch" + (f"/{subresource}" if subresource else ""), kind, name)
        current = self.objects.setdefault((kind, namespace, name), {"metadata": {"name": name}})
        current.update(copy.deepcopy(patch))
        return copy.deepcopy(current)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self._write("delete", kind, name)
        self.objects.pop((kind, namespace, name), None)


def _state(server: dict[str, Any], sources: list[dict[str, Any]]) -> State:
    name = server["metadata"]["name"]
    tools = (server.get("spec") or {}).get("tools") or []
    users = {(NS, t.get("dataSource")): [name] for t in tools if isinstance(t, dict)}
    return State(
        servers={(NS, name): [server]},
        data_sources={(NS, s["metadata"]["name"]): [s] for s in sources},
        secrets={(NS, n): [info] for n, info in SECRETS.items()},
        source_users=users,
    )


def _reconcile(
    body: dict[str, Any], sources: list[dict[str, Any]], conflict_on: str | None = None
) -> MemoryKube:
    kube = MemoryKube(conflict_on)
    warnings: list[tuple[str, str]] = []
    reconciler = Reconciler(
        kube, RENDER, _state(body, sources), lambda _b, r, m: warnings.append((r, m))
    )  # type: ignore[arg-type]
    name = body["metadata"]["name"]

    async def run() -> None:
        for source in sources:
            await reconciler.data_source(NS, source["metadata"]["name"])
        try:
            await reconciler.server(NS, name)
        except Conflict:
            await reconciler.server(NS, name)  # what kopf's retry does

    asyncio.run(run())
    for reason, message in warnings:
        SINK.add("event: spec properties", f"{reason} {message}")
    return kube


def _namespace() -> Namespace:
    space = Namespace(NS, secrets=dict(SECRETS))
    for body in SOURCES:
        space.data_sources[body["metadata"]["name"]] = HttpApiDataSource.model_validate(body)
    return space


def _server_body(doc: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(doc)
    body["metadata"] |= {"namespace": NS, "uid": "uid-" + body["metadata"]["name"], "generation": 1}
    return body


# --- the properties --------------------------------------------------------------------------


@SETTINGS
@given(doc=SPECS)
def test_models_raise_nothing_but_validation_errors(doc: dict[str, Any]) -> None:
    """Whatever the document (even what the API server would refuse: `mcpgate render`
    reads files), the models either accept it or say why, field by field."""
    try:
        McpServer.model_validate(doc)
    except ValidationError as err:
        lines, reason = error_lines(err), invalid_reason(err)
    else:
        return
    assert lines
    assert all(": " in line for line in lines)
    assert reason in ACCEPTED_REASONS


@SETTINGS
@given(doc=SPECS, conflict=st.sampled_from([None, "ConfigMap", "Deployment", "McpServer"]))
def test_the_reconcile_never_raises_and_ends_with_a_reason(
    doc: dict[str, Any], conflict: str | None
) -> None:
    if VALIDATORS["McpServer"].errors(doc):
        event("refused by the API server")
        return  # the API server refuses it: the operator never sees it
    body = _server_body(VALIDATORS["McpServer"].defaulted(doc))
    kube = _reconcile(body, SOURCES, conflict)
    status = kube.objects[("McpServer", NS, body["metadata"]["name"])]["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    note(str(conditions))
    assert set(conditions) >= {"Ready", "Accepted", "ResolvedRefs", "Available"}
    accepted, refs = conditions["Accepted"], conditions["ResolvedRefs"]
    created = {kind for verb, kind, _ in kube.writes if verb == "create"}
    event(f"Accepted={accepted['status']} ResolvedRefs={refs['status']}")
    if accepted["status"] != "True":
        assert accepted["reason"] in ACCEPTED_REASONS
        assert accepted["message"]
        assert conditions["Ready"]["reason"] == accepted["reason"]
        assert created == set()  # nothing is made of an invalid spec
    elif refs["status"] != "True":
        assert refs["reason"]
        assert refs["message"]
        assert created == set()
    else:
        assert created >= {"ConfigMap", "Deployment", "Service"}
    SINK.add("status: spec properties", str(status))


@SETTINGS
@given(doc=SPECS)
def test_what_the_operator_accepts_the_gateway_starts_from(doc: dict[str, Any]) -> None:
    if VALIDATORS["McpServer"].errors(doc):
        return
    try:
        server = McpServer.model_validate(VALIDATORS["McpServer"].defaulted(doc))
    except ValidationError as err:
        plan = plan_invalid_server(
            "x", NS, invalid_reason(err), "; ".join(error_lines(err)), settings=RENDER
        )
        assert not plan.ready
        assert plan.objects == []
        return
    plan = plan_server(server, _namespace(), RENDER)
    if plan.config is None:
        event("not rendered")
        return
    event("rendered")
    config = GatewayConfig.model_validate_json(plan.config.to_json())  # the ConfigMap's way
    build_app(config)  # the gateway pods would crash-loop if this raised


@SETTINGS
@given(doc=mutated(SOURCES))
def test_data_source_mutations_end_in_conditions(doc: dict[str, Any]) -> None:
    if VALIDATORS["HttpApiDataSource"].errors(doc):
        event("refused by the API server")
        return
    body = VALIDATORS["HttpApiDataSource"].defaulted(doc)
    body["metadata"] |= {"uid": "ds-uid", "generation": 1}
    server = _server_body(next(s for s in SERVERS if s["metadata"]["name"] == "quickstart"))
    server["spec"]["tools"] = [
        dict(t, dataSource=body["metadata"]["name"]) for t in server["spec"]["tools"]
    ]
    others = [s for s in SOURCES if s["metadata"]["name"] != body["metadata"]["name"]]
    kube = _reconcile(server, [*others, body])
    status = kube.objects[("HttpApiDataSource", NS, body["metadata"]["name"])]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    event(f"data source Ready={ready['status']} ({ready['reason']})")
    assert ready["reason"]
    assert ready["message"]
    assert ("McpServer", NS, server["metadata"]["name"]) in kube.objects


# --- accepted specs the gateway refuses to start from -----------------------------------------


def _accepted_then_started(
    tool: dict[str, Any], source_headers: dict[str, str] | None = None
) -> None:
    """Either the models refuse the spec (Accepted=False: nothing is deployed) or, when the
    operator accepts it and renders a Deployment, the gateway starts from it."""
    try:
        server = McpServer.model_validate(
            {"metadata": {"name": "s", "namespace": NS}, "spec": {"tools": [tool]}}
        )
        source = HttpApiDataSource.model_validate(
            {
                "metadata": {"name": "ds", "namespace": NS},
                "spec": {"baseUrl": "https://api.example.com", "headers": source_headers or {}},
            }
        )
    except ValidationError as err:
        reason = invalid_reason(err)
    else:
        reason = None
    if reason is not None:
        assert reason == "InvalidSpec"
        return
    plan = plan_server(server, Namespace(NS, data_sources={"ds": source}), RENDER)
    accepted = next(c for c in plan.conditions if c.type == "Accepted")
    if not accepted.ok:
        return
    assert plan.config is not None
    build_app(plan.config)  # pods would crash-loop if this raised


@pytest.mark.parametrize("where", ["tool", "data-source"])
@pytest.mark.parametrize("char", ["\x01", "\x0b", "\x1b", "\x7f"])
def test_a_header_the_operator_accepts_is_one_the_gateway_starts_with(
    where: str, char: str
) -> None:
    tool: dict[str, Any] = {"name": "t", "dataSource": "ds", "request": {"path": "/x"}}
    if where == "tool":
        tool["request"]["headers"] = {"X-A": f"a{char}b"}
        _accepted_then_started(tool)
    else:
        _accepted_then_started(tool, {"X-B": f"a{char}b"})


@pytest.mark.parametrize(
    ("type_", "enum", "default"),
    [
        ("Object", [{"a": 1}], {"a": True}),
        ("Object", [{"a": [0]}], {"a": [False]}),
        ("Array", [[1, 2]], [True, 2]),
        ("Number", [1, 2], 1.0),
    ],
)
def test_an_enum_default_the_operator_accepts_is_one_the_gateway_starts_with(
    type_: str, enum: list[Any], default: Any
) -> None:
    param: dict[str, Any] = {"name": "o", "type": type_, "enum": enum, "default": default}
    if type_ == "Array":
        param["items"] = {"type": "Object" if isinstance(enum[0][0], dict) else "Number"}
    tool = {"name": "t", "dataSource": "ds", "parameters": [param], "request": {"path": "/x"}}
    _accepted_then_started(tool)
