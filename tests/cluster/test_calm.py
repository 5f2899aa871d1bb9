"""A quiet period: with nothing changing, the operator writes nothing. Early in the run
(the file name sorts before the others), so that no namespace of another test is still
being deleted, which would make writes of its own."""

from __future__ import annotations

import time

from cluster.common import SERVER, deploy
from cluster.conftest import RELEASE, SYSTEM, no_terminating_namespaces
from cluster.kube import WRITES, Kube
from support.upstream import RecordingUpstream

QUIET_SECONDS = 12


def test_nothing_changing_means_no_writes(kube: Kube, ns: str, upstream: RecordingUpstream) -> None:
    deploy(kube, ns, upstream)
    no_terminating_namespaces(kube)
    user = f"system:serviceaccount:{SYSTEM}:{RELEASE}"
    # Settled: the last status write (readyReplicas) is behind us before the count starts.
    kube.wait_ready(ns, f"mcpserver/{SERVER}")
    time.sleep(2)  # asserting that nothing happens: a fixed wait is the point
    since = kube.audit_offset()
    time.sleep(QUIET_SECONDS)
    writes = [
        (e["verb"], e["requestURI"])
        for e in kube.audit(since)
        if e["user"]["username"] == user and e["verb"] in WRITES
    ]
    assert writes == []


def test_the_operator_logs_no_line_per_api_request(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    deploy(kube, ns, upstream)
    kube.wait_ready(ns, f"mcpserver/{SERVER}")
    (log,) = sorted((kube.state / "node" / "pods").glob(f"{SYSTEM}_*/operator.log"))[-1:]
    text = log.read_text(errors="replace")
    assert text.strip()  # the operator logs, just not that
    # httpx logs each request at INFO ("HTTP Request: PATCH ... 200 OK"): capped.
    assert "HTTP Request:" not in text
