"""Status conditions, as pure functions of what the operator found.

Conditions follow Kubernetes' conventions: `lastTransitionTime` changes only
when `status` changes, each carries the generation it was computed from, and
Ready summarises the first of Accepted, ResolvedRefs and Available that is
False. Messages name objects, fields and keys, never a Secret value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.conditions import ConditionType, Reason
from mcpgate.render.refs import AMBIENT_AWS_NOT_ALLOWED, Namespace, RefProblem

__all__ = [
    "Cond",
    "accepted",
    "available",
    "data_source_conditions",
    "merge_conditions",
    "passthrough",
    "ready",
    "resolved_refs",
    "wanted_replicas",
]

_MAX_MESSAGE = 32_000  # the CRD allows 32768: lists of every offender fit


@dataclass(frozen=True)
class Cond:
    """A condition before it is stamped with times and generations."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"


def _message(parts: Iterable[str]) -> str:
    text = "; ".join(parts)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def accepted(invalid: tuple[str, str] | None, conflicts: Sequence[str]) -> Cond:
    """Accepted: the spec is valid and every name the server takes is free."""
    if invalid is not None:
        return Cond(ConditionType.ACCEPTED, "False", invalid[0], invalid[1])
    if conflicts:
        return Cond(
            ConditionType.ACCEPTED,
            "False",
            Reason.NAME_CONFLICT,
            _message(conflicts) + ": these objects exist and are not owned by this McpServer;"
            " rename the McpServer or remove them",
        )
    return Cond(ConditionType.ACCEPTED, "True", Reason.ACCEPTED, "the spec is valid")


def resolved_refs(problems: Sequence[RefProblem]) -> Cond:
    """ResolvedRefs: every data source, Secret and key exists (reason of the first miss)."""
    if problems:
        return Cond(
            ConditionType.RESOLVED_REFS,
            "False",
            problems[0].reason,
            _message(p.message for p in problems),
        )
    return Cond(
        ConditionType.RESOLVED_REFS, "True", Reason.RESOLVED_REFS, "every reference resolves"
    )


def wanted_replicas(server: McpServer, deployment: dict[str, Any] | None) -> int:
    """The replicas the Deployment should run: the HPA's choice under autoscaling."""
    if server.spec.autoscaling is not None and deployment is not None:
        replicas = deployment.get("spec", {}).get("replicas")
        if isinstance(replicas, int):
            return replicas
    return server.spec.wanted_replicas


def available(server: McpServer, deployment: dict[str, Any] | None) -> Cond:
    """Available: the Deployment has caught up with its spec and enough pods serve."""
    if deployment is None:
        return Cond(
            ConditionType.AVAILABLE,
            "False",
            Reason.PODS_NOT_READY,
            "no gateway Deployment yet (it is created once Accepted and ResolvedRefs are True)",
        )
    generation = deployment.get("metadata", {}).get("generation")
    status = deployment.get("status") or {}
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return Cond(
            ConditionType.AVAILABLE,
            "False",
            Reason.PODS_NOT_READY,
            f"the Deployment's rollout of generation {generation} has not been observed yet",
        )
    wanted = wanted_replicas(server, deployment)
    updated = int(status.get("updatedReplicas") or 0)
    ready_now = int(status.get("availableReplicas") or 0)
    if updated < wanted or ready_now < wanted:
        return Cond(
            ConditionType.AVAILABLE,
            "False",
            Reason.PODS_NOT_READY,
            f"{min(updated, ready_now)} of {wanted} gateway pods are updated and available",
        )
    total = int(status.get("replicas") or 0)
    if total > updated:  # old pods still serve: the available ones are not all updated
        return Cond(
            ConditionType.AVAILABLE,
            "False",
            Reason.PODS_NOT_READY,
            f"the rollout is in progress: {total - updated} old gateway pods remain",
        )
    return Cond(
        ConditionType.AVAILABLE,
        "True",
        Reason.PODS_READY,
        f"{wanted} of {wanted} gateway pods available",
    )


