"""Slow connections held open against a server on loopback (slowloris), for bench.faults.

    python -m bench.slowloris PORT SOCKETS SECONDS

Opens SOCKETS connections to 127.0.0.1:PORT, each sending a POST's head one byte at a
time at random intervals of 0.3-0.9 s and never finishing it (as
tests/hardening/test_hostile_clients.py does), prints `ready N` once every connection is
open, and after SECONDS prints one JSON line: how many were opened, refused, and closed by
the server while they trickled.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence

from bench._util import run_fast

__all__ = ["main"]

_HEAD = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"X-Padding: " + b"p" * 100_000
)


async def _hold(port: int, sockets: int, seconds: float) -> dict[str, int]:
    counts = {"opened": 0, "refused": 0, "closed_by_server": 0}
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(sockets):
        try:
            connections.append(await asyncio.open_connection("127.0.0.1", port))
        except OSError:
            counts["refused"] += 1
    counts["opened"] = len(connections)
    print(f"ready {len(connections)}", flush=True)
    until = time.monotonic() + seconds

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            index = 0
            while time.monotonic() < until:
                writer.write(_HEAD[index : index + 1])
                index += 1
                await writer.drain()
                await asyncio.sleep(random.uniform(0.3, 0.9))  # noqa: S311 - not crypto
                if reader.at_eof():
                    counts["closed_by_server"] += 1
                    return
        except ConnectionError:
            counts["closed_by_server"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(trickle(r, w) for r, w in connections))
    return counts


def main(argv: Sequence[str]) -> None:
    port, sockets, seconds = argv
    counts = run_fast(_hold(int(port), int(sockets), float(seconds)))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
