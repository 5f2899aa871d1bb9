"""The Kubernetes objects rendered for an McpServer, checked field by field against
API.md ("What the operator creates for an McpServer"), for every example folder and
for variants of them (autoscaling, replicas, pod template, resources, Secrets)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.config import GatewayConfig
from mcpgate.manifests import load_manifests, read_documents
from mcpgate.render import objects as objects_module
from mcpgate.render.objects import render_objects
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import ServerPlan, plan_server
from mcpgate.render.settings import DEFAULT_IMAGE, RenderSettings

from support.objects import wire
from support.paths import EXAMPLE_DIRS

UID = "6f1c9a52-3d4e-4b7a-9c1f-0a2b3c4d5e6f"
NAMESPACE = "team-a"
IMAGE = "registry.example.com/mcpgate/gateway:test-1"
SETTINGS = RenderSettings(image=IMAGE)

CONFIG_HASH = "mcpgate.io/config-hash"
RENDERED_HASH = "mcpgate.io/rendered-hash"
SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/instance")
OWNED_KINDS = {
    "ConfigMap": "v1",
    "Deployment": "apps/v1",
    "Service": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
}

Body = dict[str, Any]


# --------------------------------------------------------------------------- helpers


@dataclass
class Example:
    folder: Path
    server: McpServer
    sources: dict[str, HttpApiDataSource]
    namespace: Namespace
    secret_values: list[str]
    # The raw YAML bodies, read independently of the models.
    server_body: Body
    source_bodies: dict[str, Body]


def with_uid(server: McpServer, uid: str = UID) -> McpServer:
    return server.model_copy(update={"metadata": server.metadata.model_copy(update={"uid": uid})})


def load_example(folder: Path, namespace: str = NAMESPACE) -> Example:
    manifests = load_manifests([folder], namespace)
    assert len(manifests.servers) == 1
    (server,) = manifests.servers.values()
    sources = {name: ds for (ns, name), ds in manifests.data_sources.items() if ns == namespace}
    secrets = {
        name: SecretInfo.from_values(name, s.values, s.type)
        for (ns, name), s in manifests.secrets.items()
        if ns == namespace
    }
    values = [v.decode() for s in manifests.secrets.values() for v in s.values.values()]
    bodies = [d.body for d in read_documents([folder])]
    (server_body,) = [b for b in bodies if b["kind"] == "McpServer"]
    source_bodies = {b["metadata"]["name"]: b for b in bodies if b["kind"] == "HttpApiDataSource"}
    return Example(
        folder=folder,
        server=with_uid(server),
        sources=sources,
        namespace=Namespace(namespace, data_sources=dict(sources), secrets=secrets),
        secret_values=values,
        server_body=server_body,
        source_bodies=source_bodies,
    )


def plan(example: Example, server: McpServer | None = None, **kwargs: Any) -> ServerPlan:
    return plan_server(server or example.server, example.namespace, SETTINGS, **kwargs)


def changed(server: McpServer, mutate: Callable[[Body], None]) -> McpServer:
    """The server after an edit of its wire form (the uid is kept)."""
    body = copy.deepcopy(wire(server))
    mutate(body)
    return McpServer.model_validate(body)


def changed_source(source: HttpApiDataSource, mutate: Callable[[Body], None]) -> HttpApiDataSource:
    body = copy.deepcopy(wire(source))
    mutate(body)
    return HttpApiDataSource.model_validate(body)


def by_kind(objs: list[Body]) -> dict[str, Body]:
    out: dict[str, Body] = {}
    for obj in objs:
        assert obj["kind"] not in out, f"two objects of kind {obj['kind']}"
        out[obj["kind"]] = obj
    return out


def deployment_of(objs: list[Body]) -> Body:
    return by_kind(objs)["Deployment"]


def pod_spec(objs: list[Body]) -> Body:
    spec: Body = deployment_of(objs)["spec"]["template"]["spec"]
    return spec


def container(objs: list[Body]) -> Body:
    (gateway,) = pod_spec(objs)["containers"]
    assert isinstance(gateway, dict)
    return gateway


def config_hash(objs: list[Body]) -> str:
    value: str = deployment_of(objs)["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
    return value


def config_json(objs: list[Body]) -> str:
    text: str = by_kind(objs)["ConfigMap"]["data"]["config.json"]
    return text


def walk_secret_key_refs(node: Any) -> Iterator[tuple[str, str]]:
    """Every `{name, key}` under a `...SecretRef` field of a raw YAML body."""
    if isinstance(node, dict):
        for field, value in node.items():
            if field.endswith("SecretRef") and isinstance(value, dict) and "key" in value:
                yield value["name"], value["key"]
            else:
                yield from walk_secret_key_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_secret_key_refs(item)


def expected_keys(example: Example) -> set[tuple[str, str]]:
    """(Secret, key) pairs the server's data sources read, from the raw YAML."""
    used = {t["dataSource"] for t in example.server_body["spec"].get("tools", [])}
    keys: set[tuple[str, str]] = set()
    for name in used:
        keys |= set(walk_secret_key_refs(example.source_bodies[name]["spec"]))
    return keys


