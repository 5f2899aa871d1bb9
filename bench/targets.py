"""The servers a benchmark loads, each started pinned to the server core and checked with
the very request the load will repeat before any figure is taken."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench._util import PYTHON, ROOT, Child, Cores, free_port, http_call, start_child
from bench.loadgen import Load, mcp_tool_call
from bench.upstream import ITEM_MARKER

__all__ = [
    "FORBIDDEN_IN_GATEWAY",
    "Target",
    "data_source",
    "direct_load",
    "fastmcp_available",
    "gateway_modules",
    "item_call",
    "item_tool",
    "start_fastmcp",
    "start_floor",
    "start_mcpgate",
    "write_manifests",
]

FORBIDDEN_IN_GATEWAY = ("kopf", "kubernetes")


@dataclass
class Target:
    """A server under load: where it listens, what it is sent, its process (None for
    the upstream called directly, whose process is not ours to measure)."""

    name: str
    port: int
    load: Load
    child: Child | None


def direct_load(prefix: str = "") -> Load:
    return Load("GET", f"{prefix}/items/1", must=(ITEM_MARKER,))


def _ready(port: int, load: Load) -> bool:
    status, body = http_call(
        port, load.method, load.path, headers=dict(load.headers), body=load.body
    )
    return load.good(status, body)


# --- mcpgate --------------------------------------------------------------------------------


def data_source(
    name: str, base_url: str, auth: dict[str, object] | None = None
) -> dict[str, object]:
    return {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "HttpApiDataSource",
        "metadata": {"name": name},
        "spec": {"baseUrl": base_url, "timeoutSeconds": 30, "auth": auth or {"type": "None"}},
    }


def item_tool(name: str, source: str) -> dict[str, object]:
    """`name(id)`: GET /items/:id on `source` (the tool every benchmark calls)."""
    return {
        "name": name,
        "description": "Fetch one item by its id.",
        "dataSource": source,
        "parameters": [{"name": "id", "type": "Integer", "required": True}],
        "request": {"method": "GET", "path": "/items/:id"},
    }


def write_manifests(
    folder: Path,
    *,
    sources: list[dict[str, object]],
    tools: list[dict[str, object]],
    secrets: dict[str, dict[str, str]] | None = None,
) -> Path:
    """One McpServer `bench` with `tools`, its data sources and Secrets, as `mcpgate up` reads
    them."""
    folder.mkdir(parents=True, exist_ok=True)
    server: dict[str, object] = {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": "bench"},
        "spec": {"authorization": {"type": "None"}, "tools": tools},
    }
    docs: list[dict[str, object]] = [*sources, server]
    for name, values in (secrets or {}).items():
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "type": "Opaque",
                "stringData": values,
            }
        )
    (folder / "bench.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def _up_args(manifests: Path, port: int, metrics_port: int) -> list[str]:
    return [
        "up",
        "-f",
        str(manifests),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
    ]


@contextlib.contextmanager
def start_mcpgate(
    manifests: Path,
    load: Load,
    *,
    logs: Path,
    cores: Cores,
    name: str = "mcpgate",
    flags: Sequence[str] = (),
) -> Iterator[Target]:
    """`mcpgate up -f manifests [flags]` on the server core."""
    port, metrics_port = free_port(), free_port()
    command = [PYTHON, "-m", "mcpgate.cli", *_up_args(manifests, port, metrics_port), *flags]
    with start_child(
        name, cores.on(cores.server, command), logs=logs, ready=lambda: _ready(port, load)
    ) as child:
        child.url = f"http://127.0.0.1:{port}"
        child.extra["metrics_port"] = str(metrics_port)
        yield Target(name, port, load, child)


def gateway_modules(manifests: Path, load: Load, *, workdir: Path) -> list[str]:
    """Every module the gateway process holds once it has started and answered one call:
    `mcpgate up` run in-process by `bench.modules_probe` (sorted `sys.modules`)."""
    port, metrics_port = free_port(), free_port()
    out = workdir / "modules.json"
    command = [
        PYTHON,
        "-m",
        "bench.modules_probe",
        str(out),
        str(port),
        json.dumps({"method": load.method, "path": load.path, "headers": dict(load.headers)}),
        load.body.decode(),
        *_up_args(manifests, port, metrics_port),
    ]
    done = subprocess.run(  # noqa: S603 - our own probe
        command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=120
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"the module probe failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(out.read_text())
    if not report.get("answered"):
        raise RuntimeError(f"the probed gateway did not answer the call: {report}")
    modules: list[str] = report["modules"]
    return modules


# --- the peer and the floor -----------------------------------------------------------------


@contextlib.contextmanager
def start_fastmcp(upstream: str, load: Load, *, logs: Path, cores: Cores) -> Iterator[Target]:
    port = free_port()
    command = [PYTHON, "-m", "bench.fastmcp_peer", "--port", str(port), "--upstream", upstream]
    with start_child(
        "fastmcp", cores.on(cores.server, command), logs=logs, ready=lambda: _ready(port, load)
    ) as child:
        yield Target("fastmcp", port, load, child)


@contextlib.contextmanager
def start_floor(upstream: str, client: str, *, logs: Path, cores: Cores) -> Iterator[Target]:
    port = free_port()
    load = direct_load()
    command = [
        PYTHON,
        "-m",
        "bench.floor",
        "--port",
        str(port),
        "--upstream",
        upstream,
        "--client",
        client,
    ]
    name = f"floor-{client}"
    with start_child(
        name, cores.on(cores.server, command), logs=logs, ready=lambda: _ready(port, load)
    ) as child:
        yield Target(name, port, load, child)


def fastmcp_available() -> bool:
    try:
        import fastmcp  # noqa: F401
    except ImportError:
        return False
    return True


def item_call(tool: str = "get_item") -> Load:
    return mcp_tool_call(tool, {"id": 1}, marker=ITEM_MARKER)
