"""What every benchmark shares: child processes pinned to a core, readiness, memory, the
machine's description, medians and markdown tables."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "PYTHON",
    "ROOT",
    "Child",
    "Cores",
    "Verdict",
    "cpu_seconds",
    "free_port",
    "http_call",
    "machine_info",
    "median",
    "print_heading",
    "print_targets",
    "rss_kib",
    "run_fast",
    "spread",
    "start_child",
    "table",
    "wait_until",
]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PACKAGES = (
    "mcpgate",
    "fastmcp",
    "mcp",
    "uvicorn",
    "uvloop",
    "httptools",
    "httpx",
    "httpx2",
    "aiohttp",
    "orjson",
    "pydantic",
    "kopf",
    "kmock",
)


def run_fast(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop when it is installed (as under uvicorn)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(main)
    return uvloop.run(main)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Cores:
    """Where servers run and where the load generator and upstream run. Without taskset or
    with one CPU nothing is pinned (the figures then say so)."""

    server: int | None
    client: int | None

    @classmethod
    def detect(cls) -> Cores:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls(cpus[0], cpus[1])

    @property
    def pinned(self) -> bool:
        return self.server is not None

    def on(self, core: int | None, command: Sequence[str]) -> list[str]:
        """`command` pinned to `core` (taskset execs it: the pid stays the command's)."""
        if core is None:
            return list(command)
        return ["taskset", "-c", str(core), *command]

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (taskset missing or a single CPU)"
        return f"servers on CPU {self.server}; load generator and upstream on CPU {self.client}"


@dataclass
class Child:
    """A process started by a benchmark; stopped (SIGTERM, then SIGKILL) at exit."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextlib.contextmanager
def start_child(
    name: str,
    command: Sequence[str],
    *,
    logs: Path,
    ready: Callable[[], bool],
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[Child]:
    """Start `command`, wait until `ready()` holds, stop it at exit."""
    log = logs / f"{name}.log"
    out: IO[bytes] = log.open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own commands, no shell
        list(command),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    child = Child(name, process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if not child.alive():
                raise RuntimeError(f"{name} exited at startup:\n{child.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if ready():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} was not ready within {timeout:g} s:\n{child.log_tail()}"
                )
            time.sleep(0.05)
        yield child
    finally:
        child.stop()
        out.close()


def http_call(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """One blocking request to 127.0.0.1:`port`: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """`min-max` of repeated measurements, the noise a median hides."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    if high >= 100:
        return f"{low:,.0f}-{high:,.0f}"
    return f"{low:.2f}-{high:.2f}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _tool_version(command: Sequence[str]) -> str:
    if shutil.which(command[0]) is None:
        return "absent"
    done = subprocess.run(  # noqa: S603 - a fixed version query
        list(command), capture_output=True, text=True, check=False, timeout=10
    )
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine_info() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": _tool_version(["wrk", "--version"]),
        "nginx": _tool_version(["nginx", "-v"]),
    }
    info["mcpgate source"] = _source_state()
    info.update({name: _version(name) for name in PACKAGES})
    return info


def print_heading(bench: str, *, smoke: bool) -> dict[str, str]:
    """A run's first lines (which benchmark, the machine, the source measured); returns
    `machine_info()` for the JSON report."""
    info = machine_info()
    print(f"# {bench}  ({'smoke' if smoke else 'full'} run)")
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}")
    print(f"mcpgate source: {info['mcpgate source']}")
    return info


# (what the target says, whether it holds, what was measured)
Verdict = tuple[str, bool, str]


def print_targets(
    verdicts: Sequence[Verdict], *, smoke: bool, judged_in_smoke: Collection[str] = ()
) -> None:
    """The targets with PASS or FAIL; a smoke run judges only `judged_in_smoke` (targets
    that hold at any size), the others are n/a."""
    print()
    print("## targets" + (" (smoke run: figures are not meaningful)" if smoke else ""))
    for what, ok, measured in verdicts:
        mark = "n/a " if smoke and what not in judged_in_smoke else ("PASS" if ok else "FAIL")
        print(f"- [{mark}] {what}: {measured}")


def _source_state() -> str:
    """The commit measured, and whether the gateway's sources differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "operator"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}{' + uncommitted changes under operator/' if dirty else ''}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table, columns padded for the terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
