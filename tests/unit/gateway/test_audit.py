"""The audit line (API.md "Audit"): its exact fields, what it does with a caller's strings,
and how the gateway's logging writes it: raw JSON, past the redactor's patterns (the key
fingerprint is no secret) but not past its known values, on or off."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any, get_args

import pytest

from mcpgate.gateway.audit import AuditLog, Outcome
from mcpgate.gateway.observability import AUDIT_LOGGER, configure_logging

FIELDS = [
    "time",
    "server",
    "namespace",
    "tool",
    "dataSource",
    "caller",
    "outcome",
    "status",
    "durationMs",
    "requestId",
]
SECRET = "canary-known-secret-4e5f"


def write(audit: AuditLog, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "tool": "get_invoice",
        "data_source": "billing",
        "caller": {"apiKey": "1f2e3d4c"},
        "outcome": "ok",
        "status": 200,
        "seconds": 0.0123456,
        "request_id": 7,
    }
    audit.write(**{**fields, **changes})


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]


def test_the_line_has_exactly_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, AUDIT_LOGGER)
    write(AuditLog("billing-mcp", "team-a"))
    (line,) = lines(caplog)
    assert list(line) == FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line | {"time": None} == {
        "time": None,
        "server": "billing-mcp",
        "namespace": "team-a",
        "tool": "get_invoice",
        "dataSource": "billing",
        "caller": {"apiKey": "1f2e3d4c"},
        "outcome": "ok",
        "status": 200,
        "durationMs": 12.346,
        "requestId": 7,
    }
    assert get_args(Outcome) == ("ok", "toolError", "denied", "invalidArguments")


def test_caller_strings_are_cut_and_made_writable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, AUDIT_LOGGER)
    audit = AuditLog("s", "n")
    write(audit, request_id="r" * 10_000, tool=None, data_source=None, caller=None, status=None)
    write(audit, request_id="bad \ud800 surrogate")
    write(audit, request_id=2**70)
    long, surrogate, huge = lines(caplog)
    assert long["requestId"] == "r" * 128 + "..."
    assert (long["tool"], long["dataSource"], long["caller"], long["status"]) == (None,) * 4
    assert surrogate["requestId"] == "bad ? surrogate"
    assert huge["requestId"] == str(2**70)


def test_a_disabled_logger_gets_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, AUDIT_LOGGER)
    logger = logging.getLogger(AUDIT_LOGGER)
    logger.disabled = True
    try:
        write(AuditLog("s", "n"))
    finally:
        logger.disabled = False
    assert lines(caplog) == []


@pytest.fixture
def gateway_logging() -> Iterator[tuple[io.StringIO, list[Any]]]:
    """The gateway's logging setup on a stream; `configure(**kw)` sets it up again."""
    root = logging.getLogger()
    audit = logging.getLogger(AUDIT_LOGGER)
    saved = (root.handlers[:], root.level, audit.level, audit.disabled)
    stream = io.StringIO()

    def configure(level: str = "info", **kw: Any) -> None:
        configure_logging(level, lambda: [SECRET], **kw)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]

    try:
        yield stream, [configure]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        audit.setLevel(saved[2])
        audit.disabled = saved[3]


def test_written_raw_with_the_fingerprint_visible(
    gateway_logging: tuple[io.StringIO, list[Any]],
) -> None:
    stream, (configure,) = gateway_logging
    configure()
    write(AuditLog("s", "n"), request_id=f"x-api-key: {SECRET}")
    logging.getLogger("mcpgate.gateway").info("x-api-key: %s", "abcd1234")
    audit_line, ordinary = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(audit_line) == FIELDS  # not wrapped in the ordinary line's fields
    assert audit_line["caller"] == {"apiKey": "1f2e3d4c"}  # the patterns would mask it
    assert audit_line["requestId"] == "x-api-key: [REDACTED]"  # a known value is masked
    assert ordinary["message"] == "x-api-key: [REDACTED]"
    assert ordinary["logger"] == "mcpgate.gateway"


def test_on_whatever_the_level_and_off_with_the_flag(
    gateway_logging: tuple[io.StringIO, list[Any]],
) -> None:
    stream, (configure,) = gateway_logging
    configure("warning")
    write(AuditLog("s", "n"))
    assert len(stream.getvalue().splitlines()) == 1
    configure("debug", audit=False)
    write(AuditLog("s", "n"))
    assert len(stream.getvalue().splitlines()) == 1


def test_any_formatter_can_format_the_record(caplog: pytest.LogCaptureFixture) -> None:
    """The record is built without LogRecord.__init__ (it is on every call's path), but
    has every attribute a format string may name."""
    caplog.set_level(logging.INFO, AUDIT_LOGGER)
    write(AuditLog("s", "n"))
    (record,) = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    every = (
        "%(name)s %(levelno)s %(levelname)s %(pathname)s %(filename)s %(module)s"
        " %(lineno)d %(funcName)s %(created)f %(msecs)d %(relativeCreated)d %(thread)s"
        " %(threadName)s %(process)s %(processName)s %(taskName)s %(asctime)s %(message)s"
    )
    text = logging.Formatter(every).format(record)
    assert text.startswith(f"{AUDIT_LOGGER} 20 INFO ")
    assert text.endswith(record.getMessage())
