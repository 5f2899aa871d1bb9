"""Inbound authorization modes (API.md "Inbound authorization"), decided on headers as the
ASGI server hands them over, and the plug-in point a token validator will use: a mode's
own status and challenge reach the client as they are."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpgate.gateway.config import GatewayConfig, InboundConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.inbound import (
    Accepted,
    ApiKeyInbound,
    BearerPassthroughInbound,
    Headers,
    InboundAuth,
    NoInboundAuth,
    Refused,
    build_inbound,
    key_fingerprint,
)
from mcpgate.gateway.server import build_app

from support.paths import replace_file

KEY = "key-one-5f0c2a9e71"
KEY2 = "key-two-b3d1e88c04"
REALM = b'ApiKey realm="billing-mcp"'


def config(mode: str, root: Path) -> GatewayConfig:
    keys = "keys" if mode != "None" else None
    return GatewayConfig(
        server_name="billing-mcp",
        authorization=InboundConfig(type=mode, api_keys_dir=keys),
        credentials_dir=str(root),
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    replace_file(tmp_path / "keys" / "one", KEY)
    replace_file(tmp_path / "keys" / "two", KEY2 + "\n")  # kubectl --from-file adds one
    replace_file(tmp_path / "keys" / "empty", "")
    return tmp_path


def mode_of(kind: str, root: Path) -> InboundAuth:
    return build_inbound(config(kind, root), CredentialStore(root))


def headers(*pairs: tuple[bytes, bytes]) -> Headers:
    out: dict[bytes, list[bytes]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("None", NoInboundAuth),
        ("ApiKey", ApiKeyInbound),
        ("BearerPassthrough", BearerPassthroughInbound),
    ],
)
def test_build_inbound_picks_the_mode(root: Path, kind: str, cls: type) -> None:
    assert type(mode_of(kind, root)) is cls


async def test_none_accepts_everything_and_names_no_caller(root: Path) -> None:
    decision = await mode_of("None", root).check(
        headers((b"x-api-key", b"x"), (b"x-api-key", b"y"))
    )
    assert decision == Accepted(caller=None, forward_authorization=None)


@pytest.mark.parametrize("key", [KEY, KEY2])
async def test_a_key_of_the_secret_is_accepted_with_its_fingerprint(root: Path, key: str) -> None:
    decision = await mode_of("ApiKey", root).check(headers((b"x-api-key", key.encode())))
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:8]
    assert decision == Accepted(caller={"apiKey": fingerprint})
    assert key_fingerprint(key.encode()) == fingerprint


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ([], "missing x-api-key header"),
        ([(b"x-api-key", b"")], "missing x-api-key header"),
        ([(b"x-api-key", b" \t ")], "missing x-api-key header"),
        ([(b"x-api-key", b"wrong")], "invalid API key"),
        ([(b"x-api-key", KEY.encode() + b"\n")], "invalid API key"),
        ([(b"x-api-key", KEY[:4].encode() + b" " + KEY[4:].encode())], "invalid API key"),
        ([(b"x-api-key", KEY.encode() + b"\xc2\xa0")], "invalid API key"),  # NBSP is no OWS
        ([(b"x-api-key", KEY.encode() + b"\x0b")], "invalid API key"),  # nor is a vertical tab
        ([(b"x-api-key", KEY.encode()), (b"x-api-key", KEY.encode())], "duplicate"),
        (
            [(b"x-api-key", KEY.encode()), (b"authorization", b"a"), (b"authorization", b"b")],
            "duplicate",
        ),
        ([(b"authorization", KEY.encode())], "missing x-api-key header"),
    ],
    ids=[
        "absent",
        "empty",
        "white-space-only",
        "wrong",
        "with-the-file-newline",
        "inner-space",
        "no-break-space",
        "vertical-tab",
        "two-keys",
        "two-authorizations",
        "in-authorization",
    ],
)
async def test_refusals_are_401_with_the_realm(
    root: Path, pairs: list[tuple[bytes, bytes]], reason: str
) -> None:
    with_authorization = pairs
    if not any(name == b"authorization" for name, _ in pairs):
        with_authorization = [*pairs, (b"authorization", b"Bearer caller")]
    for kind, sent in (("ApiKey", pairs), ("BearerPassthrough", with_authorization)):
        decision = await mode_of(kind, root).check(headers(*sent))
        assert isinstance(decision, Refused), (kind, sent)
        assert decision.status == 401
        assert decision.reason.startswith(reason)
        assert decision.challenge == REALM


@pytest.mark.parametrize(
    "padded", [b" " + KEY.encode(), KEY.encode() + b" \t", b"\t" + KEY.encode() + b"\t"]
)
async def test_white_space_around_the_value_is_not_part_of_it(root: Path, padded: bytes) -> None:
    """RFC 9110 section 5.5: the field value excludes the spaces and tabs around it. The
    gateway takes it so itself, whether or not the HTTP server library trimmed them."""
    decision = await mode_of("ApiKey", root).check(headers((b"x-api-key", padded)))
    assert isinstance(decision, Accepted)


async def test_a_secret_value_with_white_space_around_it_matches_nothing(tmp_path: Path) -> None:
    """The comparison is exact against the value (one trailing newline of the file aside):
    a value with a space at its end is a key that no HTTP request can carry."""
    replace_file(tmp_path / "keys" / "padded", KEY + " ")
    mode = mode_of("ApiKey", tmp_path)
    for sent in (KEY.encode(), KEY.encode() + b" "):
        assert isinstance(await mode.check(headers((b"x-api-key", sent))), Refused)


async def test_keys_follow_the_folder_without_a_restart(root: Path) -> None:
    """(The folder is read once per turn of the event loop: each request is a turn.)"""
    mode = mode_of("ApiKey", root)
    new = b"key-three-0a9b8c7d6e"
    assert isinstance(await mode.check(headers((b"x-api-key", new))), Refused)
    replace_file(root / "keys" / "three", new.decode())
    await asyncio.sleep(0)
    assert isinstance(await mode.check(headers((b"x-api-key", new))), Accepted)
    (root / "keys" / "three").unlink()
    await asyncio.sleep(0)
    assert isinstance(await mode.check(headers((b"x-api-key", new))), Refused)


async def test_every_key_is_compared(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit at a match: the time a check takes does not say which key matched."""
    compared: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        compared.append(b)
        return compare(a, b)

    monkeypatch.setattr("mcpgate.gateway.inbound.apikey.hmac.compare_digest", counting)
    decision = await mode_of("ApiKey", root).check(headers((b"x-api-key", KEY.encode())))
    assert isinstance(decision, Accepted)
    assert sorted(compared) == sorted([KEY.encode(), KEY2.encode()])  # the empty file is none


