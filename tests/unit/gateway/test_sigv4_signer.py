"""mcpgate's SigV4 signer against botocore's: the same request signed at the same instant by
both must carry the same Authorization header, byte for byte. moto's checks of real
signatures are in tests/integration/gateway/test_outbound_auth.py; this covers the corners
(dot segments, repeated query keys and headers, whitespace, ports, Date, S3) on many
requests."""

from __future__ import annotations

import datetime
import string
from pathlib import Path
from typing import Any

import botocore.auth  # type: ignore[import-untyped]
import botocore.awsrequest  # type: ignore[import-untyped]
import botocore.credentials  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpgate.gateway.auth import Outgoing
from mcpgate.gateway.auth.sigv4 import AwsSigV4Auth
from mcpgate.gateway.config import AwsSigV4Config
from mcpgate.gateway.credentials import CredentialStore

INSTANT = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
ACCESS_KEY = "AKIDCANARYSIGNER"
SECRET_KEY = "canary-signer-secret/K7MDENG+bPxRfiCY"
TOKEN = "canary-signer-session-token"
STALE = {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}


def _store(tmp_path: Path, with_token: bool) -> CredentialStore:
    (tmp_path / "aws").mkdir(exist_ok=True)
    (tmp_path / "aws" / "id").write_text(ACCESS_KEY)
    (tmp_path / "aws" / "secret").write_text(SECRET_KEY + "\n")
    if with_token:
        (tmp_path / "aws" / "token").write_text(TOKEN)
    return CredentialStore(tmp_path)


def _signer(store: CredentialStore, service: str, with_token: bool) -> AwsSigV4Auth:
    config = AwsSigV4Config(
        region="eu-central-1",
        service=service,
        access_key_id_file="aws/id",
        secret_access_key_file="aws/secret",
        session_token_file="aws/token" if with_token else None,
    )
    return AwsSigV4Auth(config, store, clock=INSTANT.timestamp)


def _ours(store: CredentialStore, make: Any, service: str, with_token: bool) -> httpx.Request:
    """`make()` signed twice by one signer: the second time from what the first kept."""
    auth = _signer(store, service, with_token)
    first = next(auth.sync_auth_flow(make()))
    again = next(auth.sync_auth_flow(make()))
    assert again.headers.multi_items() == first.headers.multi_items()
    return again


def _botocore(request: httpx.Request, service: str, with_token: bool) -> dict[str, str]:
    """The signing headers botocore sets on the same unsigned request at INSTANT."""
    body = request.content
    # httpx spells an empty path "" and sends "/"; botocore's S3 signer would sign the "".
    url = str(request.url.copy_with(raw_path=request.url.raw_path))
    aws = botocore.awsrequest.AWSRequest(method=request.method, url=url, data=body)
    for name, value in request.headers.multi_items():
        if name not in STALE:  # a resent request's old signature goes first (ours drops it)
            aws.headers[name] = value
    aws.headers["X-Amz-Content-Sha256"] = botocore.auth.sha256(body).hexdigest()
    credentials = botocore.credentials.Credentials(
        ACCESS_KEY, SECRET_KEY, TOKEN if with_token else None
    )
    signer_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    signer_class(credentials, service, "eu-central-1").add_auth(aws)
    return {name.lower(): str(value) for name, value in aws.headers.items()}


def _compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Any, service: str, with_token: bool
) -> httpx.Request:
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *_, **__: INSTANT.replace(tzinfo=None)
    )
    expected = _botocore(make(), service, with_token)
    signed = _ours(_store(tmp_path, with_token), make, service, with_token)
    assert signed.headers["authorization"] == expected["authorization"]
    for name in ("x-amz-date", "date", "x-amz-security-token", "x-amz-content-sha256"):
        assert signed.headers.get(name) == expected.get(name), name
    return signed


