"""Status conditions of McpServer and HttpApiDataSource, reason by reason, as API.md's
"Conditions" table gives them, and how they are stored (merge_conditions)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from mcpgate.api import Condition, HttpApiDataSource, McpServer
from mcpgate.api.errors import error_lines, invalid_reason
from mcpgate.render.conditions import (
    Cond,
    available,
    data_source_conditions,
    merge_conditions,
    passthrough,
    ready,
    resolved_refs,
    wanted_replicas,
)
from mcpgate.render.refs import (
    Namespace,
    RefProblem,
    SecretInfo,
    data_source_problems,
    key_secret_problem,
    server_ref_problems,
)
from mcpgate.render.server import ServerPlan, plan_invalid_server, plan_server
from mcpgate.render.settings import RenderSettings

from support import objects

NS = "team-a"
SETTINGS = RenderSettings()
Body = dict[str, Any]

# Canary Secret values: none may appear in any message, status or object.
CANARIES = {
    "token": b"CANARY-bearer-7c1e9f\n",
    "password": b"CANARY-password-2b8d",
    "client-secret": b"CANARY-client-secret-55aa",
    "alice": b"CANARY-alice-key-91f0",
    "bob": b"CANARY-bob-key-0e44",
}


def canary_texts() -> list[str]:
    return [v.decode().strip() for v in CANARIES.values()]


# --------------------------------------------------------------------------- builders


def source(
    name: str,
    auth: Body | None = None,
    *,
    base_url: str | None = None,
    tls: Body | None = None,
) -> HttpApiDataSource:
    extra = {"tls": tls} if tls is not None else {}
    body = objects.data_source(name, namespace=NS, base_url=base_url, auth=auth, **extra)
    return HttpApiDataSource.model_validate(body)


def bearer(holder: str = "creds", key: str = "token") -> Body:
    return objects.bearer(holder, key)


def basic(holder: str = "creds", key: str = "password") -> Body:
    return objects.basic(holder, key)


def aws(keys: bool) -> Body:
    return objects.aws(keys=keys)


def server_body(*sources: str, mode: str = "None", name: str = "billing-mcp") -> Body:
    tools = [
        objects.tool(f"call_{i}", s, path="/x", description="Calls it.")
        for i, s in enumerate(sources)
    ]
    return objects.mcp_server(
        name,
        namespace=NS,
        tools=tools,
        authorization={"type": "None"} if mode == "None" else objects.api_key("keys", mode),
        metadata={"uid": "uid-1", "generation": 4},
    )


def server(*sources: str, mode: str = "None", **spec: Any) -> McpServer:
    body = server_body(*sources, mode=mode)
    body["spec"].update(spec)
    return McpServer.model_validate(body)


def secret(name: str, **values: bytes) -> SecretInfo:
    return SecretInfo.from_values(name, values)


def namespace(
    *sources: HttpApiDataSource, secrets: list[SecretInfo] | None = None, **kwargs: Any
) -> Namespace:
    return Namespace(
        NS,
        data_sources={s.metadata.name: s for s in sources},
        secrets={s.name: s for s in secrets or []},
        **kwargs,
    )


KEYS = secret("keys", alice=CANARIES["alice"], bob=CANARIES["bob"])
CREDS = secret("creds", token=CANARIES["token"], password=CANARIES["password"])


def conds(plan: ServerPlan) -> dict[str, Cond]:
    by_type = {c.type: c for c in plan.conditions}
    assert len(by_type) == len(plan.conditions), "one condition per type"
    return by_type


def good_deployment(replicas: int = 1, generation: int = 2) -> Body:
    return {
        "metadata": {"name": "billing-mcp", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "readyReplicas": replicas,
        },
    }


def assert_no_canary(plan: ServerPlan) -> None:
    texts = [f"{c.type} {c.reason} {c.message}" for c in plan.conditions]
    texts.append(json.dumps(plan.objects))
    texts.append(json.dumps(plan.status, default=repr))
    for canary in canary_texts():
        for text in texts:
            assert canary not in text


def assert_nothing_planned(plan: ServerPlan) -> None:
    assert plan.objects == []
    assert plan.absent == []
    assert plan.config is None


# --------------------------------------------------------------------------- all good


def test_all_good_server_with_a_running_deployment_is_ready() -> None:
    ns = namespace(source("billing", bearer()), secrets=[CREDS, KEYS])
    plan = plan_server(server("billing", mode="ApiKey"), ns, SETTINGS, deployment=good_deployment())
    by_type = conds(plan)
    assert [c.type for c in plan.conditions] == ["Ready", "Accepted", "ResolvedRefs", "Available"]
    assert by_type["Ready"] == Cond("Ready", "True", "Ready", by_type["Ready"].message)
    assert by_type["Accepted"].status == "True"
    assert by_type["Accepted"].reason == "Accepted"
    assert by_type["ResolvedRefs"].status == "True"
    assert by_type["ResolvedRefs"].reason == "ResolvedRefs"
    assert by_type["Available"].status == "True"
    assert "PassthroughConfigured" not in by_type
    assert plan.ready
    assert plan.warnings == []
    assert plan.objects
    assert plan.status["readyReplicas"] == 1
    assert plan.status["conditions"] == plan.conditions
    assert_no_canary(plan)


def test_every_reason_is_camel_case_and_fits_a_condition() -> None:
    ns = namespace(source("billing", bearer()), secrets=[CREDS, KEYS])
    plan = plan_server(server("billing", mode="BearerPassthrough"), ns, SETTINGS)
    stored = merge_conditions([], plan.conditions, 4, "2025-01-01T00:00:00Z")
    for entry in stored:
        Condition.model_validate(entry)


# --------------------------------------------------------------------------- Accepted


def test_invalid_data_source_makes_the_server_invalid() -> None:
    ns = namespace(secrets=[KEYS], invalid_data_sources={"billing": "spec.baseUrl: bad scheme"})
    plan = plan_server(server("billing", mode="ApiKey"), ns, SETTINGS)
    by_type = conds(plan)
    assert by_type["Accepted"].status == "False"
    assert by_type["Accepted"].reason == "InvalidSpec"
    assert "HttpApiDataSource billing" in by_type["Accepted"].message
    assert "spec.baseUrl: bad scheme" in by_type["Accepted"].message
    # An invalid data source is not also "not found".
    assert by_type["ResolvedRefs"].status == "True"
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("False", "InvalidSpec")
    assert_nothing_planned(plan)


def test_ambient_aws_is_refused_unless_allowed() -> None:
    ns = namespace(source("dynamo", aws(keys=False)))
    plan = plan_server(server("dynamo"), ns, SETTINGS)
    accepted = conds(plan)["Accepted"]
    assert (accepted.status, accepted.reason) == ("False", "InvalidSpec")
    assert "dynamo" in accepted.message
    assert "--allow-ambient-aws-credentials" in accepted.message
    assert_nothing_planned(plan)

    allowed = RenderSettings(allow_ambient_aws_credentials=True)
    plan = plan_server(server("dynamo"), ns, allowed)
    assert conds(plan)["Accepted"].ok
    assert plan.objects


def test_aws_with_keys_needs_no_permission() -> None:
    ns = namespace(
        source("dynamo", aws(keys=True)), secrets=[secret("aws", id=b"id-x", secret=b"secret-y")]
    )
    plan = plan_server(server("dynamo"), ns, SETTINGS)
    assert conds(plan)["Accepted"].ok
    assert conds(plan)["ResolvedRefs"].ok


def invalid_plan(body: Body) -> tuple[str, ServerPlan]:
    with pytest.raises(ValidationError) as caught:
        McpServer.model_validate(body)
    reason = invalid_reason(caught.value)
    message = "; ".join(error_lines(caught.value))
    plan = plan_invalid_server(
        body["metadata"]["name"],
        NS,
        reason,
        message,
        settings=SETTINGS,
        spec={**body["spec"], "service": {"port": 9000}},
    )
    return reason, plan


def test_unknown_parameter() -> None:
    body = server_body("billing")
    body["spec"]["tools"][0]["request"]["path"] = "/invoices/:invoice_id"
    reason, plan = invalid_plan(body)
    assert reason == "UnknownParameter"
    by_type = conds(plan)
    assert (by_type["Accepted"].status, by_type["Accepted"].reason) == ("False", "UnknownParameter")
    assert ":invoice_id" in by_type["Accepted"].message
    assert "call_0" in by_type["Accepted"].message
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("False", "UnknownParameter")
    assert by_type["ResolvedRefs"].status == "Unknown"
    assert by_type["Available"].status == "Unknown"
    assert not plan.ready
    assert plan.status["url"] == f"http://billing-mcp.{NS}.svc.cluster.local:9000/mcp"
    assert plan.status["tools"] == 1
    assert plan.status["readyReplicas"] == 0
    assert_nothing_planned(plan)


def test_literal_colon_words_are_not_unknown_parameters() -> None:
    body = server_body("billing")
    body["spec"]["tools"][0]["request"]["path"] = "/items:batchGet"
    body["spec"]["tools"][0]["request"]["query"] = {"type": "type:invoice"}
    McpServer.model_validate(body)


def test_duplicate_tool() -> None:
    body = server_body("billing", "billing")
    body["spec"]["tools"][1]["name"] = "call_0"
    reason, plan = invalid_plan(body)
    assert reason == "DuplicateTool"
    by_type = conds(plan)
    assert (by_type["Accepted"].status, by_type["Accepted"].reason) == ("False", "DuplicateTool")
    assert "call_0" in by_type["Accepted"].message
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("False", "DuplicateTool")
    assert_nothing_planned(plan)


def test_other_model_errors_are_invalid_spec() -> None:
    body = server_body("billing")
    body["spec"]["tools"][0]["parameters"] = [{"name": "id", "type": "String"}]
    body["spec"]["tools"][0]["request"]["path"] = "/invoices/:id"  # optional path parameter
    reason, plan = invalid_plan(body)
    assert reason == "InvalidSpec"
    assert conds(plan)["Ready"].reason == "InvalidSpec"
    assert "required" in conds(plan)["Accepted"].message


def test_name_conflict() -> None:
    ns = namespace(source("billing"))
    conflicts = ["Service team-a/billing-mcp", "ConfigMap team-a/billing-mcp-config"]
    plan = plan_server(server("billing"), ns, SETTINGS, conflicts=conflicts)
    accepted = conds(plan)["Accepted"]
    assert (accepted.status, accepted.reason) == ("False", "NameConflict")
    for conflict in conflicts:
        assert conflict in accepted.message
    assert (conds(plan)["Ready"].status, conds(plan)["Ready"].reason) == ("False", "NameConflict")
    assert_nothing_planned(plan)


def test_invalid_spec_wins_over_a_name_conflict() -> None:
    ns = namespace(invalid_data_sources={"billing": "broken"})
    plan = plan_server(server("billing"), ns, SETTINGS, conflicts=["Service team-a/billing-mcp"])
    assert conds(plan)["Accepted"].reason == "InvalidSpec"


def test_tool_header_naming_the_data_sources_api_key_header_is_invalid() -> None:
    ds = source(
        "weather",
        {
            "type": "ApiKey",
            "apiKey": {
                "in": "Header",
                "name": "X-Weather-Token",
                "valueSecretRef": {"name": "creds", "key": "token"},
            },
        },
    )
    body = server_body("weather")
    body["spec"]["tools"][0]["request"]["headers"] = {"x-weather-token": "forged"}
    plan = plan_server(McpServer.model_validate(body), namespace(ds, secrets=[CREDS]), SETTINGS)
    accepted = conds(plan)["Accepted"]
    assert (accepted.status, accepted.reason) == ("False", "InvalidSpec")
    assert_nothing_planned(plan)


# --------------------------------------------------------------------------- ResolvedRefs


def test_data_source_not_found() -> None:
    ns = namespace(source("billing"))
    plan = plan_server(server("billing", "ledger"), ns, SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert (refs.status, refs.reason) == ("False", "DataSourceNotFound")
    assert "HttpApiDataSource ledger" in refs.message
    assert "billing" not in refs.message.replace("billing-mcp", "")
    assert conds(plan)["Accepted"].ok
    assert (conds(plan)["Ready"].status, conds(plan)["Ready"].reason) == (
        "False",
        "DataSourceNotFound",
    )
    assert_nothing_planned(plan)


def test_data_source_secret_not_found() -> None:
    ns = namespace(source("billing", bearer("billing-creds", "token")))
    plan = plan_server(server("billing"), ns, SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert (refs.status, refs.reason) == ("False", "SecretNotFound")
    assert "billing-creds" in refs.message
    assert "HttpApiDataSource billing" in refs.message
    assert "auth.bearer.tokenSecretRef" in refs.message
    assert conds(plan)["Ready"].reason == "SecretNotFound"
    assert_nothing_planned(plan)


def test_absent_secrets_are_assumed_present_when_asked() -> None:
    ns = namespace(source("billing", bearer("billing-creds", "token")), assume_secrets=True)
    plan = plan_server(server("billing", mode="ApiKey"), ns, SETTINGS)
    assert conds(plan)["ResolvedRefs"].ok
    assert plan.objects


def test_secret_key_not_found() -> None:
    ns = namespace(source("billing", bearer("creds", "api-token")), secrets=[CREDS])
    plan = plan_server(server("billing"), ns, SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert (refs.status, refs.reason) == ("False", "SecretKeyNotFound")
    assert "creds" in refs.message
    assert "api-token" in refs.message
    assert_no_canary(plan)
    assert_nothing_planned(plan)


def test_a_present_secret_is_checked_even_when_absent_ones_are_assumed() -> None:
    ns = namespace(
        source("billing", bearer("creds", "api-token")), secrets=[CREDS], assume_secrets=True
    )
    refs = conds(plan_server(server("billing"), ns, SETTINGS))["ResolvedRefs"]
    assert refs.reason == "SecretKeyNotFound"


@pytest.mark.parametrize("value", [b"", b"\n"], ids=["empty", "only-a-newline"])
def test_empty_secret_value_is_a_missing_key(value: bytes) -> None:
    ns = namespace(
        source("billing", bearer("creds", "token")),
        secrets=[secret("creds", token=value)],
    )
    plan = plan_server(server("billing"), ns, SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert (refs.status, refs.reason) == ("False", "SecretKeyNotFound")
    assert "creds" in refs.message
    assert "token" in refs.message
    assert "empty" in refs.message
    assert_nothing_planned(plan)


@pytest.mark.parametrize("mode", ["ApiKey", "BearerPassthrough"])
@pytest.mark.parametrize(
    "values",
    [{}, {"alice": b""}, {"alice": b"\n", "bob": b""}],
    ids=["no-keys", "empty", "newlines"],
)
def test_api_keys_missing(mode: str, values: dict[str, bytes]) -> None:
    ns = namespace(source("billing"), secrets=[SecretInfo.from_values("keys", values)])
    plan = plan_server(server("billing", mode=mode), ns, SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert (refs.status, refs.reason) == ("False", "ApiKeysMissing")
    assert "keys" in refs.message
    assert (conds(plan)["Ready"].status, conds(plan)["Ready"].reason) == ("False", "ApiKeysMissing")
    assert_nothing_planned(plan)
    # Even when absent Secrets are assumed present: this one is present, and empty.
    ns.assume_secrets = True
    assert conds(plan_server(server("billing", mode=mode), ns, SETTINGS))[
        "ResolvedRefs"
    ].reason == ("ApiKeysMissing")


def test_key_secret_not_found() -> None:
    plan = plan_server(server("billing", mode="ApiKey"), namespace(source("billing")), SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert (refs.status, refs.reason) == ("False", "SecretNotFound")
    assert "keys" in refs.message
    assert "apiKeySecretRef" in refs.message
    assert_nothing_planned(plan)


def test_no_key_secret_without_inbound_auth() -> None:
    assert key_secret_problem(server("billing"), namespace(source("billing"))) is None


def test_every_problem_is_listed_and_the_first_gives_the_reason() -> None:
    ns = namespace(source("billing", basic("creds", "password")), secrets=[KEYS])
    plan = plan_server(server("ledger", "billing", mode="ApiKey"), ns, SETTINGS)
    refs = conds(plan)["ResolvedRefs"]
    assert refs.reason == "DataSourceNotFound"
    assert "HttpApiDataSource ledger" in refs.message
    assert "Secret creds" in refs.message
    problems = server_ref_problems(server("ledger", "billing", mode="ApiKey"), ns)
    assert [p.reason for p in problems] == ["DataSourceNotFound", "SecretNotFound"]


def test_server_refs_cover_its_data_sources_secrets_of_every_kind() -> None:
    ds = source(
        "crm",
        {
            "type": "OAuth2ClientCredentials",
            "oauth2ClientCredentials": {
                "tokenUrl": "https://login.example.com/token",
                "clientIdSecretRef": {"name": "oauth", "key": "id"},
                "clientSecretSecretRef": {"name": "oauth", "key": "secret"},
            },
        },
        tls={"caSecretRef": {"name": "ca", "key": "ca.crt"}},
    )
    problems = server_ref_problems(
        server("crm"), namespace(ds, secrets=[secret("oauth", id=b"id-x")])
    )
    messages = " | ".join(p.message for p in problems)
    assert [p.reason for p in problems] == ["SecretNotFound", "SecretKeyNotFound"]
    assert "Secret ca" in messages
    assert "tls.caSecretRef" in messages
    assert "oauth" in messages
    assert "auth.oauth2ClientCredentials.clientSecretSecretRef" in messages


def test_an_unused_data_sources_problems_do_not_count() -> None:
    ns = namespace(source("billing"), source("ledger", bearer("nowhere", "t")))
    assert conds(plan_server(server("billing"), ns, SETTINGS))["ResolvedRefs"].ok


def test_messages_never_hold_secret_values() -> None:
    """Canary values in every Secret, every kind of failure: no message holds a value."""
    ds = source("billing", bearer("creds", "missing-key"))
    other = source("ledger", basic("creds", "password"))
    ns = namespace(
        ds,
        other,
        secrets=[CREDS, SecretInfo.from_values("keys", {"alice": b"", "bob": b"\n"})],
    )
    for mode in ("ApiKey", "BearerPassthrough"):
        plan = plan_server(server("billing", "ledger", "gone", mode=mode), ns, SETTINGS)
        assert not plan.ready
        assert_no_canary(plan)
    ok = namespace(other, secrets=[CREDS, KEYS])
    assert_no_canary(plan_server(server("ledger", mode="BearerPassthrough"), ok, SETTINGS))


# --------------------------------------------------------------------------- Available


SRV = server("billing", replicas=2)


def test_available_without_a_deployment() -> None:
    cond = available(SRV, None)
    assert (cond.type, cond.status, cond.reason) == ("Available", "False", "PodsNotReady")


@pytest.mark.parametrize("observed", [None, 1])
def test_available_while_the_rollout_is_not_observed(observed: int | None) -> None:
    deployment = good_deployment(replicas=2, generation=2)
    deployment["status"]["observedGeneration"] = observed
    cond = available(SRV, deployment)
    assert (cond.status, cond.reason) == ("False", "PodsNotReady")
    assert "2" in cond.message


@pytest.mark.parametrize(("updated", "available_now"), [(1, 2), (2, 1), (0, 0), (None, None)])
def test_available_with_too_few_pods(updated: int | None, available_now: int | None) -> None:
    deployment = good_deployment(replicas=2)
    deployment["status"]["updatedReplicas"] = updated
    deployment["status"]["availableReplicas"] = available_now
    cond = available(SRV, deployment)
    assert (cond.status, cond.reason) == ("False", "PodsNotReady")
    assert "of 2" in cond.message


def test_available_when_every_wanted_pod_is_updated_and_available() -> None:
    cond = available(SRV, good_deployment(replicas=2))
    assert cond.status == "True"
    assert cond.reason[:1].isupper()


def test_available_is_false_while_old_pods_still_serve_a_rollout() -> None:
    # Rolling 2 -> 2 with maxSurge 1: one new pod is ready, one new pod is starting, one
    # old pod still serves. Two pods are available, two are updated, one is both.
    deployment = good_deployment(replicas=2)
    deployment["status"].update(replicas=3, updatedReplicas=2, availableReplicas=2, readyReplicas=2)
    cond = available(SRV, deployment)
    assert (cond.status, cond.reason) == ("False", "PodsNotReady")


def test_available_without_generation_fields() -> None:
    deployment = good_deployment(replicas=2)
    del deployment["metadata"]["generation"]
    del deployment["status"]["observedGeneration"]
    assert available(SRV, deployment).ok


AUTOSCALED = server(
    "billing",
    autoscaling={"minReplicas": 2, "maxReplicas": 10},
    resources={"requests": {"cpu": "100m"}},
)


def test_available_under_an_hpa_follows_its_replicas() -> None:
    deployment = good_deployment(replicas=3)
    deployment["spec"]["replicas"] = 5  # the HPA scaled up; 3 pods so far
    assert wanted_replicas(AUTOSCALED, deployment) == 5
    cond = available(AUTOSCALED, deployment)
    assert (cond.status, cond.reason) == ("False", "PodsNotReady")
    assert "of 5" in cond.message
    assert available(AUTOSCALED, good_deployment(replicas=5)).ok
    # Before the Deployment has replicas of its own, the minimum is wanted.
    assert wanted_replicas(AUTOSCALED, None) == 2
    no_replicas = good_deployment(replicas=2)
    del no_replicas["spec"]["replicas"]
    assert wanted_replicas(AUTOSCALED, no_replicas) == 2


def test_replicas_of_a_live_deployment_do_not_matter_without_an_hpa() -> None:
    deployment = good_deployment(replicas=1)  # a hand edit down to one pod
    assert wanted_replicas(SRV, deployment) == 2
    assert not available(SRV, deployment).ok


def test_plan_reports_available_and_ready_replicas() -> None:
    ns = namespace(source("billing"))
    deployment = good_deployment(replicas=2)
    deployment["status"]["availableReplicas"] = 1
    deployment["status"]["readyReplicas"] = 1
    plan = plan_server(SRV, ns, SETTINGS, deployment=deployment)
    assert (conds(plan)["Ready"].status, conds(plan)["Ready"].reason) == ("False", "PodsNotReady")
    assert plan.status["readyReplicas"] == 1
    # Objects are still planned: the Deployment is there to be kept up to date.
    assert plan.objects
    assert plan_server(SRV, ns, SETTINGS, deployment=good_deployment(2)).ready


# --------------------------------------------------------------------------- Ready


T = {
    "Accepted": Cond("Accepted", "True", "Accepted"),
    "ResolvedRefs": Cond("ResolvedRefs", "True", "ResolvedRefs"),
    "Available": Cond("Available", "True", "PodsReady"),
}
F = {
    "Accepted": Cond("Accepted", "False", "InvalidSpec", "bad spec"),
    "ResolvedRefs": Cond("ResolvedRefs", "False", "SecretNotFound", "Secret x not found"),
    "Available": Cond("Available", "False", "PodsNotReady", "0 of 1"),
}


@pytest.mark.parametrize(
    ("false", "reason"),
    [
        ((), "Ready"),
        (("Available",), "PodsNotReady"),
        (("ResolvedRefs",), "SecretNotFound"),
        (("ResolvedRefs", "Available"), "SecretNotFound"),
        (("Accepted", "ResolvedRefs", "Available"), "InvalidSpec"),
        (("Accepted", "Available"), "InvalidSpec"),
    ],
)
def test_ready_is_the_first_false_of_accepted_resolved_refs_available(
    false: tuple[str, ...], reason: str
) -> None:
    given = [F[t] if t in false else T[t] for t in ("Available", "ResolvedRefs", "Accepted")]
    cond = ready(given)
    assert cond.type == "Ready"
    assert cond.reason == reason
    assert cond.status == ("True" if not false else "False")
    if false:
        first = next(t for t in ("Accepted", "ResolvedRefs", "Available") if t in false)
        assert cond.message == F[first].message


def test_ready_ignores_passthrough_warnings() -> None:
    warning = Cond("PassthroughConfigured", "False", "DataSourceHasAuth", "x")
    assert ready([*T.values(), warning]).ok


def test_resolved_refs_true() -> None:
    cond = resolved_refs([])
    assert (cond.status, cond.reason) == ("True", "ResolvedRefs")
    cond = resolved_refs([RefProblem("SecretNotFound", "a"), RefProblem("ApiKeysMissing", "b")])
    assert (cond.status, cond.reason, cond.message) == ("False", "SecretNotFound", "a; b")


# --------------------------------------------------------------------------- PassthroughConfigured


@pytest.mark.parametrize("mode", ["None", "ApiKey"])
def test_passthrough_condition_only_in_passthrough_mode(mode: str) -> None:
    ns = namespace(source("billing", bearer()), secrets=[CREDS, KEYS])
    plan = plan_server(server("billing", mode=mode), ns, SETTINGS)
    assert "PassthroughConfigured" not in conds(plan)
    assert passthrough(server("billing", mode=mode), ns, None) is None


def test_passthrough_configured() -> None:
    ns = namespace(source("docs"), secrets=[KEYS])
    plan = plan_server(server("docs", mode="BearerPassthrough"), ns, SETTINGS)
    cond = conds(plan)["PassthroughConfigured"]
    assert cond.status == "True"
    assert plan.warnings == []
    assert conds(plan)["Accepted"].ok
    assert conds(plan)["ResolvedRefs"].ok


def test_passthrough_api_keys_missing() -> None:
    ns = namespace(source("docs"), secrets=[secret("keys", a=b"")])
    plan = plan_server(server("docs", mode="BearerPassthrough"), ns, SETTINGS)
    cond = conds(plan)["PassthroughConfigured"]
    assert (cond.status, cond.reason) == ("False", "ApiKeysMissing")
    assert "keys" in cond.message
    assert (conds(plan)["Ready"].status, conds(plan)["Ready"].reason) == ("False", "ApiKeysMissing")
    assert plan.warnings == [], "ApiKeysMissing is an error, not a warning"
    assert_nothing_planned(plan)


def test_passthrough_data_source_has_auth_lists_every_offender() -> None:
    ns = namespace(
        source("docs"),
        source("wiki", bearer()),
        source("inventory", basic()),
        source("plain", base_url="http://plain.example.com"),
        secrets=[CREDS, KEYS],
    )
    plan = plan_server(
        server("docs", "wiki", "inventory", "plain", mode="BearerPassthrough"), ns, SETTINGS
    )
    cond = conds(plan)["PassthroughConfigured"]
    assert (cond.status, cond.reason) == ("False", "DataSourceHasAuth")
    assert "wiki" in cond.message
    assert "inventory" in cond.message
    assert "docs" not in cond.message
    # A warning: Ready stays True (pods willing), objects are planned.
    assert conds(plan)["Accepted"].ok
    assert conds(plan)["ResolvedRefs"].ok
    assert plan.warnings == [cond]
    assert plan.objects
    ready_plan = plan_server(
        server("docs", "wiki", "inventory", "plain", mode="BearerPassthrough"),
        ns,
        SETTINGS,
        deployment=good_deployment(),
    )
    assert ready_plan.ready
    assert conds(ready_plan)["Ready"].reason == "Ready"
    assert_no_canary(ready_plan)


def test_passthrough_insecure_downstream_lists_every_http_source() -> None:
    ns = namespace(
        source("docs"),
        source("one", base_url="http://one.example.com/api"),
        source("two", base_url="HTTP://two.example.com"),
        secrets=[KEYS],
    )
    plan = plan_server(
        server("docs", "one", "two", mode="BearerPassthrough"),
        ns,
        SETTINGS,
        deployment=good_deployment(),
    )
    cond = conds(plan)["PassthroughConfigured"]
    assert (cond.status, cond.reason) == ("False", "InsecureDownstream")
    assert "one" in cond.message
    assert "two" in cond.message
    assert "docs" not in cond.message
    assert plan.warnings == [cond]
    assert plan.ready
    assert conds(plan)["Ready"].reason == "Ready"


def test_an_http_source_with_its_own_auth_is_not_insecure_downstream() -> None:
    """It never receives the caller's token: only DataSourceHasAuth applies."""
    ns = namespace(
        source("wiki", bearer(), base_url="http://wiki.example.com"), secrets=[CREDS, KEYS]
    )
    cond = conds(plan_server(server("wiki", mode="BearerPassthrough"), ns, SETTINGS))[
        "PassthroughConfigured"
    ]
    assert cond.reason == "DataSourceHasAuth"


