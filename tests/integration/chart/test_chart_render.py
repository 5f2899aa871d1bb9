"""The Helm chart, rendered and linted by Helm's own engine (PyPI helm-python-sdk), and
every object it renders checked against Kubernetes' own schemas (PyPI kubernetes-validate,
strict: unknown fields are errors)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from mcpgate.render.objects import OWNED_KINDS
from mcpgate.render.settings import DEFAULT_IMAGE

from support.paths import CRDS, DOCS, ROOT

CHART = ROOT / "charts" / "mcpgate"
RELEASE_NAMESPACE = "mcpgate-system"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the
# validator knows.
KUBE_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())

NAMESPACED: dict[str, Any] = {"watchNamespaces": ["team-a", "team-b"]}
# Every optional part of every template switched on, and every value changed.
FULL: dict[str, Any] = {
    "nameOverride": "mcp",
    "fullnameOverride": "platform-mcpgate",
    "image": {
        "repository": "registry.example.com/platform/mcpgate",
        "tag": "0.1.0-rc1",
        "pullPolicy": "Always",
    },
    "imagePullSecrets": [{"name": "registry-creds"}],
    "replicaCount": 0,
    "watchNamespaces": ["team-a"],
    "logLevel": "debug",
    "clusterDomain": "corp.internal",
    "gateway": {
        "image": {
            "repository": "mirror.example.com/mcpgate",
            "tag": "0.1.0",
            "pullPolicy": "Never",
        },
        "logLevel": "warning",
        "allowAmbientAwsCredentials": True,
        "allowLoopbackDestinations": True,
    },
    "crds": {"enabled": True, "keep": False},
    "serviceAccount": {
        "create": True,
        "name": "mcpgate-operator",
        "annotations": {"example.com/owner": "platform"},
    },
    "rbac": {"create": True},
    "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    "podAnnotations": {"prometheus.io/scrape": "false"},
    "podLabels": {"team": "platform"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                        ]
                    }
                ]
            }
        }
    },
    "priorityClassName": "system-cluster-critical",
}
CONFIGS: dict[str, Any] = {"default": None, "namespaced": NAMESPACED, "full": FULL}

Obj = dict[str, Any]


def _one(objects: list[Obj], kind: str) -> Obj:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def _container(objects: list[Obj]) -> Obj:
    (container,) = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _args(objects: list[Obj]) -> dict[str, str]:
    """`--flag=value` arguments of the operator container (`--flag` alone: "")."""
    args = _container(objects)["args"]
    assert args[0] == "operator"
    out = {}
    for arg in args[1:]:
        flag, _, value = arg.partition("=")
        out[flag] = value
    return out


# --- Chart.yaml, the CRDs -------------------------------------------------------------------


def test_versions_follow_the_package(chart: helm_python.Chart) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart.metadata["apiVersion"] == "v2"
    assert chart.metadata["name"] == "mcpgate"
    assert chart.metadata["appVersion"] == version
    assert chart.metadata["version"] == version


def test_the_chart_crds_are_the_repository_crds_byte_for_byte() -> None:
    ours = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    theirs = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    assert ours.keys() == theirs.keys()
    for name, data in theirs.items():
        assert ours[name] == data, f"charts/mcpgate/files/crds/{name} differs from crds/{name}"


def test_rendered_crds_are_the_crds_plus_labels_and_keep(render: Any) -> None:
    sources = {doc["metadata"]["name"]: doc for doc in map(_yaml, CRDS.glob("*.yaml"))}
    rendered = {
        o["metadata"]["name"]: o for o in render() if o["kind"] == "CustomResourceDefinition"
    }
    assert rendered.keys() == sources.keys()
    for name, crd in rendered.items():
        source = sources[name]
        assert {k: v for k, v in crd.items() if k != "metadata"} == {
            k: v for k, v in source.items() if k != "metadata"
        }
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"].items() >= source["metadata"]["labels"].items()
        assert crd["metadata"]["labels"]["app.kubernetes.io/component"] == "crds"
        assert "namespace" not in crd["metadata"]

    not_kept = [
        o for o in render({"crds": {"keep": False}}) if o["kind"] == "CustomResourceDefinition"
    ]
    assert len(not_kept) == len(sources)
    assert all("annotations" not in o["metadata"] for o in not_kept)
    assert not [
        o for o in render({"crds": {"enabled": False}}) if o["kind"] == "CustomResourceDefinition"
    ]


def _yaml(path: Path) -> Obj:
    data: Obj = yaml.safe_load(path.read_text())
    return data


# --- lint, schema ---------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_helm_lint_passes_without_warnings(config: str) -> None:
    for strict in (False, True):
        report = helm_python.lint(
            CHART, CONFIGS[config], strict=strict, namespace=RELEASE_NAMESPACE
        )
        assert report["errors"] == []
        # severity 1 is INFO (only "icon is recommended"); 2 WARNING, 3 ERROR.
        assert [m for m in report["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 1}, "additional properties 'replicas' not allowed"),
        ({"gateway": {"image": {"digest": "sha256:0"}}}, "'digest' not allowed"),
        ({"serviceAccount": {"automount": True}}, "'automount' not allowed"),
        ({"resources": {"request": {"cpu": "1"}}}, "'request' not allowed"),
        ({"replicaCount": "1"}, "got string, want integer"),
        ({"replicaCount": 2}, "maximum"),
        ({"crds": {"enabled": "yes"}}, "got string, want boolean"),
        ({"watchNamespaces": "team-a"}, "got string, want array"),
        ({"watchNamespaces": ["Team_A"]}, "does not match pattern"),
        ({"logLevel": "trace"}, "value must be one of"),
        ({"gateway": {"image": {"pullPolicy": "Sometimes"}}}, "value must be one of"),
        ({"tolerations": [{"key": "a", "effects": "NoSchedule"}]}, "'effects' not allowed"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    ],
)
def test_values_violating_the_schema_are_refused(
    chart: helm_python.Chart, values: Obj, complaint: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(complaint)):
        chart.render(values=values, name="mcpgate", namespace=RELEASE_NAMESPACE)
    report = helm_python.lint(CHART, values, namespace=RELEASE_NAMESPACE)
    assert any(m["severity"] == 3 for m in report["messages"])


def test_global_is_allowed(render: Any) -> None:
    assert render({"global": {"imageRegistry": "example.com", "anything": [1, 2]}})


def test_the_schema_refuses_unknown_keys_everywhere(chart: helm_python.Chart) -> None:
    """Every object of the schema with properties has additionalProperties false; objects
    without are maps of strings, or Kubernetes' own types passed through (global, the
    parts of an affinity)."""
    schema = chart.schema
    assert schema is not None
    passthrough = {
        "/global",
        *(f"/affinity/{k}" for k in ("nodeAffinity", "podAffinity", "podAntiAffinity")),
    }

    def walk(node: Obj, path: str) -> None:
        if node.get("type") == "object":
            if "properties" in node:
                assert node.get("additionalProperties") is False, path
                for key, child in node["properties"].items():
                    walk(child, f"{path}/{key}")
            elif path not in passthrough:
                assert isinstance(node.get("additionalProperties"), dict), path
        if node.get("type") == "array":
            walk(node["items"], f"{path}/*")

    walk(schema, "")


def test_every_value_is_documented_and_in_the_schema(chart: helm_python.Chart) -> None:
    """values.yaml: every key of the schema has a comment right above it; the schema has
    every key of values.yaml, no more; docs/install.md has a row for each."""
    schema = chart.schema
    assert schema is not None

    def schema_keys(node: Obj, path: str) -> set[str]:
        out = {path} if path else set()
        for k, child in (node.get("properties") or {}).items():
            out |= schema_keys(child, f"{path}.{k}".lstrip("."))
        return out

    def value_keys(values: Any, node: Obj, path: str) -> set[str]:
        out = {path} if path else set()
        if isinstance(values, dict) and "properties" in node:
            for k, v in values.items():
                assert k in node["properties"], f"{path}.{k} is not in values.schema.json"
                out |= value_keys(v, node["properties"][k], f"{path}.{k}".lstrip("."))
        return out

    keys = value_keys(chart.values, schema, "")
    # Not in values.yaml: `global` (a parent chart's), an affinity's parts (empty by default).
    optional = {
        "global",
        "affinity.nodeAffinity",
        "affinity.podAffinity",
        "affinity.podAntiAffinity",
    }
    assert schema_keys(schema, "") - optional == keys

    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^( *)([A-Za-z][A-Za-z0-9]*):")
    stack: list[tuple[int, str]] = []
    commented = set()
    for number, line in enumerate(lines):
        match = key.match(line)
        if match is None:
            continue
        indent = len(match[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match[2]))
        path = ".".join(k for _, k in stack)
        if path in keys:
            above = lines[number - 1] if number else ""
            assert above.startswith(" " * indent + "#"), f"values.yaml:{number + 1}: no comment"
            commented.add(path)
    assert commented == keys

    install = (DOCS / "install.md").read_text()
    for name in keys:
        value = _get(chart.values, name)
        if not isinstance(value, dict) or not value or name == "resources":
            assert f"| `{name}` |" in install, f"docs/install.md does not document {name}"


def _get(values: Obj, dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


# --- what renders -----------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_every_object_is_valid_kubernetes(render: Any, config: str) -> None:
    objects = render(CONFIGS[config])
    assert objects
    for obj in objects:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                where = "/".join(str(p) for p in err.path)
                pytest.fail(
                    f"{obj['kind']} {obj['metadata']['name']} ({version}): {where}: {err.message}"
                )


def test_default_install(render: Any) -> None:
    objects = render()
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
    ]
    for obj in objects:
        if obj["kind"] in ("Deployment", "ServiceAccount"):
            assert obj["metadata"]["namespace"] == RELEASE_NAMESPACE
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mcpgate"

    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == _one(objects, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = _container(objects)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    # The liveness probe asks kopf's liveness endpoint, where --liveness puts it.
    probe = container["livenessProbe"]["httpGet"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == probe["port"])
    assert _args(objects)["--liveness"] == f"http://0.0.0.0:{port}{probe['path']}"
    # The chart's default gateway image is the operator's own default, and the operator's.
    assert container["image"] == DEFAULT_IMAGE
    args = _args(objects)
    assert args["--image"] == DEFAULT_IMAGE
    assert args["--cluster-domain"] == "cluster.local"
    assert "--namespace" not in args
    assert "--allow-ambient-aws-credentials" not in args
    assert "--allow-loopback-destinations" not in args  # for local clusters only
    assert "--peering" not in args

    subjects = _one(objects, "ClusterRoleBinding")["subjects"]
    assert subjects == [
        {"kind": "ServiceAccount", "name": "mcpgate", "namespace": RELEASE_NAMESPACE}
    ]


def _rules(objects: list[Obj]) -> list[Obj]:
    return [r for o in objects if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]


@pytest.mark.parametrize("config", CONFIGS)
def test_rbac_is_narrow(render: Any, config: str) -> None:
    objects = render(CONFIGS[config])
    for rule in _rules(objects):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
            assert rule["resources"] == ["secrets"]
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
        assert not {"roles", "clusterroles", "rolebindings", "clusterrolebindings", "pods"} & set(
            rule["resources"]
        )


@pytest.mark.parametrize("config", CONFIGS)
def test_rbac_grants_the_owned_kinds_of_the_operators_table(render: Any, config: str) -> None:
    """The chart cannot import render.objects.OWNED_KINDS: this keeps it in step. Each owned
    kind is read, watched, created and patched; only the optional ones are deleted."""
    rules = _rules(render(CONFIGS[config]))
    for owned in OWNED_KINDS:
        verbs = {
            verb
            for rule in rules
            if owned.group in rule["apiGroups"] and owned.plural in rule["resources"]
            for verb in rule["verbs"]
        }
        wanted = {"get", "list", "watch", "create", "patch"} | (
            {"delete"} if owned.optional else set()
        )
        assert verbs == wanted, owned.kind


def test_namespaced_install(render: Any) -> None:
    objects = render(NAMESPACED)
    assert _args(objects)["--namespace"] == "team-a,team-b"
    roles = [o for o in objects if o["kind"] == "Role"]
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(o["metadata"]["namespace"] for o in roles) == ["team-a", "team-b"]
    assert sorted(o["metadata"]["namespace"] for o in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == RELEASE_NAMESPACE
    # Cluster-wide: only kopf's reads of CRDs and namespaces.
    cluster_rules = _one(objects, "ClusterRole")["rules"]
    assert {
        (g, r, v)
        for rule in cluster_rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    } == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    assert (
        _one(objects, "ClusterRoleBinding")["roleRef"]["name"]
        == _one(objects, "ClusterRole")["metadata"]["name"]
    )


def test_full_configuration(render: Any) -> None:
    objects = render(FULL)
    deployment = _one(objects, "Deployment")
    assert deployment["metadata"]["name"] == "platform-mcpgate"
    assert deployment["spec"]["replicas"] == 0
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"] == FULL["podAnnotations"]
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "mcp"
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert pod["spec"][key] == FULL[key], key
    assert pod["spec"]["serviceAccountName"] == "mcpgate-operator"
    container = _container(objects)
    assert container["image"] == "registry.example.com/platform/mcpgate:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == FULL["resources"]
    args = _args(objects)
    assert args == {
        "--log-level": "debug",
        "--liveness": "http://0.0.0.0:8081/healthz",
        "--namespace": "team-a",
        "--image": "mirror.example.com/mcpgate:0.1.0",
        "--image-pull-policy": "Never",
        "--gateway-log-level": "warning",
        "--cluster-domain": "corp.internal",
        "--allow-ambient-aws-credentials": "",
        "--allow-loopback-destinations": "",
    }
    account = _one(objects, "ServiceAccount")
    assert account["metadata"]["name"] == "mcpgate-operator"
    assert account["metadata"]["annotations"] == FULL["serviceAccount"]["annotations"]
    for binding in (o for o in objects if o["kind"].endswith("Binding")):
        assert binding["subjects"][0]["name"] == "mcpgate-operator"


def test_the_gateway_image_follows_the_operator_image(render: Any) -> None:
    objects = render({"image": {"repository": "mirror.example.com/mcpgate", "tag": "1.2.3"}})
    assert _args(objects)["--image"] == "mirror.example.com/mcpgate:1.2.3"
    objects = render({"gateway": {"image": {"tag": "1.2.4"}}})
    assert _args(objects)["--image"] == "ghcr.io/mcpgate/mcpgate:1.2.4"


def test_without_rbac_or_service_account(chart: helm_python.Chart, render: Any) -> None:
    objects = render(
        {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}}
    )
    assert sorted(o["kind"] for o in objects) == ["CustomResourceDefinition"] * 2 + ["Deployment"]
    assert _one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    with pytest.raises(helm_python.HelmRenderError, match=r"serviceAccount\.name is required"):
        chart.render(values={"serviceAccount": {"create": False}}, name="mcpgate")


@pytest.mark.parametrize("config", [*CONFIGS, "no-crds"])
def test_notes_say_what_to_run_next(notes: Any, config: str) -> None:
    values = CONFIGS.get(config, {"crds": {"enabled": False}})
    text = notes(values)
    kubectl = "kubectl -n team-a" if values and "watchNamespaces" in values else "kubectl"
    assert f"{kubectl} apply -f examples/quickstart/" in text
    assert f"{kubectl} get mcpservers" in text
    assert f"{kubectl} wait --for=condition=Ready mcpserver/quickstart" in text
    assert "rollout status deployment/" in text
    assert ("crds.enabled=false" in text) == (config == "no-crds")


def test_values_yaml_and_schema_parse(chart: helm_python.Chart) -> None:
    """values.yaml is valid against its own schema, and the schema is a JSON document."""
    json.loads((CHART / "values.schema.json").read_text())
    chart.validate_schema(chart.values)
