"""Where mcpgate's time goes under load: py-spy samples of the gateway at c=16.

    python -m bench.profile [--seconds 20] [--connections 16] [--auth METHOD] [--out DIR]

The gateway benchmark's setup (upstream on the client CPU, `mcpgate up` on the server
CPU) loaded by the same generator while `py-spy record` (on the client CPU) samples the
gateway's Python stacks; `--auth` puts one of bench.auth's outbound auth methods (and
its Secret) on the data source, to see what that method costs. Prints the share of the
main thread's busy samples (idle ones, the loop waiting in epoll, are left out: how many
there were says how busy it was)

- by area (the package of the innermost frame: the HTTP server, httpx, aiohttp, asyncio
  and uvloop, mcpgate itself, metrics, JSON, ...),
- by function, innermost frame only (self time),
- by function anywhere on the stack (inclusive time), for mcpgate's own functions and
  the library calls they make,

and keeps py-spy's raw (collapsed) stacks and a flame graph in `--out` when given.
Needs py-spy (`pip install py-spy`); root or ptrace rights on the gateway.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from bench._util import Cores, table
from bench.auth import auth_blocks, bench_secrets
from bench.loadgen import Result, generator_for, run_load
from bench.rounds import warm_up
from bench.targets import data_source, item_call, item_tool, start_mcpgate, write_manifests
from bench.upstream import start_upstream

__all__ = ["area", "main", "summarise"]

NO_SAMPLES = 3  # exit status when py-spy cannot sample the gateway (no ptrace rights)

# innermost-frame file -> area, first match wins
_AREAS = (
    ("mcpgate/gateway/app.py", "mcpgate: ASGI app (app.py)"),
    ("mcpgate/gateway/protocol.py", "mcpgate: JSON-RPC (protocol.py)"),
    ("mcpgate/gateway/tools.py", "mcpgate: tool runner (tools.py)"),
    ("mcpgate/gateway/templates.py", "mcpgate: templates (templates.py)"),
    ("mcpgate/gateway/arguments.py", "mcpgate: argument checks (arguments.py)"),
    ("mcpgate/gateway/audit.py", "mcpgate: audit line (audit.py)"),
    ("mcpgate/gateway/inbound", "mcpgate: inbound auth"),
    ("mcpgate/gateway/outbound.py", "mcpgate: outbound client (outbound.py)"),
    ("mcpgate/gateway/transport.py", "mcpgate: connection pool (transport.py)"),
    ("mcpgate/gateway/auth", "mcpgate: outbound auth"),
    ("mcpgate/controller", "mcpgate: controller"),
    ("mcpgate/render", "mcpgate: render"),
    ("mcpgate/api", "mcpgate: API models"),
    ("mcpgate/", "mcpgate: other"),
    ("kopf/", "kopf"),
    ("pydantic", "pydantic"),
    ("json/", "json (standard library)"),
    ("copy.py", "copy (deepcopy)"),
    ("uvicorn/", "uvicorn (HTTP server)"),
    ("httpx/", "httpx (client API, models, auth flow)"),
    ("httpcore/", "httpcore"),
    ("aiohttp/", "aiohttp (client pool, connection)"),
    ("yarl/", "yarl (URLs)"),
    ("multidict/", "multidict"),
    ("prometheus_client/", "prometheus_client (metrics)"),
    ("orjson", "orjson"),
    ("asyncio/", "asyncio (Python part)"),
    ("uvloop", "uvloop"),
    ("logging/", "logging"),
    ("contextlib", "contextlib"),
    ("typing", "typing"),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _split(frame: str) -> tuple[str, str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, "", ""
    return match["func"], match["file"], match["line"] or ""


def area(frame: str) -> str:
    _, file, _ = _split(frame)
    for needle, name in _AREAS:
        if needle in file:
            return name
    if not file:
        return "native / unknown"
    return "other: " + Path(file).parts[-1]


def _short(frame: str, *, line: bool = False) -> str:
    func, file, number = _split(frame)
    where = file.removeprefix("<frozen ").removesuffix(">")
    return f"{func} ({where}:{number})" if line and number else f"{func} ({where})"


def _stacks(raw: str) -> tuple[list[tuple[list[str], int]], int]:
    """The main thread's stacks (outermost frame first) with their counts, and the number
    of samples of every other thread."""
    stacks: list[tuple[list[str], int]] = []
    others = 0
    for line in raw.splitlines():
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        frames = [f for f in text.split(";") if f]
        if frames and frames[0].startswith("thread ("):  # py-spy --threads
            if not frames[0].endswith("MainThread"):
                others += int(count)
                continue
            frames = frames[1:]
        if frames:
            stacks.append((frames, int(count)))
    return stacks, others


def summarise(raw: str, *, expected: int, top: int = 25) -> str:
    """The report of py-spy's raw output (`frame;frame;... count` per line, --threads, idle
    samples left out); `expected` is rate x seconds, the samples of a thread never idle."""
    stacks, others = _stacks(raw)
    busy = sum(c for _, c in stacks)
    if busy == 0:
        return "no samples"
    areas: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        areas[area(frames[-1])] += count
        self_time[_short(frames[-1])] += count
        for function in {_short(f) for f in frames}:
            inclusive[function] += count
        for frame in {f for f in frames if "mcpgate/" in f and "mcpgate/cli" not in f}:
            lines[_short(frame, line=True)] += count

    def pct(n: int) -> str:
        return f"{100 * n / busy:.1f}%"

    skip = ("_bootstrap", "<module>", "_run_module_as_main", "_run_code", "main (mcpgate/cli")
    return "\n".join(
        [
            f"main thread: {busy} busy samples of about {expected}"
            f" (busy {100 * busy / expected:.0f}% of the time); other threads: {others} busy"
            " samples. Shares are of the main thread's busy samples.",
            "",
            "### by area (innermost frame)",
            table(["area", "share"], [[a, pct(n)] for a, n in areas.most_common()]),
            "",
            f"### top {top} functions, self (innermost frame)",
            table(["function", "share"], [[f, pct(n)] for f, n in self_time.most_common(top)]),
            "",
            f"### top {2 * top} functions, inclusive (anywhere on the stack)",
            table(
                ["function", "share"],
                [
                    [f, pct(n)]
                    for f, n in inclusive.most_common(4 * top)
                    if not any(k in f for k in skip)
                ][: 2 * top],
            ),
            "",
            f"### top {top} lines of mcpgate's code, inclusive",
            table(["line", "share"], [[f, pct(n)] for f, n in lines.most_common(top)]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--upstream", choices=["auto", "nginx", "python"], default="auto")
    parser.add_argument(
        "--auth", choices=list(auth_blocks("")), default="none", help="outbound auth method"
    )
    parser.add_argument("--out", type=Path, help="keep raw stacks and a flame graph here")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    cores = Cores.detect()
    generator = generator_for(args.generator)
    with (
        tempfile.TemporaryDirectory(prefix="mcpgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        upstream = stack.enter_context(start_upstream(args.upstream, logs=work, cores=cores))
        prefix = "" if args.auth == "none" else f"/{args.auth}"  # its route on the upstream
        manifests = write_manifests(
            work / "manifests",
            sources=[
                data_source("items", upstream.url + prefix, auth_blocks(upstream.url)[args.auth])
            ],
            tools=[item_tool("get_item", "items")],
            secrets=bench_secrets(),
        )
        gateway = stack.enter_context(start_mcpgate(manifests, item_call(), logs=work, cores=cores))
        assert gateway.child is not None
        warm_up([gateway], 2000, generator=generator, cores=cores, workdir=work)
        loaded: list[Result] = []
        load = threading.Thread(
            target=lambda: loaded.append(
                run_load(
                    gateway.load,
                    gateway.port,
                    connections=args.connections,
                    seconds=args.seconds + 2,
                    generator=generator,
                    cores=cores,
                    workdir=work,
                )
            )
        )
        load.start()
        raw_file = work / "stacks.txt"
        record = [
            py_spy,
            "record",
            "--pid",
            str(gateway.child.pid),
            "--duration",
            str(args.seconds),
            "--rate",
            str(args.rate),
            "--threads",
            "--format",
            "raw",
            "--output",
            str(raw_file),
        ]
        sampled = subprocess.run(  # noqa: S603 - py-spy on our own child
            cores.on(cores.client, record),
            check=False,
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
        )
        load.join()
        if sampled.returncode != 0:
            # Typically no ptrace rights (a container without CAP_SYS_PTRACE).
            print(
                f"py-spy could not sample the gateway:\n{sampled.stderr[-2000:]}", file=sys.stderr
            )
            return NO_SAMPLES
        raw = raw_file.read_text()
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "mcpgate-c16.stacks.txt").write_text(raw)
    result = loaded[0]
    print(
        f"# bench.profile: mcpgate at c={args.connections}, outbound auth {args.auth},"
        f" {args.seconds} s, py-spy {args.rate} Hz"
    )
    print(
        f"load during sampling: {result.rps:,.0f} calls/s, p50 {result.p50_ms:.2f} ms,"
        f" errors {result.errors} (py-spy pauses the process to sample: slower than unprofiled)"
    )
    print()
    print(summarise(raw, expected=args.rate * args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
