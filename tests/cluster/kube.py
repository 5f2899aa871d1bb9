"""The tools a user uses, against the suite's real cluster: kubectl and helm from
`.cluster/bin/` as subprocesses (with the cluster's KUBECONFIG passed to each, never
set in this process), and the API server's audit log.

    kube.kubectl("-n", ns, "apply", "-f", path)
    kube.get("mcpserver", "srv", ns)["status"]
    kube.condition("mcpserver", "srv", ns, "Ready")   # the condition dict, or {}
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.paths import ROOT

BIN = ROOT / ".cluster" / "bin"
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class CommandFailed(AssertionError):
    """A kubectl or helm command that exited non-zero (an AssertionError, so that
    wait_for retries it)."""


@dataclass
class Kube:
    kubeconfig: Path
    state: Path
    timeout: float = 120.0
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "HELM_CACHE_HOME": str(self.state / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.state / "helm" / "config"),
            "HELM_DATA_HOME": str(self.state / "helm" / "data"),
        }

    @property
    def audit_log(self) -> Path:
        return self.state / "audit.log"

    def run(
        self,
        tool: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / tool), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout or self.timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(
                f"{tool} {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            )
        return done

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kw)

    def helm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **kw)

    def apply(self, objects: list[dict[str, Any]] | dict[str, Any], ns: str) -> None:
        docs = objects if isinstance(objects, list) else [objects]
        body = {"apiVersion": "v1", "kind": "List", "items": docs}
        self.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(body))

    def get(self, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
        where = ["-n", ns] if ns else []
        out: dict[str, Any] = json.loads(
            self.kubectl(*where, "get", kind, name, "-o", "json").stdout
        )
        return out

    def items(self, kind: str, ns: str | None = None, *selector: str) -> list[dict[str, Any]]:
        where = ["-n", ns] if ns else ["-A"]
        out = json.loads(self.kubectl("get", kind, *where, *selector, "-o", "json").stdout)
        items: list[dict[str, Any]] = out["items"]
        return items

    def exists(self, kind: str, name: str, ns: str) -> bool:
        done = self.kubectl("-n", ns, "get", kind, name, "--ignore-not-found", "-o", "name")
        return bool(done.stdout.strip())

    def condition(self, kind: str, name: str, ns: str, type_: str) -> dict[str, Any]:
        conditions = self.get(kind, name, ns).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == type_), {})

    def wait_ready(self, ns: str, *objects: str, timeout: int = 90) -> None:
        self.kubectl(
            "-n",
            ns,
            "wait",
            "--for=condition=Ready",
            *objects,
            f"--timeout={timeout}s",
            timeout=timeout + 10,
        )

    def gateway_pods(self, ns: str, server: str) -> list[dict[str, Any]]:
        return self.items(
            "pods",
            ns,
            "-l",
            f"app.kubernetes.io/name=mcpgate-gateway,app.kubernetes.io/instance={server}",
        )

    def audit_offset(self) -> int:
        return self.audit_log.stat().st_size

    def audit(self, since: int = 0) -> Iterator[dict[str, Any]]:
        """The audit log's events from byte `since` on (whole lines only)."""
        with self.audit_log.open("rb") as log:
            log.seek(since)
            for line in log:
                if line.endswith(b"\n"):
                    yield json.loads(line)


def gateway_url(pod: dict[str, Any]) -> str:
    """A gateway pod's MCP endpoint at its own loopback address (never a ClusterIP)."""
    ip = pod["status"]["podIP"]
    assert ip.startswith("127."), ip
    return f"http://{ip}:8080/mcp"


def ready_pods(kube: Kube, ns: str, server: str) -> list[dict[str, Any]]:
    """The Ready gateway pods of `server` that are not being deleted."""
    return [
        p
        for p in kube.gateway_pods(ns, server)
        if p["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    ]


def ready_pod(kube: Kube, ns: str, server: str) -> dict[str, Any]:
    """A Ready gateway pod of `server` (the assertion retried by wait_for)."""
    pods = ready_pods(kube, ns, server)
    assert pods, f"no Ready gateway pod of {ns}/{server}"
    return pods[0]