CASES = {
    "plain GET": ("GET", "https://api.example.com/items/42", {}, b""),
    "sorted query, repeated keys, bare and empty values": (
        "GET",
        "https://api.example.com/items?b=2&a=9&a=1&flag&x=&c=%2F%20",
        {},
        b"",
    ),
    "encoded and unreserved path characters": (
        "GET",
        "https://api.example.com/a%20b/c~d/%E2%82%AC/x:y@z",
        {},
        b"",
    ),
    "repeated headers and inner whitespace": (
        "POST",
        "https://api.example.com/search",
        [("X-Tag", "  one   two "), ("x-tag", "three"), ("Content-Type", "application/json")],
        b'{"q": "a b"}',
    ),
    "unsigned headers left out": (
        "GET",
        "https://api.example.com/items",
        {"User-Agent": "mcpgate", "traceparent": "00-1-2-01", "Expect": "100-continue"},
        b"",
    ),
    "non-default port": ("GET", "http://10.0.0.7:8443/items/1", {}, b""),
    "default port dropped": ("GET", "https://api.example.com:443/items/1", {}, b""),
    "IPv6 host": ("GET", "http://[::1]:9000/items/1", {}, b""),
    "empty path": ("GET", "https://api.example.com", {}, b""),
    "a Date header carries the time": (
        "GET",
        "https://api.example.com/items",
        {"Date": "Mon, 01 Jan 2001 00:00:00 GMT"},
        b"",
    ),
    "braces in header values": (
        "GET",
        "https://api.example.com/items",
        {"X-Template": "{0} {path} }{", "X-Other": "{{}}"},
        b"",
    ),
    "stale signing headers replaced": (
        "PUT",
        "https://api.example.com/items/1",
        {"X-Amz-Date": "stale", "Authorization": "stale", "X-Amz-Security-Token": "stale"},
        b"body",
    ),
}


@pytest.mark.parametrize("with_token", [False, True], ids=["keys", "session token"])
@pytest.mark.parametrize("service", ["execute-api", "s3"])
@pytest.mark.parametrize("case", list(CASES))
def test_signature_matches_botocore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, service: str, with_token: bool
) -> None:
    method, url, headers, body = CASES[case]
    signed = _compare(
        tmp_path,
        monkeypatch,
        lambda: httpx.Request(method, url, headers=headers, content=body),
        service,
        with_token,
    )
    assert signed.content == body


def test_stale_signing_headers_are_not_sent_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    method, url, headers, body = CASES["stale signing headers replaced"]
    signed = _compare(
        tmp_path,
        monkeypatch,
        lambda: httpx.Request(method, url, headers=headers, content=body),
        "execute-api",
        True,
    )
    for name in ("authorization", "x-amz-date", "x-amz-security-token"):
        assert len(signed.headers.get_list(name)) == 1, name
    assert "stale" not in str(signed.headers)


def test_the_path_is_normalised_and_encoded_again_except_for_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx keeps '//' and an encoded '%2F' as they are; SigV4 for most services collapses
    # the first and encodes the second again, S3 signs the path exactly as sent.
    url = "https://api.example.com/a//b/%2F/c"
    for service in ("execute-api", "s3"):
        _compare(tmp_path, monkeypatch, lambda: httpx.Request("GET", url), service, False)


SEGMENT = st.sampled_from(
    ["items", "a b", ".", "..", "", "%2F", "~x", "€", "a+b", "x:y", "7", "é%20"]
)
QUERY_PAIR = st.tuples(
    st.sampled_from(["a", "b", "A", "a b", "ä", "x"]),
    st.sampled_from(["", "1", "2", "%", "a b", "/", "=", "z"]),
)
HEADER_NAME = st.sampled_from(["X-One", "x-one", "X-Two", "Content-Type", "Accept", "X-Amz-Target"])
HEADER_VALUE = st.text(string.ascii_letters + string.digits + " -_.,;=/", min_size=1, max_size=12)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    segments=st.lists(SEGMENT, max_size=5),
    query=st.lists(QUERY_PAIR, max_size=5),
    headers=st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=5),
    body=st.binary(max_size=40),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    service=st.sampled_from(["execute-api", "s3", "dynamodb"]),
)
def test_any_request_is_signed_as_botocore_signs_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    segments: list[str],
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    method: str,
    service: str,
) -> None:
    url = httpx.URL("https://api.example.com/" + "/".join(segments), params=query)
    _compare(
        tmp_path,
        monkeypatch,
        lambda: httpx.Request(method, url, headers=headers, content=body),
        service,
        False,
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST"]),
            st.lists(SEGMENT, max_size=3),
            st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=3),
            st.binary(max_size=8),
        ),
        min_size=2,
        max_size=8,
    ),
    service=st.sampled_from(["execute-api", "s3"]),
)
def test_one_signer_signs_a_sequence_of_requests_as_botocore_signs_each(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    requests: list[tuple[str, list[str], list[tuple[str, str]], bytes]],
    service: str,
) -> None:
    # What the signer keeps from one request's headers must not leak into the next one's.
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *_, **__: INSTANT.replace(tzinfo=None)
    )
    auth = _signer(_store(tmp_path, with_token=True), service, with_token=True)
    for method, segments, headers, body in requests:
        url = "https://api.example.com/" + "/".join(segments)
        expected = _botocore(
            httpx.Request(method, url, headers=headers, content=body), service, True
        )
        signed = next(
            auth.sync_auth_flow(httpx.Request(method, url, headers=headers, content=body))
        )
        assert signed.headers["authorization"] == expected["authorization"]


