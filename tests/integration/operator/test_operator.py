"""The operator for real: kopf running in-process against the API emulator, our handlers,
our client. Each test works in a namespace of its own; one operator serves the module."""

from __future__ import annotations

import copy
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mcpgate.controller.handlers import ControllerSettings
from mcpgate.manifests import read_documents
from mcpgate.render.objects import CONFIG_HASH_ANNOTATION
from mcpgate.render.settings import RenderSettings

from support.kube import KubeEnv
from support.kube_api import KubeApi
from support.operator import operator_in_thread
from support.paths import EXAMPLE_DIRS, EXAMPLES
from support.poll import wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")
pytest_plugins = ["support.kube"]

IMAGE = "registry.example.com/mcpgate:test"
SETTINGS = ControllerSettings(render=RenderSettings(image=IMAGE, cluster_domain="kube.test"))
_namespaces = itertools.count(1)
CANARY = "canary-operator-secret-9f8e7d6c"


@pytest.fixture
def ns() -> str:
    return f"t{next(_namespaces)}"


@pytest.fixture(scope="module")
def operator(kube_env_module: KubeEnv, operator_logs: list[str]) -> Iterator[KubeApi]:
    with operator_in_thread(kube_env_module, SETTINGS):
        yield kube_env_module.api


@pytest.fixture(scope="module")
def operator_logs() -> Iterator[list[str]]:
    """Every log line of the operator's and kopf's loggers during the module."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("kopf", "mcpgate")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield lines
    for logger in loggers:
        logger.removeHandler(handler)


def _docs(folder: Path, namespace: str) -> list[dict[str, Any]]:
    out = []
    for doc in read_documents([folder]):
        body = copy.deepcopy(doc.body)
        body.setdefault("metadata", {})["namespace"] = namespace
        out.append(body)
    return out


def _apply(api: KubeApi, docs: list[dict[str, Any]], kinds: tuple[str, ...]) -> None:
    for doc in docs:
        if doc["kind"] in kinds:
            api.create(doc)


def _read(api: KubeApi, resource: str, ns: str, name: str) -> dict[str, Any]:
    obj = api.read(resource, ns, name)
    assert obj is not None, f"{resource} {ns}/{name} does not exist"
    return obj


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    raise LookupError(kind)


def _server_name(folder: Path) -> str:
    docs = read_documents([folder])
    name: str = next(d.body["metadata"]["name"] for d in docs if d.body["kind"] == "McpServer")
    return name


def _patch(api: KubeApi, path: str, patch: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.patch(
        f"{api.server}{path}", json=patch, headers={"content-type": "application/merge-patch+json"}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _deployment_becomes_ready(api: KubeApi, ns: str, name: str) -> None:
    """What the Deployment controller and kubelet would report once pods run."""
    deployment = _read(api, "apps/v1/deployments", ns, name)
    replicas = deployment["spec"].get("replicas", 1)
    _patch(
        api,
        f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/status",
        {
            "status": {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
        },
    )


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
async def test_each_example_becomes_ready(operator: KubeApi, folder: Path, ns: str) -> None:
    docs = _docs(folder, ns)
    _apply(operator, docs, ("Secret",))
    _apply(operator, docs, ("HttpApiDataSource",))
    _apply(operator, docs, ("McpServer",))
    name = _server_name(folder)
    server = next(d for d in docs if d["kind"] == "McpServer")

    service = await wait_for(lambda: _read(operator, "v1/services", ns, name))
    deployment = _read(operator, "apps/v1/deployments", ns, name)
    config_map = _read(operator, "v1/configmaps", ns, f"{name}-config")
    mcp = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
    for obj in (deployment, config_map, service):
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == mcp["metadata"]["uid"]
        assert owner["controller"] is True
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == name
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    config = json.loads(config_map["data"]["config.json"])
    assert [t["name"] for t in config["tools"]] == [t["name"] for t in server["spec"]["tools"]]
    replicas = server["spec"].get("replicas", 1)
    if replicas > 1:
        await wait_for(lambda: _read(operator, "policy/v1/poddisruptionbudgets", ns, name))
    else:
        assert operator.read("policy/v1/poddisruptionbudgets", ns, name) is None

    available = await wait_for(
        lambda: _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Available")
    )
    assert (available["status"], available["reason"]) == ("False", "PodsNotReady")
    _deployment_becomes_ready(operator, ns, name)

    def ready() -> dict[str, Any]:
        obj = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
        assert _condition(obj, "Ready")["status"] == "True"
        return obj

    status = (await wait_for(ready))["status"]
    assert status["url"] == f"http://{name}.{ns}.svc.kube.test:8080/mcp"
    assert status["tools"] == len(server["spec"]["tools"])
    assert status["readyReplicas"] == replicas
    assert status["observedGeneration"] == mcp["metadata"]["generation"]
    for cond in status["conditions"]:
        assert cond["observedGeneration"] == mcp["metadata"]["generation"]
        assert cond["lastTransitionTime"]
    for source in (d for d in docs if d["kind"] == "HttpApiDataSource"):
        ready_ds = await wait_for(
            lambda s=source: _condition(
                _read(
                    operator, "mcpgate.io/v1alpha1/httpapidatasources", ns, s["metadata"]["name"]
                ),
                "Ready",
            )
        )
        assert ready_ds["status"] == "True"


async def test_server_before_its_data_source_and_secret(operator: KubeApi, ns: str) -> None:
    folder = EXAMPLES / "outbound-bearer"
    docs = _docs(folder, ns)
    name = _server_name(folder)
    _apply(operator, docs, ("McpServer",))
    refs = await wait_for(
        lambda: _condition(
            _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "ResolvedRefs"
        )
    )
    assert (refs["status"], refs["reason"]) == ("False", "DataSourceNotFound")
    assert operator.read("apps/v1/deployments", ns, name) is None  # nothing while refs miss

    _apply(operator, docs, ("HttpApiDataSource",))

    def secret_missing() -> bool:
        cond = _condition(
            _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "ResolvedRefs"
        )
        return cond["reason"] == "SecretNotFound"

    await wait_for(secret_missing)
    _apply(operator, docs, ("Secret",))
    await wait_for(lambda: _read(operator, "apps/v1/deployments", ns, name))
    _deployment_becomes_ready(operator, ns, name)
    await wait_for(
        lambda: (
            _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")[
                "status"
            ]
            == "True"
        )
    )


async def _ready_example(api: KubeApi, folder: Path, ns: str) -> str:
    docs = _docs(folder, ns)
    for kind in ("Secret", "HttpApiDataSource", "McpServer"):
        _apply(api, docs, (kind,))
    name = _server_name(folder)
    await wait_for(lambda: _read(api, "apps/v1/deployments", ns, name))
    _deployment_becomes_ready(api, ns, name)
    await wait_for(
        lambda: (
            _condition(_read(api, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")["status"]
            == "True"
        )
    )
    return name


def _pod_hash(api: KubeApi, ns: str, name: str) -> str:
    deployment = _read(api, "apps/v1/deployments", ns, name)
    value: str = deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    return value


async def test_a_tool_change_updates_config_and_pod_annotation(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "quickstart", ns)
    before = _pod_hash(operator, ns, name)
    server = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
    tools = server["spec"]["tools"]
    tools[0]["description"] = "A changed description."
    _patch(
        operator,
        f"/apis/mcpgate.io/v1alpha1/namespaces/{ns}/mcpservers/{name}",
        {"spec": {"tools": tools}},
    )

    def changed() -> bool:
        config = json.loads(
            _read(operator, "v1/configmaps", ns, f"{name}-config")["data"]["config.json"]
        )
        return config["tools"][0]["description"] == "A changed description."

    await wait_for(changed)
    await wait_for(lambda: _pod_hash(operator, ns, name) != before)


async def test_a_data_source_change_rerenders_its_servers(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "quickstart", ns)
    source = next(
        d for d in _docs(EXAMPLES / "quickstart", ns) if d["kind"] == "HttpApiDataSource"
    )["metadata"]["name"]
    _patch(
        operator,
        f"/apis/mcpgate.io/v1alpha1/namespaces/{ns}/httpapidatasources/{source}",
        {"spec": {"baseUrl": "https://mirror.example.com/v2"}},
    )

    def rerendered() -> bool:
        config = json.loads(
            _read(operator, "v1/configmaps", ns, f"{name}-config")["data"]["config.json"]
        )
        return bool(config["data_sources"][source]["base_url"] == "https://mirror.example.com/v2")

    await wait_for(rerendered)


async def test_a_deleted_secret_key_is_named_and_recovery_follows(
    operator: KubeApi, ns: str
) -> None:
    name = await _ready_example(operator, EXAMPLES / "outbound-bearer", ns)
    secret = next(d for d in _docs(EXAMPLES / "outbound-bearer", ns) if d["kind"] == "Secret")
    secret_name = secret["metadata"]["name"]
    (key,) = secret["stringData"]
    live = _read(operator, "v1/secrets", ns, secret_name)
    _patch(
        operator,
        f"/api/v1/namespaces/{ns}/secrets/{secret_name}",
        {"data": {key: None, "other": "eA=="}},
    )

    def missing() -> dict[str, Any]:
        cond = _condition(
            _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "ResolvedRefs"
        )
        assert cond["reason"] == "SecretKeyNotFound"
        return cond

    cond = await wait_for(missing)
    assert secret_name in cond["message"]
    assert key in cond["message"]
    ready = _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretKeyNotFound")
    _patch(
        operator,
        f"/api/v1/namespaces/{ns}/secrets/{secret_name}",
        {"data": {key: live["data"][key]}},
    )
    await wait_for(
        lambda: (
            _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")[
                "status"
            ]
            == "True"
        )
    )


async def test_hand_edits_are_put_back(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "quickstart", ns)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
    deployment = _read(operator, "apps/v1/deployments", ns, name)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "evil.example.com/miner:1"
    _patch(operator, path, {"spec": {"template": {"spec": {"containers": containers}}}})

    def put_back() -> bool:
        live = _read(operator, "apps/v1/deployments", ns, name)
        return bool(live["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE)

    await wait_for(put_back)
    # Fields the operator does not set are left alone.
    _patch(operator, path, {"metadata": {"annotations": {"team": "billing"}}})
    await wait_for(
        lambda: (
            _read(operator, "apps/v1/deployments", ns, name)["metadata"]["annotations"]["team"]
            == "billing"
        )
    )


async def test_available_follows_the_deployment(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "quickstart", ns)
    _patch(
        operator,
        f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/status",
        {"status": {"availableReplicas": 0, "readyReplicas": 0}},
    )

    def not_ready() -> bool:
        obj = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
        return (
            _condition(obj, "Available")["status"] == "False"
            and _condition(obj, "Ready")["reason"] == "PodsNotReady"
            and obj["status"]["readyReplicas"] == 0
        )

    await wait_for(not_ready)
    _deployment_becomes_ready(operator, ns, name)
    await wait_for(
        lambda: (
            _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")[
                "status"
            ]
            == "True"
        )
    )


async def test_an_unchanged_reconcile_writes_nothing(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "outbound-bearer", ns)
    secret = next(d for d in _docs(EXAMPLES / "outbound-bearer", ns) if d["kind"] == "Secret")[
        "metadata"
    ]["name"]
    mcp = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
    await wait_for(lambda: len(operator.calls) > 0)
    before = len(operator.calls)
    # A change to the Secret that changes nothing the server depends on: a reconcile runs.
    _patch(
        operator,
        f"/api/v1/namespaces/{ns}/secrets/{secret}",
        {"metadata": {"labels": {"touched": "yes"}}},
    )
    await wait_for(
        lambda: any(
            c.verb == "get" and c.resource == "deployments" and c.namespace == ns
            for c in operator.calls[before:]
        )
    )
    import asyncio

    await asyncio.sleep(0.5)
    writes = [
        c
        for c in operator.calls[before:]
        if c.verb in ("create", "update", "patch", "delete")
        and c.namespace == ns
        and c.resource != "secrets"
    ]
    assert writes == []
    after = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
    assert after["metadata"]["resourceVersion"] == mcp["metadata"]["resourceVersion"]


async def test_misconfigured_passthrough_warns(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "passthrough-misconfigured", ns)
    obj = _read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name)
    cond = _condition(obj, "PassthroughConfigured")
    assert (cond["status"], cond["reason"]) == ("False", "DataSourceHasAuth")
    assert _condition(obj, "Ready")["status"] == "True"

    def warning() -> dict[str, Any]:
        events = [
            e
            for e in operator.list_objects("v1/events", ns)
            if e.get("reason") == "DataSourceHasAuth"
        ]
        assert events
        return events[0]

    event = await wait_for(warning)
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == name


async def test_a_short_inbound_key_gets_one_weak_api_key_event(operator: KubeApi, ns: str) -> None:
    docs = _docs(EXAMPLES / "inbound-apikey", ns)
    for doc in docs:
        if doc["kind"] == "Secret":
            doc["stringData"] = {"alice": "fake-alice-mcp-key-change-me", "bob": "bob-k3y-short"}
    for kind in ("Secret", "HttpApiDataSource", "McpServer"):
        _apply(operator, docs, (kind,))
    name = _server_name(EXAMPLES / "inbound-apikey")

    def weak() -> list[dict[str, Any]]:
        events = [
            e for e in operator.list_objects("v1/events", ns) if e.get("reason") == "WeakApiKey"
        ]
        assert events
        return events

    (event,) = await wait_for(weak)
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == name
    assert "bob" in event["message"]
    assert "alice" not in event["message"]
    assert "bob-k3y-short" not in json.dumps(event)  # never the value
    # Accepted all the same, and told once: a later reconcile posts no second Event.
    await wait_for(lambda: _read(operator, "apps/v1/deployments", ns, name))
    _deployment_becomes_ready(operator, ns, name)
    await wait_for(
        lambda: (
            _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")[
                "status"
            ]
            == "True"
        )
    )
    assert len(weak()) == 1


async def test_autoscaling_adds_and_removes_the_hpa(operator: KubeApi, ns: str) -> None:
    name = await _ready_example(operator, EXAMPLES / "quickstart", ns)
    path = f"/apis/mcpgate.io/v1alpha1/namespaces/{ns}/mcpservers/{name}"
    _patch(
        operator,
        path,
        {
            "spec": {
                "autoscaling": {"minReplicas": 2, "maxReplicas": 5},
                "resources": {"requests": {"cpu": "100m"}},
            }
        },
    )
    hpa = await wait_for(
        lambda: _read(operator, "autoscaling/v2/horizontalpodautoscalers", ns, name)
    )
    assert hpa["spec"]["maxReplicas"] == 5
    await wait_for(lambda: _read(operator, "policy/v1/poddisruptionbudgets", ns, name))
    _patch(operator, path, {"spec": {"autoscaling": None, "replicas": 1}})
    await wait_for(
        lambda: operator.read("autoscaling/v2/horizontalpodautoscalers", ns, name) is None
    )
    await wait_for(lambda: operator.read("policy/v1/poddisruptionbudgets", ns, name) is None)


async def test_invalid_spec_is_not_accepted(operator: KubeApi, ns: str) -> None:
    docs = _docs(EXAMPLES / "quickstart", ns)
    server = next(d for d in docs if d["kind"] == "McpServer")
    server["spec"]["tools"][1]["request"]["path"] = "/posts/:post_id"
    _apply(operator, docs, ("HttpApiDataSource", "McpServer"))
    name = server["metadata"]["name"]
    cond = await wait_for(
        lambda: _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Accepted")
    )
    assert (cond["status"], cond["reason"]) == ("False", "UnknownParameter")
    assert operator.read("apps/v1/deployments", ns, name) is None


async def test_name_conflict(operator: KubeApi, ns: str) -> None:
    docs = _docs(EXAMPLES / "quickstart", ns)
    server = next(d for d in docs if d["kind"] == "McpServer")
    name = server["metadata"]["name"]
    operator.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    _apply(operator, docs, ("HttpApiDataSource", "McpServer"))
    cond = await wait_for(
        lambda: _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Accepted")
    )
    assert (cond["status"], cond["reason"]) == ("False", "NameConflict")
    assert f"Service {name}" in cond["message"]


async def test_conflicts_are_retried(operator: KubeApi, ns: str) -> None:
    operator.fail_next(2, status=409, resource="configmaps", verbs=("create",))
    await _ready_example(operator, EXAMPLES / "quickstart", ns)


async def test_kubectl_apply_and_get(operator: KubeApi, kube_env_module: KubeEnv, ns: str) -> None:
    kubectl = kube_env_module.kubectl
    folder = EXAMPLES / "inbound-apikey"
    kubectl("apply", "--validate=false", "-n", ns, "-f", str(folder))
    name = _server_name(folder)
    await wait_for(lambda: _read(operator, "apps/v1/deployments", ns, name))
    _deployment_becomes_ready(operator, ns, name)
    await wait_for(
        lambda: (
            _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")[
                "status"
            ]
            == "True"
        )
    )
    table = kubectl("get", "mcpservers", "-n", ns)
    header, row = table.strip().splitlines()
    assert header.split() == ["NAME", "READY", "AUTH", "TOOLS", "URL", "AGE"]
    tools = len(next(d for d in _docs(folder, ns) if d["kind"] == "McpServer")["spec"]["tools"])
    assert row.split()[:5] == [
        name,
        "True",
        "ApiKey",
        str(tools),
        f"http://{name}.{ns}.svc.kube.test:8080/mcp",
    ]
    sources = kubectl("get", "httpapidatasources", "-n", ns).strip().splitlines()
    assert sources[0].split() == ["NAME", "READY", "AUTH", "BASE", "URL", "AGE"]
    assert sources[1].split()[1:3] == ["True", "None"]
    waited = kubectl(
        "wait", "--for=condition=Ready", f"mcpserver/{name}", "-n", ns, "--timeout=10s"
    )
    assert "condition met" in waited


async def test_no_canary_anywhere(operator: KubeApi, ns: str, operator_logs: list[str]) -> None:
    docs = _docs(EXAMPLES / "outbound-basic", ns)
    for doc in docs:
        if doc["kind"] == "Secret":
            doc["stringData"] = dict.fromkeys(doc["stringData"], CANARY)
    for kind in ("Secret", "HttpApiDataSource", "McpServer"):
        _apply(operator, docs, (kind,))
    name = _server_name(EXAMPLES / "outbound-basic")
    await wait_for(lambda: _read(operator, "apps/v1/deployments", ns, name))
    _deployment_becomes_ready(operator, ns, name)
    await wait_for(
        lambda: (
            _condition(_read(operator, "mcpgate.io/v1alpha1/mcpservers", ns, name), "Ready")[
                "status"
            ]
            == "True"
        )
    )
    dump = yaml.safe_dump(
        [
            operator.list_objects(r)
            for r in (
                "v1/configmaps",
                "apps/v1/deployments",
                "v1/services",
                "v1/events",
                "mcpgate.io/v1alpha1/mcpservers",
                "mcpgate.io/v1alpha1/httpapidatasources",
                "policy/v1/poddisruptionbudgets",
            )
        ]
    )
    logs = "\n".join(operator_logs)
    assert len(logs) > 1000  # the whole module's operator logs
    example_values = {
        value
        for folder in EXAMPLE_DIRS
        for doc in read_documents([folder])
        if doc.body["kind"] == "Secret"
        for value in (doc.body.get("stringData") or {}).values()
    }
    for secret in {CANARY, *example_values}:
        assert secret not in dump, secret
        assert secret not in logs, secret
