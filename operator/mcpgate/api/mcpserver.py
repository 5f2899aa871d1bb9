"""`McpServer`: one MCP endpoint, its inbound authorization and its tools."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mcpgate.api.common import (
    API_VERSION,
    DNS1035_LABEL,
    Condition,
    DnsSubdomain,
    FreeJson,
    KubeModel,
    LabelMap,
    ObjectMeta,
    Quantity,
    SecretRef,
    ShortString,
    cel,
    list_map,
)
from mcpgate.api.datasource import check_header_names

__all__ = [
    "MCPSERVER_ROOT_VALIDATIONS",
    "PLACEHOLDER",
    "Autoscaling",
    "McpServer",
    "McpServerSpec",
    "McpServerStatus",
    "Parameter",
    "ParameterType",
    "RequestTemplate",
    "ServerAuthorization",
    "Tool",
    "ToolAnnotations",
    "path_placeholders",
]

ParameterType = Literal["String", "Number", "Integer", "Boolean", "Array", "Object"]
ItemType = Literal["String", "Number", "Integer", "Boolean", "Object"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

# `:name` as a whole identifier: the name runs as far as identifier characters go.
PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE_SEGMENT = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")

_TEXT = Annotated[str, StringConstraints(max_length=4096)]
_TEMPLATE = Annotated[str, StringConstraints(max_length=4096)]


def path_placeholders(path: str, declared: set[str]) -> tuple[set[str], set[str]]:
    """The declared parameters a path uses, and the whole `/:word` segments naming none."""
    used = {m for m in PLACEHOLDER.findall(path) if m in declared}
    unknown = set()
    for segment in path.split("/"):
        whole = _WHOLE_SEGMENT.match(segment)
        if whole and whole.group(1) not in declared:
            unknown.add(whole.group(1))
    return used, unknown


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values, where (unlike Python's) `true` is not `1` — as the gateway
    compares arguments with `enum`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _matches_type(value: Any, type_: str) -> bool:
    match type_:
        case "String":
            return isinstance(value, str)
        case "Boolean":
            return isinstance(value, bool)
        case "Integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "Number":
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        case "Array":
            return isinstance(value, list)
        case "Object":
            return isinstance(value, dict)
    return False


class ParameterItems(KubeModel):
    """The element type of an Array parameter."""

    type: ItemType
    """String, Number, Integer, Boolean or Object."""


class Parameter(KubeModel):
    """One typed argument of a tool."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(self.type == 'Array') == has(self.items)",
                    "items is required for type Array, and allowed only there",
                )
            ]
        }
    )

    name: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ]
    """The argument name, used as `:name` in the request template."""
    type: ParameterType = "String"
    """String, Number, Integer, Boolean, Array or Object."""
    description: _TEXT = ""
    """What the argument means, for the model calling the tool."""
    required: bool = False
    """Whether the caller must give it. Path parameters must be required."""
    enum: Annotated[list[FreeJson], Field(max_length=100)] | None = None
    """The allowed values, if limited."""
    default: FreeJson = None
    """The value used when the argument is absent or null."""
    items: ParameterItems | None = None
    """Array only: the element type."""

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if (self.type == "Array") != (self.items is not None):
            raise ValueError(
                f"parameter {self.name!r}: items is required for type Array, and allowed only there"
            )
        for label, value in [("default", self.default), *(("enum", v) for v in self.enum or [])]:
            if value is not None and not self.accepts(value):
                raise ValueError(
                    f"parameter {self.name!r}: {label} value {value!r} is not of type {self.type}"
                )
        if (
            self.enum
            and self.default is not None
            and not any(json_equal(self.default, member) for member in self.enum)
        ):
            raise ValueError(f"parameter {self.name!r}: default {self.default!r} is not in enum")
        return self

    def accepts(self, value: Any) -> bool:
        """Whether `value` has this parameter's type (element types included)."""
        if not _matches_type(value, self.type):
            return False
        if self.type == "Array" and self.items is not None:
            return all(_matches_type(v, self.items.type) for v in value)
        return True


