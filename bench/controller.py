"""The operator under a burst: N McpServers created at once against the API emulator.

    python -m bench.controller [--sizes 50,200] [--rounds 3] [--smoke]

(The `bench/operator` benchmark; not named `operator.py`, which would shadow the standard
library's module for anything run from this folder.)

For each N, a fresh Kubernetes API emulator (tests/support/kube_api.py, in this process,
on the client CPU) and a fresh `mcpgate operator` (a process of its own, on the server
CPU, as in a pod) get, all at once, per server: one Secret, two HttpApiDataSources (Bearer
and Basic auth from that Secret) and one McpServer with 5 tools. Measured:

- settled: from the first create until every server's ConfigMap, Deployment and Service
  exist and its conditions are Accepted=True, ResolvedRefs=True, Available=False
  (PodsNotReady: no pods run here);
- ready: then every Deployment's status is set as the Deployment controller would once
  its pods run (as tests/integration/operator/test_operator.py does), until every server
  is Ready=True;
- API requests the operator made, by verb, per server; its CPU seconds; its RSS;
- an unchanged reconcile: one server's Secret gets a label (nothing the server depends on
  changes), which reconciles that server; the operator must write nothing.

time(200)/time(50) is 4 for linear scaling.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench._util import (
    PYTHON,
    Child,
    Cores,
    cpu_seconds,
    free_port,
    http_call,
    median,
    print_heading,
    print_targets,
    rss_kib,
    spread,
    start_child,
    table,
)
from bench.profile import summarise

__all__ = ["main"]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.kube_api import WRITE_VERBS, KubeApi, serve_kube_api
from support.paths import CRDS

NAMESPACE = "bench"
TARGET_RATIO = 4.5  # time(200) / time(50)
UNCHANGED_WRITES_NOTHING = "an unchanged reconcile writes nothing"
GROUP = "mcpgate.io/v1alpha1"
_RESOURCES = {
    "configmaps": "v1/configmaps",
    "deployments": "apps/v1/deployments",
    "services": "v1/services",
    "mcpservers": f"{GROUP}/mcpservers",
}


def _objects(index: int) -> list[dict[str, Any]]:
    """Secret, two data sources and a 5-tool McpServer, number `index`."""
    secret, server = f"creds-{index}", f"srv-{index}"
    sources = [f"orders-{index}", f"customers-{index}"]
    meta = {"namespace": NAMESPACE}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, **meta},
            "type": "Opaque",
            "stringData": {"token": f"token-{index}", "password": f"password-{index}"},
        },
        {
            "apiVersion": GROUP,
            "kind": "HttpApiDataSource",
            "metadata": {"name": sources[0], **meta},
            "spec": {
                "baseUrl": "https://orders.example.com/api",
                "auth": {
                    "type": "Bearer",
                    "bearer": {"tokenSecretRef": {"name": secret, "key": "token"}},
                },
            },
        },
        {
            "apiVersion": GROUP,
            "kind": "HttpApiDataSource",
            "metadata": {"name": sources[1], **meta},
            "spec": {
                "baseUrl": "https://customers.example.com/api",
                "auth": {
                    "type": "Basic",
                    "basic": {
                        "username": "svc",
                        "passwordSecretRef": {"name": secret, "key": "password"},
                    },
                },
            },
        },
    ]
    tools = [
        {
            "name": f"tool_{t}",
            "description": f"Tool {t}.",
            "dataSource": sources[t % 2],
            "parameters": [{"name": "id", "type": "String", "required": True}],
            "request": {"method": "GET", "path": f"/things/{t}/:id"},
        }
        for t in range(5)
    ]
    docs.append(
        {
            "apiVersion": GROUP,
            "kind": "McpServer",
            "metadata": {"name": server, **meta},
            "spec": {"authorization": {"type": "None"}, "tools": tools},
        }
    )
    return docs


def _snapshot(api: KubeApi, names: Sequence[str]) -> dict[str, tuple[bool, dict[str, str]]]:
    """Per server: do its three objects exist, and its conditions' statuses. Read on the
    emulator's loop without copying objects (private access: a poll must stay cheap, it
    shares the loop that serves the operator)."""
    import kmock

    res = {k: kmock.resource(v) for k, v in _RESOURCES.items()}

    def inside() -> dict[str, tuple[bool, dict[str, str]]]:
        objects = api._objects

        def live(kind: str, name: str) -> Any:
            key = (res[kind], NAMESPACE, name)
            if key not in objects or objects[key].deleted:  # as KubeApi._current reads it
                return None
            return objects[key].raw

        out = {}
        for name in names:
            exists = all(
                live(kind, obj) is not None
                for kind, obj in (
                    ("configmaps", f"{name}-config"),
                    ("deployments", name),
                    ("services", name),
                )
            )
            server = live("mcpservers", name) or {}
            conditions = (server.get("status") or {}).get("conditions") or []
            out[name] = (exists, {c["type"]: c["status"] for c in conditions})
        return out

    return api._in_loop(inside)


def _settled(state: tuple[bool, dict[str, str]]) -> bool:
    exists, conditions = state
    return (
        exists
        and conditions.get("Accepted") == "True"
        and conditions.get("ResolvedRefs") == "True"
        and conditions.get("Available") == "False"
    )


def _wait(
    api: KubeApi, names: Sequence[str], done: Any, timeout: float, interval: float = 0.25
) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        snapshot = _snapshot(api, names)
        if all(done(snapshot[n]) for n in names):
            return time.monotonic()
        time.sleep(interval)
    return None


@contextlib.contextmanager
def _operator(api: KubeApi, work: Path, cores: Cores) -> Iterator[Child]:
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": api.server}}],
                "users": [{"name": "bench", "user": {"token": "emulator-token"}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "bench"}}
                ],
                "current-context": "emulator",
            }
        )
    )
    port = free_port()
    command = [
        PYTHON,
        "-m",
        "mcpgate.cli",
        "operator",
        "--kubeconfig",
        str(kubeconfig),
        "--liveness",
        f"http://127.0.0.1:{port}/healthz",
        "--image",
        "registry.example.com/mcpgate:bench",
        "--log-level",
        "warning",
    ]
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(work)}
    with start_child(
        "operator",
        cores.on(cores.server, command),
        logs=work,
        env=env,
        ready=lambda: http_call(port, "GET", "/healthz")[0] == 200,
    ) as child:
        yield child


def _deployment_ready(api: KubeApi, name: str) -> None:
    deployment = api.read("apps/v1/deployments", NAMESPACE, name)
    assert deployment is not None
    replicas = deployment["spec"].get("replicas", 1)
    reply = httpx.patch(
        f"{api.server}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}/status",
        json={
            "status": {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
        },
        headers={"content-type": "application/merge-patch+json"},
    )
    reply.raise_for_status()


def _start_sampler(pid: int, cores: Cores, work: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the operator until SIGINT (needs py-spy and ptrace rights)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        "100",
        "--threads",
        "--format",
        "raw",
        "--output",
        str(work / "operator.stacks.txt"),
    ]
    sampler = subprocess.Popen(  # noqa: S603 - py-spy on our own child
        cores.on(cores.client, command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)  # attached before the burst starts
    return sampler


def run_one(
    count: int, *, cores: Cores, timeout: float, profile: Path | None = None
) -> dict[str, Any]:
    names = [f"srv-{i}" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="mcpgate-bench-") as tmp:
        work = Path(tmp)
        with (
            serve_kube_api(crds=sorted(CRDS.glob("*.yaml"))) as api,
            _operator(api, work, cores) as operator,
        ):
            time.sleep(1.0)  # kopf's watches are open once it is alive; let them settle
            rss_idle = rss_kib(operator.pid)
            cpu_before = cpu_seconds(operator.pid)
            calls_before = len(api.calls)
            docs = [doc for i in range(count) for doc in _objects(i)]
            sampler = _start_sampler(operator.pid, cores, work) if profile is not None else None
            started = time.monotonic()
            for kind in ("Secret", "HttpApiDataSource", "McpServer"):
                for doc in docs:
                    if doc["kind"] == kind:
                        api.create(doc)
            created = time.monotonic()
            settled = _wait(api, names, _settled, timeout)
            if settled is None:
                raise RuntimeError(f"{count} servers did not settle within {timeout:g} s")
            cpu_settled = cpu_seconds(operator.pid)
            if sampler is not None:
                assert profile is not None
                sampler.send_signal(signal.SIGINT)  # py-spy writes what it has, then exits
                sampler.wait(60)
                profile.mkdir(parents=True, exist_ok=True)
                raw = (work / "operator.stacks.txt").read_text()
                (profile / f"operator-{count}.stacks.txt").write_text(raw)
                report = summarise(raw, expected=int(100 * (settled - started)), top=20)
                (profile / f"operator-{count}.txt").write_text(report)
            rss_settled = rss_kib(operator.pid)
            calls = api.calls[calls_before:]

            ready_started = time.monotonic()
            for name in names:
                _deployment_ready(api, name)
            ready = _wait(api, names, lambda s: s[1].get("Ready") == "True", timeout)
            if ready is None:
                raise RuntimeError(f"{count} servers were not Ready within {timeout:g} s")
            rss_ready = rss_kib(operator.pid)

            time.sleep(1.0)  # let the last events of the burst pass
            mark = len(api.calls)
            reply = httpx.patch(
                f"{api.server}/api/v1/namespaces/{NAMESPACE}/secrets/creds-0",
                json={"metadata": {"labels": {"touched": "yes"}}},
                headers={"content-type": "application/merge-patch+json"},
            )
            reply.raise_for_status()
            deadline = time.monotonic() + 30
            while not any(
                c.verb == "get" and c.resource == "deployments" and c.name == "srv-0"
                for c in api.calls[mark:]
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("touching the Secret reconciled nothing")
                time.sleep(0.05)
            time.sleep(1.0)
            after = api.calls[mark:]
            writes = [
                f"{c.verb} {c.rbac_resource} {c.name}"
                for c in after
                if c.verb in WRITE_VERBS and not (c.resource == "secrets" and c.name == "creds-0")
            ]
    verbs = collections.Counter(c.verb for c in calls)
    return {
        "servers": count,
        "create_s": created - started,
        "settled_s": settled - started,
        "ready_s": ready - ready_started,
        "operator_cpu_s": cpu_settled - cpu_before,
        "rss_kib": {"idle": rss_idle, "settled": rss_settled, "ready": rss_ready},
        "requests": dict(verbs),
        "requests_per_server": len(calls) / count,
        "writes_per_server": sum(n for v, n in verbs.items() if v in WRITE_VERBS) / count,
        "unchanged_reconcile_requests": len(after),
        "unchanged_reconcile_writes": writes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.controller", description=__doc__)
    parser.add_argument("--sizes", default="50,200")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per size (fresh each); N=50 is noisy alone"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--profile", type=Path, help="sample the operator with py-spy until settled; keep here"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.rounds = "2,4", 1
    sizes = [int(s) for s in str(args.sizes).split(",")]
    cores = Cores.detect()
    if cores.client is not None:  # the emulator's thread inherits this
        os.sched_setaffinity(0, {cores.client})
    info = print_heading("bench.controller", smoke=args.smoke)
    print(f"pinning: operator on CPU {cores.server}; emulator and this process on {cores.client}")

    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for round_ in range(args.rounds):
        for n in sizes:
            result = run_one(n, cores=cores, timeout=args.timeout, profile=args.profile)
            runs[n].append(result)
            print(
                f"round {round_ + 1}/{args.rounds} N={n:<4} settled {result['settled_s']:6.2f} s"
                f"  ready {result['ready_s']:6.2f} s"
                f"  operator CPU {result['operator_cpu_s']:6.2f} s"
                f"  RSS {result['rss_kib']['ready'] / 1024:.0f} MiB"
                f"  requests/server {result['requests_per_server']:.1f}",
                flush=True,
            )

    print()
    print(f"## N McpServers at once (median of {args.rounds} runs; min-max)")
    rows = []
    for n in sizes:
        rs = runs[n]
        settled = [r["settled_s"] for r in rs]
        ready = [r["ready_s"] for r in rs]
        rows.append(
            [
                n,
                f"{median(settled):.2f} ({spread(settled)})",
                f"{median(ready):.2f} ({spread(ready)})",
                f"{median([r['operator_cpu_s'] for r in rs]):.2f}",
                f"{median([r['rss_kib']['idle'] for r in rs]) / 1024:.0f}"
                f" / {median([r['rss_kib']['ready'] for r in rs]) / 1024:.0f}",
                f"{median([r['requests_per_server'] for r in rs]):.1f}",
                f"{median([r['writes_per_server'] for r in rs]):.1f}",
            ]
        )
    print(
        table(
            [
                "N",
                "settled s",
                "ready s",
                "operator CPU s (to settled)",
                "RSS MiB idle / ready",
                "API requests per server",
                "writes per server",
            ],
            rows,
        )
    )
    for n in sizes:
        print(f"requests by verb, N={n}: {runs[n][-1]['requests']}")
    verdicts = []
    small, large = min(sizes), max(sizes)
    if small != large:
        ratio = median([r["settled_s"] for r in runs[large]]) / median(
            [r["settled_s"] for r in runs[small]]
        )
        ratio_ready = median([r["ready_s"] for r in runs[large]]) / median(
            [r["ready_s"] for r in runs[small]]
        )
        print(f"\ntime({large})/time({small}): settled {ratio:.2f}, ready {ratio_ready:.2f}")
        verdicts.append(
            (
                f"time({large})/time({small}) <= {TARGET_RATIO}",
                ratio <= TARGET_RATIO,
                f"{ratio:.2f}",
            )
        )
    writes = [w for n in sizes for r in runs[n] for w in r["unchanged_reconcile_writes"]]
    verdicts.append((UNCHANGED_WRITES_NOTHING, not writes, f"{len(writes)} writes {writes[:5]}"))
    # Writing nothing holds at any size: the smoke run judges it too.
    print_targets(verdicts, smoke=args.smoke, judged_in_smoke={UNCHANGED_WRITES_NOTHING})
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "runs": runs}, indent=2))
    return 1 if writes else 0


if __name__ == "__main__":
    sys.exit(main())
