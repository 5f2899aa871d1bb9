"""`mcpgate operator` as a process: KUBECONFIG, a namespace scope, kopf's liveness
endpoint, and a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from support.gateway import free_port
from support.kube import KubeEnv
from support.paths import EXAMPLES
from support.poll import wait_for_sync

pytest_plugins = ["support.kube"]


def _wait(check: Any, within: float = 20) -> Any:
    return wait_for_sync(check, within=within, interval=0.1, retry_on=(httpx.TransportError,))


def test_operator_command_reconciles_in_its_namespaces_only(kube_env: KubeEnv) -> None:
    api = kube_env.api
    for ns in ("team-a", "team-b"):  # kopf watches only namespaces that exist
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    liveness = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcpgate.cli",
            "operator",
            "--kubeconfig",
            str(kube_env.kubeconfig),
            "-n",
            "team-a",
            "--image",
            "registry.example.com/mcpgate:9.9",
            "--liveness",
            f"http://127.0.0.1:{liveness}/healthz",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{liveness}/healthz", timeout=1).is_success)
        for ns in ("team-a", "team-b"):
            kube_env.kubectl(
                "apply", "--validate=false", "-n", ns, "-f", str(EXAMPLES / "quickstart")
            )
        deployment = _wait(lambda: api.read("apps/v1/deployments", "team-a", "quickstart"))
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "registry.example.com/mcpgate:9.9"
        time.sleep(1)
        assert api.read("apps/v1/deployments", "team-b", "quickstart") is None
    except BaseException:
        process.kill()
        print(process.communicate(timeout=30)[0].decode()[-4000:])
        raise
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output.decode()[-2000:]