def key_secret_name(example: Example) -> str | None:
    ref = example.server_body["spec"].get("authorization", {}).get("apiKeySecretRef")
    return ref["name"] if ref else None


def secret_volumes(pod: Body) -> list[Body]:
    return [v for v in pod["volumes"] if "secret" in v or "projected" in v]


def mounts_by_volume(gateway: Body) -> dict[str, Body]:
    out: dict[str, Body] = {}
    for mount in gateway["volumeMounts"]:
        assert mount["name"] not in out, f"volume {mount['name']} mounted twice"
        out[mount["name"]] = mount
    return out


def projected_items(pod: Body) -> list[tuple[str, str, str]]:
    """(secret, key, path) of every item of every projected volume."""
    items: list[tuple[str, str, str]] = []
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            secret = source["secret"]
            assert secret.get("items"), "a projected Secret must list its keys, not be whole"
            items.extend((secret["name"], i["key"], i["path"]) for i in secret["items"])
    return items


def credential_files(config: GatewayConfig) -> set[str]:
    """Every credential path the gateway configuration reads."""
    paths: set[str] = set()
    for source in config.data_sources.values():
        if source.tls.ca_file:
            paths.add(source.tls.ca_file)
        auth = source.auth
        for block in (auth.api_key, auth.bearer, auth.basic, auth.oauth2, auth.aws_sig_v4):
            if block is None:
                continue
            for field, value in block.model_dump().items():
                if field.endswith("_file") and value:
                    paths.add(value)
    return paths


EXAMPLES = pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)


@pytest.fixture
def quickstart() -> Example:
    return load_example(next(d for d in EXAMPLE_DIRS if d.name == "quickstart"))


# --------------------------------------------------------------------------- every example


def test_the_examples_are_all_here() -> None:
    assert len(EXAMPLE_DIRS) >= 9


@EXAMPLES
def test_example_is_planned_ready_to_apply(folder: Path) -> None:
    example = load_example(folder)
    result = plan(example)
    by_type = {c.type: c for c in result.conditions}
    assert by_type["Accepted"].ok, by_type["Accepted"]
    assert by_type["ResolvedRefs"].ok, by_type["ResolvedRefs"]
    assert result.objects, "objects are planned once Accepted and ResolvedRefs are True"
    assert result.config is not None


@EXAMPLES
def test_object_kinds_and_names(folder: Path) -> None:
    example = load_example(folder)
    name = example.server.metadata.name
    result = plan(example)
    got = sorted((o["kind"], o["metadata"]["name"]) for o in result.objects)
    wanted = [("ConfigMap", f"{name}-config"), ("Deployment", name), ("Service", name)]
    replicas = example.server_body["spec"].get("replicas", 1)
    autoscaling = example.server_body["spec"].get("autoscaling")
    if autoscaling:
        wanted.append(("HorizontalPodAutoscaler", name))
    if (autoscaling["minReplicas"] if autoscaling else replicas) > 1:
        wanted.append(("PodDisruptionBudget", name))
    assert got == sorted(wanted)
    absent = {"HorizontalPodAutoscaler", "PodDisruptionBudget"} - {kind for kind, _ in wanted}
    assert sorted(result.absent) == sorted((kind, name) for kind in absent)
    for obj in result.objects:
        assert obj["apiVersion"] == OWNED_KINDS[obj["kind"]]
        assert obj["metadata"]["namespace"] == NAMESPACE


