"""`mcpgate up` and `mcpgate gateway` as a user runs them: real processes, real ports."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.responses import JSONResponse

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.render.config import gateway_config

from support.gateway import free_port, mcp_session
from support.paths import EXAMPLES
from support.poll import wait_for_sync
from support.upstream import RecordedRequest, RecordingUpstream

MCPGATE = [sys.executable, "-m", "mcpgate.cli"]


def _wait_ready(process: subprocess.Popen[bytes], base: str) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {_output(process)}")
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200

    wait_for_sync(ready, within=20, what="/readyz", retry_on=(httpx.TransportError,))


def _start(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, int]:
    """`mcpgate ARGS --port P --metrics-port M` on free ports: (process, base URL, M)."""
    port, metrics = free_port(), free_port()
    process = subprocess.Popen(
        [*MCPGATE, *args, "--port", str(port), "--metrics-port", str(metrics)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    return process, f"http://127.0.0.1:{port}", metrics


def _output(process: subprocess.Popen[bytes]) -> str:
    out, _ = process.communicate(timeout=10)
    return out.decode()


@pytest.fixture
def quickstart() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    process, base, _ = _start("up", "-f", str(EXAMPLES / "quickstart"))
    try:
        _wait_ready(process, base)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_up_serves_the_quickstart(
    quickstart: tuple[subprocess.Popen[bytes], str], mode: str
) -> None:
    _, base = quickstart
    async with mcp_session(f"{base}/mcp", mode=mode) as client:  # type: ignore[arg-type]
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"list_posts", "get_post", "create_post"}


def test_up_writes_private_credentials_and_removes_them(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process, base, metrics = _start("up", "-f", str(EXAMPLES / "inbound-apikey"), env=env)
    try:
        _wait_ready(process, base)
        (folder,) = tmp_path.glob("mcpgate-credentials-*")
        assert folder.stat().st_mode & 0o777 == 0o700
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
        metrics_text = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        assert "mcpgate_tool_calls" in metrics_text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    assert list(tmp_path.glob("mcpgate-credentials-*")) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-f", "no/such/file.yaml"], "no such file"),
        (["-f", str(EXAMPLES)], ""),  # a folder of folders holds no manifest at its top
        (["-f", str(EXAMPLES / "quickstart"), "--server", "nope"], "no McpServer named 'nope'"),
    ],
)
def test_up_refuses_bad_input_with_exit_2(args: list[str], says: str) -> None:
    done = subprocess.run([*MCPGATE, "up", *args], capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    assert says in done.stderr.decode()


def test_up_names_a_missing_secret_without_values(tmp_path: Path) -> None:
    for source in (EXAMPLES / "outbound-bearer").glob("*.yaml"):
        if "kind: Secret" not in source.read_text():
            (tmp_path / source.name).write_text(source.read_text())
    done = subprocess.run(
        [*MCPGATE, "up", "-f", str(tmp_path)], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 1  # would not be Ready (ResolvedRefs): API.md gives 1
    assert "Secret" in done.stderr.decode()
    assert "not found" in done.stderr.decode()


async def test_gateway_finishes_in_flight_calls_on_sigterm(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    async def slow(_: RecordedRequest) -> JSONResponse:
        await asyncio.sleep(1.5)
        return JSONResponse({"done": True})

    upstream.set_handler(slow)
    server = McpServer.model_validate(
        {
            "metadata": {"name": "slow"},
            "spec": {
                "tools": [{"name": "slow_get", "dataSource": "api", "request": {"path": "/slow"}}]
            },
        }
    )
    source = HttpApiDataSource.model_validate(
        {"metadata": {"name": "api"}, "spec": {"baseUrl": upstream.url}}
    )
    config = tmp_path / "config.json"
    config.write_text(
        gateway_config(
            server, {"api": source}, credentials_dir=str(tmp_path), allow_loopback_destinations=True
        ).to_json()
    )
    process, base, _ = _start("gateway", "--config", str(config), "--host", "127.0.0.1")
    await asyncio.to_thread(_wait_ready, process, base)
    async with httpx.AsyncClient(timeout=10) as http:
        call = asyncio.create_task(
            http.post(
                f"{base}/mcp",
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "slow_get", "arguments": {}},
                },
                headers={"accept": "application/json", "content-type": "application/json"},
            )
        )
        while not upstream.requests:
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        reply = await call
    assert reply.status_code == 200
    assert reply.json()["result"]["structuredContent"] == {"done": True}
    assert await asyncio.to_thread(process.wait, 30) == 0


def test_size_limits_are_gateway_settings() -> None:
    process, base, _ = _start(
        "up", "-f", str(EXAMPLES / "quickstart"), "--max-request-bytes", "2048"
    )
    try:
        _wait_ready(process, base)
        headers = {"content-type": "application/json", "accept": "application/json"}
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert httpx.post(f"{base}/mcp", json=ping, headers=headers).status_code == 200
        big = {**ping, "pad": "x" * 4096}
        assert httpx.post(f"{base}/mcp", json=big, headers=headers).status_code == 413
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_up_bounds_request_heads_and_allows_its_own_loopback_origin(
    quickstart: tuple[subprocess.Popen[bytes], str],
) -> None:
    """`mcpgate up` runs the same HTTP protocol as a pod (431 for heads over 100 fields),
    and the page of a local inspector, or the server's own origin, is not refused."""
    _, base = quickstart
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    json_headers = {"content-type": "application/json", "accept": "application/json"}
    async with httpx.AsyncClient(timeout=10) as http:
        many = {f"x-f{n}": "v" for n in range(100)}
        refused = await http.post(f"{base}/mcp", json=ping, headers={**json_headers, **many})
        assert refused.status_code == 431
        for origin in (base, "http://localhost:5173", "http://[::1]:6274"):
            reply = await http.post(
                f"{base}/mcp", json=ping, headers={**json_headers, "origin": origin}
            )
            assert reply.status_code == 200, origin
            assert reply.headers["access-control-allow-origin"] == origin
        foreign = await http.post(
            f"{base}/mcp", json=ping, headers={**json_headers, "origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
