"""Logs that explain (API.md "Audit"): every tools/call writes one audit line, a failed call
also an ordinary line saying where and why, a refused request only a line saying why; and
no argument value, body or credential reaches any of them: checked with canaries, in the
test's log capture and on the stderr of a real `mcpgate gateway` process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, Response

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.config import GatewayConfig
from mcpgate.render.config import gateway_config

from support.gateway import RunningGateway, free_port, running_gateway
from support.paths import replace_file
from support.upstream import RecordedRequest, RecordingUpstream

KEY = "canary-inbound-key-5a6b7c8d"
WRONG_KEY = "canary-wrong-key-1e2f3a4b"
ARGUMENT = "canary-argument-9c8d7e6f"
BODY = "canary-downstream-body-0f1e2d"
FINGERPRINT = hashlib.sha256(KEY.encode()).hexdigest()[:8]
CANARIES = (KEY, WRONG_KEY, ARGUMENT, BODY)
JSON = {"content-type": "application/json", "accept": "application/json"}


def _answer(request: RecordedRequest) -> Response:
    """Echoes what it got (some APIs do), and a marker of its own."""
    status = 500 if request.path == "/fail" else 200
    echo = {"query": request.query, "body": request.body.decode(), "marker": BODY}
    return JSONResponse(echo, status_code=status)


def _config(upstream_url: str, refused_url: str, creds: Path) -> GatewayConfig:
    replace_file(creds / "keys" / "k", KEY + "\n")
    parameters = [{"name": "q", "type": "String", "required": True}]
    server = McpServer.model_validate(
        {
            "metadata": {"name": "audited", "namespace": "team-a"},
            "spec": {
                "authorization": {"type": "ApiKey", "apiKeySecretRef": {"name": "keys"}},
                "tools": [
                    {
                        "name": "look",
                        "dataSource": "api",
                        "parameters": parameters,
                        "request": {"path": "/ok", "query": {"q": ":q"}},
                    },
                    {
                        "name": "fail",
                        "dataSource": "api",
                        "parameters": parameters,
                        "request": {"method": "POST", "path": "/fail", "body": {"q": ":q"}},
                    },
                    {"name": "down", "dataSource": "down", "request": {"path": "/x"}},
                ],
            },
        }
    )
    sources = {
        name: HttpApiDataSource.model_validate(
            {"metadata": {"name": name, "namespace": "team-a"}, "spec": {"baseUrl": url}}
        )
        for name, url in (("api", upstream_url), ("down", refused_url))
    }
    return gateway_config(
        server, sources, credentials_dir=str(creds), allow_loopback_destinations=True
    )


def _call(request_id: Any, name: Any, arguments: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


# (request id, tool, arguments) -> (dataSource, outcome, status)
CALLS: list[tuple[Any, Any, Any, tuple[str | None, str, int | None]]] = [
    (1, "look", {"q": ARGUMENT}, ("api", "ok", 200)),
    ("two", "fail", {"q": ARGUMENT}, ("api", "toolError", 500)),
    (3, "down", {}, ("down", "toolError", None)),
    (4, "look", {"q": 5}, ("api", "invalidArguments", None)),
    (5, "look", {"q": ARGUMENT, "extra": ARGUMENT}, ("api", "invalidArguments", None)),
    (6, "nope", {"q": ARGUMENT}, (None, "invalidArguments", None)),
    (7, ["not", "a", "name"], {}, (None, "invalidArguments", None)),
]


@dataclass
class Env:
    gateway: RunningGateway
    upstream: RecordingUpstream


@pytest.fixture
async def env(upstream: RecordingUpstream, refused_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    upstream.set_handler(_answer)
    async with running_gateway(_config(upstream.url, refused_url, tmp_path)) as gw:
        yield Env(gw, upstream)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("mcpgate")]


def _audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "mcpgate.audit"]


def _assert_clean(text: str) -> None:
    found = [canary for canary in CANARIES if canary in text]
    assert found == [], f"leaked {found}: {text}"


async def test_every_call_writes_one_audit_line(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(timeout=30) as http:
        for request_id, name, arguments, _ in CALLS:
            reply = await http.post(
                env.gateway.url,
                json=_call(request_id, name, arguments),
                headers={**JSON, "x-api-key": KEY},
            )
            assert reply.status_code == 200
    lines = _audit(caplog)
    assert len(lines) == len(CALLS)
    for line, (request_id, name, _, (source, outcome, status)) in zip(lines, CALLS, strict=True):
        assert line["server"] == "audited"
        assert line["namespace"] == "team-a"
        assert line["tool"] == (name if isinstance(name, str) else None)
        assert line["caller"] == {"apiKey": FINGERPRINT}
        assert (line["requestId"], line["dataSource"], line["outcome"], line["status"]) == (
            request_id,
            source,
            outcome,
            status,
        )
        assert isinstance(line["durationMs"], float)
    for record in _records(caplog):
        _assert_clean(record.getMessage() + json.dumps(getattr(record, "fields", {})))


async def test_a_failed_call_logs_where_and_why(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(timeout=30) as http:
        for request_id, name, arguments, _ in CALLS[1:4]:
            reply = await http.post(
                env.gateway.url,
                json=_call(request_id, name, arguments),
                headers={**JSON, "x-api-key": KEY},
            )
            assert reply.json()["result"]["isError"] is True
    failures = [r for r in caplog.records if r.name == "mcpgate.gateway.tools"]
    assert [r.fields["tool"] for r in failures] == ["fail", "down", "look"]  # type: ignore[attr-defined]
    answered, refused, invalid = failures
    assert answered.fields == {  # type: ignore[attr-defined]
        "tool": "fail",
        "dataSource": "api",
        "outcome": "toolError",
        "status": 500,
        "durationMs": answered.fields["durationMs"],  # type: ignore[attr-defined]
    }
    assert "data source api answered 500" in answered.getMessage()
    assert "data source down: connection failed" in refused.getMessage()
    assert refused.fields["status"] is None  # type: ignore[attr-defined]
    assert "invalid arguments: argument 'q' must be a string" in invalid.getMessage()
    for record in failures:
        assert " ms: " in record.getMessage()  # the duration
        _assert_clean(record.getMessage())


@pytest.mark.parametrize(
    ("headers", "size", "status", "reason"),
    [
        ([], 0, 401, "missing x-api-key header"),
        ([("x-api-key", WRONG_KEY)], 0, 401, "invalid API key"),
        ([("x-api-key", KEY), ("x-api-key", KEY)], 0, 401, "duplicate x-api-key"),
        ([("x-api-key", KEY), ("origin", "https://evil.example")], 0, 403, "Origin not allowed"),
        ([("x-api-key", KEY)], 2 * 1024 * 1024, 413, "body over"),
    ],
    ids=["no-key", "wrong-key", "two-keys", "origin", "too-large"],
)
async def test_a_refused_request_logs_why_and_writes_no_audit_line(
    env: Env,
    caplog: pytest.LogCaptureFixture,
    headers: list[tuple[str, str]],
    size: int,
    status: int,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps(_call(1, "look", {"q": ARGUMENT + "x" * size})).encode()
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await http.post(env.gateway.url, content=body, headers=[*JSON.items(), *headers])
    assert reply.status_code == status
    assert _audit(caplog) == []
    (refusal,) = [r for r in caplog.records if r.name == "mcpgate.gateway"]
    assert refusal.fields["status"] == status  # type: ignore[attr-defined]
    assert refusal.fields["reason"].startswith(reason)  # type: ignore[attr-defined]
    assert reason in refusal.getMessage()
    _assert_clean(refusal.getMessage() + json.dumps(refusal.fields))  # type: ignore[attr-defined]
    assert env.upstream.requests == []


async def _serve(config: GatewayConfig, tmp_path: Path, *flags: str) -> str:
    """The stderr of `mcpgate gateway` (as the Deployment runs it) that served CALLS and a
    call with a wrong key."""
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    port, metrics = free_port(), free_port()
    command = [sys.executable, "-m", "mcpgate.cli", "gateway", "--config", str(path)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics)]
    process = subprocess.Popen([*command, *flags], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(400):
                try:
                    if (await http.get(f"{base}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, "the gateway exited"
                await asyncio.sleep(0.05)
            for request_id, name, arguments, _ in CALLS:
                await http.post(
                    f"{base}/mcp",
                    json=_call(request_id, name, arguments),
                    headers={**JSON, "x-api-key": KEY},
                )
            await http.post(
                f"{base}/mcp", json=_call(9, "look"), headers={**JSON, "x-api-key": WRONG_KEY}
            )
    finally:
        process.terminate()
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    return stderr.decode()


async def test_a_real_process_logs_json_lines_without_canaries(
    upstream: RecordingUpstream, refused_url: str, tmp_path: Path
) -> None:
    upstream.set_handler(_answer)
    stderr = await _serve(_config(upstream.url, refused_url, tmp_path), tmp_path)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    audit = [line for line in lines if "requestId" in line]
    assert [line["requestId"] for line in audit] == [c[0] for c in CALLS]
    assert all(line["caller"] == {"apiKey": FINGERPRINT} for line in audit)  # not redacted
    assert any("invalid API key" in line.get("message", "") for line in lines)
    assert any("data source api answered 500" in line.get("message", "") for line in lines)
    _assert_clean(stderr)


async def test_the_audit_log_can_be_switched_off(
    upstream: RecordingUpstream, refused_url: str, tmp_path: Path
) -> None:
    upstream.set_handler(_answer)
    stderr = await _serve(
        _config(upstream.url, refused_url, tmp_path), tmp_path, "--audit-log", "off"
    )
    assert "requestId" not in stderr
    assert "data source api answered 500" in stderr  # the ordinary lines stay
    _assert_clean(stderr)
