"""Leaks, last: the gateway's log redactor on every shape a credential takes in a log line,
and the suite-wide scan of every text the other hardening modules handed to the leak
sink (log lines of the test process and of every gateway subprocess, tool results,
JSON-RPC errors, metrics, Kubernetes objects the operator wrote: statuses, Events,
annotations, ConfigMaps, Deployments). One canary per credential (canaries.py), looked
for as is, percent-encoded and, for Basic credentials, base64-encoded.

The file name sorts last in the directory, so pytest runs it after the other modules;
a session finaliser in conftest.py repeats the check whatever the selection.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable, Iterator

import pytest

from hardening.canaries import CANARIES, SINK, leaked
from hardening.gateways import figures
from mcpgate.gateway.observability import configure_logging

C = CANARIES
BASIC = base64.b64encode(f"{C['basic_user']}:{C['basic_password']}".encode()).decode()
# Every shape the gateway, its libraries or an API's error could put a credential in.
SHAPES = {
    "authorization-bearer": f"Authorization: Bearer {C['bearer']}",
    "authorization-basic": f"authorization=Basic {BASIC}",
    "x-api-key": f"x-api-key: {C['inbound_key']}",
    "api-key-header": f"X-API-Key: {C['apikey_header']}",
    "api-key-query": f"GET https://api.example.com/v1/items?api_key={C['apikey_query']}&page=2",
    "apikey-json": f'{{"apikey": "{C["apikey_header"]}"}}',
    "cookie": f"Cookie: session={C['cookie']}",
    "set-cookie": f"Set-Cookie: session={C['cookie']}; Path=/; HttpOnly",
    "access-token-json": f'{{"access_token": "{C["oauth_access_token"]}", "expires_in": 3600}}',
    "client-secret-form": f"grant_type=client_credentials&client_secret={C['oauth_client_secret']}",
    "password": f"password={C['basic_password']}",
    "amz-security-token": f"X-Amz-Security-Token: {C['aws_session']}",
    "token": f"token={C['caller_token']}",
}


@pytest.fixture
def gateway_logging() -> Iterator[tuple[io.StringIO, list[Iterable[str]]]]:
    """The gateway's own logging setup (JSON lines, redactor, library caps) at DEBUG,
    into a buffer. `known[0]` is what the gateway has read so far (none by default)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    known: list[Iterable[str]] = [()]
    stream = io.StringIO()
    configure_logging("debug", lambda: known[0])
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream, known
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("known", [True, False], ids=["values-known", "patterns-only"])
def test_log_lines_are_redacted(
    gateway_logging: tuple[io.StringIO, list[Iterable[str]]], shape: str, known: bool
) -> None:
    stream, values = gateway_logging
    if known:  # what the gateway has read from its credential files and token endpoints
        values[0] = [*CANARIES.values(), BASIC]
    log = logging.getLogger("mcpgate.gateway.hardening")
    log.info("downstream said %s", shape)
    log.warning("as a field", extra={"fields": {"detail": "x"}})
    try:
        raise RuntimeError(f"failed with {shape}")
    except RuntimeError:
        log.exception("and in a traceback")
    text = stream.getvalue()
    assert "downstream said" in text
    assert "[REDACTED]" in text
    assert leaked(text) == [], text


def test_every_cookie_of_a_cookie_header_is_redacted(
    gateway_logging: tuple[io.StringIO, list[Iterable[str]]],
) -> None:
    """Regression (found by this suite, fixed since): a Cookie header with several cookies
    is redacted only up to the first `;` (observability.py:27 _HEADER_VALUE stops the
    value at `;`): the cookies after it stay in the log line unless their values happen
    to be known credentials"""
    stream, _ = gateway_logging
    logging.getLogger("mcpgate.gateway.hardening").info(
        "request had Cookie: theme=dark; session=%s", C["cookie"]
    )
    assert leaked(stream.getvalue()) == [], stream.getvalue()


def test_no_canary_reached_any_scanned_text() -> None:
    """The suite-wide scan: every text handed to the sink, zero hits."""
    categories = dict(sorted(SINK.scanned.items()))
    figures(
        "leak scan",
        {
            "canaries (one per credential)": len(CANARIES),
            "texts scanned": sum(categories.values()),
            "characters scanned": SINK.scanned_chars,
            **{f"  {name}": count for name, count in categories.items()},
            "hits": len(SINK.hits),
        },
    )
    assert SINK.hits == [], SINK.report()