def test_more_header_sets_than_the_signer_keeps(tmp_path: Path) -> None:
    # A header filled from arguments makes every request's headers new; the signer's
    # memory of them stays bounded and each signature stays right.
    auth = _signer(_store(tmp_path, with_token=False), "execute-api", with_token=False)
    signed = []
    for n in range(600):
        request = httpx.Request("GET", "https://api.example.com/x", headers={"X-N": str(n)})
        signed.append(next(auth.sync_auth_flow(request)).headers["authorization"])
    assert len(set(signed)) == 600
    fresh = _signer(_store(tmp_path, with_token=False), "execute-api", with_token=False)
    for n in (0, 299, 599):
        request = httpx.Request("GET", "https://api.example.com/x", headers={"X-N": str(n)})
        assert next(fresh.sync_auth_flow(request)).headers["authorization"] == signed[n]
    assert len(auth._layouts) <= 256


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/items/42?b=2&a=1",
        "http://10.0.0.7:8443/a%20b/c",
        "http://[::1]:9000/x",
        "https://api.example.com",
    ],
)
@pytest.mark.parametrize("service", ["execute-api", "s3"])
def test_the_gateways_own_requests_get_a_signed_host_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, service: str
) -> None:
    # The gateway's client sends an Outgoing without Host (aiohttp would add one): the
    # signer adds the Host it signs, which is the one botocore derives from the URL.
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *_, **__: INSTANT.replace(tzinfo=None)
    )
    store = _store(tmp_path, with_token=False)
    config = AwsSigV4Config(
        region="eu-central-1",
        service=service,
        access_key_id_file="aws/id",
        secret_access_key_file="aws/secret",
    )
    outgoing = Outgoing("GET", url, [("Accept", "application/json")], b"")
    AwsSigV4Auth(config, store, clock=INSTANT.timestamp).apply_now(outgoing)

    aws = botocore.awsrequest.AWSRequest(method="GET", url=url if "/" in url[8:] else url + "/")
    aws.headers["Accept"] = "application/json"
    aws.headers["X-Amz-Content-Sha256"] = botocore.auth.sha256(b"").hexdigest()
    signer_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    signer_class(
        botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), service, "eu-central-1"
    ).add_auth(aws)
    assert outgoing.header("Authorization") == aws.headers["Authorization"]
    assert outgoing.header("Host") == botocore.auth._host_from_url(url)
    assert "host;" in (outgoing.header("Authorization") or "")


def test_a_signed_requests_repr_shows_no_credential(tmp_path: Path) -> None:
    store = _store(tmp_path, with_token=True)
    config = AwsSigV4Config(
        region="eu-central-1",
        service="execute-api",
        access_key_id_file="aws/id",
        secret_access_key_file="aws/secret",
        session_token_file="aws/token",
    )
    outgoing = Outgoing("GET", "https://api.example.com/x?key=canary-query-key", [], b"")
    AwsSigV4Auth(config, store, clock=INSTANT.timestamp).apply_now(outgoing)
    shown = repr(outgoing)
    assert shown == "Outgoing(method='GET')"
    for secret in (TOKEN, ACCESS_KEY, "canary-query-key", "Signature="):
        assert secret not in shown


class _RotatingChain:
    """A refreshable default chain as botocore's: it hands out whatever keys it holds now,
    and counts how often it is asked."""

    def __init__(self) -> None:
        self.keys = botocore.credentials.ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, TOKEN)
        self.looks = 0

    def refresh_needed(self) -> bool:
        return False

    def get_frozen_credentials(self) -> Any:
        self.looks += 1
        return self.keys


async def test_the_default_chain_is_asked_once_a_second_and_its_new_keys_used_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = _RotatingChain()
    monkeypatch.setattr(botocore.session.Session, "get_credentials", lambda self: chain)
    now = [INSTANT.timestamp()]
    config = AwsSigV4Config(region="eu-central-1", service="execute-api")
    auth = AwsSigV4Auth(config, CredentialStore(tmp_path), clock=lambda: now[0])

    async def signed_by() -> str:
        outgoing = Outgoing("GET", "https://api.example.com/items/1", [], b"")
        await auth.apply(outgoing)
        credential = (outgoing.header("Authorization") or "").split("Credential=")[1]
        return credential.split("/")[0]

    assert [await signed_by() for _ in range(50)] == [ACCESS_KEY] * 50
    assert chain.looks == 1
    chain.keys = botocore.credentials.ReadOnlyCredentials("AKIDROTATED", "canary-sk-2", None)
    now[0] += 0.5  # the same second
    assert await signed_by() == ACCESS_KEY
    now[0] += 0.5  # the next one
    assert await signed_by() == "AKIDROTATED"
    assert chain.looks == 2
