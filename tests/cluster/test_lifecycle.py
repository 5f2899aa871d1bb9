"""One McpServer's life on a real cluster, each test in a namespace of its own that
admits only restricted pods: tool calls through the gateway pod's address with the right
credentials, Secret rotation without a restart, drift put back, a Secret that turns up
late, the operator's pod replaced, garbage collection, replicas and autoscaling, and a
data source edited."""

from __future__ import annotations

import json
from typing import Any

from cluster.common import SERVER, SOURCE, call, deploy, objects, until
from cluster.conftest import SYSTEM
from cluster.kube import Kube, ready_pod, ready_pods
from support.poll import wait_for_sync
from support.upstream import RecordingUpstream

OWNED = ("configmap", "deployment", "service")


def _names(kube: Kube, ns: str, kind: str) -> list[str]:
    return [
        o["metadata"]["name"]
        for o in kube.items(kind, ns)
        if o["metadata"]["name"] != "kube-root-ca.crt"
    ]


def _spec(kube: Kube, ns: str) -> dict[str, Any]:
    spec: dict[str, Any] = kube.get("deployment", SERVER, ns)["spec"]
    return spec


async def test_a_tool_call_reaches_the_upstream_with_the_credentials(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    pod = deploy(kube, ns, upstream)
    assert pod["status"]["podIP"].startswith("127.")
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    await call(kube, ns, "42")
    (seen,) = upstream.requests
    assert seen.path == "/v1/items/42"
    assert seen.header("authorization") == "Bearer token-one"


def test_pods_that_break_the_restricted_profile_are_refused(kube: Kube, ns: str) -> None:
    """The namespaces' label is enforced: the gateway pods are admitted by its merit."""
    done = kube.kubectl(
        "-n",
        ns,
        "run",
        "unconfined",
        "--image=ghcr.io/mcpgate/mcpgate:0.1.0",
        "--restart=Never",
        check=False,
    )
    assert done.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in done.stderr, done.stderr


async def test_a_rotated_secret_arrives_without_a_restart(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    pod = deploy(kube, ns, upstream)
    await call(kube, ns)
    kube.kubectl(
        "-n",
        ns,
        "patch",
        "secret",
        "api-token",
        "--type=merge",
        "-p",
        json.dumps({"stringData": {"token": "token-two"}}),
    )

    async def rotated() -> bool:
        await call(kube, ns)
        return upstream.requests[-1].header("authorization") == "Bearer token-two"

    await until(rotated, within=90, what="the rotated token upstream")
    after = kube.get("pod", pod["metadata"]["name"], ns)
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    assert (
        after["status"]["containerStatuses"][0]["restartCount"]
        == (pod["status"]["containerStatuses"][0]["restartCount"])
    )
    assert [p["metadata"]["uid"] for p in ready_pods(kube, ns, SERVER)] == [pod["metadata"]["uid"]]


def test_drift_is_put_back(kube: Kube, ns: str, upstream: RecordingUpstream) -> None:
    deploy(kube, ns, upstream)
    args = _spec(kube, ns)["template"]["spec"]["containers"][0]["args"]
    label = kube.get("deployment", SERVER, ns)["metadata"]["labels"]["app.kubernetes.io/part-of"]
    edited = [*args[:-1], "debug"]
    assert edited != args
    kube.kubectl(
        "-n",
        ns,
        "patch",
        "deployment",
        SERVER,
        "--type=json",
        "-p",
        json.dumps(
            [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": edited}]
        ),
    )
    kube.kubectl("-n", ns, "label", "deployment", SERVER, "app.kubernetes.io/part-of-")

    def restored() -> bool:
        deployment = kube.get("deployment", SERVER, ns)
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == args
        assert deployment["metadata"]["labels"].get("app.kubernetes.io/part-of") == label
        return True

    wait_for_sync(restored, within=60, interval=0.5, what="the operator's fields put back")
    kube.wait_ready(ns, f"mcpserver/{SERVER}")


def test_a_missing_secret_that_turns_up_later(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    secret, *rest = objects(upstream.url)
    kube.apply(rest, ns)

    def unresolved() -> dict[str, Any]:
        refs = kube.condition("mcpserver", SERVER, ns, "ResolvedRefs")
        assert refs.get("status") == "False", refs
        return refs

    refs = wait_for_sync(unresolved, within=60, interval=0.5, what="ResolvedRefs=False")
    assert refs["reason"] == "SecretNotFound", refs
    assert "api-token" in refs["message"]
    ready = kube.condition("mcpserver", SERVER, ns, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound"), ready
    assert not kube.exists("deployment", SERVER, ns)

    kube.apply(secret, ns)
    kube.wait_ready(ns, f"mcpserver/{SERVER}", f"httpapidatasource/{SOURCE}")
    assert ready_pod(kube, ns, SERVER)


async def test_the_operator_pod_replaced_makes_no_duplicates(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    deploy(kube, ns, upstream)
    before = {
        kind: [
            o["metadata"]["uid"]
            for o in kube.items(kind, ns, "-l", f"app.kubernetes.io/instance={SERVER}")
        ]
        for kind in OWNED
    }
    (old,) = kube.items("pods", SYSTEM, "-l", "app.kubernetes.io/name=mcpgate")
    kube.kubectl("-n", SYSTEM, "delete", "pod", old["metadata"]["name"], "--wait=true", timeout=120)

    def replaced() -> bool:
        pods = [
            p
            for p in kube.items("pods", SYSTEM, "-l", "app.kubernetes.io/name=mcpgate")
            if p["metadata"]["uid"] != old["metadata"]["uid"]
        ]
        assert len(pods) == 1, pods
        ready = {c["type"]: c["status"] for c in pods[0]["status"].get("conditions", [])}
        assert ready.get("Ready") == "True"
        return True

    wait_for_sync(replaced, within=90, interval=0.5, what="a new operator pod")
    # The new operator reconciles (a change it must act on), and adopts what exists.
    kube.kubectl(
        "-n",
        ns,
        "patch",
        "mcpserver",
        SERVER,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"replicas": 2}}),
    )
    wait_for_sync(
        lambda: len(ready_pods(kube, ns, SERVER)) == 2,
        within=90,
        interval=0.5,
        what="two gateway pods from the new operator",
    )
    after = {
        kind: [
            o["metadata"]["uid"]
            for o in kube.items(kind, ns, "-l", f"app.kubernetes.io/instance={SERVER}")
        ]
        for kind in OWNED
    }
    assert after == before
    assert len(kube.items("replicasets", ns)) == 1
    await call(kube, ns)


def test_a_deleted_server_takes_its_children_along(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    deploy(kube, ns, upstream, replicas=2)
    assert kube.exists("poddisruptionbudget", SERVER, ns)
    kube.kubectl("-n", ns, "delete", "mcpserver", SERVER, "--wait=true", timeout=60)

    def collected() -> bool:
        for kind in (*OWNED, "poddisruptionbudget", "replicaset", "pod"):
            assert _names(kube, ns, kind) == [], kind
        return True

    wait_for_sync(collected, within=90, interval=0.5, what="the children garbage-collected")
    assert kube.exists("httpapidatasource", SOURCE, ns)
    assert kube.exists("secret", "api-token", ns)


def test_replicas_and_autoscaling(kube: Kube, ns: str, upstream: RecordingUpstream) -> None:
    deploy(kube, ns, upstream)
    assert not kube.exists("poddisruptionbudget", SERVER, ns)

    def patch(spec: dict[str, Any]) -> None:
        kube.kubectl(
            "-n", ns, "patch", "mcpserver", SERVER, "--type=merge", "-p", json.dumps({"spec": spec})
        )

    patch({"replicas": 2})
    wait_for_sync(
        lambda: kube.exists("poddisruptionbudget", SERVER, ns),
        within=60,
        interval=0.5,
        what="the PodDisruptionBudget",
    )
    wait_for_sync(
        lambda: len(ready_pods(kube, ns, SERVER)) == 2,
        within=90,
        interval=0.5,
        what="two gateway pods",
    )
    kube.wait_ready(ns, f"mcpserver/{SERVER}")

    patch(
        {
            "replicas": None,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
            "resources": {"requests": {"cpu": "50m"}},
        }
    )
    hpa = wait_for_sync(
        lambda: (
            kube.exists("horizontalpodautoscaler", SERVER, ns)
            and kube.get("horizontalpodautoscaler", SERVER, ns)
        ),
        within=60,
        interval=0.5,
        what="the HorizontalPodAutoscaler",
    )
    assert hpa["spec"]["maxReplicas"] == 3
    assert hpa["spec"]["scaleTargetRef"]["name"] == SERVER

    patch({"autoscaling": None, "resources": None})
    wait_for_sync(
        lambda: not kube.exists("horizontalpodautoscaler", SERVER, ns),
        within=60,
        interval=0.5,
        what="the HorizontalPodAutoscaler removed",
    )
    kube.wait_ready(ns, f"mcpserver/{SERVER}")


async def test_an_edited_data_source_rerenders_its_server(
    kube: Kube, ns: str, upstream: RecordingUpstream, second_upstream: RecordingUpstream
) -> None:
    deploy(kube, ns, upstream)
    hash_key = "mcpgate.io/config-hash"
    before = _spec(kube, ns)["template"]["metadata"]["annotations"][hash_key]
    kube.kubectl(
        "-n",
        ns,
        "patch",
        "httpapidatasource",
        SOURCE,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"baseUrl": second_upstream.url + "/v2"}}),
    )

    def rerendered() -> str:
        now: str = _spec(kube, ns)["template"]["metadata"]["annotations"][hash_key]
        assert now != before
        return now

    wait_for_sync(rerendered, within=60, interval=0.5, what="a new config hash")
    config = kube.get("configmap", f"{SERVER}-config", ns)["data"]
    assert second_upstream.url in json.dumps(config)

    async def moved() -> bool:
        await call(kube, ns, "7")
        return bool(second_upstream.requests)

    await until(moved, within=90, what="a call at the new baseUrl")
    assert second_upstream.requests[-1].path == "/v2/items/7"
    assert second_upstream.requests[-1].header("authorization") == "Bearer token-one"