def test_passthrough_lists_every_offender_even_with_long_names() -> None:
    names = [f"{'a' * 240}-{i}" for i in range(6)]
    ns = namespace(*(source(n, bearer()) for n in names), secrets=[CREDS, KEYS])
    cond = conds(plan_server(server(*names, mode="BearerPassthrough"), ns, SETTINGS))[
        "PassthroughConfigured"
    ]
    assert cond.reason == "DataSourceHasAuth"
    for name in names:
        assert name in cond.message


# --------------------------------------------------------------------------- HttpApiDataSource


def ds_conds(
    ds: HttpApiDataSource,
    ns: Namespace,
    *,
    invalid: str | None = None,
    allow_ambient_aws: bool = False,
) -> dict[str, Cond]:
    out = data_source_conditions(
        ds, invalid, data_source_problems(ds, ns), allow_ambient_aws=allow_ambient_aws
    )
    by_type = {c.type: c for c in out}
    assert set(by_type) == {"Ready", "ResolvedRefs"}
    return by_type


def test_data_source_ready() -> None:
    ds = source("billing", bearer())
    by_type = ds_conds(ds, namespace(ds, secrets=[CREDS]))
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("True", "Ready")
    assert (by_type["ResolvedRefs"].status, by_type["ResolvedRefs"].reason) == (
        "True",
        "ResolvedRefs",
    )


