"""The chart against the running operator: its RBAC allows exactly what the operator
does, and the objects it renders, applied to the API emulator, run an operator that
reconciles an McpServer to Ready with the chart's settings.

The operator runs for real (kopf, our handlers, our client) in a thread against the
emulator (tests/support/kube_api.py), which records every request in RBAC terms. The
test's own requests carry a User-Agent of their own and are left out of what the
operator is said to have done.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import httpx
import kmock
import pytest

from mcpgate import cli
from mcpgate.controller import main as controller_main
from mcpgate.controller.handlers import ControllerSettings
from mcpgate.manifests import read_documents

from support.kube import KubeEnv, kube_environment
from support.kube_api import ApiCall, KubeApi, serve_kube_api
from support.operator import operator_in_thread
from support.paths import EXAMPLES
from support.poll import wait_for

pytest_plugins = ["support.kube"]

Obj = dict[str, Any]
T = TypeVar("T")
TEST_AGENT = "mcpgate-chart-test"
RELEASE_NAMESPACE = "mcpgate-system"
SERVICE_ACCOUNT = ("mcpgate-system", "mcpgate")
MCPSERVERS = "mcpgate.io/v1alpha1/mcpservers"

# Granted although the emulator never sees a request for it, each with the reason.
NEEDED_BUT_NOT_EXERCISED = {
    # The owner references of the operator's objects set blockOwnerDeletion: true. Where the
    # OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift, hardened
    # clusters), only who may update the owner's finalizers may set it; the emulator runs
    # no admission plugins.
    ("mcpgate.io", "mcpservers/finalizers", "update"),
}

# Resources the chart creates that the emulator does not serve out of the box (the
# operator never touches them): declared as a real API server's discovery has them.
CHART_RESOURCES = {
    "v1/serviceaccounts": kmock.ResourceInfo(
        kind="ServiceAccount", singular="serviceaccount", namespaced=True
    ),
    "rbac.authorization.k8s.io/v1/clusterroles": kmock.ResourceInfo(
        kind="ClusterRole", singular="clusterrole", namespaced=False
    ),
    "rbac.authorization.k8s.io/v1/clusterrolebindings": kmock.ResourceInfo(
        kind="ClusterRoleBinding", singular="clusterrolebinding", namespaced=False
    ),
    "rbac.authorization.k8s.io/v1/roles": kmock.ResourceInfo(
        kind="Role", singular="role", namespaced=True
    ),
    "rbac.authorization.k8s.io/v1/rolebindings": kmock.ResourceInfo(
        kind="RoleBinding", singular="rolebinding", namespaced=True
    ),
}
PLURALS = {
    "Secret": "secrets",
    "HttpApiDataSource": "httpapidatasources",
    "McpServer": "mcpservers",
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "Deployment": "deployments",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "CustomResourceDefinition": "customresourcedefinitions",
}


# --- the test's own requests ---------------------------------------------------------------


class Client:
    """JSON requests to the emulator as the test (not the operator) makes them."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.http = httpx.Client(
            base_url=api.server, headers={"User-Agent": TEST_AGENT}, timeout=10
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def patch(self, path: str, patch: Obj) -> Obj:
        reply = self.http.patch(
            path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )
        assert reply.status_code == 200, reply.text
        body: Obj = reply.json()
        return body

    def post(self, path: str, obj: Obj) -> Obj:
        reply = self.http.post(path, json=obj)
        assert reply.status_code == 201, reply.text
        body: Obj = reply.json()
        return body

    def delete(self, path: str) -> None:
        reply = self.http.delete(path)
        assert reply.status_code == 200, reply.text

    def apply(self, folder: Path, namespace: str) -> list[Obj]:
        """The example's manifests in ``namespace``, in dependency order: those of the
        operator's kinds (the quickstart's demo API Deployment is no concern of the
        emulator, which runs no pods)."""
        order = {"Secret": 0, "HttpApiDataSource": 1, "McpServer": 2}
        docs = [copy.deepcopy(d.body) for d in read_documents([folder]) if d.body["kind"] in order]
        for doc in sorted(docs, key=lambda d: order[d["kind"]]):
            doc["metadata"]["namespace"] = namespace
            self.post(_collection_path(doc), doc)
        return docs


def _resource(obj: Obj) -> str:
    """``v1/secrets``, ``mcpgate.io/v1alpha1/mcpservers``: as `KubeApi.read` names them."""
    return f"{obj['apiVersion']}/{PLURALS[obj['kind']]}"


def _collection_path(obj: Obj) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    namespace = obj["metadata"].get("namespace")
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{where}/{PLURALS[obj['kind']]}"