async def test_passthrough_forwards_the_field_value(root: Path) -> None:
    mode = mode_of("BearerPassthrough", root)
    decision = await mode.check(
        headers((b"x-api-key", KEY.encode()), (b"authorization", b"Bearer caller-\xe9 \t"))
    )
    assert decision == Accepted({"apiKey": key_fingerprint(KEY.encode())}, "Bearer caller-\xe9")
    for value in (None, b"", b"  "):
        pairs = [(b"x-api-key", KEY.encode())]
        if value is not None:
            pairs.append((b"authorization", value))
        refused = await mode.check(headers(*pairs))
        assert isinstance(refused, Refused)
        assert refused.reason == "missing Authorization header"


class _Scoped(InboundAuth):
    """What a token validator does: its own statuses and challenges."""

    async def check(self, headers: Headers) -> Accepted | Refused:
        token = headers.get(b"authorization", [b""])[0]
        if token == b"Bearer good":
            return Accepted(caller={"sub": "alice"})
        if token == b"Bearer narrow":
            return Refused(403, "insufficient scope", b'Bearer error="insufficient_scope"')
        return Refused(401, "no valid token", b'Bearer resource_metadata="https://x/.well-known"')


async def test_a_mode_answers_with_its_own_status_and_challenge(tmp_path: Path) -> None:
    app, _ = build_app(config("None", tmp_path))
    app.inbound = _Scoped()
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        for token, status, challenge in [
            ("Bearer nothing", 401, 'Bearer resource_metadata="https://x/.well-known"'),
            ("Bearer narrow", 403, 'Bearer error="insufficient_scope"'),
            ("Bearer good", 200, None),
        ]:
            reply = await http.post("/mcp", json=rpc, headers={"authorization": token})
            assert reply.status_code == status
            assert reply.headers.get("www-authenticate") == challenge
            if status != 200:
                assert reply.json()["id"] is None
                assert reply.json()["error"]["code"] == -32030
