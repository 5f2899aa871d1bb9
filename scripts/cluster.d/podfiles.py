"""Volume files laid out as the kubelet lays them out, and updated the way it updates them.

A ConfigMap, Secret, projected or downwardAPI volume directory holds a timestamped
directory with the files, a `..data` symlink to it, and one top-level symlink per entry
(`key -> ..data/key`). An update writes a new timestamped directory and swaps `..data`
by rename, so a reader sees the old set or the new set, never a mix; programs that
watch for that swap (as the gateway does for rotated Secrets) see kubelet's own events.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Payload", "write_atomic"]

# relative path -> (content, mode)
Payload = Mapping[str, tuple[bytes, int]]

DATA = "..data"


def _same(current: Path, payload: Payload) -> bool:
    """Whether the timestamped directory already holds exactly this payload."""
    seen = 0
    for root, _dirs, files in os.walk(current):
        for name in files:
            path = Path(root, name)
            rel = str(path.relative_to(current))
            want = payload.get(rel)
            if want is None or path.read_bytes() != want[0]:
                return False
            if path.stat().st_mode & 0o7777 != want[1]:
                return False
            seen += 1
    return seen == len(payload)


def write_atomic(target: Path, payload: Payload, gid: int | None = None) -> bool:
    """Make `target` show `payload`; returns whether anything changed."""
    if gid is not None:  # fsGroup: the kubelet makes the files group-readable, too
        payload = {rel: (content, mode | 0o440) for rel, (content, mode) in payload.items()}
    target.mkdir(parents=True, exist_ok=True)
    link = target / DATA
    old = target / os.readlink(link) if link.is_symlink() else None
    if old is not None and _same(old, payload):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + secrets.token_hex(5)
    new = target / stamp
    new.mkdir(mode=0o755)
    for rel, (content, mode) in payload.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
        if gid is not None:  # fsGroup: the kubelet gives the files to that group
            os.chown(path, 0, gid)
    if gid is not None:
        for root, dirs, _files in os.walk(new):
            for d in [root, *(os.path.join(root, d) for d in dirs)]:
                os.chown(d, 0, gid)
    tmp = target / "..data_tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(stamp)
    tmp.rename(link)  # the atomic swap
    tops = {rel.split("/", 1)[0] for rel in payload}
    for top in tops:
        entry = target / top
        if not entry.is_symlink():
            entry.symlink_to(f"{DATA}/{top}")
    for entry in target.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return True
