"""Last (the name sorts last): the operator's RBAC held against what it really did, in
cluster mode; `helm uninstall` keeping the CRDs and what they hold; then the chart
installed again in watchNamespaces mode, whose RBAC holds too.

From the API server's audit log, the operator's ServiceAccount's requests as (verb,
apiGroup, resource, subresource) are compared with the chart's rules (`helm template`):
every permission granted is used, and no request is denied (403). The one grant no
request uses is `update mcpservers/finalizers`: the OwnerReferencesPermissionEnforcement
admission plugin (on in this cluster) checks it when an owned object's ownerReference
sets blockOwnerDeletion, which every owned object's does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import yaml

from cluster.common import SERVER, deploy, exercise_every_permission, objects
from cluster.conftest import RELEASE, RESTRICTED, SYSTEM, TEST_VALUES
from cluster.kube import Kube, ready_pod
from support.paths import ROOT
from support.poll import wait_for_sync
from support.upstream import RecordingUpstream

USER = f"system:serviceaccount:{SYSTEM}:{RELEASE}"
CHART = str(ROOT / "charts" / "mcpgate")
Permission = tuple[str, str, str, str]  # verb, apiGroup, resource, subresource
CHECKED_BY_ADMISSION = {("update", "mcpgate.io", "mcpservers", "finalizers")}


def _granted(kube: Kube, *values: str) -> set[Permission]:
    rendered = kube.helm("template", RELEASE, CHART, "-n", SYSTEM, *values).stdout
    out: set[Permission] = set()
    for doc in yaml.safe_load_all(rendered):
        if not doc or doc["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    name, _, sub = resource.partition("/")
                    out.update((verb, group, name, sub) for verb in rule["verbs"])
    return out


def _requests(kube: Kube, since: int) -> list[dict[str, Any]]:
    return [e for e in kube.audit(since) if e["user"]["username"] == USER and "objectRef" in e]


def _used(events: Iterable[dict[str, Any]]) -> set[Permission]:
    return {
        (
            e["verb"],
            e["objectRef"].get("apiGroup", ""),
            e["objectRef"]["resource"],
            e["objectRef"].get("subresource", ""),
        )
        for e in events
    }


def _holds(kube: Kube, since: int, granted: set[Permission]) -> None:
    events = _requests(kube, since)
    # A 403 that authorization allowed is admission's (NamespaceLifecycle refuses creates in
    # a namespace being deleted, as the namespaces of finished tests are): not RBAC's.
    denied = sorted(
        {
            (e["verb"], e["requestURI"], e["responseStatus"].get("message", ""))
            for e in events
            if e.get("responseStatus", {}).get("code") == 403
            and e.get("annotations", {}).get("authorization.k8s.io/decision") != "allow"
        }
    )
    assert denied == []
    used = _used(events)
    assert used <= granted, sorted(used - granted)
    assert granted - used == CHECKED_BY_ADMISSION, sorted(granted - used)


def test_cluster_mode_rbac_is_what_the_operator_uses(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    exercise_every_permission(kube, ns, upstream)
    owners = kube.get("deployment", SERVER, ns)["metadata"]["ownerReferences"]
    assert [o["blockOwnerDeletion"] for o in owners] == [True]
    _holds(kube, 0, _granted(kube))


def test_uninstall_keeps_the_crds_and_what_they_hold(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    pod = deploy(kube, ns, upstream)
    kube.helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=120s", timeout=140)
    wait_for_sync(
        lambda: kube.items("pods", SYSTEM, "-l", "app.kubernetes.io/name=mcpgate") == [],
        within=60,
        interval=0.5,
        what="the operator pod gone",
    )
    for crd in ("mcpservers.mcpgate.io", "httpapidatasources.mcpgate.io"):
        assert kube.get("crd", crd)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert kube.exists("mcpserver", SERVER, ns)
    assert kube.get("pod", pod["metadata"]["name"], ns)["metadata"]["uid"] == pod["metadata"]["uid"]
    assert json.loads(kube.helm("list", "-n", SYSTEM, "-o", "json").stdout) == []


def test_watch_namespaces_mode_serves_only_those_and_its_rbac_holds(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    """The chart again (it adopts the CRDs it kept), watching only `ns`."""
    other = f"{ns}-unwatched"
    kube.kubectl("create", "namespace", other)
    kube.kubectl("label", "namespace", other, RESTRICTED)
    try:
        since = kube.audit_offset()
        values = ("--set", f"watchNamespaces={{{ns}}}", *TEST_VALUES)
        kube.helm(
            "install",
            RELEASE,
            CHART,
            "-n",
            SYSTEM,
            *values,
            "--wait",
            "--timeout=180s",
            timeout=200,
        )
        exercise_every_permission(kube, ns, upstream)
        assert ready_pod(kube, ns, SERVER)
        # A server elsewhere is none of this operator's business (and not its to read).
        kube.apply(objects(upstream.url), other)
        time.sleep(5)  # asserting that nothing happens: a fixed wait is the point
        assert kube.get("mcpserver", SERVER, other).get("status") is None
        assert not kube.exists("deployment", SERVER, other)
        _holds(kube, since, _granted(kube, *values))
    finally:
        kube.kubectl("delete", "namespace", other, "--wait=false", check=False)
