"""Load generation: `wrk` with a Lua script, or a Python generator where wrk is absent.

Both send one fixed request over `connections` keep-alive connections (each waits for its
answer before sending again: a closed loop, so calls/s and latency describe each other),
for a duration or until a number of answers, and check every answer: status 200, every
`must` substring present, no `must_not` substring (a tool result with `"isError":true`
is an error, not a call). Latency percentiles are per request, in milliseconds.

The Python generator (asyncio protocols on uvloop, one process on the client core) is
several times cheaper per request than any Python server measured here, but it is not wrk:
each benchmark also loads the upstream directly, which shows the generator's ceiling next
to the figures it produced.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from bench._util import PYTHON, ROOT, Cores, run_fast

__all__ = ["Load", "Result", "generator_for", "mcp_tool_call", "run_load"]

MCP_PROTOCOL_VERSION = "2025-06-18"


@dataclass(frozen=True)
class Load:
    """One request to repeat, and what a good answer holds."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    must: tuple[str, ...] = ()
    must_not: tuple[str, ...] = ()

    def raw(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def good(self, status: int, body: bytes) -> bool:
        if status != 200:
            return False
        text = body.decode("utf-8", "replace")
        return all(s in text for s in self.must) and not any(s in text for s in self.must_not)


def mcp_tool_call(
    name: str, arguments: dict[str, object], *, marker: str, path: str = "/mcp"
) -> Load:
    """An MCP `tools/call` over Streamable HTTP (stateless, JSON answer)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return Load(
        method="POST",
        path=path,
        headers=(
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", MCP_PROTOCOL_VERSION),
        ),
        body=json.dumps(body, separators=(",", ":")).encode(),
        must=('"result"', marker),
        must_not=('"isError":true', '"isError": true'),
    )


@dataclass
class Result:
    generator: str
    connections: int
    requests: int  # answers received
    good: int
    bad: int  # wrong status or body
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    sample_bad: str = ""
    max_ms: float = float("nan")
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Good answers per second."""
        return self.good / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.bad + self.socket_errors


def generator_for(choice: str) -> str:
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk), use --generator python")
    return choice