class RequestTemplate(KubeModel):
    """The HTTP request a tool call becomes; `:name` placeholders take argument values."""

    # No CEL rule for "body only with POST, PUT or PATCH": `body` is free JSON, which CEL
    # cannot name (a real API server refuses the CRD: "undefined field 'body'"). The
    # model checks it, and the operator reports InvalidSpec.

    method: HttpMethod = "GET"
    """GET, POST, PUT, PATCH or DELETE."""
    path: Annotated[
        str,
        StringConstraints(min_length=1, max_length=2048),
        Field(json_schema_extra={"pattern": r"^/[^?#\s]*$"}),
    ]
    """Appended to the data source's base URL path, e.g. /invoices/:id."""
    query: Annotated[dict[str, _TEMPLATE], Field(max_length=64)] = {}
    """Query parameters; an Array value repeats the key."""
    headers: Annotated[dict[str, _TEMPLATE], Field(max_length=64)] = {}
    """Request headers (no reserved header)."""
    body: FreeJson = None
    """A JSON template for POST, PUT and PATCH; a string that is exactly `:name` becomes the
    typed value."""

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        if any(c in path for c in "?#") or any(c.isspace() for c in path):
            raise ValueError("path must not hold ?, # or white space; use query for parameters")
        return path

    @model_validator(mode="after")
    def _body_and_headers(self) -> RequestTemplate:
        if self.body is not None and self.method not in ("POST", "PUT", "PATCH"):
            raise ValueError(
                f"body is only allowed with method POST, PUT or PATCH, not {self.method}"
            )
        try:
            check_header_names(self.headers)
        except ValueError as err:
            raise ValueError(f"headers: {err}") from None
        return self


class ToolAnnotations(KubeModel):
    """MCP tool annotations: hints for clients, not guarantees."""

    model_config = ConfigDict(extra="forbid")

    title: ShortString | None = None
    """A human-readable title; also the MCP Tool's top-level `title` when the tool sets none."""
    read_only_hint: bool | None = None
    """The tool does not change its environment (default: true for GET)."""
    destructive_hint: bool | None = None
    """The tool may destroy data (default: true for DELETE, false for POST, PUT and PATCH)."""
    idempotent_hint: bool | None = None
    """Repeating a call has no further effect (default: true for PUT and DELETE)."""
    open_world_hint: bool | None = None
    """The tool talks to an open world of external entities (default: true)."""


class Tool(KubeModel):
    """One MCP tool: typed parameters mapped onto an HTTP request to one data source."""

    name: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    ]
    """The tool name, unique in the server."""
    title: ShortString | None = None
    """An optional display name (the MCP Tool's `title`); else `annotations.title`."""
    description: _TEXT = ""
    """What the tool does, for the model choosing it."""
    data_source: DnsSubdomain
    """An HttpApiDataSource in the same namespace."""
    parameters: Annotated[
        list[Parameter], Field(max_length=64, json_schema_extra=list_map("name"))
    ] = []
    """The tool's arguments."""
    request: RequestTemplate
    """The HTTP request template."""
    annotations: ToolAnnotations | None = None
    """MCP tool annotations; defaults follow the method."""

    @model_validator(mode="after")
    def _parameters(self) -> Tool:
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool {self.name!r}: parameter names must be unique: {dupes}")
        by_name = {p.name: p for p in self.parameters}
        used, unknown = path_placeholders(self.request.path, set(by_name))
        if unknown:
            raise PydanticCustomError(
                "unknown_parameter",
                "tool '{tool}': request.path segment ':{names}' names no declared parameter;"
                " declare it under parameters or fix the typo",
                {"tool": self.name, "names": ", :".join(sorted(unknown))},
            )
        optional = sorted(n for n in used if not by_name[n].required)
        if optional:
            raise ValueError(
                f"tool {self.name!r}: path parameters must be required:"
                f" set required: true on {', '.join(optional)}"
            )
        return self


