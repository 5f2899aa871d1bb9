"""How rendering scales with the number of tools: `plan_server` for 10, 100 and 1000 tools.

    python -m bench.render [--sizes 10,100,1000] [--rounds 7] [--smoke]

Each McpServer has two data sources (Bearer and Basic, their Secrets present) and tools
of three shapes in turn: a GET with a path and two query parameters, a GET with an enum
and a header, a POST with a JSON body template. `plan_server` is what every reconcile of
the operator (and `mcpgate render`) runs: conditions, the gateway configuration, and the
ConfigMap, Deployment and Service with their hashes.

The McpServer API allows 200 tools (`spec.tools`, maxItems). Larger servers are built
from tools validated in batches of 200, joined without validating the whole list again:
what `plan_server` would do with them, not something the API server would accept.

Timings are interleaved (every size once per round) and summarised by the median over
rounds; the ratio of interest, 1000 tools against 100, is 10 for linear scaling.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench._util import median, print_heading, print_targets, spread, table
from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import plan_server
from mcpgate.render.settings import RenderSettings

__all__ = ["build_server", "main"]

NAMESPACE = "bench"
MAX_TOOLS_PER_SERVER = 200  # spec.tools maxItems
TARGET_RATIO = 12.0  # render(1000) / render(100)


def _source(name: str, auth: dict[str, Any]) -> HttpApiDataSource:
    return HttpApiDataSource.model_validate(
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "HttpApiDataSource",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"},
            "spec": {
                "baseUrl": f"https://{name}.example.com/api/v2",
                "headers": {"Accept": "application/json"},
                "auth": auth,
            },
        }
    )


def namespace() -> Namespace:
    orders = _source(
        "orders",
        {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "creds", "key": "token"}}},
    )
    customers = _source(
        "customers",
        {
            "type": "Basic",
            "basic": {"username": "svc", "passwordSecretRef": {"name": "creds", "key": "password"}},
        },
    )
    creds = SecretInfo.from_values(
        "creds", {"token": b"bench-token", "password": b"bench-password"}
    )
    return Namespace(
        NAMESPACE,
        data_sources={"orders": orders, "customers": customers},
        secrets={"creds": creds},
    )


def _tool(index: int) -> dict[str, Any]:
    source = ("orders", "customers")[index % 2]
    shape = index % 3
    tool: dict[str, Any] = {
        "name": f"tool_{index:04d}",
        "description": f"Tool number {index}: reads or writes one record of {source}.",
        "dataSource": source,
    }
    if shape == 0:
        tool["parameters"] = [
            {"name": "id", "type": "String", "required": True, "description": "Record id."},
            {"name": "limit", "type": "Integer", "default": 10},
            {"name": "fields", "type": "Array", "items": {"type": "String"}},
        ]
        tool["request"] = {
            "method": "GET",
            "path": f"/{source}/:id/items",
            "query": {"limit": ":limit", "fields": ":fields"},
        }
    elif shape == 1:
        tool["parameters"] = [
            {"name": "status", "type": "String", "enum": ["open", "closed", "all"]},
            {"name": "trace", "type": "String"},
        ]
        tool["request"] = {
            "method": "GET",
            "path": f"/{source}",
            "query": {"status": ":status"},
            "headers": {"X-Trace": "bench-:trace"},
        }
    else:
        tool["parameters"] = [
            {"name": "id", "type": "String", "required": True},
            {"name": "note", "type": "String", "required": True},
            {"name": "amount", "type": "Number"},
        ]
        tool["request"] = {
            "method": "POST",
            "path": f"/{source}/:id/notes",
            "body": {"note": ":note", "amount": ":amount", "source": "mcp"},
        }
    return tool


def _server_body(tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": "bench-mcp", "namespace": NAMESPACE, "uid": "uid-1", "generation": 3},
        "spec": {"authorization": {"type": "None"}, "tools": tools},
    }


def build_server(tools: int) -> McpServer:
    """An McpServer with `tools` tools (validated in batches of at most 200, see above)."""
    if tools <= MAX_TOOLS_PER_SERVER:
        return McpServer.model_validate(_server_body([_tool(i) for i in range(tools)]))
    validated = []
    for start in range(0, tools, MAX_TOOLS_PER_SERVER):
        batch = [_tool(i) for i in range(start, min(tools, start + MAX_TOOLS_PER_SERVER))]
        validated.extend(McpServer.model_validate(_server_body(batch)).spec.tools)
    first = McpServer.model_validate(_server_body([_tool(0)]))
    return first.model_copy(update={"spec": first.spec.model_copy(update={"tools": validated})})


def _time(fn: Callable[[], object], min_seconds: float) -> float:
    """Seconds per call: as many calls as fit in `min_seconds` (at least one)."""
    calls = 0
    started = time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render", description=__doc__)
    parser.add_argument("--sizes", default="10,100,200,1000")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="per size and round")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.rounds, args.min_seconds = "10,100,1000", 1, 0.0
    sizes = [int(s) for s in str(args.sizes).split(",")]
    info = print_heading("bench.render", smoke=args.smoke)

    space = namespace()
    settings = RenderSettings(image="registry.example.com/mcpgate:bench")
    servers = {n: build_server(n) for n in sizes}
    bodies = {n: _server_body([_tool(i) for i in range(n)]) for n in sizes}
    config_bytes: dict[int, int] = {}
    for n, server in servers.items():
        plan = plan_server(server, space, settings)
        if plan.config is None or len(plan.config.tools) != n:
            raise RuntimeError(f"{n} tools: nothing rendered ({plan.conditions})")
        # The configuration's text (stored gzipped in the ConfigMap above 256 KiB).
        config_bytes[n] = len((plan.config_json or "").encode())

    plan_times: dict[int, list[float]] = {n: [] for n in sizes}
    validate_times: dict[int, list[float]] = {n: [] for n in sizes if n <= MAX_TOOLS_PER_SERVER}
    for _ in range(args.rounds):
        for n in sizes:
            gc.collect()
            server = servers[n]
            plan_times[n].append(
                _time(partial(plan_server, server, space, settings), args.min_seconds)
            )
            if n in validate_times:
                body = bodies[n]
                validate_times[n].append(
                    _time(partial(McpServer.model_validate, body), args.min_seconds)
                )

    rows = []
    for n in sizes:
        ms = [t * 1000 for t in plan_times[n]]
        validate = (
            f"{median(validate_times[n]) * 1000:.2f}" if n in validate_times else "n/a (>200)"
        )
        rows.append(
            [
                n,
                f"{median(ms):.2f} ({spread(ms)})",
                f"{median(ms) * 1000 / n:.0f}",
                validate,
                f"{config_bytes[n] / 1024:.0f}",
            ]
        )
    print()
    print(f"## plan_server, ms per call (median of {args.rounds} rounds; min-max)")
    print(
        table(
            ["tools", "plan_server ms", "us per tool", "model_validate ms", "config.json KiB"],
            rows,
        )
    )
    ratios: dict[str, float] = {}
    base = 100 if 100 in sizes else sizes[0]
    for n in sizes:
        if n != base:
            per_round = [a / b for a, b in zip(plan_times[n], plan_times[base], strict=True)]
            ratios[f"{n}/{base}"] = median(per_round)
    print()
    print(
        "ratios: "
        + ", ".join(
            f"{k} = {v:.2f} (linear: {int(k.split('/')[0]) / base:g})" for k, v in ratios.items()
        )
    )
    verdict = ratios.get("1000/100")
    verdicts = []
    if verdict is not None:
        what = f"render(1000 tools) / render(100 tools) <= {TARGET_RATIO:g}"
        verdicts.append((what, verdict <= TARGET_RATIO, f"{verdict:.2f}"))
    print_targets(verdicts, smoke=args.smoke)
    if args.json is not None:
        report = {
            "machine": info,
            "plan_ms": {n: [t * 1000 for t in ts] for n, ts in plan_times.items()},
            "validate_ms": {n: [t * 1000 for t in ts] for n, ts in validate_times.items()},
            "config_bytes": config_bytes,
            "ratios": ratios,
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