@EXAMPLES
def test_labels_and_owner_reference_on_every_object(folder: Path) -> None:
    example = load_example(folder)
    name = example.server.metadata.name
    for obj in plan(example).objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mcpgate-gateway"
        assert labels["app.kubernetes.io/instance"] == name
        assert labels["app.kubernetes.io/part-of"] == "mcpgate"
        assert labels["app.kubernetes.io/managed-by"] == "mcpgate-operator"
        assert labels["app.kubernetes.io/component"] == "gateway"
        assert all(key.startswith("app.kubernetes.io/") for key in labels)
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "McpServer",
            "name": name,
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@EXAMPLES
def test_config_map_holds_the_gateway_configuration(folder: Path) -> None:
    example = load_example(folder)
    result = plan(example)
    config_map = by_kind(result.objects)["ConfigMap"]
    assert set(config_map["data"]) == {"config.json"}
    assert "binaryData" not in config_map
    config = GatewayConfig.model_validate_json(config_map["data"]["config.json"])
    assert config == result.config
    spec = example.server_body["spec"]
    assert config.server_name == example.server.metadata.name
    assert config.namespace == NAMESPACE
    assert [t.name for t in config.tools] == [t["name"] for t in spec["tools"]]
    assert [t.description for t in config.tools] == [t["description"] for t in spec["tools"]]
    used = list(dict.fromkeys(t["dataSource"] for t in spec["tools"]))
    assert list(config.data_sources) == used
    for name in used:
        assert config.data_sources[name].base_url == example.source_bodies[name]["spec"]["baseUrl"]
    authorization = spec.get("authorization", {})
    assert config.authorization.type == authorization.get("type", "None")
    assert config.allowed_origins == tuple(spec.get("allowedOrigins", []))


@EXAMPLES
def test_no_secret_value_in_any_rendered_object(folder: Path) -> None:
    example = load_example(folder)
    if expected_keys(example) or key_secret_name(example):
        assert example.secret_values
    result = plan(example)
    texts = [json.dumps(o) for o in result.objects]
    texts.append(json.dumps(result.status, default=repr))
    texts.extend(f"{c.reason} {c.message}" for c in result.conditions)
    for value in example.secret_values:
        assert value
        for text in texts:
            assert value not in text


