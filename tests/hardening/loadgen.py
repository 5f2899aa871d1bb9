"""A load generator in a process of its own: MCP tools/call requests against a gateway.

Measured on this 2-core machine, an asyncio client sharing the test process with 40
concurrent calls reports a p99 ten to sixty times what a client in its own process
sees for the very same gateway; so the load cases measure from here. The client is
aiohttp: httpx's connection pool collapses at a few hundred concurrent connections
(600 quick calls at concurrency 300: 15 s with httpx, 0.6 s with aiohttp), which
would be measured as the gateway's latency.

    python -m hardening.loadgen < spec.json > results.json

The spec: {"url", "calls": [[tool, arguments], ...], "concurrency", "seconds"}; with
"seconds" the calls are cycled until that much time has passed, else each is made
once. The result: one [status, is_error, elapsed, text] per call, in finishing order.
`run` does the same from a test, in a subprocess.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Result", "run"]

Result = tuple[int, bool, float, str]
_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


async def _generate(spec: dict[str, Any]) -> list[Result]:
    calls = spec["calls"]
    seconds = spec.get("seconds")
    deadline = time.monotonic() + seconds if seconds else None
    source = itertools.cycle(calls) if deadline else iter(calls)
    results: list[Result] = []
    headers = _HEADERS | spec.get("headers", {})
    connector = aiohttp.TCPConnector(limit=0)  # one connection per worker
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def worker() -> None:
            for tool, arguments in source:
                if deadline is not None and time.monotonic() > deadline:
                    return
                message = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments},
                }
                started = time.monotonic()
                async with http.post(spec["url"], json=message, headers=headers) as reply:
                    raw = await reply.read()
                elapsed = time.monotonic() - started
                try:
                    result = json.loads(raw)["result"]
                    text = "".join(c.get("text", "") for c in result["content"])
                    results.append((reply.status, bool(result.get("isError")), elapsed, text))
                except (ValueError, KeyError, TypeError):
                    results.append((reply.status, True, elapsed, "NO RESULT: " + raw.decode()))

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    return results


def run(spec: dict[str, Any]) -> list[Result]:
    """Run one load generator process to completion (call it from a thread)."""
    tests = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tests), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "hardening.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=True,
    )
    return [tuple(r) for r in json.loads(done.stdout)]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_generate(json.load(sys.stdin)))))