async def until(check: Callable[[], T]) -> T:
    """`wait_for`, with room for a loaded machine (the operator shares its 2 cores)."""
    result: T = await wait_for(check, within=30)
    return result


def _read(api: KubeApi, resource: str, ns: str, name: str) -> Obj:
    obj: Obj | None = api.read(resource, ns, name)
    assert obj is not None, f"{resource} {ns}/{name} does not exist"
    return obj


def _condition(api: KubeApi, ns: str, name: str, kind: str) -> Obj:
    obj = _read(api, MCPSERVERS, ns, name)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    raise LookupError(kind)


def _server_name(docs: Iterable[Obj]) -> str:
    return str(next(d["metadata"]["name"] for d in docs if d["kind"] == "McpServer"))


def _deployment_status(client: Client, ns: str, name: str, *, ready: bool = True) -> None:
    """What the Deployment controller and kubelet report (the emulator runs neither)."""
    deployment = _read(client.api, "apps/v1/deployments", ns, name)
    replicas = deployment["spec"].get("replicas", 1)
    count = replicas if ready else 0
    client.patch(
        f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/status",
        {
            "status": {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": count,
                "availableReplicas": count,
            }
        },
    )


async def _reported(
    client: Client, ns: str, name: str, condition: str, status: str, *, ready: bool = True
) -> None:
    """Report the Deployment's status, as its controller would, until the McpServer's
    `condition` is `status`. The operator may roll the Deployment (a new generation) at
    any moment, as after a data source change, so each new generation is reported again:
    a status for an older one reads as still rolling out."""

    def check() -> bool:
        deployment = _read(client.api, "apps/v1/deployments", ns, name)
        observed = (deployment.get("status") or {}).get("observedGeneration")
        available = (deployment.get("status") or {}).get("availableReplicas")
        expected = deployment["spec"].get("replicas", 1) if ready else 0
        if observed != deployment["metadata"]["generation"] or available != expected:
            _deployment_status(client, ns, name, ready=ready)
        return bool(_condition(client.api, ns, name, condition)["status"] == status)

    await until(lambda: _read(client.api, "apps/v1/deployments", ns, name))
    await until(check)


async def _ready(client: Client, ns: str, name: str) -> None:
    await _reported(client, ns, name, "Ready", "True")


# --- what the operator did, and what the chart grants -----------------------------------------


def operator_calls(api: KubeApi) -> list[ApiCall]:
    """`api.calls` (resource requests in RBAC terms) of the operator alone: the emulator
    logs each resource request to ``api.calls`` in the order it logs every request, so
    the two line up; the test's requests are told apart by their User-Agent."""
    requests = [
        r
        for r in list(api)
        if r.resource is not None and r.resource.group is not None and r.resource.plural
    ]
    calls = list(api.calls)
    assert len(requests) == len(calls)
    return [
        c for r, c in zip(requests, calls, strict=True) if r.headers.get("User-Agent") != TEST_AGENT
    ]


class Grant(NamedTuple):
    namespace: str | None  # None: cluster-wide (a ClusterRole bound by a ClusterRoleBinding)
    group: str
    resource: str
    verb: str