@EXAMPLES
def test_deployment_container(folder: Path) -> None:
    example = load_example(folder)
    objs = plan(example).objects
    gateway = container(objs)
    assert gateway["image"] == IMAGE
    assert gateway["imagePullPolicy"] == SETTINGS.image_pull_policy
    args = gateway["args"]
    assert args[:3] == ["gateway", "--config", "/etc/mcpgate/config.json"]
    assert args[3:] == ["--log-level", SETTINGS.log_level]
    assert "command" not in gateway
    ports = {p["name"]: p for p in gateway["ports"]}
    assert ports["http"]["containerPort"] == 8080
    assert ports["http"]["protocol"] == "TCP"
    # The metrics port is the gateway's own, apart from /mcp (API.md "The MCP endpoint").
    assert ports["metrics"]["containerPort"] == 9090
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["lifecycle"]["preStop"]
    assert gateway["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    assert gateway["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert gateway["resources"] == SETTINGS.default_resources
    assert not any("valueFrom" in e for e in gateway.get("env", []))
    assert "envFrom" not in gateway


@EXAMPLES
def test_deployment_pod(folder: Path) -> None:
    example = load_example(folder)
    name = example.server.metadata.name
    objs = plan(example).objects
    deployment = deployment_of(objs)
    spec = deployment["spec"]
    assert spec["replicas"] == example.server_body["spec"].get("replicas", 1)
    assert spec["selector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "mcpgate-gateway",
            "app.kubernetes.io/instance": name,
        }
    }
    template_labels = spec["template"]["metadata"]["labels"]
    for key, value in spec["selector"]["matchLabels"].items():
        assert template_labels[key] == value
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == SETTINGS.run_as_user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["terminationGracePeriodSeconds"] > gateway_prestop(objs)
    for field in (
        "nodeSelector",
        "tolerations",
        "affinity",
        "imagePullSecrets",
        "priorityClassName",
        "topologySpreadConstraints",
    ):
        assert field not in pod, f"{field} is set only when the podTemplate gives it"
    # The ConfigMap is mounted read-only where the args point.
    (config_volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert config_volume["configMap"]["name"] == f"{name}-config"
    mount = mounts_by_volume(container(objs))[config_volume["name"]]
    assert mount["mountPath"] == "/etc/mcpgate"
    assert mount["readOnly"] is True


def gateway_prestop(objs: list[Body]) -> int:
    seconds: int = container(objs)["lifecycle"]["preStop"]["sleep"]["seconds"]
    return seconds


@EXAMPLES
def test_credential_volumes_hold_exactly_the_referenced_keys(folder: Path) -> None:
    example = load_example(folder)
    result = plan(example)
    assert result.config is not None
    pod = pod_spec(result.objects)
    gateway = container(result.objects)
    mounts = mounts_by_volume(gateway)
    wanted = expected_keys(example)

    items = projected_items(pod)
    assert len(items) == len(set(items)), "a key is projected once"
    assert {(s, k) for s, k, _ in items} == wanted
    assert all(path == f"{s}/{k}" for s, k, path in items)

    projected = [v for v in pod["volumes"] if "projected" in v]
    if wanted:
        (volume,) = projected
        mount = mounts[volume["name"]]
        assert mount["readOnly"] is True
        assert mount["mountPath"] == result.config.credentials_dir
    else:
        assert projected == []
    # Every credential the configuration reads is mounted, and nothing else is.
    assert credential_files(result.config) == {path for _, _, path in items}

    key_secret = key_secret_name(example)
    whole = [v for v in pod["volumes"] if "secret" in v]
    if key_secret is None:
        assert whole == []
        assert result.config.authorization.api_keys_dir is None
    else:
        (volume,) = whole
        assert volume["secret"]["secretName"] == key_secret
        assert "items" not in volume["secret"], "the key Secret is mounted whole"
        mount = mounts[volume["name"]]
        assert mount["readOnly"] is True
        assert mount["mountPath"] == result.config.authorization.api_keys_dir
        assert mount["mountPath"] != result.config.credentials_dir
        assert "subPath" not in mount, "a subPath mount would not see new keys"
    # Every Secret-backed mount is read-only, and no other volume names a Secret.
    assert len(secret_volumes(pod)) == (1 if wanted else 0) + (1 if key_secret else 0)
    for volume in secret_volumes(pod):
        assert mounts[volume["name"]]["readOnly"] is True


@EXAMPLES
def test_service(folder: Path) -> None:
    example = load_example(folder)
    name = example.server.metadata.name
    service = by_kind(plan(example).objects)["Service"]
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["selector"] == {
        "app.kubernetes.io/name": "mcpgate-gateway",
        "app.kubernetes.io/instance": name,
    }
    (port,) = spec["ports"]
    assert port["port"] == example.server_body["spec"].get("service", {}).get("port", 8080)
    assert port["targetPort"] == "http"
    assert port["name"] == "http"
    assert all(p.get("targetPort") != "metrics" and p["port"] != 9090 for p in spec["ports"])


@EXAMPLES
def test_status(folder: Path) -> None:
    example = load_example(folder)
    name = example.server.metadata.name
    result = plan(example)
    assert result.status["url"] == f"http://{name}.{NAMESPACE}.svc.cluster.local:8080/mcp"
    assert result.status["tools"] == len(example.server_body["spec"]["tools"])
    assert result.status["readyReplicas"] == 0


@EXAMPLES
def test_rendered_hash_is_stable_and_follows_the_object(folder: Path) -> None:
    example = load_example(folder)
    first = plan(example).objects
    second = plan(example).objects
    assert first == second
    hashes = {o["kind"]: o["metadata"]["annotations"][RENDERED_HASH] for o in first}
    assert len(set(hashes.values())) == len(hashes), "each object has its own hash"
    # Editing a tool's description changes the ConfigMap and the Deployment (its
    # config hash), not the Service.
    edited = changed(example.server, lambda b: b["spec"]["tools"][0].update(description="New."))
    after = {
        o["kind"]: o["metadata"]["annotations"][RENDERED_HASH]
        for o in plan(example, edited).objects
    }
    assert after["ConfigMap"] != hashes["ConfigMap"]
    assert after["Deployment"] != hashes["Deployment"]
    assert after["Service"] == hashes["Service"]
    # The Service port changes only the Service.
    ported = changed(example.server, lambda b: b["spec"].update(service={"port": 9443}))
    moved = {
        o["kind"]: o["metadata"]["annotations"][RENDERED_HASH]
        for o in plan(example, ported).objects
    }
    assert moved["Service"] != hashes["Service"]
    assert moved["ConfigMap"] == hashes["ConfigMap"]
    assert moved["Deployment"] == hashes["Deployment"]


@EXAMPLES
def test_config_hash_follows_the_config_map_content_only(folder: Path) -> None:
    example = load_example(folder)
    base = plan(example).objects
    base_hash = config_hash(base)
    assert base_hash

    def same_config(server: McpServer) -> None:
        objs = plan(example, server).objects
        assert config_json(objs) == config_json(base)
        assert config_hash(objs) == base_hash

    def other_config(server: McpServer) -> list[Body]:
        objs = plan(example, server).objects
        assert config_json(objs) != config_json(base)
        assert config_hash(objs) != base_hash
        return objs

    other_config(
        changed(example.server, lambda b: b["spec"]["tools"][0].update(description="Changed."))
    )
    same_config(changed(example.server, lambda b: b["spec"].update(replicas=5)))
    same_config(
        changed(
            example.server,
            lambda b: b["spec"].update(
                podTemplate={
                    "spec": {"nodeSelector": {"pool": "gateways"}},
                    "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
                }
            ),
        )
    )
    same_config(changed(example.server, lambda b: b["spec"].update(service={"port": 9000})))
    same_config(with_uid(example.server, "another-uid"))

    # A data source's base URL is part of the configuration.
    name = example.server.spec.tools[0].data_source
    source = example.sources[name]
    moved = changed_source(
        source, lambda b: b["spec"].update(baseUrl="https://moved.example.com/v9")
    )
    example.namespace.data_sources[name] = moved
    try:
        objs = plan(example).objects
    finally:
        example.namespace.data_sources[name] = source
    assert config_hash(objs) != base_hash
    assert "https://moved.example.com/v9" in config_json(objs)


@EXAMPLES
def test_secret_values_do_not_reach_the_config_hash(folder: Path) -> None:
    """Rotating a Secret value changes no object: the gateway reads the new file."""
    example = load_example(folder)
    base = plan(example).objects
    rotated = {
        name: SecretInfo.from_values(name, dict.fromkeys(info.keys, b"rotated-value"), info.type)
        for name, info in example.namespace.secrets.items()
    }
    example.namespace.secrets = rotated
    assert plan(example).objects == base


# --------------------------------------------------------------------------- variants


def render(server: McpServer, sources: dict[str, HttpApiDataSource], **settings: Any) -> Any:
    """render_objects, with the configuration read as the gateway reads it."""
    config_json, objs, absent = render_objects(
        server, sources, RenderSettings(image=IMAGE, **settings)
    )
    return GatewayConfig.model_validate_json(config_json), objs, absent


def test_autoscaling_gives_an_hpa_and_leaves_replicas_to_it(quickstart: Example) -> None:
    server = changed(
        quickstart.server,
        lambda b: b["spec"].update(
            autoscaling={"minReplicas": 2, "maxReplicas": 7, "targetCPUUtilizationPercentage": 65},
            resources={"requests": {"cpu": "100m"}},
        ),
    )
    _, objs, absent = render(server, quickstart.sources)
    kinds = by_kind(objs)
    hpa = kinds["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["name"] == "quickstart"
    assert hpa["metadata"]["ownerReferences"][0]["controller"] is True
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "quickstart",
    }
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 7
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 65},
            },
        }
    ]
    assert "replicas" not in kinds["Deployment"]["spec"], "the HPA owns replicas"
    assert container(objs)["resources"] == {"requests": {"cpu": "100m"}}
    # minReplicas 2: more than one replica is wanted, so a PDB too.
    assert kinds["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert absent == []


def test_autoscaling_default_target_and_single_minimum(quickstart: Example) -> None:
    server = changed(
        quickstart.server,
        lambda b: b["spec"].update(
            autoscaling={"maxReplicas": 3}, resources={"requests": {"cpu": "1"}}
        ),
    )
    _, objs, absent = render(server, quickstart.sources)
    hpa = by_kind(objs)["HorizontalPodAutoscaler"]
    assert hpa["spec"]["minReplicas"] == 1
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": 80}
    assert "PodDisruptionBudget" not in by_kind(objs)
    assert absent == [("PodDisruptionBudget", "quickstart")]


def test_without_autoscaling_the_hpa_is_listed_absent(quickstart: Example) -> None:
    _, objs, absent = render(quickstart.server, quickstart.sources)
    assert "HorizontalPodAutoscaler" not in by_kind(objs)
    assert ("HorizontalPodAutoscaler", "quickstart") in absent


@pytest.mark.parametrize(
    ("replicas", "pdb"), [(None, False), (0, False), (1, False), (2, True), (5, True)]
)
def test_pdb_only_when_more_than_one_replica_is_wanted(
    quickstart: Example, replicas: int | None, pdb: bool
) -> None:
    server = changed(
        quickstart.server,
        lambda b: b["spec"].update(replicas=replicas) if replicas is not None else None,
    )
    _, objs, absent = render(server, quickstart.sources)
    kinds = by_kind(objs)
    assert kinds["Deployment"]["spec"]["replicas"] == (1 if replicas is None else replicas)
    if pdb:
        budget = kinds["PodDisruptionBudget"]
        assert budget["apiVersion"] == "policy/v1"
        assert budget["metadata"]["name"] == "quickstart"
        assert budget["spec"] == {
            "maxUnavailable": 1,
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "mcpgate-gateway",
                    "app.kubernetes.io/instance": "quickstart",
                }
            },
        }
        assert ("PodDisruptionBudget", "quickstart") not in absent
    else:
        assert "PodDisruptionBudget" not in kinds
        assert ("PodDisruptionBudget", "quickstart") in absent