class ServerAuthorization(KubeModel):
    """Who may call the MCP endpoint."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(self.type == 'None') != has(self.apiKeySecretRef)",
                    "apiKeySecretRef is required for ApiKey and BearerPassthrough,"
                    " and allowed only there",
                )
            ]
        }
    )

    type: Literal["None", "ApiKey", "BearerPassthrough"] = "None"
    """None, ApiKey or BearerPassthrough."""
    api_key_secret_ref: SecretRef | None = None
    """A Secret whose every non-empty value is an accepted `x-api-key`."""

    @model_validator(mode="after")
    def _key_secret(self) -> ServerAuthorization:
        if self.type != "None" and self.api_key_secret_ref is None:
            raise ValueError(f"authorization.type is {self.type}: apiKeySecretRef is required")
        if self.type == "None" and self.api_key_secret_ref is not None:
            raise ValueError("authorization.type is None: remove apiKeySecretRef")
        return self


class Autoscaling(KubeModel):
    """A HorizontalPodAutoscaler for the gateway, on CPU."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.minReplicas <= self.maxReplicas",
                    "minReplicas must not exceed maxReplicas",
                )
            ]
        }
    )

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """The fewest gateway pods."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    """The most gateway pods."""
    target_cpu_utilization_percentage: Annotated[
        int, Field(ge=1, le=1000, alias="targetCPUUtilizationPercentage")
    ] = 80
    """The average CPU use, as a percentage of the request, that the HPA aims at."""

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class ResourceClaim(KubeModel):
    """A dynamic resource claim, as core/v1 ResourceClaim."""

    name: ShortString
    """The claim name in the pod spec."""
    request: ShortString | None = None
    """The request within the claim."""


_ResourceMap = Annotated[dict[str, Quantity], Field(max_length=16)]


class Resources(KubeModel):
    """Compute resources of the gateway container, as core/v1 ResourceRequirements."""

    limits: _ResourceMap | None = None
    """The most the container may use."""
    requests: _ResourceMap | None = None
    """What the scheduler reserves; autoscaling needs requests.cpu."""
    claims: Annotated[list[ResourceClaim], Field(max_length=16)] | None = None
    """Dynamic resource claims."""


class ServiceSettings(KubeModel):
    """The gateway's Service."""

    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """The Service port of the MCP endpoint."""


class Toleration(KubeModel):
    """As core/v1 Toleration."""

    key: ShortString | None = None
    """The taint key; empty with Exists matches every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: ShortString | None = None
    """The taint value for Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """The taint effect to match; empty matches all."""
    toleration_seconds: int | None = None
    """How long a NoExecute taint is tolerated."""


class LocalObjectReference(KubeModel):
    """A named object in the same namespace."""

    name: DnsSubdomain
    """The object's name."""


# Kubernetes-native structures passed through as they are; the API server checks
# them when the operator writes the Deployment.
_NativeObject = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class PodTemplateMetadata(KubeModel):
    """Labels and annotations added to the gateway pods."""

    labels: LabelMap = {}
    """Extra pod labels (the app.kubernetes.io labels are the operator's)."""
    annotations: LabelMap = {}
    """Extra pod annotations."""


class PodTemplateSpec(KubeModel):
    """Scheduling settings of the gateway pods."""

    node_selector: LabelMap = {}
    """Node labels the pods must land on."""
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = []
    """Taints the pods tolerate."""
    affinity: _NativeObject | None = None
    """A core/v1 Affinity."""
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=16)] = []
    """Secrets for pulling the gateway image."""
    priority_class_name: ShortString = ""
    """The pods' PriorityClass."""
    topology_spread_constraints: Annotated[list[_NativeObject], Field(max_length=16)] = []
    """core/v1 TopologySpreadConstraints."""


class PodTemplate(KubeModel):
    """Additions to the gateway's pod template."""

    metadata: PodTemplateMetadata | None = None
    """Pod labels and annotations."""
    spec: PodTemplateSpec | None = None
    """Pod scheduling settings."""