def test_data_source_without_auth_needs_no_secret() -> None:
    ds = source("public")
    assert ds_conds(ds, namespace(ds))["Ready"].ok


@pytest.mark.parametrize(
    ("secrets", "reason", "named"),
    [
        ([], "SecretNotFound", "creds"),
        ([secret("creds", other=b"other")], "SecretKeyNotFound", "token"),
        ([secret("creds", token=b"")], "SecretKeyNotFound", "token"),
        ([secret("creds", token=b"\n")], "SecretKeyNotFound", "token"),
    ],
    ids=["no-secret", "no-key", "empty", "newline"],
)
def test_data_source_unresolved(secrets: list[SecretInfo], reason: str, named: str) -> None:
    ds = source("billing", bearer())
    by_type = ds_conds(ds, namespace(ds, secrets=secrets))
    for kind in ("Ready", "ResolvedRefs"):
        assert (by_type[kind].status, by_type[kind].reason) == ("False", reason)
        assert named in by_type[kind].message
        assert "auth.bearer.tokenSecretRef" in by_type[kind].message


def test_data_source_invalid_spec() -> None:
    ds = source("billing")
    by_type = ds_conds(ds, namespace(ds), invalid="spec.headers: header 'Host' is reserved")
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("False", "InvalidSpec")
    assert "Host" in by_type["Ready"].message
    by_type = {
        c.type: c for c in data_source_conditions(None, "broken", [], allow_ambient_aws=False)
    }
    assert by_type["Ready"].reason == "InvalidSpec"


