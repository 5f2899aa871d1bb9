"""Logs and metrics of the gateway, with credentials redacted.

Logs are JSON lines on stderr. Every line passes `Redactor`, which removes every
credential value the gateway has read (exact match) and the values of
credential-bearing headers and query parameters (pattern match), so neither a
message of ours nor one of a library can carry a secret. httpx, aiohttp and
botocore log request details below WARNING: they are capped there.

Audit lines (audit.py) are JSON already and are written as they are, in every log format;
they pass the exact match only, since they are built from known fields (the patterns would
hide the API key fingerprint in `"apiKey": "..."`, which is not a secret).

Metrics use a registry of their own, served on the metrics port only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from mcpgate.gateway.redaction import redaction_of

__all__ = [
    "AUDIT_LOGGER",
    "Metrics",
    "Redactor",
    "caller_text",
    "configure_logging",
    "redact_text",
]

AUDIT_LOGGER = "mcpgate.audit"
_CALLER_CHARS = 128  # a caller's string in a log line (request id, tool name, Origin)

_HEADER_VALUE = re.compile(
    r"(?i)((?:authorization|proxy-authorization|x-api-key|api[-_]?key|"
    r"x-amz-security-token|access[-_]?token|client[-_]?secret|password|token)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',&;]+(?:\s+[^\s\"',&;]+)?)"
)
# A cookie header holds several `name=value` pairs separated by `;`: mask the whole value.
_COOKIE_VALUE = re.compile(r"(?i)((?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)([^\r\n\"']+)")


def caller_text(value: str, limit: int = _CALLER_CHARS) -> str:
    """A caller's string as a log line may hold it: cut short, lone surrogates replaced."""
    if len(value) > limit:
        value = value[:limit] + "..."
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode()
    return value


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every given secret value and every credential-looking
    `name: value` / `name=value` pair masked."""
    text = _remove_known(text, secrets)
    text = _COOKIE_VALUE.sub(r"\1[REDACTED]", text)
    return _HEADER_VALUE.sub(r"\1[REDACTED]", text)


def _remove_known(text: str, secrets: Iterable[str]) -> str:
    """`text` with every given secret value masked, in every form (redaction.py; values
    under 4 characters are none)."""
    return redaction_of(tuple(secrets))(text)


class Redactor(logging.Filter):
    """Rewrites every record's message (args merged) through `redact_text`; an audit
    record's through the known values only."""

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == AUDIT_LOGGER:
            record.msg = _remove_known(message, self._secrets())
            return True
        record.msg = redact_text(message, self._secrets())
        record.args = None
        if record.exc_info:
            record.exc_text = redact_text(
                logging.Formatter().formatException(record.exc_info), self._secrets()
            )
            record.exc_info = None
        return True


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes records through its formatter, audit records as they are (JSON already)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == AUDIT_LOGGER:
            return record.getMessage()
        return super().format(record)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


def configure_logging(
    level: str, secrets: Callable[[], Iterable[str]], *, audit: bool = True
) -> None:
    """JSON logs on stderr through the redactor; noisy libraries capped at WARNING. The
    audit lines are on (at INFO, whatever `level` is) or off (the logger disabled)."""
    handler = _Handler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    audit_logger = logging.getLogger(AUDIT_LOGGER)
    audit_logger.setLevel(logging.INFO)
    audit_logger.disabled = not audit
    for noisy in ("httpx", "httpcore", "aiohttp", "botocore", "urllib3", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Metrics:
    """The gateway's Prometheus metrics. Labels name tools and data sources, never
    values, so no argument or credential can reach them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "mcpgate_tool_calls",
            "Tool calls by outcome (ok, tool_error, upstream_error, invalid_arguments).",
            ["tool", "data_source", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mcpgate_tool_call_duration_seconds",
            "Time from receiving a tools/call to answering it.",
            ["tool", "data_source"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.token_requests = Counter(
            "mcpgate_oauth2_token_requests",
            "OAuth2 token requests by token endpoint and outcome (ok, error).",
            ["token_url", "outcome"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "mcpgate_inbound_auth_failures",
            "Requests refused by inbound authorization, by reason.",
            ["reason"],
            registry=self.registry,
        )
        # (tool, data source, outcome) -> its counter and histogram children: `labels()`
        # takes a lock and builds a key on each use. Bounded: tools and outcomes are fixed.
        self._call_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def record_call(self, tool: str, data_source: str, outcome: str, seconds: float) -> None:
        """Count one tool call by outcome and observe its duration."""
        key = (tool, data_source, outcome)
        series = self._call_series.get(key)
        if series is None:
            series = (self.calls.labels(*key), self.latency.labels(tool, data_source))
            self._call_series[key] = series
        series[0].inc()
        series[1].observe(seconds)
