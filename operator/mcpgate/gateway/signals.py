"""Ctrl-C and SIGTERM before a server takes them over: an orderly stop, never a trace.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is. Raised
inside a callback that a C extension calls (pydantic-core compiling a pattern, say), it is
printed as an "Exception ignored" traceback and swallowed, and the process goes on as if
nothing happened. So the handler also records the signal: `serve_app` then shuts down at
once, gracefully, instead of serving; and a swallowed interrupt prints nothing. SIGTERM is
treated the same way, so that `mcpgate up` removes its credentials folder even when it is
stopped while still starting.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

__all__ = ["install", "received"]

_received: list[int] = []
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(sig: int, frame: FrameType | None) -> None:
    _received.append(sig)
    raise KeyboardInterrupt


def _quiet_unraisable(default: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            default(unraisable)

    return hook


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, and are remembered (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _SIGNALS:
        signal.signal(sig, _interrupt)
    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)


def received() -> bool:
    """Whether SIGINT or SIGTERM arrived since `install`."""
    return bool(_received)