def test_given_resources_replace_the_defaults(quickstart: Example) -> None:
    resources = {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    server = changed(quickstart.server, lambda b: b["spec"].update(resources=resources))
    _, objs, _ = render(server, quickstart.sources)
    assert container(objs)["resources"] == resources


def test_custom_default_resources_come_from_the_settings(quickstart: Example) -> None:
    default = {"requests": {"cpu": "10m"}}
    _, objs, _ = render(quickstart.server, quickstart.sources, default_resources=default)
    assert container(objs)["resources"] == default


def test_a_service_account_never_mounts_the_api_token(quickstart: Example) -> None:
    server = changed(quickstart.server, lambda b: b["spec"].update(serviceAccountName="gw-irsa"))
    _, objs, _ = render(server, quickstart.sources)
    pod = pod_spec(objs)
    assert pod["serviceAccountName"] == "gw-irsa"
    assert pod["automountServiceAccountToken"] is False


def test_pod_template_fields_are_passed_through(quickstart: Example) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "quickstart"}},
        }
    ]
    template = {
        "metadata": {
            "labels": {"team": "payments", "tier": "edge"},
            "annotations": {"prometheus.io/scrape": "true"},
        },
        "spec": {
            "nodeSelector": {"pool": "gateways"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "gw", "effect": "NoSchedule"},
                {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
            ],
            "affinity": affinity,
            "imagePullSecrets": [{"name": "registry-creds"}],
            "priorityClassName": "high",
            "topologySpreadConstraints": spread,
        },
    }
    server = changed(quickstart.server, lambda b: b["spec"].update(podTemplate=template))
    _, objs, _ = render(server, quickstart.sources)
    pod = pod_spec(objs)
    assert pod["nodeSelector"] == {"pool": "gateways"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "gw", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    assert pod["affinity"] == affinity
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert pod["priorityClassName"] == "high"
    assert pod["topologySpreadConstraints"] == spread
    meta = deployment_of(objs)["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "payments"
    assert meta["labels"]["tier"] == "edge"
    assert meta["annotations"]["prometheus.io/scrape"] == "true"
    assert CONFIG_HASH in meta["annotations"]
    # The podTemplate does not reach the other objects or the object labels.
    assert "team" not in deployment_of(objs)["metadata"]["labels"]
    assert "team" not in by_kind(objs)["Service"]["spec"]["selector"]


def test_empty_pod_template_sets_nothing(quickstart: Example) -> None:
    server = changed(
        quickstart.server,
        lambda b: b["spec"].update(
            podTemplate={"metadata": {}, "spec": {"nodeSelector": {}, "priorityClassName": ""}}
        ),
    )
    _, objs, _ = render(server, quickstart.sources)
    _, plain, _ = render(quickstart.server, quickstart.sources)
    assert pod_spec(objs) == pod_spec(plain)


def test_user_labels_and_annotations_cannot_override_what_the_operator_owns(
    quickstart: Example,
) -> None:
    template = {
        "metadata": {
            "labels": {
                "app.kubernetes.io/name": "hijack",
                "app.kubernetes.io/instance": "other",
                "extra": "yes",
            },
            "annotations": {CONFIG_HASH: "forged"},
        }
    }
    server = changed(quickstart.server, lambda b: b["spec"].update(podTemplate=template))
    _, objs, _ = render(server, quickstart.sources)
    _, plain, _ = render(quickstart.server, quickstart.sources)
    meta = deployment_of(objs)["spec"]["template"]["metadata"]
    assert meta["labels"]["app.kubernetes.io/name"] == "mcpgate-gateway"
    assert meta["labels"]["app.kubernetes.io/instance"] == "quickstart"
    assert meta["labels"]["extra"] == "yes"
    assert meta["annotations"][CONFIG_HASH] == config_hash(plain)
    assert deployment_of(objs)["spec"]["selector"] == deployment_of(plain)["spec"]["selector"]


def test_cluster_domain_and_port_make_the_url(quickstart: Example) -> None:
    server = changed(quickstart.server, lambda b: b["spec"].update(service={"port": 9443}))
    settings = RenderSettings(cluster_domain="k8s.internal")
    result = plan_server(server, quickstart.namespace, settings)
    assert result.status["url"] == "http://quickstart.team-a.svc.k8s.internal:9443/mcp"
    (port,) = by_kind(result.objects)["Service"]["spec"]["ports"]
    assert port["port"] == 9443
    assert port["targetPort"] == "http"


def test_server_without_namespace_renders_into_default() -> None:
    server = McpServer.model_validate(
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "McpServer",
            "metadata": {"name": "bare", "uid": UID},
            "spec": {},
        }
    )
    result = plan_server(server, Namespace("default"), RenderSettings())
    assert result.status["url"] == "http://bare.default.svc.cluster.local:8080/mcp"
    assert {o["metadata"]["namespace"] for o in result.objects} == {"default"}
    assert container(result.objects)["image"] == DEFAULT_IMAGE


def test_settings_image_pull_policy_and_user(quickstart: Example) -> None:
    _, objs, _ = render(
        quickstart.server, quickstart.sources, image_pull_policy="Always", run_as_user=4242
    )
    assert container(objs)["imagePullPolicy"] == "Always"
    assert pod_spec(objs)["securityContext"]["runAsUser"] == 4242


# ----------------------------------------------------------------- Secret mounts, variants


def source(name: str, auth: Body, *, tls: Body | None = None) -> HttpApiDataSource:
    spec: Body = {"baseUrl": f"https://{name}.example.com/api", "auth": auth}
    if tls is not None:
        spec["tls"] = tls
    return HttpApiDataSource.model_validate(
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "HttpApiDataSource",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
    )


def server_using(*sources: str, authorization: Body | None = None) -> McpServer:
    return McpServer.model_validate(
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "McpServer",
            "metadata": {"name": "multi-mcp", "namespace": NAMESPACE, "uid": UID},
            "spec": {
                "authorization": authorization or {"type": "None"},
                "tools": [
                    {"name": f"call_{i}", "dataSource": s, "request": {"path": "/x"}}
                    for i, s in enumerate(sources)
                ],
            },
        }
    )


