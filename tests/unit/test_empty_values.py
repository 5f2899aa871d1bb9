"""What counts as an empty Secret value, one fact asked in one place
(`gateway.config.credential_value`) by the three readers of Secret values: the
operator's Secret index, `mcpgate render` (`SecretInfo.from_values`) and the gateway
reading a mounted file. API.md "Secret references": one trailing newline is ignored, and a
value under 4 characters is never a credential."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mcpgate.controller.handlers import secret_info
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError
from mcpgate.render.refs import SecretInfo

from support.paths import replace_file

# (value, counts as empty): 0..5 characters, with and without one trailing newline.
CASES = [
    *((b"k" * n, n < 4) for n in range(6)),
    *((b"k" * n + b"\n", n < 4) for n in range(6)),
    (b"abc\n\n", False),  # only one newline is dropped: "abc\n" is 4 characters
    (b"\n\n", True),
    ("é1€".encode(), True),  # 3 characters in 6 bytes: characters count
    ("é1€x".encode(), False),
    (b"\xff\xfe\xfd\xfc", False),  # not UTF-8: a value all the same (the gateway says so)
]
IDS = [repr(value) for value, _ in CASES]


@pytest.mark.parametrize(("value", "empty"), CASES, ids=IDS)
def test_the_index_keeps_only_the_yes_or_no(value: bytes, empty: bool) -> None:
    body = {"type": "Opaque", "data": {"k": base64.b64encode(value).decode()}}
    info = secret_info("creds", body)
    assert (info.name, info.keys, info.type) == ("creds", {"k"}, "Opaque")
    assert info.nonempty_keys == (set() if empty else {"k"})
    assert info.short_keys <= info.nonempty_keys  # a yes/no per key again, never the value


@pytest.mark.parametrize(("value", "empty"), CASES, ids=IDS)
def test_render_decides_the_same(value: bytes, empty: bool) -> None:
    info = SecretInfo.from_values("creds", {"k": value})
    assert info.keys == {"k"}
    assert info.nonempty_keys == (set() if empty else {"k"})


@pytest.mark.parametrize(("value", "empty"), CASES, ids=IDS)
def test_the_gateway_decides_the_same(value: bytes, empty: bool, tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "k").write_bytes(value)
    store = CredentialStore(tmp_path)
    if empty:
        with pytest.raises(CredentialError, match="is empty"):
            store.read("creds/k")
    elif value.startswith(b"\xff"):
        with pytest.raises(CredentialError, match="not UTF-8"):
            store.read("creds/k")
    else:
        assert store.read("creds/k") == value.decode().removesuffix("\n")


def test_a_short_api_key_is_no_key(tmp_path: Path) -> None:
    """The key Secret's folder: values that count as empty are not keys."""
    for name, value in {"a": "abc", "b": "abcd\n", "c": "\n", "d": "long-enough"}.items():
        replace_file(tmp_path / "keys" / name, value)
    assert CredentialStore(tmp_path).read_dir("keys") == ["abcd", "long-enough"]


def test_a_large_value_is_not_empty() -> None:
    big = b"\x00" * 1_000_000
    body = {"data": {"blob": base64.b64encode(big).decode(), "none": ""}}
    assert secret_info("helm-release", body).nonempty_keys == {"blob"}