def granted(objects: list[Obj], subject: tuple[str, str] = SERVICE_ACCOUNT) -> set[Grant]:
    """Every (scope, group, resource, verb) the rendered RBAC grants the ServiceAccount,
    wildcards refused."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["rules"]
        for o in objects
        if o["kind"] in ("ClusterRole", "Role")
    }
    grants: set[Grant] = set()
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        namespace = (
            binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        )
        if not any(
            s["kind"] == "ServiceAccount" and (s["namespace"], s["name"]) == subject
            for s in binding["subjects"]
        ):
            continue
        ref = binding["roleRef"]
        role_ns = namespace if ref["kind"] == "Role" else None
        for rule in roles[(ref["kind"], role_ns, ref["name"])]:
            assert "resourceNames" not in rule, rule
            assert "nonResourceURLs" not in rule, rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), f"a wildcard: {rule}"
                        grants.add(Grant(namespace, group, resource, verb))
    return grants


def allows(grants: set[Grant], call: ApiCall) -> bool:
    scopes = {None} if call.namespace is None else {None, call.namespace}
    return any(
        Grant(scope, call.group, call.rbac_resource, call.verb) in grants for scope in scopes
    )


def check_rbac(api: KubeApi, objects: list[Obj]) -> set[tuple[str, str, str]]:
    calls = operator_calls(api)
    grants = granted(objects)
    denied = sorted({c for c in calls if not allows(grants, c)})
    assert denied == [], "the chart's RBAC does not allow these requests of the operator"
    used = {(c.group, c.rbac_resource, c.verb) for c in calls}
    unused = {(g.group, g.resource, g.verb) for g in grants} - used
    assert unused == NEEDED_BUT_NOT_EXERCISED, "granted, never used"
    return used


# --- the operator as the chart runs it ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Invocation:
    settings: ControllerSettings
    namespaces: list[str]
    liveness_endpoint: str | None


IN_CLUSTER = object()  # what the in-cluster configuration stands for here


def invocation(deployment: Obj, monkeypatch: pytest.MonkeyPatch) -> Invocation:
    """What `mcpgate operator` runs with the rendered Deployment's args and environment:
    `mcpgate.cli.main` itself parses them and builds the settings; only the final
    `run_operator` (which would connect to a cluster) is replaced by a recorder."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    seen: list[Invocation] = []

    def configure(kubeconfig: str | None) -> object:
        assert kubeconfig is None  # in-cluster
        return IN_CLUSTER

    def record(
        settings: ControllerSettings,
        configuration: object,
        *,
        namespaces: list[str],
        liveness_endpoint: str | None,
    ) -> None:
        assert configuration is IN_CLUSTER
        seen.append(Invocation(settings, list(namespaces), liveness_endpoint))

    with monkeypatch.context() as mp:
        for var in container.get("env") or []:
            mp.setenv(var["name"], var["value"])
        mp.setattr(controller_main, "kube_configuration", configure)
        mp.setattr(controller_main, "run_operator", record)
        assert "command" not in container  # the image's entrypoint is `mcpgate`
        assert cli.main(container["args"]) == 0
    (found,) = seen
    return found


@contextlib.contextmanager
def chart_operator(
    env: KubeEnv, objects: list[Obj], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invocation]:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    run = invocation(deployment, monkeypatch)
    with operator_in_thread(env, run.settings, namespaces=run.namespaces):
        yield run


# --- a representative scenario ----------------------------------------------------------------


