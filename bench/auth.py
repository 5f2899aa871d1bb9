"""What each outbound auth method costs: one gateway, one tool per method, against None.

    python -m bench.auth [--duration 10] [--rounds 3] [--levels 1,16,64] [--methods M,..]
                         [--smoke]

One `mcpgate up` serves six tools, `get_item_<method>`, each on a data source of its own
pointing at the same upstream under a prefix whose route checks that method's credential
(bench/upstream.py): a tool result is counted only when the upstream accepted it. Methods:
None, ApiKey (header), Basic, Bearer, OAuth2ClientCredentials (the token cached: the
token endpoint must be called once per run, read from the gateway's metrics) and AwsSigV4
(signed on every request; the upstream checks the header's shape only).
Same process, same pool sizes: the only difference between two tools is the auth flow.
`--methods sigv4` measures some methods only (None, the baseline, always runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._util import Cores, median, print_heading, print_targets
from bench.loadgen import generator_for
from bench.rounds import (
    as_json,
    cpu_table,
    latency_table,
    paired,
    rate_table,
    ratio_rows,
    run_rounds,
    warm_up,
)
from bench.targets import Target, data_source, item_call, item_tool, start_mcpgate, write_manifests
from bench.upstream import (
    API_KEY,
    BASIC_PASSWORD,
    BASIC_USER,
    BEARER_TOKEN,
    OAUTH2_CLIENT_ID,
    OAUTH2_CLIENT_SECRET,
    SIGV4_KEY_ID,
    SIGV4_SECRET,
    start_upstream,
)

__all__ = ["auth_blocks", "bench_secrets", "main"]

TARGET_MIN_RATIO = 0.85  # each method costs at most 15% of calls/s against None
SECRET = "bench-creds"  # noqa: S105 - the Secret's name


def _ref(key: str) -> dict[str, str]:
    return {"name": SECRET, "key": key}


def auth_blocks(upstream: str) -> dict[str, dict[str, object]]:
    """method -> the data source's `auth`, for the upstream at `upstream`."""
    return {
        "none": {"type": "None"},
        "apikey": {
            "type": "ApiKey",
            "apiKey": {"in": "Header", "name": "X-API-Key", "valueSecretRef": _ref("api-key")},
        },
        "basic": {
            "type": "Basic",
            "basic": {"username": BASIC_USER, "passwordSecretRef": _ref("password")},
        },
        "bearer": {"type": "Bearer", "bearer": {"tokenSecretRef": _ref("token")}},
        "oauth2": {
            "type": "OAuth2ClientCredentials",
            "oauth2ClientCredentials": {
                "tokenUrl": f"{upstream}/oauth2/token",
                "clientId": OAUTH2_CLIENT_ID,
                "clientSecretSecretRef": _ref("client-secret"),
                "clientAuthentication": "Basic",
            },
        },
        "sigv4": {
            "type": "AwsSigV4",
            "awsSigV4": {
                "region": "us-east-1",
                "service": "execute-api",
                "accessKeyIdSecretRef": _ref("aws-access-key-id"),
                "secretAccessKeySecretRef": _ref("aws-secret-access-key"),
            },
        },
    }


def bench_secrets() -> dict[str, dict[str, str]]:
    return {
        SECRET: {
            "api-key": API_KEY,
            "password": BASIC_PASSWORD,
            "token": BEARER_TOKEN,
            "client-secret": OAUTH2_CLIENT_SECRET,
            "aws-access-key-id": SIGV4_KEY_ID,
            "aws-secret-access-key": SIGV4_SECRET,
        }
    }