def mounted_keys(objs: list[Body]) -> set[tuple[str, str]]:
    return {(s, k) for s, k, _ in projected_items(pod_spec(objs))}


def test_every_kind_of_secret_reference_is_mounted() -> None:
    sources = {
        "a": source(
            "a",
            {
                "type": "Basic",
                "basic": {
                    "usernameSecretRef": {"name": "basic", "key": "user"},
                    "passwordSecretRef": {"name": "basic", "key": "pass"},
                },
            },
            tls={"caSecretRef": {"name": "ca", "key": "ca.crt"}},
        ),
        "b": source(
            "b",
            {
                "type": "OAuth2ClientCredentials",
                "oauth2ClientCredentials": {
                    "tokenUrl": "https://login.example.com/token",
                    "clientIdSecretRef": {"name": "oauth", "key": "id"},
                    "clientSecretSecretRef": {"name": "oauth", "key": "secret"},
                },
            },
        ),
        "c": source(
            "c",
            {
                "type": "AwsSigV4",
                "awsSigV4": {
                    "region": "eu-west-1",
                    "service": "execute-api",
                    "accessKeyIdSecretRef": {"name": "aws", "key": "id"},
                    "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
                    "sessionTokenSecretRef": {"name": "aws", "key": "token"},
                },
            },
        ),
        "d": source(
            "d",
            {
                "type": "ApiKey",
                "apiKey": {"in": "Query", "valueSecretRef": {"name": "key", "key": "v"}},
            },
        ),
    }
    server = server_using("a", "b", "c", "d")
    config, objs, _ = render(server, sources)
    assert mounted_keys(objs) == {
        ("basic", "user"),
        ("basic", "pass"),
        ("ca", "ca.crt"),
        ("oauth", "id"),
        ("oauth", "secret"),
        ("aws", "id"),
        ("aws", "secret"),
        ("aws", "token"),
        ("key", "v"),
    }
    assert credential_files(config) == {p for _, _, p in projected_items(pod_spec(objs))}
    # One projected source per Secret, its items listing only the referenced keys.
    sources_by_secret = [
        s["secret"]["name"]
        for v in pod_spec(objs)["volumes"]
        for s in v.get("projected", {}).get("sources", [])
    ]
    assert sorted(sources_by_secret) == sorted(set(sources_by_secret))