async def scenario(client: Client, ns_a: str, ns_b: str) -> None:
    """Most of what the operator does in a cluster: several examples to Ready (a PDB, a
    Warning Event), autoscaling on, changed and off (HPA created, patched, deleted), a
    Secret changed, a data source changed, a Deployment's status changed, a Service port
    changed, hand edits put back, a deletion."""
    api = client.api
    for ns in (ns_a, ns_b):
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # inbound-apikey: two replicas, so a PodDisruptionBudget.
    keyed = _server_name(client.apply(EXAMPLES / "inbound-apikey", ns_a))
    await _ready(client, ns_a, keyed)
    assert _read(api, "policy/v1/poddisruptionbudgets", ns_a, keyed)

    # passthrough-misconfigured: a Warning Event.
    wiki = _server_name(client.apply(EXAMPLES / "passthrough-misconfigured", ns_a))
    await _ready(client, ns_a, wiki)
    await until(
        lambda: [
            e for e in api.list_objects("v1/events", ns_a) if e["reason"] == "DataSourceHasAuth"
        ]
    )

    # outbound-bearer, then a Secret change: a key goes (SecretKeyNotFound) and comes back.
    bearer_docs = client.apply(EXAMPLES / "outbound-bearer", ns_b)
    bearer = _server_name(bearer_docs)
    await _ready(client, ns_b, bearer)
    secret = next(d for d in bearer_docs if d["kind"] == "Secret")
    secret_path = f"/api/v1/namespaces/{ns_b}/secrets/{secret['metadata']['name']}"
    (key,) = secret["stringData"]
    value = _read(api, "v1/secrets", ns_b, secret["metadata"]["name"])["data"][key]
    client.patch(secret_path, {"data": {key: None}})
    await until(
        lambda: _condition(api, ns_b, bearer, "ResolvedRefs")["reason"] == "SecretKeyNotFound"
    )
    client.patch(secret_path, {"data": {key: value}})
    await until(lambda: _condition(api, ns_b, bearer, "Ready")["status"] == "True")

    # quickstart, autoscaled (HPA and PDB created), then not (both deleted).
    quick_docs = client.apply(EXAMPLES / "quickstart", ns_b)
    quick = _server_name(quick_docs)
    await _ready(client, ns_b, quick)
    server_path = f"/apis/mcpgate.io/v1alpha1/namespaces/{ns_b}/mcpservers/{quick}"
    client.patch(
        server_path,
        {
            "spec": {
                "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
                "resources": {"requests": {"cpu": "100m"}},
            }
        },
    )
    await until(lambda: _read(api, "autoscaling/v2/horizontalpodautoscalers", ns_b, quick))
    await until(lambda: _read(api, "policy/v1/poddisruptionbudgets", ns_b, quick))
    client.patch(server_path, {"spec": {"autoscaling": {"maxReplicas": 5}}})
    await until(
        lambda: (
            _read(api, "autoscaling/v2/horizontalpodautoscalers", ns_b, quick)["spec"][
                "maxReplicas"
            ]
            == 5
        )
    )
    client.patch(server_path, {"spec": {"autoscaling": None, "replicas": 1}})
    await until(lambda: api.read("autoscaling/v2/horizontalpodautoscalers", ns_b, quick) is None)
    await until(lambda: api.read("policy/v1/poddisruptionbudgets", ns_b, quick) is None)

    # A data source change re-renders the configuration.
    source = next(d for d in quick_docs if d["kind"] == "HttpApiDataSource")["metadata"]["name"]
    client.patch(
        f"/apis/mcpgate.io/v1alpha1/namespaces/{ns_b}/httpapidatasources/{source}",
        {"spec": {"baseUrl": "https://mirror.example.com/v2"}},
    )
    await until(
        lambda: (
            "mirror.example.com"
            in _read(api, "v1/configmaps", ns_b, f"{quick}-config")["data"]["config.json"]
        )
    )

    # The Deployment's status: pods gone (Available False), then back.
    await _reported(client, ns_b, quick, "Available", "False", ready=False)
    await _ready(client, ns_b, quick)

    # A hand edit of the Deployment is put back.
    deployment_path = f"/apis/apps/v1/namespaces/{ns_b}/deployments/{quick}"
    image = _read(api, "apps/v1/deployments", ns_b, quick)["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    client.patch(
        deployment_path,
        {"spec": {"template": {"spec": {"containers": [{"name": "gateway", "image": "x:1"}]}}}},
    )
    await until(
        lambda: (
            _read(api, "apps/v1/deployments", ns_b, quick)["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            == image
        )
    )

    # A Service port change, and a hand edit of a PodDisruptionBudget, put back.
    client.patch(server_path, {"spec": {"service": {"port": 9000}}})
    await until(lambda: _read(api, "v1/services", ns_b, quick)["spec"]["ports"][0]["port"] == 9000)
    client.patch(
        f"/apis/policy/v1/namespaces/{ns_a}/poddisruptionbudgets/{keyed}",
        {"spec": {"maxUnavailable": 2}},
    )
    await until(
        lambda: (
            _read(api, "policy/v1/poddisruptionbudgets", ns_a, keyed)["spec"]["maxUnavailable"] == 1
        )
    )

    # A deletion: the operator lets owner references clean up.
    client.delete(server_path)
    await until(lambda: api.read(MCPSERVERS, ns_b, quick) is None)


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture
def client(kube_env: KubeEnv) -> Iterator[Client]:
    with Client(kube_env.api) as client:
        yield client


async def test_cluster_wide_rbac_is_exactly_what_the_operator_uses(
    kube_env: KubeEnv, client: Client, render: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render()
    with chart_operator(kube_env, objects, monkeypatch) as run:
        assert run.namespaces == []
        await scenario(client, "team-a", "team-b")
    used = check_rbac(kube_env.api, objects)
    assert ("", "namespaces", "watch") not in used  # cluster-wide: no namespace discovery


async def test_namespaced_rbac_is_exactly_what_the_operator_uses(
    kube_env: KubeEnv, client: Client, render: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render({"watchNamespaces": ["team-a", "team-b"]})
    api = kube_env.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    with chart_operator(kube_env, objects, monkeypatch) as run:
        assert run.namespaces == ["team-a", "team-b"]
        unwatched = _server_name(client.apply(EXAMPLES / "quickstart", "elsewhere"))
        await scenario(client, "team-a", "team-b")
    used = check_rbac(api, objects)
    assert ("", "namespaces", "watch") in used  # kopf follows the namespaces it serves
    # Nothing outside the watched namespaces was touched, or needed to be.
    assert "status" not in _read(api, MCPSERVERS, "elsewhere", unwatched)
    assert {c.namespace for c in operator_calls(api)} <= {None, "team-a", "team-b"}


CUSTOM: Obj = {
    "image": {"repository": "registry.example.com/platform/mcpgate", "tag": "0.1.0-rc1"},
    "gateway": {
        "image": {
            "repository": "mirror.example.com/mcpgate",
            "tag": "0.1.0",
            "pullPolicy": "Always",
        },
        "logLevel": "debug",
        "allowAmbientAwsCredentials": True,
        "allowLoopbackDestinations": True,
    },
    "clusterDomain": "kube.test",
    "logLevel": "debug",
}
# The order `helm install` creates kinds in (Helm's InstallOrder, for the kinds here).
INSTALL_ORDER = [
    "CustomResourceDefinition",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Deployment",
]


def _stored_as_sent(sent: Obj, stored: Obj) -> None:
    for key, value in sent.items():
        if key == "metadata":
            for field in ("name", "namespace", "labels", "annotations"):
                assert stored["metadata"].get(field) == value.get(field), (sent["kind"], field)
        else:
            assert stored[key] == value, (sent["kind"], key)


async def test_the_rendered_chart_applied_to_the_api_runs_the_operator(
    tmp_path: Path, render: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(CUSTOM)
    # An API server without mcpgate's CRDs: the chart's own define the resources.
    with (
        serve_kube_api() as api,
        kube_environment(api, tmp_path / "kube") as env,
        Client(api) as client,
    ):
        for resource, info in CHART_RESOURCES.items():
            api.resources[resource] = info
        client.post("/api/v1/namespaces", {"metadata": {"name": RELEASE_NAMESPACE}})
        for obj in sorted(objects, key=lambda o: INSTALL_ORDER.index(o["kind"])):
            client.post(_collection_path(obj), obj)
            stored = api.read(
                _resource(obj), obj["metadata"].get("namespace"), obj["metadata"]["name"]
            )
            assert stored is not None
            _stored_as_sent(obj, stored)
        assert {o["kind"] for o in objects} == set(INSTALL_ORDER) - {"Role", "RoleBinding"}
        served = client.http.get("/apis/mcpgate.io/v1alpha1").json()
        assert {r["name"] for r in served["resources"]} >= {"mcpservers", "httpapidatasources"}

        with chart_operator(env, objects, monkeypatch) as run:
            render_settings = run.settings.render
            assert render_settings.image == "mirror.example.com/mcpgate:0.1.0"
            assert render_settings.image_pull_policy == "Always"
            assert render_settings.cluster_domain == "kube.test"
            assert render_settings.log_level == "debug"
            assert render_settings.allow_ambient_aws_credentials is True
            assert render_settings.allow_loopback_destinations is True
            assert run.settings.peering is None
            deployment = next(o for o in objects if o["kind"] == "Deployment")
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            probe = container["livenessProbe"]["httpGet"]
            port = next(p for p in container["ports"] if p["name"] == probe["port"])
            assert run.liveness_endpoint == f"http://0.0.0.0:{port['containerPort']}{probe['path']}"
            assert container["image"] == "registry.example.com/platform/mcpgate:0.1.0-rc1"

            ns = "default"
            name = _server_name(client.apply(EXAMPLES / "quickstart", ns))
            await _ready(client, ns, name)
            status = _read(api, MCPSERVERS, ns, name)["status"]
            assert status["url"] == f"http://{name}.{ns}.svc.kube.test:8080/mcp"
            gateway = _read(api, "apps/v1/deployments", ns, name)["spec"]["template"]["spec"]
            (gateway_container,) = gateway["containers"]
            assert gateway_container["image"] == "mirror.example.com/mcpgate:0.1.0"
            assert gateway_container["imagePullPolicy"] == "Always"
            assert gateway_container["args"][-2:] == ["--log-level", "debug"]
            # allowLoopbackDestinations reached the gateway's configuration.
            config_map = _read(api, "v1/configmaps", ns, f"{name}-config")
            assert json.loads(config_map["data"]["config.json"])["allow_loopback_destinations"]

            # allowAmbientAwsCredentials reached the operator: a SigV4 data source without
            # key Secrets (the gateway pod's own AWS identity) is Ready.
            client.post(
                f"/apis/mcpgate.io/v1alpha1/namespaces/{ns}/httpapidatasources",
                {
                    "apiVersion": "mcpgate.io/v1alpha1",
                    "kind": "HttpApiDataSource",
                    "metadata": {"name": "ambient-aws"},
                    "spec": {
                        "baseUrl": "https://dynamodb.eu-west-1.amazonaws.com",
                        "auth": {
                            "type": "AwsSigV4",
                            "awsSigV4": {"region": "eu-west-1", "service": "dynamodb"},
                        },
                    },
                },
            )

            def source_ready() -> bool:
                obj = _read(api, "mcpgate.io/v1alpha1/httpapidatasources", ns, "ambient-aws")
                conditions = {c["type"]: c for c in obj["status"]["conditions"]}
                return bool(conditions["Ready"]["status"] == "True")

            await until(source_ready)
