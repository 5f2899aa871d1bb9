"""One McpServer, planned: its conditions, status and objects, from what was found.

Pure: the operator passes what it read (the server, its namespace's data
sources and Secret key names, name conflicts, the live Deployment) and applies
the plan; `mcpgate render` passes what the files hold and prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpgate.api import McpServer
from mcpgate.api.conditions import WARNING_REASONS, ConditionType, EventReason, Reason
from mcpgate.api.mcpserver import ServiceSettings
from mcpgate.gateway.config import GatewayConfig
from mcpgate.render.admission import inadmissible
from mcpgate.render.conditions import (
    Cond,
    accepted,
    available,
    data_source_conditions,
    passthrough,
    ready,
    resolved_refs,
)
from mcpgate.render.objects import OversizedConfig, render_objects, server_url
from mcpgate.render.refs import (
    AMBIENT_AWS_NOT_ALLOWED,
    Namespace,
    data_source_problems,
    key_secret_problem,
    server_ref_problems,
    weak_key_notice,
)
from mcpgate.render.settings import RenderSettings

__all__ = ["ServerPlan", "plan_data_source", "plan_invalid_server", "plan_server"]


@dataclass
class ServerPlan:
    """What the operator should make true for one server."""

    conditions: list[Cond]
    # Objects to create or update; empty while Accepted or ResolvedRefs is False
    # (pods would only wait for what is missing): nothing is created or changed then.
    objects: list[dict[str, Any]] = field(default_factory=list)
    # Optional objects (HPA, PDB) that must not exist: (kind, name).
    absent: list[tuple[str, str]] = field(default_factory=list)
    config_json: str | None = None  # the ConfigMap's config.json
    status: dict[str, Any] = field(default_factory=dict)
    # Warning Events owed besides the warning conditions: (reason, message).
    notices: list[tuple[str, str]] = field(default_factory=list)

    @property
    def config(self) -> GatewayConfig | None:
        """The gateway configuration, read from its text as the gateway reads it."""
        if self.config_json is None:
            return None
        return GatewayConfig.model_validate_json(self.config_json)

    @property
    def warnings(self) -> list[Cond]:
        """Conditions that deserve a Warning Event."""
        return [c for c in self.conditions if not c.ok and c.reason in WARNING_REASONS]

    @property
    def ready(self) -> bool:
        return next(c for c in self.conditions if c.type == ConditionType.READY).ok

    def apply_failed(self, reason: str) -> ServerPlan:
        """This plan after the API server refused one of its writes: Ready False
        `ApplyFailed` quoting the refusal, unless Accepted or ResolvedRefs already say
        why (then nothing was written). Ahead of Available, which a refused write leaves
        meaningless (a Deployment never created is not "pods not ready")."""
        by_type = {c.type: c for c in self.conditions}
        if not (by_type[ConditionType.ACCEPTED].ok and by_type[ConditionType.RESOLVED_REFS].ok):
            return self
        failed = Cond(ConditionType.READY, "False", Reason.APPLY_FAILED, reason)
        conditions = [failed if c.type == ConditionType.READY else c for c in self.conditions]
        return ServerPlan(
            conditions=conditions,
            objects=self.objects,
            absent=self.absent,
            config_json=self.config_json,
            status={**self.status, "conditions": conditions},
            notices=self.notices,
        )


def _invalid_sources(
    server: McpServer, namespace: Namespace, settings: RenderSettings
) -> str | None:
    """What makes the server unusable through its data sources: an invalid one, ambient AWS
    credentials that are not allowed, or a tool header that the API key owns."""
    problems = []
    for index, tool in enumerate(server.spec.tools):
        source = namespace.data_sources.get(tool.data_source)
        key = source.spec.auth.api_key if source is not None else None
        if key is not None and key.in_ == "Header":
            clash = [h for h in tool.request.headers if h.lower() == key.name.lower()]
            if clash:
                problems.append(
                    f"spec.tools[{index}].request.headers: header {clash[0]!r} is reserved:"
                    f" HttpApiDataSource {tool.data_source} sends its API key in it"
                )
    for name in server.spec.data_source_names():
        if name in namespace.invalid_data_sources:
            problems.append(
                f"HttpApiDataSource {name} is invalid: {namespace.invalid_data_sources[name]}"
            )
        source = namespace.data_sources.get(name)
        aws = source.spec.auth.aws_sig_v4 if source is not None else None
        if (
            aws is not None
            and aws.access_key_id_secret_ref is None
            and (not settings.allow_ambient_aws_credentials)
        ):
            problems.append(f"HttpApiDataSource {name}: {AMBIENT_AWS_NOT_ALLOWED}")
    return "; ".join(problems) or None


def _status(
    server: McpServer,
    settings: RenderSettings,
    deployment: dict[str, Any] | None,
    conditions: list[Cond],
) -> dict[str, Any]:
    ready_replicas = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    return {
        "url": server_url(server, settings),
        "tools": len(server.spec.tools),
        "readyReplicas": ready_replicas,
        "conditions": conditions,
    }


def plan_server(
    server: McpServer,
    namespace: Namespace,
    settings: RenderSettings,
    *,
    conflicts: list[str] | None = None,
    deployment: dict[str, Any] | None = None,
) -> ServerPlan:
    """The plan for a server whose spec passed the models' validation."""
    invalid = "; ".join(
        p for p in (_invalid_sources(server, namespace, settings), *inadmissible(server)) if p
    )
    accept = accepted((Reason.INVALID_SPEC, invalid) if invalid else None, conflicts or [])
    refs = resolved_refs(server_ref_problems(server, namespace))
    plan = ServerPlan(conditions=[])
    if accept.ok and refs.ok:
        try:
            plan.config_json, plan.objects, plan.absent = render_objects(
                server, namespace.data_sources, settings
            )
        except OversizedConfig as err:  # nothing is written: the ConfigMap would be refused
            accept = accepted((Reason.CONFIG_TOO_LARGE, str(err)), [])
    conditions = [accept, refs, available(server, deployment)]
    conditions.insert(0, ready(conditions))
    flag = passthrough(server, namespace, key_secret_problem(server, namespace))
    if flag is not None:
        conditions.append(flag)
    plan.conditions = conditions
    plan.status = _status(server, settings, deployment, conditions)
    weak = weak_key_notice(server, namespace)
    if weak is not None:
        plan.notices.append((EventReason.WEAK_API_KEY, weak))
    return plan


