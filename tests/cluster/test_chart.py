"""The chart on a real API server: `helm install --wait` (the package's `operator`
fixture) leaves the CRDs established and the operator Ready under the chart's
ServiceAccount, in a namespace that admits only restricted pods; `helm upgrade` with
changed values rolls the operator to them."""

from __future__ import annotations

import json
from typing import Any

from cluster.conftest import RELEASE, SYSTEM, TEST_VALUES
from cluster.kube import Kube
from support.paths import CRDS, ROOT
from support.poll import wait_for_sync


def _operator_pod(kube: Kube) -> dict[str, Any]:
    pods = [
        p
        for p in kube.items("pods", SYSTEM, "-l", "app.kubernetes.io/name=mcpgate")
        if p["metadata"].get("deletionTimestamp") is None
    ]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    ready = {c["type"]: c["status"] for c in pods[0]["status"].get("conditions", [])}
    assert ready.get("Ready") == "True", pods[0]["status"]
    return pods[0]


def test_install_leaves_the_operator_ready_as_its_service_account(
    kube: Kube, operator: str
) -> None:
    pod = _operator_pod(kube)
    assert pod["spec"]["serviceAccountName"] == RELEASE
    assert pod["status"]["podIP"].startswith("127.")
    labels = kube.get("namespace", SYSTEM)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    status = json.loads(kube.helm("status", RELEASE, "-n", SYSTEM, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    # The operator's own requests reach the API server as its ServiceAccount.
    user = f"system:serviceaccount:{SYSTEM}:{RELEASE}"
    wait_for_sync(
        lambda: any(e["user"]["username"] == user for e in kube.audit()),
        within=30,
        interval=0.5,
        what="a request of the operator's ServiceAccount",
    )


def test_the_crds_are_established_and_accepted_as_they_are(kube: Kube, operator: str) -> None:
    for name in ("mcpservers.mcpgate.io", "httpapidatasources.mcpgate.io"):
        conditions = {c["type"]: c["status"] for c in kube.get("crd", name)["status"]["conditions"]}
        assert conditions["Established"] == "True", conditions
        assert conditions["NamesAccepted"] == "True", conditions
    # The repository's crds/ (what `kubectl apply -f crds/` installs) passes the real
    # server's structural-schema and CEL cost checks too, applied over the chart's.
    done = kube.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", str(CRDS)
    )
    assert "serverside-applied" in done.stdout, done.stdout


def test_upgrade_with_changed_values_rolls_the_operator(kube: Kube, operator: str) -> None:
    before = _operator_pod(kube)["metadata"]["uid"]
    chart = str(ROOT / "charts" / "mcpgate")
    try:
        kube.helm(
            "upgrade",
            RELEASE,
            chart,
            "-n",
            SYSTEM,
            "--reuse-values",
            "--set",
            "logLevel=debug",
            "--set",
            "gateway.logLevel=debug",
            "--wait",
            "--timeout=120s",
            timeout=140,
        )
        args = kube.get("deployment", RELEASE, SYSTEM)["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        assert "--log-level=debug" in args, args
        assert "--gateway-log-level=debug" in args, args
        pod = wait_for_sync(lambda: _operator_pod(kube), within=60, interval=0.5)
        assert pod["metadata"]["uid"] != before
        revision = json.loads(kube.helm("status", RELEASE, "-n", SYSTEM, "-o", "json").stdout)
        assert revision["version"] == 2
    finally:
        kube.helm(
            "upgrade",
            RELEASE,
            chart,
            "-n",
            SYSTEM,
            "--reset-values",
            *TEST_VALUES,
            "--wait",
            "--timeout=120s",
            timeout=140,
        )
    args = kube.get("deployment", RELEASE, SYSTEM)["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "--log-level=info" in args, args
    wait_for_sync(lambda: _operator_pod(kube), within=60, interval=0.5)