def run_load(
    load: Load,
    port: int,
    *,
    connections: int,
    seconds: float | None = None,
    count: int | None = None,
    generator: str,
    cores: Cores,
    workdir: Path,
) -> Result:
    """Run one load: for `seconds`, or until `count` answers (one of the two)."""
    if (seconds is None) == (count is None):
        raise ValueError("give seconds or count")
    if generator == "wrk":
        return _run_wrk(load, port, connections, seconds, count, cores, workdir)
    command = [
        PYTHON,
        "-m",
        "bench.loadgen",
        str(port),
        str(connections),
        str(seconds or 0),
        str(count or 0),
    ]
    spec = workdir / "load.json"
    spec.write_text(
        json.dumps(
            {
                "raw": load.raw(port).decode("latin-1"),
                "must": load.must,
                "must_not": load.must_not,
            }
        )
    )
    done = subprocess.run(  # noqa: S603 - our own generator
        [*cores.on(cores.client, command), str(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=(seconds or 600) + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Python load generator failed:\n{done.stderr}")
    return Result(**json.loads(done.stdout.splitlines()[-1]))


# --- wrk --------------------------------------------------------------------------------


def _lua_string(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def _lua_list(items: Sequence[str]) -> str:
    return "{" + ", ".join(_lua_string(i) for i in items) + "}"


_LUA = """
local must = %(must)s
local must_not = %(must_not)s
local limit = %(limit)d
local threads = {}
wrk.method = %(method)s
wrk.body = %(body)s
%(headers)s

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good = 0
  bad = 0
  sample = ""
end

function response(status, headers, body)
  local ok = status == 200
  if ok then
    for i = 1, #must do
      if not string.find(body, must[i], 1, true) then ok = false; break end
    end
  end
  if ok then
    for i = 1, #must_not do
      if string.find(body, must_not[i], 1, true) then ok = false; break end
    end
  end
  if ok then
    good = good + 1
  else
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
  end
  if limit > 0 and good + bad == limit then
    -- wrk's main thread sleeps for the whole duration: the runner ends that sleep with
    -- SIGINT once it reads this line.
    wrk.thread:stop()
    io.write("BENCHSTOP\\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local g, b, s = 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
    if s == "" then s = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%%d,"good":%%d,"bad":%%d,"duration_us":%%d,"p50_us":%%d,' ..
    '"p99_us":%%d,"mean_us":%%f,"max_us":%%d,"socket_errors":%%d}\\n',
    summary.requests, g, b, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.mean, latency.max,
    e.connect + e.read + e.write + e.timeout))
  io.write("BENCHSAMPLE " .. s .. "\\n")
end
"""


def _run_wrk(
    load: Load,
    port: int,
    connections: int,
    seconds: float | None,
    count: int | None,
    cores: Cores,
    workdir: Path,
) -> Result:
    script = workdir / "load.lua"
    headers = "\n".join(
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in load.headers
    )
    script.write_text(
        _LUA
        % {
            "must": _lua_list(load.must),
            "must_not": _lua_list(load.must_not),
            "limit": count or 0,
            "method": _lua_string(load.method),
            "body": _lua_string(load.body),
            "headers": headers,
        }
    )
    duration = math.ceil(seconds) if seconds is not None else 600
    command = [
        "wrk",
        "-t1",  # one thread: the client core is one CPU
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{load.path}",
    ]
    process = subprocess.Popen(  # noqa: S603 - wrk with our script
        cores.on(cores.client, command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = _wait_wrk(process, str(script), duration + 60)
    finally:
        if process.poll() is None:  # never leave a wrk behind, whatever went wrong
            process.kill()
            process.wait()
    figures: dict[str, float] | None = None
    sample = ""
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            figures = json.loads(line[6:])
        elif line.startswith("BENCHSAMPLE "):
            sample = line[12:]
    if process.returncode != 0 or figures is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{stdout}\n{stderr}")
    return Result(
        generator="wrk",
        connections=connections,
        requests=int(figures["requests"]),
        good=int(figures["good"]),
        bad=int(figures["bad"]),
        socket_errors=int(figures["socket_errors"]),
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        mean_ms=figures["mean_us"] / 1000,
        sample_bad=sample,
        max_ms=figures["max_us"] / 1000,
    )


def _wait_wrk(process: subprocess.Popen[str], script: str, timeout: float) -> tuple[str, str]:
    """wrk's output. Once the script says BENCHSTOP (its count is reached), SIGINT until wrk
    exits: its main thread sleeps for the whole duration otherwise, and a signal that lands
    on the worker thread (still running as it stops) does not wake it, so one is not enough.
    """
    assert process.stdout is not None
    lines: list[str] = []
    stopping = threading.Event()

    def interrupt() -> None:
        stopping.wait()
        while process.poll() is None:
            process.send_signal(signal.SIGINT)
            time.sleep(0.1)

    def watch_errors() -> None:
        # wrk reports a script that fails to load, then runs a plain GET that never ends.
        assert process.stderr is not None
        for line in process.stderr:
            errors.append(line)
            if script in line:
                process.kill()

    errors: list[str] = []
    helpers = [
        threading.Thread(target=interrupt, daemon=True),
        threading.Thread(target=watch_errors, daemon=True),
    ]
    for helper in helpers:
        helper.start()
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    for line in process.stdout:
        lines.append(line)
        if line.startswith("BENCHSTOP"):
            stopping.set()
    process.wait()
    killer.cancel()
    stopping.set()
    for helper in helpers:
        helper.join()
    return "".join(lines), "".join(errors)


# --- the Python generator ---------------------------------------------------------------

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class _Run:
    def __init__(self, raw: bytes, good: Load, connections: int, seconds: float, count: int):
        self.raw = raw
        self.check = good
        self.deadline = time.perf_counter() + seconds if seconds else math.inf
        self.count = count
        self.issued = 0
        self.latencies: list[float] = []
        self.good = 0
        self.bad = 0
        self.socket_errors = 0
        self.sample = ""
        self.open = connections
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def may_send(self) -> bool:
        if self.count:
            if self.issued >= self.count:
                return False
            self.issued += 1
            return True
        return time.perf_counter() < self.deadline

    def record(self, latency: float, status: int, body: bytes) -> None:
        self.latencies.append(latency)
        if self.check.good(status, body):
            self.good += 1
        else:
            self.bad += 1
            if not self.sample:
                self.sample = f"{status} {body[:300].decode('utf-8', 'replace')}"

    def closed(self, error: bool) -> None:
        self.socket_errors += error
        self.open -= 1
        if self.open == 0 and not self.done.done():
            self.done.set_result(None)


class _Client(asyncio.Protocol):
    """One keep-alive connection; Content-Length answers only (every server here)."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._started = 0.0
        self._finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        if not self._run.may_send():
            self._finished = True
            self._transport.close()
            return
        self._started = time.perf_counter()
        self._transport.write(self._run.raw)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[: end + 2])
        status = _STATUS.match(head)
        length = _LENGTH.search(head)
        if status is None or length is None:
            self._finished = False
            assert self._transport is not None
            self._transport.close()  # chunked or malformed: not something we generate for
            return
        total = end + 4 + int(length.group(1))
        if len(self._buffer) < total:
            return
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        self._run.record(time.perf_counter() - self._started, int(status.group(1)), body)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        self._run.closed(error=not self._finished)


async def _generate(
    port: int, connections: int, seconds: float, count: int, raw: bytes, good: Load
) -> Result:
    loop = asyncio.get_running_loop()
    run = _Run(raw, good, connections, seconds, count)
    started = time.perf_counter()
    for _ in range(connections):
        await loop.create_connection(lambda: _Client(run), "127.0.0.1", port)
    await run.done
    elapsed = time.perf_counter() - started
    latencies = sorted(run.latencies)

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return Result(
        generator="python",
        connections=connections,
        requests=len(latencies),
        good=run.good,
        bad=run.bad,
        socket_errors=run.socket_errors,
        seconds=elapsed,
        p50_ms=pct(50),
        p99_ms=pct(99),
        mean_ms=sum(latencies) / len(latencies) * 1000 if latencies else float("nan"),
        sample_bad=run.sample,
        max_ms=latencies[-1] * 1000 if latencies else float("nan"),
    )


def main(argv: Sequence[str]) -> None:
    port, connections, seconds, count, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    load = Load("", "", must=tuple(spec["must"]), must_not=tuple(spec["must_not"]))
    result = run_fast(
        _generate(
            int(port),
            int(connections),
            float(seconds),
            int(count),
            spec["raw"].encode("latin-1"),
            load,
        )
    )
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
