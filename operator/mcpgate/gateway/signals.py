"""Ctrl-C and SIGTERM before a server takes them over: an orderly stop, never a trace.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is, and
that is not safe while modules load: raised inside a callback that C code calls
(pydantic-core compiling a pattern) it is printed as "Exception ignored" and swallowed,
and the process goes on serving; raised inside `__set_name__` it becomes a RuntimeError
with a traceback. So the first signal is only recorded: a server about to start takes
it (`take`) and serves nothing, or shuts down at once if it already has its ports, and
the command exits as stopped; any other command ends as interrupted.
A second signal means "now": the registered clean-ups run (`mcpgate up` removes its
credentials folder) and the process exits with 130 at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["at_forced_exit", "install", "received", "take"]

_received: list[int] = []
_cleanups: list[Callable[[], None]] = []
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _on_signal(sig: int, frame: FrameType | None) -> None:
    if not _received:
        _received.append(sig)
        return
    for cleanup in reversed(_cleanups):
        with contextlib.suppress(Exception):
            cleanup()
    os.write(2, b"mcpgate: interrupted\n")
    os._exit(130)


def install() -> None:
    """From now on SIGINT and SIGTERM are recorded, and a second one ends the process."""
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            signal.signal(sig, _on_signal)


def received() -> bool:
    """Whether SIGINT or SIGTERM arrived since `install` and no server took it over."""
    return bool(_received)


def take() -> bool:
    """A server takes the signals over: whether one already came (it is then the server's
    to honour, by stopping: the command ends as stopped, not as interrupted)."""
    came = bool(_received)
    _received.clear()
    return came


def at_forced_exit(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` if a second signal ends the process before it is done."""
    _cleanups.append(cleanup)
