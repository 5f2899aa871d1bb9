"""Side-by-side measurement: every target at every concurrency, round after round.

The machine is shared (two CPUs, other work running), so no figure is trusted alone: each
round loads every target once per concurrency, in an order rotated between rounds, and a
comparison is a ratio of two figures from the same round (paired), summarised by its
median and min-max over rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._util import Cores, cpu_seconds, median, spread, table
from bench.loadgen import Result, run_load
from bench.targets import Target

__all__ = [
    "Results",
    "as_json",
    "cpu_table",
    "latency_table",
    "paired",
    "rate_table",
    "ratio_rows",
    "run_rounds",
    "warm_up",
]

# target name -> concurrency -> one Result per round
Results = dict[str, dict[int, list[Result]]]


def warm_up(
    targets: Sequence[Target], calls: int, *, generator: str, cores: Cores, workdir: Path
) -> None:
    for target in targets:
        run_load(
            target.load,
            target.port,
            connections=16,
            count=calls,
            generator=generator,
            cores=cores,
            workdir=workdir,
        )


def run_rounds(
    targets: Sequence[Target],
    *,
    levels: Sequence[int],
    rounds: int,
    seconds: float,
    generator: str,
    cores: Cores,
    workdir: Path,
) -> Results:
    results: Results = {t.name: {c: [] for c in levels} for t in targets}
    for round_ in range(rounds):
        shift = round_ % len(targets)
        order = [*targets[shift:], *targets[:shift]]
        for level in levels:
            for target in order:
                cpu_before = cpu_seconds(target.child.pid) if target.child else 0.0
                result = run_load(
                    target.load,
                    target.port,
                    connections=level,
                    seconds=seconds,
                    generator=generator,
                    cores=cores,
                    workdir=workdir,
                )
                if target.child is not None and result.requests:
                    used = cpu_seconds(target.child.pid) - cpu_before
                    result.extra["cpu_us_per_call"] = used / result.requests * 1e6
                results[target.name][level].append(result)
                print(
                    f"round {round_ + 1}/{rounds} c={level:<3} {target.name:<16}"
                    f" {result.rps:>9,.0f} calls/s  p50 {result.p50_ms:7.2f} ms"
                    f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                    + (f"  first bad: {result.sample_bad[:120]!r}" if result.errors else ""),
                    flush=True,
                )
    return results


def paired(results: Results, a: str, b: str, level: int, what: str = "rps") -> list[float]:
    """Per-round `a`/`b` ratios of calls/s, `a` - `b` differences of p50 (what="p50"), or
    `b`/`a` ratios of server CPU time per call (what="cpu": the calls/s ratio the two would
    have on a CPU of their own, whatever else the machine ran meanwhile)."""
    out = []
    for ra, rb in zip(results[a][level], results[b][level], strict=True):
        if what == "p50":
            out.append(ra.p50_ms - rb.p50_ms)
        elif what == "cpu":
            ca, cb = ra.extra.get("cpu_us_per_call"), rb.extra.get("cpu_us_per_call")
            if ca and cb:
                out.append(cb / ca)
        elif rb.rps > 0:
            out.append(ra.rps / rb.rps)
    return out


def cpu_table(results: Results, levels: Sequence[int]) -> str:
    """Server CPU time per call, microseconds (targets with a process of their own)."""
    rows = []
    for name, per in results.items():
        row: list[object] = [name]
        for level in levels:
            values = [
                r.extra["cpu_us_per_call"] for r in per[level] if "cpu_us_per_call" in r.extra
            ]
            row.append(f"{median(values):,.0f} ({spread(values)})" if values else "-")
        rows.append(row)
    return table(["target", *[f"c={c}" for c in levels]], rows)


def rate_table(results: Results, levels: Sequence[int]) -> str:
    rows = []
    for name, per in results.items():
        row: list[object] = [name]
        for level in levels:
            rps = [r.rps for r in per[level]]
            row.append(f"{median(rps):,.0f} ({spread(rps)})")
        rows.append(row)
    return table(["target", *[f"c={c}" for c in levels]], rows)


def latency_table(results: Results, levels: Sequence[int]) -> str:
    rows = []
    for name, per in results.items():
        row: list[object] = [name]
        for level in levels:
            rs = per[level]
            row.append(
                f"{median([r.p50_ms for r in rs]):.2f} / {median([r.p99_ms for r in rs]):.2f}"
            )
        row.append(sum(r.errors for level in levels for r in per[level]))
        rows.append(row)
    return table(["target", *[f"c={c}" for c in levels], "errors"], rows)


def ratio_rows(
    results: Results,
    pairs: Sequence[tuple[str, str]],
    levels: Sequence[int],
    what: str = "rps",
) -> tuple[str, dict[str, dict[int, float]]]:
    """The table of paired ratios `a/b` (see `paired`), and their medians."""
    medians: dict[str, dict[int, float]] = {}
    rows = []
    for a, b in pairs:
        key = f"{a}/{b}"
        medians[key] = {}
        row: list[object] = [key]
        for level in levels:
            values = paired(results, a, b, level, what)
            medians[key][level] = median(values)
            row.append(f"{median(values):.2f} ({spread(values)})")
        rows.append(row)
    return table(["ratio", *[f"c={c}" for c in levels]], rows), medians


def as_json(results: Results) -> dict[str, Any]:
    return {
        n: {str(c): [asdict(r) for r in rs] for c, rs in per.items()} for n, per in results.items()
    }
