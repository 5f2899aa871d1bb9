"""The hardening suite's log capture and its final leak check.

Every log record of the test process (the in-thread gateways, the operator, kopf, the
libraries) reaches a root handler that feeds the leak sink, for the whole of each
hardening module (its module fixtures' setup and teardown included). The levels are
those of production (`info` at the root, as `mcpgate gateway` and `mcpgate operator`
default to), with mcpgate's and kopf's own loggers at DEBUG to be stricter, and the
library loggers capped at WARNING as the gateway's logging setup caps them.

A session finaliser fails the run if any canary reached any scanned text, so the
check holds however the suite is selected or ordered; test_zz_leaks.py checks the
same at the end of the directory and reports what was scanned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from hardening.canaries import SINK

_LIBRARY_CAPS = ("httpx", "httpcore", "aiohttp", "botocore", "urllib3", "uvicorn.access")
_STRICT = ("mcpgate", "kopf")


class _SinkHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a library's broken format arguments: keep what there is
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + json.dumps(fields, default=str)
        SINK.add(f"log: {record.name}", text)


@pytest.fixture(scope="module", autouse=True)
def _capture_logs() -> Iterator[None]:
    root = logging.getLogger()
    handler = _SinkHandler(level=logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in ("", *_LIBRARY_CAPS, *_STRICT)}
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for name in _LIBRARY_CAPS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for name in _STRICT:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="session", autouse=True)
def _no_canary_leaked() -> Iterator[None]:
    yield
    if SINK.hits:
        raise AssertionError(f"credential canaries leaked:\n{SINK.report()}")