def token_requests(metrics_port: int) -> float:
    """mcpgate_oauth2_token_requests_total, summed over endpoints and outcomes."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    pattern = re.compile(r"^mcpgate_oauth2_token_requests_total\{[^}]*\} ([0-9.e+]+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--upstream", choices=["auto", "nginx", "python"], default="auto")
    parser.add_argument("--methods", help="comma-separated; default: all of them")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    known = list(auth_blocks(""))
    chosen = known if args.methods is None else ["none", *str(args.methods).split(",")]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    args.methods = [m for m in known if m in chosen]
    if args.smoke:
        args.duration, args.rounds, args.levels = 1.0, 1, "1,4"
    args.levels = [int(c) for c in str(args.levels).split(",")]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    cores = Cores.detect()
    generator = generator_for(args.generator)
    info = print_heading("bench.auth", smoke=args.smoke)
    print(f"pinning: {cores.describe()}; generator: {generator}")
    with (
        tempfile.TemporaryDirectory(prefix="mcpgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        upstream = stack.enter_context(start_upstream(args.upstream, logs=work, cores=cores))
        print(f"upstream: {upstream.extra['kind']} at {upstream.url}")
        blocks = {m: b for m, b in auth_blocks(upstream.url).items() if m in args.methods}
        prefix = {m: "" if m == "none" else f"/{m}" for m in blocks}
        manifests = write_manifests(
            work / "manifests",
            sources=[
                data_source(f"items-{m}", upstream.url + prefix[m], block)
                for m, block in blocks.items()
            ],
            tools=[item_tool(f"get_item_{m}", f"items-{m}") for m in blocks],
            secrets=bench_secrets(),
        )
        gateway = stack.enter_context(
            start_mcpgate(manifests, item_call("get_item_none"), logs=work, cores=cores)
        )
        assert gateway.child is not None
        targets = [
            Target(m, gateway.port, item_call(f"get_item_{m}"), gateway.child) for m in blocks
        ]
        warm_up(
            targets, 200 if args.smoke else 1000, generator=generator, cores=cores, workdir=work
        )
        results = run_rounds(
            targets,
            levels=args.levels,
            rounds=args.rounds,
            seconds=args.duration,
            generator=generator,
            cores=cores,
            workdir=work,
        )
        tokens = token_requests(int(gateway.child.extra["metrics_port"]))

    levels: list[int] = args.levels
    print()
    print(f"## calls/s per auth method (median of {args.rounds} rounds of {args.duration:g} s)")
    print(rate_table(results, levels))
    print()
    print("## latency p50 / p99, ms; errors")
    print(latency_table(results, levels))
    print()
    print("## throughput ratio against None (median of per-round ratios; min-max)")
    methods = [m for m in results if m != "none"]
    text, ratios = ratio_rows(results, [(m, "none") for m in methods], levels)
    print(text)
    print()
    print("## gateway CPU time per call, us (median over rounds; min-max)")
    print(cpu_table(results, levels))
    print()
    print("## throughput-equivalent ratio from CPU per call (cpu(None) / cpu(method))")
    cpu_text, cpu_ratios = ratio_rows(results, [(m, "none") for m in methods], levels, "cpu")
    print(cpu_text)
    oauth2 = "oauth2" in results
    if oauth2:
        print(f"\nOAuth2 token requests during the run: {tokens:g} (a cached token: 1)")

    # The verdict: at the saturating concurrencies (where calls/s is what the CPU allows),
    # the median over rounds and levels of the CPU-based ratio, which the rest of the
    # machine disturbs far less than calls/s; the calls/s ratio is shown beside it.
    saturated = [c for c in levels if c >= 16] or levels
    verdicts = []
    for method in methods:
        by_cpu = median([v for c in saturated for v in paired(results, method, "none", c, "cpu")])
        by_rps = median([v for c in saturated for v in paired(results, method, "none", c)])
        errors = sum(r.errors for rs in results[method].values() for r in rs)
        verdicts.append(
            (
                f"{method} costs <= {1 - TARGET_MIN_RATIO:.0%} of calls/s vs None, zero errors",
                by_cpu >= TARGET_MIN_RATIO and errors == 0,
                f"{by_cpu:.2f} from CPU per call ({by_rps:.2f} from calls/s)"
                f" at c={'/'.join(map(str, saturated))}, {errors} errors",
            )
        )
    if oauth2:
        verdicts.append(("OAuth2 token fetched once (cached)", tokens == 1, f"{tokens:g} requests"))
    print_targets(verdicts, smoke=args.smoke)

    if args.json is not None:
        report: dict[str, Any] = {
            "machine": info,
            "generator": generator,
            "results": as_json(results),
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "token_requests": tokens,
            "median_rps": {
                m: {c: median([r.rps for r in rs]) for c, rs in per.items()}
                for m, per in results.items()
            },
            "verdicts": [{"target": w, "ok": ok, "value": v} for w, ok, v in verdicts],
        }
        args.json.write_text(json.dumps(report, indent=2, default=str))
    bad = sum(r.errors for per in results.values() for rs in per.values() for r in rs)
    return 1 if bad or (oauth2 and tokens != 1) else 0


if __name__ == "__main__":
    sys.exit(main())
