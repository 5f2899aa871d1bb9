"""Gateways for the hardening tests: in a thread (fast, shared per module) or as a real
`mcpgate gateway` subprocess (its own GIL, its own RSS, its real logging and redactor),
plus raw JSON-RPC helpers and the figures the load cases report.

Every text a test reads back from a gateway that a credential must never reach goes
through `record` into the leak sink.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from hardening.canaries import SINK
from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.server import build_app

from support.gateway import RunningGateway, free_port, serve_in_thread
from support.poll import wait_for_sync

__all__ = [
    "HEADERS",
    "LOAD",
    "GatewayProcess",
    "Timed",
    "call_tool",
    "figures",
    "gateway_in_thread",
    "percentile",
    "record",
    "rpc",
    "scale",
]

# MCPGATE_HARDENING_LOAD=1 scales the load cases up (see docs/reliability.md).
LOAD = os.environ.get("MCPGATE_HARDENING_LOAD", "") not in ("", "0")
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

_FIGURES: dict[str, Any] = {}
N = TypeVar("N", int, float)


def scale(small: N, load: N) -> N:
    """`small` normally, `load` under MCPGATE_HARDENING_LOAD=1."""
    return load if LOAD else small


def figures(section: str, values: dict[str, Any]) -> None:
    """Print a load case's figures, and add them to $MCPGATE_HARDENING_FIGURES (JSON)."""
    _FIGURES[section] = values
    width = max(len(k) for k in values)
    lines = [f"\n== hardening figures: {section} ({'load' if LOAD else 'default'} mode)"]
    lines += [f"   {k:<{width}}  {v}" for k, v in values.items()]
    print("\n".join(lines))
    target = os.environ.get("MCPGATE_HARDENING_FIGURES")
    if target:
        path = Path(target)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing[section] = values | {"mode": "load" if LOAD else "default"}
        path.write_text(json.dumps(existing, indent=2))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def record(where: str, value: Any) -> Any:
    """Hand a text (or JSON-able value) to the leak sink; returns it unchanged."""
    SINK.add(where, value if isinstance(value, str) else json.dumps(value, default=str))
    return value


def rpc(method: str, params: dict[str, Any] | None = None, id_: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return message


@dataclass
class Timed:
    """One tools/call as the client saw it."""

    status: int
    body: dict[str, Any]
    elapsed: float

    @property
    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = self.body["result"]
        return result

    @property
    def is_error(self) -> bool:
        return bool(self.result.get("isError"))

    @property
    def text(self) -> str:
        return "".join(c.get("text", "") for c in self.result.get("content", []))


async def call_tool(
    http: httpx.AsyncClient,
    url: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    sink: bool = True,
) -> Timed:
    """One tools/call over raw JSON-RPC. The answer goes to the leak sink unless `sink`
    is False (for a test that looks for a leak itself and must not fail the whole run)."""
    started = time.monotonic()
    reply = await http.post(
        url,
        json=rpc("tools/call", {"name": tool, "arguments": arguments}),
        headers={**HEADERS, **(headers or {})},
    )
    elapsed = time.monotonic() - started
    body = (
        reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
    )
    if sink:
        record(f"tool result: {tool}", reply.text)
    return Timed(reply.status_code, body, elapsed)


@contextlib.contextmanager
def gateway_in_thread(config: GatewayConfig) -> Iterator[RunningGateway]:
    """The real gateway under uvicorn in a thread of its own (sync, for module fixtures)."""
    app, _ = build_app(config)
    with serve_in_thread(app) as base:
        yield RunningGateway(url=f"{base}/mcp", base=base, app=app)


def _proc_status(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class GatewayProcess:
    """`python -m mcpgate.cli gateway --config FILE`, as a pod runs it, on loopback."""

    config: GatewayConfig
    folder: Path
    log_level: str = "debug"
    port: int = 0
    metrics_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stderr_path = self.folder / "gateway.stderr"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/mcp"

    def start(self) -> GatewayProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "config.json"
        config_file.write_text(self.config.to_json())
        self.port, self.metrics_port = free_port(), free_port()
        command = [
            sys.executable,
            "-m",
            "mcpgate.cli",
            "gateway",
            "--config",
            str(config_file),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--metrics-port",
            str(self.metrics_port),
            "--log-level",
            self.log_level,
        ]
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.stderr_path.read_text()[-2000:]}")
            with urllib.request.urlopen(self.base + "/readyz", timeout=1) as answer:  # noqa: S310
                return bool(answer.status == 200)

        wait_for_sync(ready, within=30, what="the gateway's /readyz", retry_on=(OSError,))
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_kib(self) -> int:
        assert self.process is not None
        return _proc_status(self.process.pid, "VmRSS")

    def open_fds(self) -> int:
        assert self.process is not None
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text: str = answer.read().decode()
        return record("metrics: gateway subprocess", text)

    def stop(self) -> int | None:
        """SIGTERM and wait; the stderr (JSON log lines) goes to the leak sink."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait(timeout=10)
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            SINK.add("log: gateway subprocess stderr", line)
        return code

    def log_lines(self) -> list[str]:
        return self.stderr_path.read_text(errors="replace").splitlines()