def ready(conditions: Sequence[Cond]) -> Cond:
    """Ready: the first of Accepted, ResolvedRefs and Available that is False."""
    by_type = {c.type: c for c in conditions}
    for kind in (ConditionType.ACCEPTED, ConditionType.RESOLVED_REFS, ConditionType.AVAILABLE):
        cond = by_type.get(kind)
        if cond is not None and not cond.ok:
            return Cond(ConditionType.READY, "False", cond.reason, cond.message)
    return Cond(ConditionType.READY, "True", Reason.READY, "the MCP endpoint is serving")


def passthrough(
    server: McpServer, namespace: Namespace, key_problem: RefProblem | None
) -> Cond | None:
    """PassthroughConfigured, in BearerPassthrough mode only: whether the caller's token
    reaches the data sources (warnings: they leave Ready alone)."""
    if server.spec.authorization.type != "BearerPassthrough":
        return None
    if key_problem is not None:  # no Secret, or no value in it: no key is accepted
        return Cond(
            ConditionType.PASSTHROUGH_CONFIGURED,
            "False",
            Reason.API_KEYS_MISSING,
            key_problem.message,
        )
    with_auth, insecure = [], []
    for name in server.spec.data_source_names():
        source = namespace.data_sources.get(name)
        if source is None:
            continue
        if source.spec.auth.type != "None":
            with_auth.append(f"{name} (auth {source.spec.auth.type})")
        elif source.spec.base_url.lower().startswith("http://"):
            insecure.append(name)
    if with_auth:
        return Cond(
            ConditionType.PASSTHROUGH_CONFIGURED,
            "False",
            Reason.DATA_SOURCE_HAS_AUTH,
            _message(
                [
                    f"the caller's Authorization is not forwarded to data sources with their"
                    f" own auth: {', '.join(with_auth)}"
                ]
            ),
        )
    if insecure:
        return Cond(
            ConditionType.PASSTHROUGH_CONFIGURED,
            "False",
            Reason.INSECURE_DOWNSTREAM,
            _message(
                [
                    f"the caller's Authorization is forwarded over plain http to:"
                    f" {', '.join(insecure)}; use https"
                ]
            ),
        )
    return Cond(
        ConditionType.PASSTHROUGH_CONFIGURED,
        "True",
        Reason.CONFIGURED,
        "the caller's Authorization is forwarded to every data source",
    )


def data_source_conditions(
    source: HttpApiDataSource | None,
    invalid: str | None,
    problems: Sequence[RefProblem],
    *,
    allow_ambient_aws: bool,
) -> list[Cond]:
    """Ready and ResolvedRefs of one HttpApiDataSource."""
    if invalid is None and source is not None:
        aws = source.spec.auth.aws_sig_v4
        if aws is not None and aws.access_key_id_secret_ref is None and not allow_ambient_aws:
            invalid = AMBIENT_AWS_NOT_ALLOWED
    refs = resolved_refs(problems)
    if invalid is not None:
        return [Cond(ConditionType.READY, "False", Reason.INVALID_SPEC, invalid), refs]
    if not refs.ok:
        return [Cond(ConditionType.READY, "False", refs.reason, refs.message), refs]
    return [Cond(ConditionType.READY, "True", Reason.READY, "the data source is usable"), refs]


def merge_conditions(
    previous: Sequence[dict[str, Any]], current: Sequence[Cond], generation: int | None, now: str
) -> list[dict[str, Any]]:
    """The conditions to store: `lastTransitionTime` kept from `previous` while a condition's
    status is unchanged; conditions no longer computed are dropped."""
    before = {c.get("type"): c for c in previous}
    out = []
    for cond in current:
        old = before.get(cond.type)
        since = now
        if old is not None and old.get("status") == cond.status and old.get("lastTransitionTime"):
            since = old["lastTransitionTime"]
        entry: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "lastTransitionTime": since,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        out.append(entry)
    return out
