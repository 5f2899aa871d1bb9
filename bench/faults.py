"""mcpgate under faults, each against the same measurement without them, in one run.

    python -m bench.faults [--only neighbour,bomb,slowloris,operator] [--rounds 3] [--smoke]

What the hardening tests check for correctness (tests/hardening), measured for speed;
their latency thresholds are the targets here (issue 13: no timing threshold in tests).
Everything is on loopback: one `mcpgate up` serving

- `get_item(id)` on a healthy upstream (bench/upstream.py: nginx or the Python one), and
- `get_faulty` / `post_faulty(case, key)` on a data source with `timeoutSeconds: 1` at the
  hardening fault server (tests/hardening/faults.py, a process of its own), which answers
  each call with the fault its `case` names: hangs, resets, trickles, 5xx, gzip bombs...

with `--max-response-bytes 65536` (as the hardening tests run it). Measured:

1. neighbour: `get_item` at c=4 while 40 concurrent calls cycle through every fault the
   gateway handles (hardening.faults.HANDLED_FAULTS) on the other data source, against
   `get_item` alone; target from the assert tests/hardening/test_downstream_load.py had:
   p99 <= max(500 ms, 5 x p99 alone).
2. bomb: a call whose downstream answers a gzip bomb (64 KiB that decode to 64 MiB)
   against one answering a small gzip body, one at a time; and `get_item` in a loop while
   bursts of 6 bombs go on, against the same loop alone; target from
   test_downstream_faults.py: the loop's slowest call <= slowest alone + 300 ms.
3. slowloris: `get_item` at c=1 while N sockets trickle a request head one byte at a time
   (bench/slowloris.py), against `get_item` alone; target from test_hostile_clients.py:
   p99 < 1 s.
4. operator: a fresh API emulator (tests/support/kube_api.py) and `mcpgate operator` per
   run, M servers created at once (as bench.controller), time until all are Ready, with
   a storm of API faults (a 409 on every server's ConfigMap and Deployment create and
   status write, a 500 on every Service create, which kopf retries after 5 s, and 0.3 s
   more on every Deployment request, as test_operator_faults.py injects), against no
   faults; target from test_operator_faults.py: converged within 15 s.

The gateway and the operator run on one CPU; this process (the emulator's thread), the
load generators, the fault server, the slow sockets and the upstream on the other. Each
round measures a pair in an order that alternates between rounds; ratios are per round,
summarised by their median and min-max over rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench._util import (
    PYTHON,
    ROOT,
    Cores,
    Verdict,
    cpu_seconds,
    median,
    print_heading,
    print_targets,
    rss_kib,
    spread,
    table,
)
from bench.loadgen import Load, Result, generator_for, mcp_tool_call, run_load
from bench.targets import Target, data_source, item_call, item_tool, start_mcpgate, write_manifests
from bench.upstream import start_upstream

__all__ = ["main"]

sys.path.insert(0, str(ROOT / "tests"))

from hardening.faults import HANDLED_FAULTS, FaultServerProcess
from hardening.loadgen import run as run_mcp_calls

T = TypeVar("T")
U = TypeVar("U")
SECTIONS = ("neighbour", "bomb", "slowloris", "operator")

# The thresholds the tests' latency asserts had (removed from tests in dbb8c98).
NEIGHBOUR_RATIO = 5.0  # healthy p99 with a failing neighbour / p99 alone ...
NEIGHBOUR_FLOOR_MS = 500.0  # ... or under this, whichever is larger
BOMB_STALL_MS = 300.0  # slowest quick call during bombs - slowest alone
SLOWLORIS_P99_MS = 1000.0
OPERATOR_BOUND_S = 15.0

FAULTY_TIMEOUT_S = 1
CAP = 64 * 1024
HEALTHY_CONNECTIONS = 4
BOMB_BURST = 6
BOMB_REFUSED = "larger than the 64 KiB limit"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="pairs per gateway section")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per load")
    parser.add_argument("--faulty-concurrency", type=int, default=40)
    parser.add_argument("--bomb-calls", type=int, default=20, help="bomb and control calls")
    parser.add_argument("--sockets", type=int, default=200, help="slow sockets held open")
    parser.add_argument("--servers", type=int, default=3, help="McpServers per operator run")
    parser.add_argument("--operator-rounds", type=int, default=3)
    parser.add_argument("--operator-timeout", type=float, default=60.0)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--upstream", choices=["auto", "nginx", "python"], default="auto")
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes; no verdicts")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.operator_rounds = 1, 1.0, 1
        args.faulty_concurrency, args.bomb_calls, args.sockets, args.servers = 8, 3, 20, 1
    args.only = [s.strip() for s in str(args.only).split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return args


@dataclasses.dataclass
class Bench:
    """What every gateway section works with."""

    gateway: Target
    generator: str
    cores: Cores
    work: Path

    def load(
        self,
        load: Load,
        *,
        connections: int = 1,
        seconds: float | None = None,
        count: int | None = None,
    ) -> Result:
        """One load; `extra["gateway_cpu"]` is the share of a CPU the gateway used meanwhile
        (whatever it served: during a fault phase, the faulty calls too)."""
        child = self.gateway.child
        before = cpu_seconds(child.pid) if child is not None else 0.0
        result = run_load(
            load,
            self.gateway.port,
            connections=connections,
            seconds=seconds,
            count=count,
            generator=self.generator,
            cores=self.cores,
            workdir=self._private(),
        )
        if child is not None and result.seconds > 0:
            result.extra["gateway_cpu"] = (cpu_seconds(child.pid) - before) / result.seconds
        return result

    def _private(self) -> Path:
        """A folder per thread: two loads at once must not share their script files."""
        folder = self.work / f"load-{threading.get_ident()}"
        folder.mkdir(exist_ok=True)
        return folder


def _faulty_call(case: str, *, marker: str) -> Load:
    """`get_faulty(case)`; a good answer holds `marker` (for a bomb: its refusal, a tool
    error, which is the good answer there)."""
    load = mcp_tool_call("get_faulty", {"case": case, "key": "b"}, marker=marker)
    return dataclasses.replace(load, must_not=()) if case == "bomb" else load


@contextlib.contextmanager
def _in_background(work: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """`work()` in a thread while the block runs; yields a function waiting for its result."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as err:
            box["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if "error" in box:
            raise box["error"]
        value: T = box["result"]
        return value

    try:
        yield result
    finally:
        thread.join()


def _alternate(round_: int, first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """Both measurements of a pair, in an order that alternates between rounds."""
    if round_ % 2:
        b = second()
        return first(), b
    a = first()
    return a, second()


def _ratios(pairs: list[tuple[float, float]]) -> list[float]:
    return [a / b for a, b in pairs if b > 0]


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _latency_table(rounds: list[dict[str, Any]], rows: list[tuple[str, str]]) -> str:
    """get_item's figures (medians of rounds) for each (row name, result key)."""
    return table(
        ["get_item", "p50 ms", "p99 ms", "max ms", "calls/s", "gateway CPU"],
        [
            [
                name,
                _ms(median([r[key]["p50_ms"] for r in rounds])),
                _ms(median([r[key]["p99_ms"] for r in rounds])),
                _ms(median([r[key]["max_ms"] for r in rounds])),
                f"{median([r[key]['good'] / r[key]['seconds'] for r in rounds]):,.0f}",
                _cpu(rounds, key),
            ]
            for name, key in rows
        ],
    )


def _cpu(rounds: list[dict[str, Any]], key: str) -> str:
    shares = [r[key]["extra"]["gateway_cpu"] for r in rounds if "gateway_cpu" in r[key]["extra"]]
    return f"{median(shares):.0%}" if shares else "-"


def _signed_spread(values: Sequence[float]) -> str:
    return f"{min(values):+.1f} to {max(values):+.1f}" if values else "-"


# --- 1. a failing neighbour --------------------------------------------------------------


def _neighbour(bench: Bench, args: argparse.Namespace) -> tuple[dict[str, Any], list[Verdict]]:
    healthy = item_call()
    url = f"http://127.0.0.1:{bench.gateway.port}/mcp"
    faulty = [
        [
            "post_faulty" if i % 3 == 0 else "get_faulty",
            {"case": HANDLED_FAULTS[i % len(HANDLED_FAULTS)], "key": f"n{i}"},
        ]
        for i in range(len(HANDLED_FAULTS) * 50)
    ]
    bench.load(healthy, connections=HEALTHY_CONNECTIONS, count=200)  # warm up
    rounds: list[dict[str, Any]] = []
    for round_ in range(args.rounds):

        def alone() -> Result:
            return bench.load(healthy, connections=HEALTHY_CONNECTIONS, seconds=args.duration)

        def beside_faults() -> tuple[Result, list[Any]]:
            spec = {
                "url": url,
                "calls": faulty,
                "concurrency": args.faulty_concurrency,
                "seconds": args.duration + 1.0,
            }
            with _in_background(lambda: run_mcp_calls(spec)) as faulty_results:
                time.sleep(0.5)  # the faulty calls are under way
                result = bench.load(healthy, connections=HEALTHY_CONNECTIONS, seconds=args.duration)
                return result, faulty_results()

        base, (during, faults) = _alternate(round_, alone, beside_faults)
        tool_errors = [r for r in faults if r[1]]
        crashes = [r for r in faults if r[0] != 200 or r[3].startswith("NO RESULT")]
        unnamed = [r for r in tool_errors if not r[3].startswith("data source faulty")]
        rounds.append(
            {
                "alone": dataclasses.asdict(base),
                "beside_faults": dataclasses.asdict(during),
                "faulty_calls": len(faults),
                "faulty_tool_errors": len(tool_errors),
                "faulty_crashes": len(crashes),
                "faulty_errors_not_naming_the_source": len(unnamed),
                "slowest_faulty_s": max((r[2] for r in faults), default=0.0),
            }
        )
        print(
            f"neighbour round {round_ + 1}/{args.rounds}: get_item p50/p99 alone"
            f" {base.p50_ms:.2f}/{base.p99_ms:.2f} ms, beside faults"
            f" {during.p50_ms:.2f}/{during.p99_ms:.2f} ms (max {during.max_ms:.0f});"
            f" {len(faults)} faulty calls, {len(crashes)} crashes,"
            f" errors {base.errors + during.errors}",
            flush=True,
        )
    p99_ratios = _ratios([(r["beside_faults"]["p99_ms"], r["alone"]["p99_ms"]) for r in rounds])
    p50_ratios = _ratios([(r["beside_faults"]["p50_ms"], r["alone"]["p50_ms"]) for r in rounds])
    p99_during = median([r["beside_faults"]["p99_ms"] for r in rounds])
    print()
    print(f"## 1. a failing neighbour (get_item at c={HEALTHY_CONNECTIONS}; median of rounds)")
    print(_latency_table(rounds, [("alone", "alone"), ("beside faults", "beside_faults")]))
    print(
        f"beside faults / alone: p99 {median(p99_ratios):.2f} ({spread(p99_ratios)}),"
        f" p50 {median(p50_ratios):.2f} ({spread(p50_ratios)})"
    )
    print(
        f"faulty calls per round: {median([r['faulty_calls'] for r in rounds]):.0f}"
        f" at c={args.faulty_concurrency}, {len(HANDLED_FAULTS)} fault classes;"
        f" slowest {max(r['slowest_faulty_s'] for r in rounds):.2f} s"
        f" (timeoutSeconds {FAULTY_TIMEOUT_S})"
    )
    ratio = median(p99_ratios)
    limit = max(
        NEIGHBOUR_FLOOR_MS, NEIGHBOUR_RATIO * median([r["alone"]["p99_ms"] for r in rounds])
    )
    verdict = (
        f"get_item p99 beside a failing data source <= max({NEIGHBOUR_FLOOR_MS:g} ms,"
        f" {NEIGHBOUR_RATIO:g}x p99 alone)",
        p99_during <= limit,
        f"{_ms(p99_during)} ms, {ratio:.2f}x p99 alone (limit {limit:.0f} ms)",
    )
    bad = sum(
        r["alone"]["bad"]
        + r["alone"]["socket_errors"]
        + r["beside_faults"]["bad"]
        + r["beside_faults"]["socket_errors"]
        + r["faulty_crashes"]
        + r["faulty_errors_not_naming_the_source"]
        for r in rounds
    )
    return {"rounds": rounds, "p99_ratio": ratio, "errors": bad}, [verdict]


# --- 2. gzip bombs -----------------------------------------------------------------------


def _bomb(bench: Bench, args: argparse.Namespace) -> tuple[dict[str, Any], list[Verdict]]:
    bomb = _faulty_call("bomb", marker=BOMB_REFUSED)
    control = _faulty_call("gzip", marker="small")
    quick = item_call()
    bench.load(bomb, count=1)  # the fault server makes its bomb once (0.3 s of its CPU)
    bench.load(control, count=1)
    rounds: list[dict[str, Any]] = []
    rss_before = rss_kib(bench.gateway.child.pid) if bench.gateway.child else 0
    for round_ in range(args.rounds):
        one_bomb, one_control = _alternate(
            round_,
            lambda: bench.load(bomb, count=args.bomb_calls),
            lambda: bench.load(control, count=args.bomb_calls),
        )

        def quick_alone() -> Result:
            return bench.load(quick, seconds=args.duration)

        def quick_beside_bombs() -> tuple[Result, list[Result]]:
            until = time.monotonic() + args.duration
            bursts: list[Result] = []

            def bombs() -> None:
                time.sleep(0.3)  # the loop is under way
                while time.monotonic() < until - 0.3:
                    bursts.append(bench.load(bomb, connections=BOMB_BURST, count=BOMB_BURST))

            with _in_background(bombs) as done:
                result = bench.load(quick, seconds=args.duration)
                done()
            return result, bursts

        alone, (beside, bursts) = _alternate(round_, quick_alone, quick_beside_bombs)
        bombs_sent = sum(b.requests for b in bursts)
        rounds.append(
            {
                "bomb": dataclasses.asdict(one_bomb),
                "control": dataclasses.asdict(one_control),
                "quick_alone": dataclasses.asdict(alone),
                "quick_beside_bombs": dataclasses.asdict(beside),
                "bombs_during_the_loop": bombs_sent,
                "bomb_errors_during_the_loop": sum(b.errors for b in bursts),
            }
        )
        print(
            f"bomb round {round_ + 1}/{args.rounds}: bomb call p50 {one_bomb.p50_ms:.2f} ms,"
            f" small gzip {one_control.p50_ms:.2f} ms; get_item max alone"
            f" {alone.max_ms:.1f} ms, beside {bombs_sent} bombs {beside.max_ms:.1f} ms;"
            f" errors {one_bomb.errors + one_control.errors + alone.errors + beside.errors}",
            flush=True,
        )
    rss_after = rss_kib(bench.gateway.child.pid) if bench.gateway.child else 0
    p50_ratios = _ratios([(r["bomb"]["p50_ms"], r["control"]["p50_ms"]) for r in rounds])
    p99_ratios = _ratios([(r["bomb"]["p99_ms"], r["control"]["p99_ms"]) for r in rounds])
    stalls = [r["quick_beside_bombs"]["max_ms"] - r["quick_alone"]["max_ms"] for r in rounds]
    quick_p99 = _ratios(
        [(r["quick_beside_bombs"]["p99_ms"], r["quick_alone"]["p99_ms"]) for r in rounds]
    )
    print()
    print("## 2. gzip bombs (median of rounds)")
    rows = []
    for name, key in (
        ("gzip bomb (refused at 64 KiB)", "bomb"),
        ("small gzip body", "control"),
        ("get_item alone", "quick_alone"),
        ("get_item beside bombs", "quick_beside_bombs"),
    ):
        rows.append(
            [
                name,
                _ms(median([r[key]["p50_ms"] for r in rounds])),
                _ms(median([r[key]["p99_ms"] for r in rounds])),
                _ms(median([r[key]["max_ms"] for r in rounds])),
            ]
        )
    print(table(["call", "p50 ms", "p99 ms", "max ms"], rows))
    print(
        f"bomb / small gzip: p50 {median(p50_ratios):.2f} ({spread(p50_ratios)}),"
        f" p99 {median(p99_ratios):.2f} ({spread(p99_ratios)})"
    )
    print(
        f"get_item beside bombs / alone: p99 {median(quick_p99):.2f} ({spread(quick_p99)});"
        f" slowest minus slowest alone {median(stalls):+.1f} ms ({_signed_spread(stalls)});"
        f" gateway RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB"
    )
    stall = median(stalls)
    verdict = (
        f"get_item's slowest call beside gzip bombs <= slowest alone + {BOMB_STALL_MS:g} ms",
        stall <= BOMB_STALL_MS,
        f"{stall:+.1f} ms (bomb call / small gzip call: {median(p50_ratios):.2f}x)",
    )
    bad = sum(
        r[key]["bad"] + r[key]["socket_errors"]
        for r in rounds
        for key in ("bomb", "control", "quick_alone", "quick_beside_bombs")
    ) + sum(r["bomb_errors_during_the_loop"] + (r["bombs_during_the_loop"] == 0) for r in rounds)
    report = {
        "rounds": rounds,
        "bomb_over_control_p50": median(p50_ratios),
        "stall_ms": stall,
        "rss_kib": [rss_before, rss_after],
        "errors": bad,
    }
    return report, [verdict]


# --- 3. slow connections -----------------------------------------------------------------


@contextlib.contextmanager
def _slow_sockets(bench: Bench, sockets: int, seconds: float) -> Iterator[Callable[[], Any]]:
    command = [PYTHON, "-m", "bench.slowloris", str(bench.gateway.port), str(sockets)]
    holder = subprocess.Popen(  # noqa: S603 - our own helper
        bench.cores.on(bench.cores.client, [*command, str(seconds)]),
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout is not None
    try:
        first = holder.stdout.readline()
        if not first.startswith("ready "):
            raise RuntimeError(f"bench.slowloris did not start: {first!r}")

        def counts() -> Any:
            assert holder.stdout is not None
            out = holder.stdout.read()
            holder.wait(seconds + 30)
            return json.loads(out.strip().splitlines()[-1])

        yield counts
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _slowloris(bench: Bench, args: argparse.Namespace) -> tuple[dict[str, Any], list[Verdict]]:
    probe = item_call()
    rounds: list[dict[str, Any]] = []
    for round_ in range(args.rounds):

        def alone() -> Result:
            return bench.load(probe, seconds=args.duration)

        def beside_slow_sockets() -> tuple[Result, Any, int]:
            with _slow_sockets(bench, args.sockets, args.duration + 1.0) as counts:
                time.sleep(0.3)  # the gateway has accepted them
                rss = rss_kib(bench.gateway.child.pid) if bench.gateway.child else 0
                result = bench.load(probe, seconds=args.duration)
                return result, counts(), rss

        base, (during, counts, rss) = _alternate(round_, alone, beside_slow_sockets)
        rounds.append(
            {
                "alone": dataclasses.asdict(base),
                "beside_slow_sockets": dataclasses.asdict(during),
                "sockets": counts,
                "gateway_rss_kib": rss,
            }
        )
        print(
            f"slowloris round {round_ + 1}/{args.rounds}: get_item p50/p99 alone"
            f" {base.p50_ms:.2f}/{base.p99_ms:.2f} ms, beside {counts['opened']} slow sockets"
            f" {during.p50_ms:.2f}/{during.p99_ms:.2f} ms; closed by the gateway"
            f" {counts['closed_by_server']}, errors {base.errors + during.errors}",
            flush=True,
        )
    p99_ratios = _ratios(
        [(r["beside_slow_sockets"]["p99_ms"], r["alone"]["p99_ms"]) for r in rounds]
    )
    p99 = median([r["beside_slow_sockets"]["p99_ms"] for r in rounds])
    print()
    print(f"## 3. slow connections ({args.sockets} sockets; get_item at c=1; median of rounds)")
    print(
        _latency_table(rounds, [("alone", "alone"), ("beside slow sockets", "beside_slow_sockets")])
    )
    print(
        f"beside slow sockets / alone: p99 {median(p99_ratios):.2f} ({spread(p99_ratios)});"
        f" sockets closed by the gateway: {sum(r['sockets']['closed_by_server'] for r in rounds)}"
    )
    verdict = (
        f"get_item p99 beside {args.sockets} slow sockets < {SLOWLORIS_P99_MS:g} ms",
        p99 < SLOWLORIS_P99_MS,
        f"{_ms(p99)} ms ({median(p99_ratios):.2f}x p99 alone)",
    )
    bad = sum(
        r[key]["bad"] + r[key]["socket_errors"]
        for r in rounds
        for key in ("alone", "beside_slow_sockets")
    ) + sum(r["sockets"]["opened"] < args.sockets for r in rounds)
    return {"rounds": rounds, "p99_ratio": median(p99_ratios), "errors": bad}, [verdict]


# --- 4. the operator under API faults ----------------------------------------------------


def _storm(api: Any, servers: int) -> list[str]:
    """The faults of test_operator_faults.py, once per server and all at once, injected
    into `api` (None: only described)."""
    faults: list[tuple[str, Callable[[Any], None]]] = [
        (
            f"409 x{servers} on ConfigMap create",
            lambda a: a.fail_next(servers, 409, resource="configmaps", verbs=("create",)),
        ),
        (
            f"409 x{servers} on Deployment create",
            lambda a: a.fail_next(servers, 409, resource="deployments", verbs=("create",)),
        ),
        (
            f"409 x{servers} on McpServer status patch",
            lambda a: a.fail_next(servers, 409, resource="mcpservers/status", verbs=("patch",)),
        ),
        (
            f"500 x{servers} on Service create",
            lambda a: a.fail_next(servers, 500, resource="services", verbs=("create",)),
        ),
        (
            "+0.3 s on every Deployment request",
            lambda a: a.add_latency(0.3, resource="deployments"),
        ),
    ]
    if api is not None:
        for _, inject in faults:
            inject(api)
    return [what for what, _ in faults]


def _converge(servers: int, *, faults: bool, cores: Cores, timeout: float) -> dict[str, float]:
    """Create `servers` McpServers at once; seconds until all settled, and all Ready."""
    from bench.controller import (
        _deployment_ready,
        _objects,
        _operator,
        _settled,
        _wait,
    )

    from support.kube_api import serve_kube_api
    from support.paths import CRDS

    names = [f"srv-{i}" for i in range(servers)]
    with tempfile.TemporaryDirectory(prefix="mcpgate-bench-") as tmp:
        work = Path(tmp)
        with (
            serve_kube_api(crds=sorted(CRDS.glob("*.yaml"))) as api,
            _operator(api, work, cores),
        ):
            time.sleep(1.0)  # kopf's watches are open once it is alive; let them settle
            if faults:
                _storm(api, servers)
            docs = [doc for i in range(servers) for doc in _objects(i)]
            started = time.monotonic()
            for kind in ("Secret", "HttpApiDataSource", "McpServer"):
                for doc in docs:
                    if doc["kind"] == kind:
                        api.create(doc)
            settled = _wait(api, names, _settled, timeout, interval=0.05)
            if settled is None:
                raise RuntimeError(f"{servers} servers did not settle within {timeout:g} s")
            for name in names:
                _deployment_ready(api, name)
            ready = _wait(api, names, lambda s: s[1].get("Ready") == "True", timeout, 0.05)
            if ready is None:
                raise RuntimeError(f"{servers} servers were not Ready within {timeout:g} s")
            # Injected answers no request met (private access, as bench.controller reads
            # the emulator): the run would not have measured the storm it claims.
            missed = sum(f.remaining for f in api._faults if f.remaining > 0)
            api.clear_faults()
    return {"settled_s": settled - started, "ready_s": ready - started, "faults_missed": missed}


def _operator_faults(
    args: argparse.Namespace, cores: Cores
) -> tuple[dict[str, Any], list[Verdict]]:
    rounds: list[dict[str, Any]] = []
    for round_ in range(args.operator_rounds):
        clean, faulted = _alternate(
            round_,
            lambda: _converge(
                args.servers, faults=False, cores=cores, timeout=args.operator_timeout
            ),
            lambda: _converge(
                args.servers, faults=True, cores=cores, timeout=args.operator_timeout
            ),
        )
        rounds.append({"clean": clean, "faults": faulted})
        print(
            f"operator round {round_ + 1}/{args.operator_rounds}: {args.servers} servers Ready"
            f" in {clean['ready_s']:.2f} s, under API faults {faulted['ready_s']:.2f} s",
            flush=True,
        )
    ratios = _ratios([(r["faults"]["ready_s"], r["clean"]["ready_s"]) for r in rounds])
    faulted_s = median([r["faults"]["ready_s"] for r in rounds])
    print()
    print(
        f"## 4. the operator under API faults ({args.servers} servers at once;"
        f" median of {args.operator_rounds} fresh runs each; min-max)"
    )
    rows = []
    for name, key in (("no faults", "clean"), ("API faults", "faults")):
        settled = [r[key]["settled_s"] for r in rounds]
        ready = [r[key]["ready_s"] for r in rounds]
        rows.append(
            [
                name,
                f"{median(settled):.2f} ({spread(settled)})",
                f"{median(ready):.2f} ({spread(ready)})",
            ]
        )
    print(table(["run", "settled s", "Ready s"], rows))
    print("faults injected: " + "; ".join(_storm(None, args.servers)))
    print(f"Ready under faults / without: {median(ratios):.2f} ({spread(ratios)})")
    verdict = (
        f"{args.servers} servers Ready within {OPERATOR_BOUND_S:g} s under API faults",
        faulted_s <= OPERATOR_BOUND_S,
        f"{faulted_s:.2f} s ({median(ratios):.2f}x without faults)",
    )
    missed = sum(r["faults"]["faults_missed"] for r in rounds)
    if missed:
        print(f"injected faults that no request met: {missed}")
    return {"rounds": rounds, "ratio": median(ratios), "errors": missed}, [verdict]


# --- the run ------------------------------------------------------------------------------


def _faulty_source(base_url: str) -> dict[str, object]:
    source = data_source("faulty", base_url)
    spec = source["spec"]
    assert isinstance(spec, dict)
    spec["timeoutSeconds"] = FAULTY_TIMEOUT_S
    return source


def _faulty_tools() -> list[dict[str, object]]:
    parameters = [
        {"name": "case", "type": "String", "required": True},
        {"name": "key", "type": "String", "required": True},
    ]
    return [
        {
            "name": f"{method.lower()}_faulty",
            "description": "A call the fault server answers with the fault `case` names.",
            "dataSource": "faulty",
            "parameters": parameters,
            "request": {"method": method, "path": "/c/:case/:key"},
        }
        for method in ("GET", "POST")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    cores = Cores.detect()
    if cores.client is not None:  # what this process starts runs there too
        os.sched_setaffinity(0, {cores.client})
    generator = generator_for(args.generator)
    info = print_heading("bench.faults", smoke=args.smoke)
    print(f"pinning: {cores.describe()}; generator: {generator}; sections: {args.only}")

    report: dict[str, Any] = {"machine": info, "pinning": cores.describe(), "sections": {}}
    verdicts: list[Verdict] = []
    errors = 0
    gateway_sections = [s for s in args.only if s != "operator"]
    with (
        tempfile.TemporaryDirectory(prefix="mcpgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        if gateway_sections:
            upstream = stack.enter_context(start_upstream(args.upstream, logs=work, cores=cores))
            faults = stack.enter_context(FaultServerProcess())
            print(f"upstream: {upstream.extra['kind']} at {upstream.url}")
            print(f"fault server: {faults.url}")
            manifests = write_manifests(
                work / "manifests",
                sources=[data_source("items", upstream.url), _faulty_source(faults.base_url)],
                tools=[item_tool("get_item", "items"), *_faulty_tools()],
            )
            gateway = stack.enter_context(
                start_mcpgate(
                    manifests,
                    item_call(),
                    logs=work,
                    cores=cores,
                    flags=["--max-response-bytes", str(CAP)],
                )
            )
            bench = Bench(gateway, generator, cores, work)
            for section, measure in (
                ("neighbour", _neighbour),
                ("bomb", _bomb),
                ("slowloris", _slowloris),
            ):
                if section in args.only:
                    figures, judged = measure(bench, args)
                    report["sections"][section] = figures
                    verdicts += judged
                    errors += figures["errors"]
                    print(flush=True)
        if "operator" in args.only:
            figures, judged = _operator_faults(args, cores)
            report["sections"]["operator"] = figures
            verdicts += judged
            errors += figures["errors"]

    print()
    print(f"wrong answers, crashes and missing measurements, all sections: {errors}")
    print_targets(verdicts, smoke=args.smoke)
    report["verdicts"] = [{"target": w, "ok": ok, "value": v} for w, ok, v in verdicts]
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
