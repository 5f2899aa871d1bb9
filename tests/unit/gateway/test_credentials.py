"""The credential store: a file is read again when it changes, checked once per turn of the
event loop, and never checked less often than that."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError

from support.paths import replace_file


def _write(root: Path, relative: str, value: str) -> None:
    replace_file(root / relative, value)


def test_outside_a_loop_every_read_sees_the_file_as_it_is(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    _write(tmp_path, "creds/token", "value-one\n")
    assert store.read("creds/token") == "value-one"
    _write(tmp_path, "creds/token", "value-two")
    assert store.read("creds/token") == "value-two"
    (tmp_path / "creds" / "token").unlink()
    with pytest.raises(CredentialError, match="creds/token is not mounted"):
        store.read("creds/token")


async def test_a_file_is_checked_once_per_turn_of_the_loop(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    _write(tmp_path, "creds/token", "value-one")
    _write(tmp_path, "keys/a", "key-a")
    assert store.read("creds/token") == "value-one"
    assert store.read_dir("keys") == ["key-a"]
    _write(tmp_path, "creds/token", "value-two")
    _write(tmp_path, "keys/b", "key-b")
    # Still this turn: what it checked stands.
    assert store.read("creds/token") == "value-one"
    assert store.read_dir("keys") == ["key-a"]
    await asyncio.sleep(0)  # the next turn
    assert store.read("creds/token") == "value-two"
    assert store.read_dir("keys") == ["key-a", "key-b"]


async def test_a_failed_check_is_not_kept(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    with pytest.raises(CredentialError, match="not mounted"):
        store.read("creds/token")
    _write(tmp_path, "creds/token", "now-here")
    assert store.read("creds/token") == "now-here"


def test_a_turn_ends_with_its_loop(tmp_path: Path) -> None:
    """A loop closed before its turn ended leaves nothing behind for the next one."""
    store = CredentialStore(tmp_path)
    _write(tmp_path, "creds/token", "value-one")

    async def read() -> str:
        return store.read("creds/token")

    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(read()) == "value-one"
    finally:
        first.close()
    _write(tmp_path, "creds/token", "value-two")
    assert store.read("creds/token") == "value-two"
    assert asyncio.run(read()) == "value-two"
