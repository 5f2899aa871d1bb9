"""The real cluster (`scripts/cluster up`), once for this package, and what its tests share:
the chart installed once (release `mcpgate` in `mcpgate-system`, cluster-wide), a namespace
of its own for each test, and loopback upstreams that serve from a thread of their own
(the gateway pods are other processes: they call them while a test blocks in kubectl).

Where the cluster cannot be built or started the suite fails, loudly, when CI=true or
MCPGATE_REQUIRE_CLUSTER=1; elsewhere it skips, saying why, only when this machine cannot
run one at all (not root, or no Go and no cached build). A cluster of this checkout
started by hand is stopped first: the suite needs a fresh one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.kube import Kube
from support.paths import ROOT
from support.poll import wait_for_sync
from support.upstream import RecordingUpstream

RELEASE = "mcpgate"
SYSTEM = "mcpgate-system"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
# A first build of the binaries takes about 30 min on 2 cores; a cached `up` seconds.
UP_TIMEOUT = 50 * 60


def _required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("MCPGATE_REQUIRE_CLUSTER") == "1"


def _cannot_run() -> str:
    if os.geteuid() != 0:
        return "not root (the local node mounts pod volumes)"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcpgate-cluster"
    if shutil.which("go") is None and not any(cache.glob("*/bin/kube-apiserver")):
        return "no Go toolchain and no cached build of the cluster's binaries"
    return ""


def _state_logs(state: Path | None) -> str:
    if state is None or not state.is_dir():
        return ""
    parts = []
    for log in sorted((state / "logs").glob("*")):
        lines = log.read_text(errors="replace").splitlines()[-30:]
        parts.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(parts)


def _down() -> None:
    subprocess.run([str(ROOT / "scripts" / "cluster"), "down"], timeout=120, check=False)


@pytest.fixture(scope="package")
def kube() -> Iterator[Kube]:
    why = _cannot_run()
    if why and not _required():
        pytest.skip(f"no real cluster here: {why}")
    _down()  # a fresh cluster: one left running by hand (of this checkout) is replaced
    try:
        up = subprocess.run(
            [str(ROOT / "scripts" / "cluster"), "up"],
            stdout=subprocess.PIPE,
            stderr=None,  # the build's and start's progress, as it comes (pytest -s shows it)
            text=True,
            timeout=UP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _down()
        pytest.fail(f"scripts/cluster up did not finish within {UP_TIMEOUT} s", pytrace=False)
    line = next((w for w in up.stdout.split() if w.startswith("KUBECONFIG=")), "")
    kubeconfig = Path(line.partition("=")[2]) if line else None
    if up.returncode != 0 or kubeconfig is None or not kubeconfig.is_file():
        logs = _state_logs(kubeconfig.parent if kubeconfig else None)
        _down()
        pytest.fail(
            f"scripts/cluster up failed (exit {up.returncode}); stdout: {up.stdout!r}"
            f" (its stderr is above){why and ' [' + why + ']'}\n{logs}",
            pytrace=False,
        )
    cluster = Kube(kubeconfig=kubeconfig, state=kubeconfig.parent)
    try:
        yield cluster
    finally:
        _down()


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """A failed cluster test shows the ends of the control plane's and the operator's logs."""
    if (
        call.when != "call"
        or call.excinfo is None
        or call.excinfo.errisinstance(pytest.skip.Exception)
    ):
        return
    cluster = getattr(item, "funcargs", {}).get("kube")
    if isinstance(cluster, Kube):
        text = _state_logs(cluster.state)
        pods = sorted((cluster.state / "node" / "pods").glob(f"{SYSTEM}_*/operator.log"))
        for log in pods[-1:]:
            lines = log.read_text(errors="replace").splitlines()[-60:]
            text += f"\n--- operator ({log.parent.name})\n" + "\n".join(lines)
        item.add_report_section("call", "cluster logs", text)


# What every install and upgrade of the chart here sets: the tests' upstreams live on
# loopback, where gateways may connect only so (API.md "Destinations").
TEST_VALUES = ("--set", "gateway.allowLoopbackDestinations=true")


@pytest.fixture(scope="package")
def operator(kube: Kube) -> str:
    """The chart, installed once with its CRDs and the operator Ready (`helm install
    --wait`); the namespace it runs in. test_zz_release.py uninstalls it last."""
    kube.kubectl("create", "namespace", SYSTEM)
    kube.kubectl("label", "namespace", SYSTEM, RESTRICTED)
    kube.helm(
        "install",
        RELEASE,
        str(ROOT / "charts" / "mcpgate"),
        "-n",
        SYSTEM,
        *TEST_VALUES,
        "--wait",
        "--timeout=180s",
        timeout=200,
    )
    return SYSTEM


_serial = itertools.count(1)


@pytest.fixture
def ns(kube: Kube, operator: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, labelled to admit only restricted pods."""
    stem = request.node.name.split("[")[0].removeprefix("test_").replace("_", "-")[:40]
    name = f"t{next(_serial)}-{stem}".rstrip("-")
    kube.kubectl("create", "namespace", name)
    kube.kubectl("label", "namespace", name, RESTRICTED)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


class ThreadedUpstream:
    """A RecordingUpstream served by its own event loop in a thread."""

    def __init__(self) -> None:
        self.server = RecordingUpstream()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> RecordingUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def upstream() -> Iterator[RecordingUpstream]:
    """A loopback upstream that answers while the test blocks (shadows support.upstream's)."""
    with ThreadedUpstream() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def second_upstream() -> Iterator[RecordingUpstream]:
    with ThreadedUpstream() as server:
        yield server


def no_terminating_namespaces(kube: Kube) -> None:
    """Wait until the namespaces of earlier tests are gone (their deletion makes writes)."""

    def gone() -> bool:
        names = [
            n["metadata"]["name"]
            for n in kube.items("namespaces")
            if n.get("status", {}).get("phase") == "Terminating"
        ]
        assert not names, names
        return True

    wait_for_sync(gone, within=120, interval=0.5, what="terminating namespaces")