class McpServerSpec(KubeModel):
    """An MCP endpoint: who may call it and which tools it serves."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.autoscaling) && has(self.replicas))",
                    "set replicas or autoscaling, not both",
                ),
                cel(
                    "!has(self.autoscaling) || (has(self.resources) && has(self.resources.requests)"
                    " && 'cpu' in self.resources.requests)",
                    "autoscaling needs resources.requests.cpu",
                ),
            ]
        }
    )

    # The default names its type: a real API server checks a default against the CEL
    # rules of its schema without filling in nested defaults first.
    authorization: ServerAuthorization = Field(
        default_factory=ServerAuthorization, json_schema_extra={"default": {"type": "None"}}
    )
    """Inbound authorization of the MCP endpoint."""
    allowed_origins: Annotated[
        list[
            Annotated[
                str,
                StringConstraints(
                    max_length=512, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s]+$"
                ),
            ]
        ],
        Field(max_length=64),
    ] = []
    """Browser origins (scheme://host[:port]) allowed to call the endpoint."""
    tools: Annotated[list[Tool], Field(max_length=200, json_schema_extra=list_map("name"))] = []
    """The tools, each mapped onto one data source."""
    replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    """Gateway pods when autoscaling is not set (default 1)."""
    autoscaling: Autoscaling | None = None
    """Scale the gateway on CPU instead of a fixed replica count."""
    resources: Resources | None = None
    """Compute resources of the gateway container."""
    service: ServiceSettings = Field(
        default_factory=ServiceSettings, json_schema_extra={"default": {}}
    )
    """The gateway's Service."""
    service_account_name: DnsSubdomain | None = None
    """The pods' ServiceAccount (IRSA and the like). The Kubernetes API token is never
    mounted (the gateway never talks to the API); identity webhooks project their own."""
    pod_template: PodTemplate | None = None
    """Additions to the gateway's pod template."""

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool]) -> list[Tool]:
        names = [t.name for t in tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PydanticCustomError(
                "duplicate_tool",
                "tool names must be unique in the server; repeated: {names}",
                {"names": ", ".join(dupes)},
            )
        return tools

    @model_validator(mode="after")
    def _scaling(self) -> McpServerSpec:
        if self.autoscaling is not None:
            if self.replicas is not None:
                raise ValueError("set replicas or autoscaling, not both")
            requests = self.resources.requests if self.resources else None
            if not requests or "cpu" not in requests:
                raise ValueError(
                    "autoscaling needs resources.requests.cpu (the HPA scales on CPU use"
                    " relative to the request)"
                )
        return self

    @property
    def wanted_replicas(self) -> int:
        """The replica count the Deployment starts with."""
        if self.autoscaling is not None:
            return self.autoscaling.min_replicas
        return 1 if self.replicas is None else self.replicas

    def data_source_names(self) -> list[str]:
        """The data sources the tools use, each once, in order of first use."""
        return list(dict.fromkeys(t.data_source for t in self.tools))


class McpServerStatus(KubeModel):
    """What the operator last saw of this server."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = None
    """The `metadata.generation` the status was computed from."""
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    """The in-cluster URL of the MCP endpoint."""
    tools: int | None = None
    """How many tools the server serves."""
    ready_replicas: int | None = None
    """Gateway pods that are ready."""
    conditions: Annotated[
        list[Condition], Field(max_length=16, json_schema_extra=list_map("type"))
    ] = []
    """Ready, Accepted, ResolvedRefs, Available and (BearerPassthrough) PassthroughConfigured."""


# Rules on the whole object (the API server lets CEL see metadata.name at the root).
MCPSERVER_ROOT_VALIDATIONS = [
    cel(
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
        " && size(self.metadata.name) <= 63",
        "metadata.name must be a DNS-1035 label of at most 63 characters"
        " (lowercase letters, digits and '-', starting with a letter): it names a Service",
    )
]


class McpServer(KubeModel):
    """One MCP endpoint: its inbound authorization and its tools."""

    api_version: Literal["mcpgate.io/v1alpha1"] = API_VERSION
    kind: Literal["McpServer"] = "McpServer"
    metadata: ObjectMeta
    spec: McpServerSpec
    status: McpServerStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name(cls, metadata: ObjectMeta) -> ObjectMeta:
        if len(metadata.name) > 63 or not re.fullmatch(DNS1035_LABEL, metadata.name):
            raise ValueError(
                f"name {metadata.name!r} must be a DNS-1035 label of at most 63 characters"
                " (lowercase letters, digits and '-', starting with a letter): it names a Service"
            )
        return metadata
