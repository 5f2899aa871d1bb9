"""Credentials read from mounted Secret files, re-read when the files change.

Kubelet updates a mounted Secret by swapping a symlink, so a changed file is
seen as a different (inode, mtime, size); a `stat` is cheap, and the value is
read again only when that triple changes.

Inside an event loop, a file (or a folder of keys) is checked once per turn of the loop
rather than on every use: under load one turn serves several calls, and a `stat` costs
several microseconds there. Nothing is missed by it: whatever a turn handles arrived by
its poll for I/O, before the turn's first check, so a file written before a request was
sent is seen by the check that request is served with.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from mcpgate.gateway.config import credential_value
from mcpgate.gateway.errors import CredentialError

__all__ = ["CredentialStore"]


@dataclass
class _Cached:
    stamp: tuple[int, int, int]
    value: str


@dataclass
class _Turn:
    """What one turn of one event loop has checked already."""

    loop: asyncio.AbstractEventLoop | None = None
    values: dict[str, str] = field(default_factory=dict)  # relative path -> value
    folders: dict[str, list[str]] = field(default_factory=dict)  # relative path -> values


class CredentialStore:
    """Reads `<secret>/<key>` files under one directory; values never leave as text of
    an error or a repr."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._root = str(root)
        self._cache: dict[str, _Cached] = {}
        self._paths: dict[str, str] = {}  # relative -> full path: a read is on every call's path
        self._turn = _Turn()

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.root)!r})"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        """The value of one credential: one trailing newline dropped, never empty."""
        turn = self._this_turn()
        if turn is None:
            return self._read(relative)
        value = turn.values.get(relative)
        if value is None:
            value = turn.values[relative] = self._read(relative)
        return value

    def read_dir(self, relative: str) -> list[str]:
        """Every non-empty value in a mounted whole-Secret directory (API keys)."""
        turn = self._this_turn()
        if turn is None:
            return self._read_dir(relative)
        values = turn.folders.get(relative)
        if values is None:
            values = turn.folders[relative] = self._read_dir(relative)
        return values

    def _this_turn(self) -> _Turn | None:
        """The running loop's current turn (None outside a loop: every use checks)."""
        loop = asyncio._get_running_loop()
        if loop is None:
            return None
        turn = self._turn
        if turn.loop is not loop:
            # Ends as the loop's next turn starts, before anything it polls is handled.
            turn = self._turn = _Turn(loop)
            loop.call_soon(self._end_turn, turn)
        return turn

    def _end_turn(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._turn = _Turn()

    def _read(self, relative: str) -> str:
        full = self._paths.get(relative)
        if full is None:
            full = self._paths.setdefault(relative, os.path.join(self._root, relative))
        try:
            st = os.stat(full)
        except OSError:
            raise CredentialError(f"credential {relative} is not mounted") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(relative)
        if cached is not None and cached.stamp == stamp:
            return cached.value
        try:
            with open(full, "rb") as file:
                raw = file.read()
        except OSError:
            raise CredentialError(f"credential {relative} cannot be read") from None
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialError(f"credential {relative} is not UTF-8 text") from None
        value = credential_value(value)
        if not value:
            raise CredentialError(f"credential {relative} is empty")
        self._cache[relative] = _Cached(stamp, value)
        return value

    def known_values(self) -> list[str]:
        """Every value read so far: what logs and error texts must never show."""
        return [cached.value for cached in self._cache.values()]

    def _read_dir(self, relative: str) -> list[str]:
        folder = self.root / relative
        try:
            names = sorted(
                entry.name
                for entry in os.scandir(folder)
                if not entry.name.startswith("..") and entry.is_file()
            )
        except OSError:
            return []
        values = []
        for name in names:
            try:
                values.append(self._read(f"{relative}/{name}"))
            except CredentialError:
                continue
        return values