def test_data_source_ambient_aws_refused_unless_allowed() -> None:
    ds = source("s3", aws(keys=False))
    ns = namespace(ds)
    refused = ds_conds(ds, ns)
    assert (refused["Ready"].status, refused["Ready"].reason) == ("False", "InvalidSpec")
    assert "--allow-ambient-aws-credentials" in refused["Ready"].message
    assert refused["ResolvedRefs"].ok
    assert ds_conds(ds, ns, allow_ambient_aws=True)["Ready"].ok


def test_data_source_aws_with_keys() -> None:
    ds = source("s3", aws(keys=True))
    assert ds_conds(ds, namespace(ds, secrets=[secret("aws", id=b"id-a", secret=b"secret-b")]))[
        "Ready"
    ].ok
    missing = ds_conds(ds, namespace(ds, secrets=[secret("aws", id=b"id-a")]))
    assert missing["Ready"].reason == "SecretKeyNotFound"
    assert "secretAccessKeySecretRef" in missing["Ready"].message


def test_data_source_messages_hold_no_values() -> None:
    ds = source("billing", basic("creds", "pass"))
    by_type = ds_conds(ds, namespace(ds, secrets=[CREDS]))
    assert by_type["Ready"].reason == "SecretKeyNotFound"
    for canary in canary_texts():
        assert canary not in by_type["Ready"].message


