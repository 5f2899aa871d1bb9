"""The audit log: one JSON line per `tools/call` on the `mcpgate.audit` logger (API.md "Audit").

    {"time": "2026-12-03T10:00:00.123Z", "server": "billing-mcp", "namespace": "team-a",
     "tool": "get_invoice", "dataSource": "billing", "caller": {"apiKey": "1f2e3d4c"},
     "outcome": "ok", "status": 200, "durationMs": 12.5, "requestId": 7}

`caller` is what the inbound mode names (the key's fingerprint in the key modes, null in
mode None), `outcome` one of `Outcome`, `status` the downstream HTTP status when an answer
came, `requestId` the JSON-RPC id. Nothing else: never an argument value, a body or a
credential. The line is JSON whatever the log format: the gateway's log handler writes an
audit record's message as it is (observability.py), and the redactor only removes known
credential values from it (its patterns would take `"apiKey": "..."` for a key, but the
fingerprint is no secret).

One line per call is on every call's path, so it is built cheaply: orjson, the server's
fields once, the time's seconds formatted once a second, and a record handed to the
logger without the stack walk `Logger.info` does to find its caller. Through the logger
all the same, so that it can be routed or switched off like any other (`--audit-log off`
disables the logger; then nothing is built at all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

import orjson

from mcpgate.gateway.observability import AUDIT_LOGGER, caller_text

__all__ = ["AuditLog", "Outcome"]

Outcome = Literal["ok", "toolError", "denied", "invalidArguments"]

_INT64: Final = range(-(2**63), 2**64)  # what orjson writes as a JSON integer

_logger = logging.getLogger(AUDIT_LOGGER)
_LOGGING_STARTED: Final[float] = getattr(logging, "_startTime", time.time())


# What a record of an audit line holds besides its message and time: everything a
# formatter may use (`%(name)s` reads the record's __dict__).
_RECORD_FIELDS: Final = {
    "name": AUDIT_LOGGER,
    "args": None,
    "levelname": "INFO",
    "levelno": logging.INFO,
    "pathname": __file__,
    "filename": "audit.py",
    "module": "audit",
    "lineno": 0,
    "funcName": "write",
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "thread": None,
    "threadName": None,
    "process": None,
    "processName": None,
    "taskName": None,
}


class _AuditRecord(logging.LogRecord):
    """A record of one audit line. `LogRecord.__init__` works out, for every record, its
    caller's file and module and its thread, process and task names, which costs more than
    the rest of the line does; an audit record knows all it needs."""

    def __init__(self, line: str, created: float) -> None:  # no super().__init__: see above
        self.__dict__.update(_RECORD_FIELDS)
        self.msg = line
        self.created = created
        self.msecs = int(created * 1000) % 1000
        self.relativeCreated = (created - _LOGGING_STARTED) * 1000


class AuditLog:
    """Writes the audit lines of one server."""

    def __init__(self, server: str, namespace: str) -> None:
        self._server = server
        self._namespace = namespace
        self._second = -1
        self._stamp = ""

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def write(
        self,
        *,
        tool: str | None,
        data_source: str | None,
        caller: Mapping[str, str] | None,
        outcome: Outcome,
        status: int | None,
        seconds: float,
        request_id: Any,
    ) -> None:
        """One call's line. `tool` and `request_id` may come from the caller unchecked (an
        unknown tool's name): they are cut short and made encodable here."""
        if not _logger.isEnabledFor(logging.INFO):
            return
        now = time.time()
        if isinstance(request_id, str):
            request_id = caller_text(request_id)
        elif isinstance(request_id, int) and request_id not in _INT64:
            request_id = str(request_id)
        line = orjson.dumps(
            {
                "time": self._time(now),
                "server": self._server,
                "namespace": self._namespace,
                "tool": tool,
                "dataSource": data_source,
                "caller": caller,
                "outcome": outcome,
                "status": status,
                "durationMs": round(seconds * 1000, 3),
                "requestId": request_id,
            }
        ).decode()
        _logger.handle(_AuditRecord(line, now))
