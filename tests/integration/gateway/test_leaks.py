"""Canary credentials never leave: not in tool results, error texts, logs or metrics, even
when the API echoes every header and query parameter it received back in its error."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from starlette.responses import JSONResponse

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.observability import configure_logging
from mcpgate.render.config import gateway_config

from support.gateway import mcp_session, running_gateway
from support.upstream import RecordedRequest, RecordingUpstream, TokenServer

CANARIES = {
    "apikey": "canary-apikey-7f3a9c",
    "query": "canary-query-1b2d4e",
    "bearer": "canary-bearer-5e6f7a",
    "user": "canary-user-8b9c0d",
    "password": "canary-password-2f4a6c",
    "client": "canary-client-secret-9d8e7f",
    "akid": "AKIACANARY00000001",
    "secret": "canary-aws-secret-6b5a4c",
    "session": "canary-aws-session-3c2b1a",
    "inbound": "canary-inbound-key-0a1b2c",
}
CALLER_TOKEN = "Bearer canary-caller-token-4d5e6f"
SOURCES = {
    "s-apikey": {
        "type": "ApiKey",
        "apiKey": {
            "name": "X-Key",
            "prefix": "Token ",
            "valueSecretRef": {"name": "c", "key": "apikey"},
        },
    },
    "s-query": {
        "type": "ApiKey",
        "apiKey": {
            "in": "Query",
            "name": "api_key",
            "valueSecretRef": {"name": "c", "key": "query"},
        },
    },
    "s-bearer": {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "c", "key": "bearer"}}},
    "s-basic": {
        "type": "Basic",
        "basic": {
            "usernameSecretRef": {"name": "c", "key": "user"},
            "passwordSecretRef": {"name": "c", "key": "password"},
        },
    },
    "s-oauth": {
        "type": "OAuth2ClientCredentials",
        "oauth2ClientCredentials": {
            "tokenUrl": "http://127.0.0.1:1/token",
            "clientId": "cid",
            "clientSecretSecretRef": {"name": "c", "key": "client"},
        },
    },
    "s-aws": {
        "type": "AwsSigV4",
        "awsSigV4": {
            "region": "eu-west-1",
            "service": "execute-api",
            "accessKeyIdSecretRef": {"name": "c", "key": "akid"},
            "secretAccessKeySecretRef": {"name": "c", "key": "secret"},
            "sessionTokenSecretRef": {"name": "c", "key": "session"},
        },
    },
    "s-open": {"type": "None"},
}


def _echo(request: RecordedRequest) -> JSONResponse:
    """An API that reflects everything it got into its error (some do)."""
    return JSONResponse(
        {"error": "denied", "headers": dict(request.headers), "query": request.query},
        status_code=403,
    )


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The gateway's own logging setup (JSON, redactor, library caps) at DEBUG."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("debug", lambda: CANARIES.values())
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


async def test_no_canary_escapes(
    upstream: RecordingUpstream, tmp_path: Path, captured_logs: io.StringIO
) -> None:
    token_server = TokenServer(
        upstream, client_id="cid", client_secret=CANARIES["client"], path="/token"
    )
    for key, value in CANARIES.items():
        folder = tmp_path / "c"
        folder.mkdir(exist_ok=True)
        (folder / key).write_text(value)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "k").write_text(CANARIES["inbound"])
    upstream.set_handler(_echo)
    upstream.route("/token", token_server._answer)

    sources = {}
    for name, auth in SOURCES.items():
        if name == "s-oauth":
            auth = json.loads(json.dumps(auth))
            auth["oauth2ClientCredentials"]["tokenUrl"] = token_server.url
        sources[name] = HttpApiDataSource.model_validate(
            {"metadata": {"name": name}, "spec": {"baseUrl": upstream.url, "auth": auth}}
        )
    server = McpServer.model_validate(
        {
            "metadata": {"name": "leaky"},
            "spec": {
                "authorization": {"type": "BearerPassthrough", "apiKeySecretRef": {"name": "keys"}},
                "tools": [
                    {"name": f"t-{name}", "dataSource": name, "request": {"path": "/x"}}
                    for name in SOURCES
                ],
            },
        }
    )
    config = gateway_config(
        server, sources, credentials_dir=str(tmp_path), allow_loopback_destinations=True
    )

    texts: list[str] = []
    async with running_gateway(config) as gw:
        async with mcp_session(
            gw.url, headers={"x-api-key": CANARIES["inbound"], "authorization": CALLER_TOKEN}
        ) as client:
            for name in SOURCES:
                result = await client.call_tool(f"t-{name}", {})
                assert result.is_error is True  # every call hit the echoing 403
                texts.append(json.dumps(result.model_dump(mode="json")))
        metrics = generate_latest(gw.app.metrics.registry).decode()

    assert len(upstream.requests) >= len(SOURCES)  # the canaries really went out
    logs = captured_logs.getvalue()
    issued = token_server.issued
    assert issued, "the OAuth2 token was fetched"
    secrets = [*CANARIES.values(), CALLER_TOKEN.split()[1], *issued]
    for where, text in [("tool results", "\n".join(texts)), ("logs", logs), ("metrics", metrics)]:
        found = [s for s in secrets if s in text]
        assert found == [], f"{where} leak {found}"
    assert "denied" in texts[0]  # the excerpt is there, only redacted


def test_redaction_patterns() -> None:
    from mcpgate.gateway.observability import redact_text

    text = redact_text(
        'Authorization: Bearer abc.def x-api-key=zzz9 {"access_token": "tok-1"} password=p4ss',
        secrets=["known-value-1"],
    )
    for secret in ("abc.def", "zzz9", "tok-1", "p4ss"):
        assert secret not in text
    assert redact_text("a known-value-1 b", ["known-value-1"]) == "a [REDACTED] b"


def test_logger_caps() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("debug", list)
        for noisy in ("httpx", "aiohttp", "botocore"):
            assert logging.getLogger(noisy).getEffectiveLevel() >= logging.WARNING
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
