"""The one poller of the tests: wait until something holds, with a deadline.

    await wait_for(lambda: read(api, ...)["status"], within=15, what="a status")
    wait_for_sync(lambda: httpx.get(url).status_code == 200, retry_on=(httpx.TransportError,))

`check` is called until it returns something truthy (which is returned) without raising
one of `retry_on` (by default AssertionError, LookupError and TypeError: a check may
index into what does not exist yet); at the deadline the last failure is raised. A test
that waits for something to happen polls or awaits it: it never sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["RETRIED", "wait_for", "wait_for_sync"]

T = TypeVar("T")
RETRIED: tuple[type[BaseException], ...] = (AssertionError, LookupError, TypeError)


class _Poll:
    def __init__(self, within: float, what: str, retry_on: tuple[type[BaseException], ...]) -> None:
        self.deadline = time.monotonic() + within
        self.within = within
        self.what = what
        self.retried = RETRIED + retry_on

    def attempt(self, check: Callable[[], T]) -> list[T]:
        """[result] once `check` holds, [] while not yet; past the deadline, the last
        failure is raised."""
        try:
            result = check()
            if result:
                return [result]
            failure: BaseException = AssertionError(
                f"{self.what or getattr(check, '__name__', 'check')}: still {result!r}"
                f" after {self.within} s"
            )
        except self.retried as err:
            failure = err
        if time.monotonic() > self.deadline:
            raise failure
        return []


async def wait_for(
    check: Callable[[], T],
    *,
    within: float = 15.0,
    interval: float = 0.05,
    what: str = "",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `check` on the running event loop (which goes on serving) until it holds."""
    poll = _Poll(within, what, retry_on)
    while True:
        for result in poll.attempt(check):
            return result
        await asyncio.sleep(interval)


def wait_for_sync(
    check: Callable[[], T],
    *,
    within: float = 15.0,
    interval: float = 0.05,
    what: str = "",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """`wait_for` for code without an event loop (processes, threads)."""
    poll = _Poll(within, what, retry_on)
    while True:
        for result in poll.attempt(check):
            return result
        time.sleep(interval)
