"""mcpgate's data plane against its peer, a floor and the upstream itself, in one run.

    python -m bench.gateway [--duration 10] [--rounds 3] [--levels 1,16,64] [--smoke]

One upstream (`GET /items/{id}`, nginx when installed) and the tool `get_item(id)` served by

- mcpgate: `mcpgate up` on manifests generated into a temporary folder;
- fastmcp: FastMCP's `from_openapi` on the same endpoint (stateless HTTP, JSON answers);
- floor-httpx / floor-aiohttp: uvicorn and one pooled client forwarding the GET, no MCP;
- direct: the upstream called without anything in between.

Servers run on one CPU, the load generator and the upstream on the other. Each round
loads every target at every concurrency, in an order that rotates between rounds, so that
noise from the rest of the machine falls on all of them alike; figures are medians over
rounds, with the min-max spread beside them, and ratios are taken round by round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._util import Cores, Verdict, median, print_heading, print_targets, rss_kib, table
from bench.loadgen import generator_for, run_load
from bench.rounds import (
    Results,
    as_json,
    cpu_table,
    latency_table,
    paired,
    rate_table,
    ratio_rows,
    run_rounds,
    warm_up,
)
from bench.targets import (
    FORBIDDEN_IN_GATEWAY,
    Target,
    data_source,
    direct_load,
    fastmcp_available,
    gateway_modules,
    item_call,
    item_tool,
    start_fastmcp,
    start_floor,
    start_mcpgate,
    write_manifests,
)
from bench.upstream import start_upstream

__all__ = ["main"]

# The targets, checked at the end of every run (reported, never enforced).
TARGET_VS_FASTMCP = 3.0
TARGET_VS_FLOOR = 0.5
TARGET_EXTRA_P50_MS = 1.0
TARGET_RSS_GROWTH = 1.1


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,16,64", help="concurrencies, comma-separated")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--upstream", choices=["auto", "nginx", "python"], default="auto")
    parser.add_argument(
        "--rss-calls", type=int, default=100_000, help="calls before the last RSS reading"
    )
    parser.add_argument("--no-fastmcp", action="store_true", help="leave the peer out")
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes; no verdicts")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.rounds, args.levels, args.rss_calls = 1.0, 1, "1,4", 400
    args.levels = [int(c) for c in str(args.levels).split(",")]
    return args


def _memory_phase(
    target: Target, total: int, *, generator: str, cores: Cores, workdir: Path
) -> dict[str, Any]:
    """RSS after start, after the first 1k calls (1/100 of `total`) and after `total`."""
    assert target.child is not None
    first = max(1, total // 100)
    rss = {"start": rss_kib(target.child.pid)}
    warm = run_load(
        target.load,
        target.port,
        connections=16,
        count=first,
        generator=generator,
        cores=cores,
        workdir=workdir,
    )
    rss["first"] = rss_kib(target.child.pid)
    rest = run_load(
        target.load,
        target.port,
        connections=16,
        count=total - first,
        generator=generator,
        cores=cores,
        workdir=workdir,
    )
    rss["last"] = rss_kib(target.child.pid)
    return {
        "rss_kib": rss,
        "calls": [first, total],
        "errors": warm.errors + rest.errors,
        "good": warm.good + rest.good,
        "rps": rest.rps,
    }


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    cores = Cores.detect()
    generator = generator_for(args.generator)
    with_fastmcp = not args.no_fastmcp and fastmcp_available()
    info = print_heading("bench.gateway", smoke=args.smoke)
    print(f"pinning: {cores.describe()}; generator: {generator}")

    with (
        tempfile.TemporaryDirectory(prefix="mcpgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        upstream = stack.enter_context(start_upstream(args.upstream, logs=work, cores=cores))
        print(f"upstream: {upstream.extra['kind']} at {upstream.url}")
        manifests = write_manifests(
            work / "manifests",
            sources=[data_source("items", upstream.url)],
            tools=[item_tool("get_item", "items")],
        )
        call = item_call()
        targets: dict[str, Target] = {}
        targets["mcpgate"] = stack.enter_context(
            start_mcpgate(manifests, call, logs=work, cores=cores)
        )
        if with_fastmcp:
            targets["fastmcp"] = stack.enter_context(
                start_fastmcp(upstream.url, call, logs=work, cores=cores)
            )
        for client in ("httpx", "aiohttp"):
            floor = stack.enter_context(start_floor(upstream.url, client, logs=work, cores=cores))
            targets[floor.name] = floor
        upstream_port = int(upstream.url.rsplit(":", 1)[1])
        targets["direct"] = Target("direct", upstream_port, direct_load(), None)
        start_rss = {n: rss_kib(t.child.pid) for n, t in targets.items() if t.child is not None}

        modules = gateway_modules(manifests, call, workdir=work)
        forbidden = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN_IN_GATEWAY)
        print(
            f"gateway process: {len(modules)} modules loaded after startup and one call;"
            f" kopf/kubernetes among them: {forbidden or 'none'}"
        )

        print(f"memory phase: {args.rss_calls:,} calls to mcpgate at c=16 ...", flush=True)
        memory = _memory_phase(
            targets["mcpgate"], args.rss_calls, generator=generator, cores=cores, workdir=work
        )
        others = [t for n, t in targets.items() if n != "mcpgate"]  # the same 1k-call warm-up
        warm_up(
            others, max(1, args.rss_calls // 100), generator=generator, cores=cores, workdir=work
        )
        results = run_rounds(
            list(targets.values()),
            levels=args.levels,
            rounds=args.rounds,
            seconds=args.duration,
            generator=generator,
            cores=cores,
            workdir=work,
        )
        end_rss = {n: rss_kib(t.child.pid) for n, t in targets.items() if t.child is not None}

    report = _report(args, info, cores, generator, results, memory, start_rss, end_rss, forbidden)
    report["modules_loaded"] = len(modules)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    bad = sum(r.errors for per in results.values() for rs in per.values() for r in rs)
    return 1 if bad or memory["errors"] or forbidden else 0


def _report(
    args: argparse.Namespace,
    info: dict[str, str],
    cores: Cores,
    generator: str,
    results: Results,
    memory: dict[str, Any],
    start_rss: dict[str, int],
    end_rss: dict[str, int],
    forbidden: list[str],
) -> dict[str, Any]:
    levels: list[int] = args.levels
    names = list(results)
    print()
    print(f"## calls/s (median of {args.rounds} rounds of {args.duration:g} s; min-max)")
    print(rate_table(results, levels))
    print()
    print("## latency p50 / p99, ms (median over rounds); errors (all rounds)")
    print(latency_table(results, levels))
    print()
    print("## server CPU time per call, us (median over rounds; min-max)")
    print(cpu_table(results, levels))
    print()
    print("## ratios of calls/s (median of per-round ratios; min-max)")
    bases = [b for b in ("fastmcp", "floor-httpx", "floor-aiohttp", "direct") if b in results]
    text, medians = ratio_rows(results, [("mcpgate", b) for b in bases], levels)
    print(text)
    ratios = {key.split("/", 1)[1]: value for key, value in medians.items()}
    print()
    print("## the same from server CPU per call (calls/s each would reach on a CPU of its own)")
    print(ratio_rows(results, [("mcpgate", b) for b in bases if b != "direct"], levels, "cpu")[0])

    extra = {lvl: median(paired(results, "mcpgate", "direct", lvl, "p50")) for lvl in levels}
    print()
    print(
        "mcpgate p50 minus direct p50, ms: "
        + ", ".join(f"c={lvl}: {extra[lvl]:.2f}" for lvl in levels)
    )

    rss = memory["rss_kib"]
    growth = rss["last"] / rss["first"]
    first, total = memory["calls"]
    print()
    print("## memory (RSS, MiB)")
    rows = [
        [
            "mcpgate",
            f"{rss['start'] / 1024:.1f}",
            f"{rss['first'] / 1024:.1f}",
            f"{rss['last'] / 1024:.1f}",
            f"{growth:.3f}",
            f"{end_rss['mcpgate'] / 1024:.1f}",
        ]
    ]
    rows += [
        [n, f"{start_rss[n] / 1024:.1f}", "", "", "", f"{end_rss[n] / 1024:.1f}"]
        for n in start_rss
        if n != "mcpgate"
    ]
    print(
        table(
            ["server", "after start", f"after {first:,}", f"after {total:,}", "growth", "at end"],
            rows,
        )
    )
    print(f"memory phase: {memory['good']:,} good calls, {memory['errors']} errors")

    fastest_mcp = max(
        median([r.rps for r in results[n][lvl]])
        for n in names
        if n in ("mcpgate", "fastmcp")
        for lvl in levels
    )
    ceiling = max(median([r.rps for r in results["direct"][lvl]]) for lvl in levels)
    print()
    print(
        f"generator ({generator}) ceiling, direct: {_fmt(ceiling)} calls/s;"
        f" fastest MCP target: {_fmt(fastest_mcp)} calls/s"
        f" ({ceiling / fastest_mcp:.1f}x headroom)"
    )

    verdicts: list[Verdict] = []
    for level in (16, 64):
        if level not in levels:
            continue
        errors = sum(r.errors for r in results["mcpgate"][level])
        if "fastmcp" in results:
            value = ratios["fastmcp"][level]
            verdicts.append(
                (
                    f"mcpgate >= {TARGET_VS_FASTMCP}x FastMCP at c={level}, zero errors",
                    value >= TARGET_VS_FASTMCP and errors == 0,
                    f"{value:.2f}x, {errors} errors",
                )
            )
        value = ratios["floor-httpx"][level]
        verdicts.append(
            (
                f"mcpgate >= {TARGET_VS_FLOOR}x floor proxy (httpx) at c={level}",
                value >= TARGET_VS_FLOOR,
                f"{value:.2f}x (vs floor-aiohttp {ratios['floor-aiohttp'][level]:.2f}x)",
            )
        )
    if 1 in levels:
        verdicts.append(
            (
                f"mcpgate p50 at c=1 <= direct p50 + {TARGET_EXTRA_P50_MS:g} ms",
                extra[1] <= TARGET_EXTRA_P50_MS,
                f"+{extra[1]:.2f} ms",
            )
        )
    verdicts.append(
        (
            f"RSS after {total:,} calls <= {TARGET_RSS_GROWTH}x RSS after {first:,}",
            growth <= TARGET_RSS_GROWTH,
            f"{growth:.3f}x",
        )
    )
    verdicts.append(("gateway process never imports kopf or kubernetes", not forbidden, "checked"))
    print_targets(verdicts, smoke=args.smoke)

    return {
        "machine": info,
        "pinning": cores.describe(),
        "generator": generator,
        "duration": args.duration,
        "rounds": args.rounds,
        "results": as_json(results),
        "ratios": ratios,
        "extra_p50_ms": extra,
        "memory": memory,
        "start_rss_kib": start_rss,
        "end_rss_kib": end_rss,
        "forbidden_modules": forbidden,
        "verdicts": [{"target": w, "ok": ok, "value": v} for w, ok, v in verdicts],
    }


if __name__ == "__main__":
    sys.exit(main())