def _tools_and_port(spec: Any) -> tuple[int, int]:
    spec = spec if isinstance(spec, dict) else {}
    tools = spec.get("tools")
    service = spec.get("service")
    port = service.get("port") if isinstance(service, dict) else None
    if not (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535):
        port = ServiceSettings().port
    return (len(tools) if isinstance(tools, list) else 0), port


def plan_invalid_server(
    server_name: str,
    namespace: str,
    reason: str,
    message: str,
    *,
    settings: RenderSettings,
    spec: Any = None,
) -> ServerPlan:
    """The plan for a server whose spec the models refuse: report it, touch nothing. The
    raw `spec`, as far as it can be read, gives the status its tool count and URL port."""
    tools, port = _tools_and_port(spec)
    accept = Cond(ConditionType.ACCEPTED, "False", reason, message)
    refs = Cond(
        ConditionType.RESOLVED_REFS,
        "Unknown",
        Reason.NOT_CHECKED,
        "references are checked once the spec is valid",
    )
    avail = Cond(ConditionType.AVAILABLE, "Unknown", Reason.NOT_CHECKED, "the spec is not valid")
    conditions = [Cond(ConditionType.READY, "False", reason, message), accept, refs, avail]
    host = f"{server_name}.{namespace}.svc.{settings.cluster_domain}"
    return ServerPlan(
        conditions=conditions,
        status={
            "url": f"http://{host}:{port}/mcp",
            "tools": tools,
            "readyReplicas": 0,
            "conditions": conditions,
        },
    )


def plan_data_source(name: str, namespace: Namespace, settings: RenderSettings) -> list[Cond]:
    """The conditions of one HttpApiDataSource of `namespace` (valid or not)."""
    source = namespace.data_sources.get(name)
    problems = data_source_problems(source, namespace) if source is not None else []
    return data_source_conditions(
        source,
        namespace.invalid_data_sources.get(name),
        problems,
        allow_ambient_aws=settings.allow_ambient_aws_credentials,
    )