# --------------------------------------------------------------------------- merge_conditions


NOW = "2025-02-01T10:00:00Z"
LATER = "2025-02-01T11:00:00Z"


def test_merge_new_conditions() -> None:
    current = [Cond("Ready", "False", "PodsNotReady", "0 of 1"), Cond("Accepted", "True", "Ok")]
    stored = merge_conditions([], current, 7, NOW)
    assert stored == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "PodsNotReady",
            "message": "0 of 1",
            "lastTransitionTime": NOW,
            "observedGeneration": 7,
        },
        {
            "type": "Accepted",
            "status": "True",
            "reason": "Ok",
            "message": "",
            "lastTransitionTime": NOW,
            "observedGeneration": 7,
        },
    ]


def test_merge_keeps_the_transition_time_while_the_status_holds() -> None:
    first = merge_conditions([], [Cond("Ready", "False", "PodsNotReady", "0 of 2")], 1, NOW)
    again = merge_conditions(first, [Cond("Ready", "False", "SecretNotFound", "other")], 2, LATER)
    assert again[0]["lastTransitionTime"] == NOW
    assert again[0]["reason"] == "SecretNotFound"
    assert again[0]["message"] == "other"
    assert again[0]["observedGeneration"] == 2


def test_merge_changes_the_transition_time_when_the_status_changes() -> None:
    first = merge_conditions([], [Cond("Ready", "False", "PodsNotReady")], 1, NOW)
    flipped = merge_conditions(first, [Cond("Ready", "True", "Ready")], 1, LATER)
    assert flipped[0]["lastTransitionTime"] == LATER
    unknown = merge_conditions(flipped, [Cond("Ready", "Unknown", "NotChecked")], 1, NOW)
    assert unknown[0]["lastTransitionTime"] == NOW