def test_shared_secret_keys_are_projected_once() -> None:
    auth = {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "shared", "key": "token"}}}
    sources = {"a": source("a", auth), "b": source("b", auth)}
    _, objs, _ = render(server_using("a", "b"), sources)
    assert projected_items(pod_spec(objs)) == [("shared", "token", "shared/token")]


def test_unused_data_sources_are_not_mounted() -> None:
    sources = {
        "a": source("a", {"type": "None"}),
        "b": source(
            "b", {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "b", "key": "t"}}}
        ),
    }
    config, objs, _ = render(server_using("a"), sources)
    assert list(config.data_sources) == ["a"]
    assert secret_volumes(pod_spec(objs)) == []
    assert all(v["name"] != "credentials" for v in container(objs)["volumeMounts"])


def test_ambient_aws_mounts_no_keys() -> None:
    sources = {
        "a": source("a", {"type": "AwsSigV4", "awsSigV4": {"region": "eu-west-1", "service": "s3"}})
    }
    _, objs, _ = render(server_using("a"), sources, allow_ambient_aws_credentials=True)
    assert secret_volumes(pod_spec(objs)) == []


@pytest.mark.parametrize("mode", ["ApiKey", "BearerPassthrough"])
def test_key_secret_is_mounted_whole_apart_from_the_keys(mode: str) -> None:
    auth = {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "keys", "key": "token"}}}
    sources = {"a": source("a", auth)}
    server = server_using("a", authorization={"type": mode, "apiKeySecretRef": {"name": "keys"}})
    config, objs, _ = render(server, sources)
    pod = pod_spec(objs)
    mounts = mounts_by_volume(container(objs))
    (whole,) = [v for v in pod["volumes"] if "secret" in v]
    assert whole["secret"]["secretName"] == "keys"
    assert "items" not in whole["secret"]
    assert mounts[whole["name"]]["mountPath"] == config.authorization.api_keys_dir
    assert mounts[whole["name"]]["readOnly"] is True
    # The same Secret's key read by a data source is projected on its own, read-only.
    assert projected_items(pod) == [("keys", "token", "keys/token")]
    assert config.authorization.type == mode


def test_default_resources_are_copied(quickstart: Example) -> None:
    settings = RenderSettings()
    _, objs, _ = render_objects(quickstart.server, quickstart.sources, settings)
    container(objs)["resources"]["limits"]["memory"] = "8Gi"
    _, again, _ = render_objects(quickstart.server, quickstart.sources, settings)
    assert container(again)["resources"]["limits"]["memory"] == "256Mi"


def test_constants_match_the_contract() -> None:
    assert objects_module.CONFIG_HASH_ANNOTATION == CONFIG_HASH
    assert objects_module.HASH_ANNOTATION == RENDERED_HASH
    assert objects_module.config_map_name("x") == "x-config"


def test_namespace_is_part_of_the_configuration() -> None:
    """The namespace is part of the configuration: the same server in two namespaces has
    two configurations (and two hashes)."""
    a = load_example(next(d for d in EXAMPLE_DIRS if d.name == "quickstart"), "ns-a")
    b = load_example(next(d for d in EXAMPLE_DIRS if d.name == "quickstart"), "ns-b")
    objs_a, objs_b = plan(a).objects, plan(b).objects
    assert json.loads(config_json(objs_a))["namespace"] == "ns-a"
    assert config_hash(objs_a) != config_hash(objs_b)
