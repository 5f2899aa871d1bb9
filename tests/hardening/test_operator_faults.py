"""The operator under API faults and broken references, for real: kopf and our handlers in
a thread against the API emulator, which answers 409s and 500s, slows down and cuts
its watch streams on request. Each test works in a namespace of its own; one operator
serves the module. Every Secret value is a canary; at the end every object the
operator wrote goes to the leak sink.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from hardening.canaries import CANARIES
from hardening.gateways import scale
from hardening.kube_helpers import (
    MCP,
    SOURCES,
    bearer_source,
    condition,
    delete,
    deployment_becomes_ready,
    dump_to_sink,
    patch,
    read,
    ready_status,
    secret,
    server,
    standard_objects,
)
from mcpgate.controller.handlers import ControllerSettings
from mcpgate.render.settings import RenderSettings

from support.kube import KubeEnv
from support.kube_api import WRITE_VERBS, KubeApi
from support.operator import operator_in_thread
from support.poll import wait_for

SETTINGS = ControllerSettings(render=RenderSettings(image="registry.example.com/mcpgate:hardening"))
OWNED = ("v1/configmaps", "apps/v1/deployments", "v1/services")
_namespaces = itertools.count(1)


@pytest.fixture(scope="module")
def api(kube_env_module: KubeEnv) -> Iterator[KubeApi]:
    with operator_in_thread(kube_env_module, SETTINGS):
        yield kube_env_module.api
    dump_to_sink(kube_env_module.api, "operator faults")


@pytest.fixture
def ns(api: KubeApi) -> Iterator[str]:
    yield f"hf{next(_namespaces)}"
    api.clear_faults()


def _create(api: KubeApi, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        api.create(obj)


async def _ready(api: KubeApi, ns: str, name: str = "srv", within: float = 15) -> None:
    await wait_for(lambda: read(api, "apps/v1/deployments", ns, name), within=within)
    deployment_becomes_ready(api, ns, name)
    await wait_for(lambda: ready_status(api, ns, name) == ("True", "Ready"), within=within)


def _no_duplicates(api: KubeApi, ns: str, name: str = "srv") -> None:
    """Exactly the objects the operator owns for one server: no stray copies."""
    names = {
        "v1/configmaps": [f"{name}-config"],
        "apps/v1/deployments": [name],
        "v1/services": [name],
    }
    for resource, expected in names.items():
        found = sorted(o["metadata"]["name"] for o in api.list_objects(resource, ns))
        assert found == expected, (resource, found)
    server_uid = read(api, MCP, ns, name)["metadata"]["uid"]
    for resource in OWNED:
        for obj in api.list_objects(resource, ns):
            (owner,) = obj["metadata"]["ownerReferences"]
            assert owner["uid"] == server_uid
            assert owner["controller"] is True


def _writes(api: KubeApi, ns: str, since: int) -> list[Any]:
    return [c for c in api.calls[since:] if c.namespace == ns and c.verb in WRITE_VERBS]


async def test_conflicts_on_every_write_converge_without_duplicates(api: KubeApi, ns: str) -> None:
    """409 on creating the ConfigMap and the Deployment, and on writing the status (a
    stale resourceVersion): kopf retries, nothing is created twice, the status is right."""
    api.fail_next(1, 409, resource="configmaps", verbs=("create",))
    api.fail_next(1, 409, resource="deployments", verbs=("create",))
    api.fail_next(1, 409, resource="mcpservers/status", verbs=("patch",))
    _create(api, standard_objects(ns))
    await _ready(api, ns)
    _no_duplicates(api, ns)
    obj = read(api, MCP, ns, "srv")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


async def test_a_refused_write_is_reported_apply_failed_and_retried(api: KubeApi, ns: str) -> None:
    """Issue #15: a write the API server refuses (403, as a quota or an admission policy
    answers) left `status: null` after many attempts. Now the status is written, current,
    with Ready False ApplyFailed, and the write is retried until it is accepted."""
    api.fail_next(1000, 403, resource="configmaps", verbs=("create",))
    _create(api, standard_objects(ns))
    await wait_for(lambda: ready_status(api, ns, "srv") == ("False", "ApplyFailed"), within=15)
    obj = read(api, MCP, ns, "srv")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    ready = condition(obj, "Ready")
    assert "403" in ready["message"]
    assert "configmaps" in ready["message"].lower() or "ConfigMap" in ready["message"]
    api.clear_faults()
    await _ready(api, ns, within=30)  # the handler's retry, after its backoff


async def test_server_errors_and_slow_answers_on_the_servers_own_path_converge(
    api: KubeApi, ns: str
) -> None:
    """A 500 on a write of the McpServer's own handler is a kopf retry (after 5 s); slow
    answers only slow things down."""
    api.add_latency(0.3, resource="deployments")
    api.fail_next(1, 500, resource="services", verbs=("create",))
    _create(api, standard_objects(ns))
    await _ready(api, ns, within=20)  # the 5 s retry and the slow answers fit in it
    api.clear_faults()
    _no_duplicates(api, ns)


async def test_an_api_error_in_a_secret_triggered_reconcile_is_retried(
    api: KubeApi, ns: str
) -> None:
    """Regression (found by this suite, fixed since): an API error (409 or 5xx) while
    reconciling for a Secret, data-source or owned-object event is only logged
    (handlers.py:212-219 _logged, used by secret_event/source_event/owned_event at
    handlers.py:173-199): kopf never retries event handlers, so the update is lost until
    some other change comes along"""
    _create(api, standard_objects(ns)[:2])
    api.create(secret(ns, "keys", {"alice": ""}))
    api.create(server(ns, keys="keys"))
    await wait_for(
        lambda: condition(read(api, MCP, ns, "srv"), "ResolvedRefs")["reason"] == "ApiKeysMissing"
    )
    await asyncio.sleep(0.3)  # let the create's own reconciles settle
    api.fail_next(1, 409, resource="configmaps", verbs=("create",))
    patch(api, "Secret", ns, "keys", {"stringData": {"alice": CANARIES["operator_apikey"]}})
    await wait_for(lambda: read(api, "apps/v1/deployments", ns, "srv"), within=4)


async def test_cut_watch_streams_lose_no_update(api: KubeApi, ns: str) -> None:
    """Spec, data-source and Secret changes, each followed at once by cutting every watch
    stream: the operator sees the last change of each."""
    _create(api, standard_objects(ns))
    await _ready(api, ns)
    token = {"token": CANARIES["operator_secret"]}
    rounds = scale(6, 30)
    for index in range(rounds):
        tool = server(ns, description=f"v{index}")["spec"]["tools"][0]
        patch(api, "McpServer", ns, "srv", {"spec": {"tools": [tool]}})
        api.cut_watches()
        base = {"spec": {"baseUrl": f"https://r{index}.example.com"}}
        patch(api, "HttpApiDataSource", ns, "api", base)
        api.cut_watches()
        if index % 2:  # a Secret key that goes and comes back at once
            patch(api, "Secret", ns, "api-token", {"data": {"token": None}})
            api.cut_watches()
            patch(api, "Secret", ns, "api-token", {"stringData": token})
            api.cut_watches()
        await asyncio.sleep(0.02 * (index % 3))
    last = rounds - 1

    def final() -> bool:
        config = json.loads(read(api, "v1/configmaps", ns, "srv-config")["data"]["config.json"])
        cond = condition(read(api, MCP, ns, "srv"), "ResolvedRefs")
        return (
            config["tools"][0]["description"] == f"v{last}"
            and config["data_sources"]["api"]["base_url"] == f"https://r{last}.example.com"
            and cond["status"] == "True"
        )

    await wait_for(final, within=15, what="the last change of each object")
    # A Secret key going away, with the streams cut right after: it is seen.
    patch(api, "Secret", ns, "api-token", {"data": {"token": None}})
    api.cut_watches()
    await wait_for(
        lambda: (
            condition(read(api, MCP, ns, "srv"), "ResolvedRefs")["reason"] == "SecretKeyNotFound"
        )
    )
    patch(api, "Secret", ns, "api-token", {"stringData": token})
    api.cut_watches()
    await wait_for(lambda: read(api, "apps/v1/deployments", ns, "srv"))
    deployment_becomes_ready(api, ns, "srv")
    await wait_for(lambda: ready_status(api, ns, "srv") == ("True", "Ready"))
    obj = read(api, MCP, ns, "srv")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    _no_duplicates(api, ns)


async def test_an_invalid_server_does_not_flood_the_api(api: KubeApi, ns: str) -> None:
    """Invalid specs end as Accepted=False with a reason, and then the operator is quiet:
    no retry loop, no status rewritten over and over."""
    _create(api, standard_objects(ns)[:2])
    api.create(server(ns, "typo", path="/items/:idd"))
    api.create(server(ns, "dupe") | {"spec": {"tools": server(ns)["spec"]["tools"] * 2}})
    for name, reason in (("typo", "UnknownParameter"), ("dupe", "DuplicateTool")):
        cond = await wait_for(lambda n=name: condition(read(api, MCP, ns, n), "Accepted"))
        assert (cond["status"], cond["reason"]) == ("False", reason)
        assert ready_status(api, ns, name) == ("False", reason)
        assert cond["message"]
    await asyncio.sleep(0.5)
    since = len(api.calls)
    await asyncio.sleep(1.5)
    requests = [c for c in api.calls[since:] if c.namespace == ns]
    assert requests == [], requests
    assert api.read("apps/v1/deployments", ns, "typo") is None


async def test_a_status_that_cannot_be_written_is_retried_slowly(api: KubeApi, ns: str) -> None:
    """A status write failing again and again (500) is retried with backoff (kopf's for the
    server's own handler, the event handlers' own for each event that reaches the
    server), never in a tight loop; once the API recovers, the status arrives."""
    api.fail_next(1000, 500, resource="mcpservers/status", verbs=("patch",))
    since = len(api.calls)
    _create(api, standard_objects(ns))
    await asyncio.sleep(2)
    attempts = [
        c for c in api.calls[since:] if c.namespace == ns and c.rbac_resource == "mcpservers/status"
    ]
    # A handful of events (the server, its data source, its Secret, three owned objects),
    # each retried at 0.5 s, 1 s, 2 s, ...: a few dozen at most; a tight loop makes hundreds.
    assert 1 <= len(attempts) <= 40, len(attempts)
    api.clear_faults()
    await _ready(api, ns, within=12)


# --- broken references and their recovery ----------------------------------------------------


async def _broken(api: KubeApi, ns: str, reason: str, source_reason: str | None = None) -> None:
    def check() -> bool:
        obj = read(api, MCP, ns, "srv")
        refs, ready = condition(obj, "ResolvedRefs"), condition(obj, "Ready")
        return (refs["status"], refs["reason"], ready["status"], ready["reason"]) == (
            "False",
            reason,
            "False",
            reason,
        )

    await wait_for(check, what=reason)
    if source_reason is not None:
        await wait_for(
            lambda: condition(read(api, SOURCES, ns, "api"), "Ready")["reason"] == source_reason
        )


BREAKS = [
    "secret-deleted",
    "key-renamed",
    "secret-of-another-type",
    "data-source-deleted",
    "keys-emptied",
]


@pytest.mark.parametrize("broken", BREAKS)
async def test_broken_references_are_named_and_recovery_follows(
    api: KubeApi, ns: str, broken: str
) -> None:
    _create(api, standard_objects(ns, keys=True))
    await _ready(api, ns)
    deployment = read(api, "apps/v1/deployments", ns, "srv")
    if broken == "secret-deleted":
        delete(api, "Secret", ns, "api-token")
        await _broken(api, ns, "SecretNotFound", "SecretNotFound")
        api.create(secret(ns, "api-token", {"token": CANARIES["operator_secret"]}))
    elif broken == "key-renamed":
        patch(api, "Secret", ns, "api-token", {"stringData": {"tok": CANARIES["operator_secret"]}})
        patch(api, "Secret", ns, "api-token", {"data": {"token": None}})
        await _broken(api, ns, "SecretKeyNotFound", "SecretKeyNotFound")
        patch(
            api, "Secret", ns, "api-token", {"stringData": {"token": CANARIES["operator_secret"]}}
        )
    elif broken == "secret-of-another-type":
        delete(api, "Secret", ns, "api-token")
        tls = {"tls.crt": "-----BEGIN CERTIFICATE-----", "tls.key": CANARIES["operator_secret"]}
        api.create(secret(ns, "api-token", tls, "kubernetes.io/tls"))
        await _broken(api, ns, "SecretKeyNotFound", "SecretKeyNotFound")
        delete(api, "Secret", ns, "api-token")
        api.create(secret(ns, "api-token", {"token": CANARIES["operator_secret"]}))
    elif broken == "data-source-deleted":
        delete(api, "HttpApiDataSource", ns, "api")
        await _broken(api, ns, "DataSourceNotFound")
        api.create(bearer_source(ns))
    elif broken == "keys-emptied":
        patch(api, "Secret", ns, "keys", {"stringData": {"alice": ""}})
        await _broken(api, ns, "ApiKeysMissing")
        patch(api, "Secret", ns, "keys", {"stringData": {"alice": CANARIES["operator_apikey"]}})
    obj = read(api, MCP, ns, "srv")
    message = condition(obj, "ResolvedRefs")["message"]
    assert message
    assert all(v not in message for v in CANARIES.values())
    # While broken, the Deployment was left as it was (API.md): not deleted, not changed.
    assert (
        read(api, "apps/v1/deployments", ns, "srv")["metadata"]["generation"]
        == deployment["metadata"]["generation"]
    )
    await wait_for(lambda: ready_status(api, ns, "srv") == ("True", "Ready"))
    await wait_for(lambda: condition(read(api, SOURCES, ns, "api"), "Ready")["status"] == "True")
    _no_duplicates(api, ns)


async def test_a_secret_of_another_type_with_the_right_key_works(api: KubeApi, ns: str) -> None:
    """API.md says nothing of Secret types; a volume mount does not care either, so a
    `kubernetes.io/basic-auth` Secret holding the referenced key resolves."""
    objects = standard_objects(ns)
    objects[0] = secret(
        ns,
        "api-token",
        {"token": CANARIES["operator_secret"], "username": "u"},
        "kubernetes.io/basic-auth",
    )
    _create(api, objects)
    await _ready(api, ns)