def test_merge_drops_conditions_no_longer_computed_and_is_per_type() -> None:
    previous = merge_conditions(
        [],
        [Cond("Ready", "True", "Ready"), Cond("PassthroughConfigured", "True", "Configured")],
        1,
        NOW,
    )
    stored = merge_conditions(
        previous, [Cond("Ready", "True", "Ready"), Cond("Accepted", "True", "Accepted")], 2, LATER
    )
    assert [c["type"] for c in stored] == ["Ready", "Accepted"]
    assert stored[0]["lastTransitionTime"] == NOW
    assert stored[1]["lastTransitionTime"] == LATER


def test_merge_without_a_previous_time_stamps_now() -> None:
    previous = [{"type": "Ready", "status": "True", "reason": "Ready"}]
    stored = merge_conditions(previous, [Cond("Ready", "True", "Ready")], 3, LATER)
    assert stored[0]["lastTransitionTime"] == LATER


def test_merge_does_not_touch_its_input() -> None:
    previous = merge_conditions([], [Cond("Ready", "True", "Ready")], 1, NOW)
    kept = copy.deepcopy(previous)
    merge_conditions(previous, [Cond("Ready", "False", "PodsNotReady")], 2, LATER)
    assert previous == kept


def test_merged_plan_conditions_are_valid_api_conditions() -> None:
    ns = namespace(source("docs", base_url="http://docs.example.com"), secrets=[KEYS])
    plan = plan_server(server("docs", mode="BearerPassthrough"), ns, SETTINGS)
    stored = merge_conditions([], plan.conditions, 4, NOW)
    assert {c["type"] for c in stored} == {
        "Ready",
        "Accepted",
        "ResolvedRefs",
        "Available",
        "PassthroughConfigured",
    }
    for entry in stored:
        parsed = Condition.model_validate(entry)
        assert parsed.observed_generation == 4
        assert parsed.last_transition_time == NOW
