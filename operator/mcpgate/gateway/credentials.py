"""Credentials read from mounted Secret files, re-read when the files change.

Kubelet updates a mounted Secret by swapping a symlink, so a changed file is
seen as a different (inode, mtime, size); a `stat` per use is cheap, and the
value is read again only when that triple changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mcpgate.gateway.errors import CredentialError

__all__ = ["CredentialStore"]


@dataclass
class _Cached:
    stamp: tuple[int, int, int]
    value: str


class CredentialStore:
    """Reads `<secret>/<key>` files under one directory; values never leave as text of
    an error or a repr."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._root = str(root)
        self._cache: dict[str, _Cached] = {}
        self._paths: dict[str, str] = {}  # relative -> full path: a read is on every call's path

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.root)!r})"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read(self, relative: str) -> str:
        """The value of one credential: one trailing newline dropped, never empty."""
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
        value = value.removesuffix("\n")
        if not value:
            raise CredentialError(f"credential {relative} is empty")
        self._cache[relative] = _Cached(stamp, value)
        return value

    def known_values(self) -> list[str]:
        """Every value read so far: what logs and error texts must never show."""
        return [cached.value for cached in self._cache.values()]

    def read_dir(self, relative: str) -> list[str]:
        """Every non-empty value in a mounted whole-Secret directory (API keys)."""
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
                values.append(self.read(f"{relative}/{name}"))
            except CredentialError:
                continue
        return values
