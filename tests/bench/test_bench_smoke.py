"""Every benchmark in bench/, run as its command in a smoke size, so that none of them rots.

Seconds each, and no figure is judged: the machine is shared and small. What is checked
is that each command runs to the end and that what it measured was real (every answer a
real tool result, the gateway free of kopf and kubernetes, an unchanged reconcile
writing nothing, every gzip bomb refused and every injected API fault met): the
commands exit non-zero otherwise. The Python load generator and
upstream are forced, so neither wrk nor nginx needs to be installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT

PY_SPY = Path(sys.executable).parent / "py-spy"
NO_SAMPLES = 3  # bench.profile's exit status when py-spy may not sample (no ptrace rights)


def start_bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m <args>` from the checkout, whatever its exit status."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def run_bench(*args: str, timeout: float = 300) -> str:
    """The output of a benchmark that must succeed."""
    done = start_bench(*args, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_gateway_benchmark_runs() -> None:
    out = run_bench("bench.gateway", "--smoke", "--generator", "python", "--upstream", "python")
    assert "kopf/kubernetes among them: none" in out
    for heading in ("## calls/s", "## latency", "## ratios", "## memory", "## targets"):
        assert heading in out
    assert "mcpgate/floor-httpx" in out


def test_auth_benchmark_runs() -> None:
    out = run_bench("bench.auth", "--smoke", "--generator", "python", "--upstream", "python")
    for method in ("apikey", "basic", "bearer", "oauth2", "sigv4"):
        assert f"{method}/none" in out
    assert "OAuth2 token requests during the run: 1 " in out


def test_auth_benchmark_measures_the_methods_asked_for() -> None:
    out = run_bench(
        "bench.auth",
        "--smoke",
        "--methods",
        "sigv4",
        "--generator",
        "python",
        "--upstream",
        "python",
    )
    assert "sigv4/none" in out
    for method in ("apikey", "basic", "bearer", "oauth2"):
        assert f"{method}/none" not in out
    assert "OAuth2 token requests" not in out


def test_auth_benchmark_refuses_an_unknown_method() -> None:
    done = start_bench("bench.auth", "--smoke", "--methods", "sigv5", timeout=60)
    assert done.returncode == 2
    assert "--methods: unknown sigv5; known: none, apikey, basic, bearer, oauth2, sigv4" in (
        done.stderr
    )


def test_operator_benchmark_runs() -> None:
    out = run_bench("bench.controller", "--smoke")
    assert "[PASS] an unchanged reconcile writes nothing" in out


def test_render_benchmark_runs() -> None:
    out = run_bench("bench.render", "--smoke")
    assert "1000/100 = " in out


def test_faults_benchmark_runs() -> None:
    out = run_bench("bench.faults", "--smoke", "--generator", "python", "--upstream", "python")
    for heading in (
        "## 1. a failing neighbour",
        "## 2. gzip bombs",
        "## 3. slow connections",
        "## 4. the operator under API faults",
        "## targets",
    ):
        assert heading in out
    for ratio in (
        "beside faults / alone: p99 ",
        "bomb / small gzip: p50 ",
        "beside slow sockets / alone: p99 ",
        "Ready under faults / without: ",
    ):
        assert ratio in out
    assert "wrong answers, crashes and missing measurements, all sections: 0" in out
    assert out.count("- [n/a ] ") == 4  # four targets, none judged in a smoke run


def test_faults_benchmark_refuses_an_unknown_section() -> None:
    done = start_bench("bench.faults", "--smoke", "--only", "bomb,gc", timeout=60)
    assert done.returncode == 2
    assert "--only: unknown gc; known: neighbour, bomb, slowloris, operator" in done.stderr


def test_profile_summary_reads_py_spy_output() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench.profile import summarise
    finally:
        sys.path.remove(str(ROOT))
    raw = "\n".join(
        [
            "thread (1): MainThread;run (asyncio/runners.py:118);"
            "_once (mcpgate/gateway/outbound.py:159);send (httpx/_client.py:1629) 30",
            "thread (1): MainThread;run (asyncio/runners.py:118);"
            "_mcp (mcpgate/gateway/app.py:221) 10",
            "thread (2): Thread-1 (serve_forever);select (selectors.py:415) 5",
        ]
    )
    report = summarise(raw, expected=50)
    assert "40 busy samples of about 50" in report
    assert "other threads: 5" in report
    assert "| httpx (client API, models, auth flow) | 75.0% |" in report
    assert "_once (mcpgate/gateway/outbound.py:159)" in report


@pytest.mark.skipif(
    not PY_SPY.exists() and shutil.which("py-spy") is None, reason="py-spy is not installed"
)
def test_profile_runs() -> None:
    args = (
        "bench.profile",
        "--seconds",
        "2",
        "--auth",
        "sigv4",
        "--generator",
        "python",
        "--upstream",
        "python",
    )
    done = start_bench(*args)
    denied = ("Permission denied", "Operation not permitted", "ptrace")
    if done.returncode == NO_SAMPLES and any(word in done.stderr for word in denied):
        pytest.skip(f"py-spy may not trace processes here: {done.stderr[-300:]}")
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "### by area" in out
    assert "outbound auth sigv4" in out
    assert ", errors 0 " in out  # the upstream took every signed request
