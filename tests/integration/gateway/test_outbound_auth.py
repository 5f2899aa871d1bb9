"""Outbound auth against real servers on loopback: a recording upstream, an OAuth2 token
server and moto checking SigV4 signatures.

Every credential is a distinctive canary; after each test no log record (at DEBUG) and no
exception message checked in the test holds one. Records of moto and werkzeug are left out:
they are the receiving server's logs, and the receiver is meant to see the credential.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import hashlib
import hmac
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from starlette.responses import JSONResponse

from mcpgate.gateway.auth import (
    ApiKeyAuth,
    AwsSigV4Auth,
    OAuth2ClientCredentialsAuth,
    TokenCache,
    build_auth,
)
from mcpgate.gateway.config import (
    ApiKeyConfig,
    AuthConfig,
    AwsSigV4Config,
    BasicConfig,
    BearerConfig,
    DataSourceConfig,
    OAuth2Config,
)
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError, UpstreamError

from support.paths import replace_file
from support.upstream import AwsKeys, MotoServer, RecordedRequest, RecordingUpstream, TokenServer

pytest_plugins = ["support.upstream"]

SERVER_LOGGERS = ("moto", "werkzeug")
_FORMATTER = logging.Formatter("%(name)s %(levelname)s %(message)s")


# --------------------------------------------------------------------------- helpers


class Credentials:
    """A credentials directory written the way kubelet does it, and the canaries in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = CredentialStore(root)
        self.canaries: set[str] = set()

    def write(self, relative: str, value: str, *, canary: bool = True) -> str:
        """Write atomically (a new file, then `os.replace`), as a Secret volume update is."""
        replace_file(self.root / relative, value)
        if canary and value.strip():
            self.canaries.add(value.strip())
        return relative

    def assert_clean(self, *texts: str | BaseException) -> None:
        """No canary in these texts; exceptions are checked with their whole chain."""
        for text in texts:
            if isinstance(text, BaseException):
                text = "".join(traceback.format_exception(text)) + repr(text)
            for canary in self.canaries:
                # As written, and as a URL or a form would carry it.
                for form in {canary, quote(canary, safe=""), quote(canary), quote_plus(canary)}:
                    assert form not in text


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def creds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Credentials]:
    caplog.set_level(logging.DEBUG)
    holder = Credentials(tmp_path / "credentials")
    yield holder
    records = caplog.get_records("setup") + caplog.get_records("call")
    for record in records:
        if record.name.startswith(SERVER_LOGGERS):
            continue
        holder.assert_clean(_FORMATTER.format(record), repr(record.args))


@pytest.fixture
def tokens() -> TokenCache:
    return TokenCache()


@pytest.fixture
async def token_client() -> Any:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def source(auth: AuthConfig, base_url: str = "http://127.0.0.1:1") -> DataSourceConfig:
    return DataSourceConfig(name="billing", base_url=base_url, auth=auth)


# Only OAuth2 sends token requests; the other methods get a client that is never opened.
_NO_TOKEN_CLIENT = httpx.AsyncClient()


def auth_of(
    creds: Credentials,
    config: AuthConfig | DataSourceConfig,
    tokens: TokenCache | None = None,
    token_client: httpx.AsyncClient | None = None,
) -> httpx.Auth:
    """build_auth for one data source (an AuthConfig gets a default one around it)."""
    data_source = config if isinstance(config, DataSourceConfig) else source(config)
    auth = build_auth(
        data_source,
        creds.store,
        TokenCache() if tokens is None else tokens,
        token_client or _NO_TOKEN_CLIENT,
    )
    assert auth is not None
    return auth


def client_for(auth: httpx.Auth | None) -> httpx.AsyncClient:
    assert auth is not None
    return httpx.AsyncClient(auth=auth, timeout=5, limits=httpx.Limits(max_connections=50))


def bearer_of(recorded: RecordedRequest) -> str:
    scheme, _, token = (recorded.header("authorization") or "").partition(" ")
    assert scheme == "Bearer"
    return token


# --------------------------------------------------------------------------- None, misconfig


def test_type_none_builds_no_auth(tokens: TokenCache, creds: Credentials) -> None:
    assert build_auth(source(AuthConfig()), creds.store, tokens, _NO_TOKEN_CLIENT) is None


def test_a_missing_block_is_a_configuration_error(tokens: TokenCache, creds: Credentials) -> None:
    with pytest.raises(ValueError, match="billing: auth type Bearer"):
        auth_of(creds, AuthConfig(type="Bearer"), tokens)


# --------------------------------------------------------------------------- API key


async def test_api_key_in_a_header_with_prefix(
    upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache
) -> None:
    key = creds.write("billing-creds/api-key", "canary-apikey-h7Qx2\n")
    config = ApiKeyConfig(name="X-Billing-Key", prefix="Token ", value_file=key)
    auth = auth_of(creds, AuthConfig(type="ApiKey", api_key=config), tokens)
    async with client_for(auth) as client:
        response = await client.get(upstream.url + "/items", params={"x": "1"})
    assert response.status_code == 200
    (seen,) = upstream.requests
    assert seen.header_values("x-billing-key") == ["Token canary-apikey-h7Qx2"]
    assert seen.header("authorization") is None
    assert seen.query == "x=1"


async def test_api_key_in_the_query_replaces_a_same_name_parameter(
    upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache
) -> None:
    key = creds.write("billing-creds/api-key", "canary-query key/7&=")
    config = ApiKeyConfig(location="Query", name="api_key", value_file=key)
    auth = auth_of(creds, AuthConfig(type="ApiKey", api_key=config), tokens)
    url = upstream.url + "/items?api_key=from-caller&a=b%2Fc&t=x%20y&api_key=again"
    async with client_for(auth) as client:
        response = await client.get(url)
    assert response.status_code == 200
    (seen,) = upstream.requests
    # The other parameters arrive byte for byte as the caller encoded them.
    assert seen.query == "a=b%2Fc&t=x%20y&api_key=canary-query%20key%2F7%26%3D"
    assert [v for k, v in seen.query_params() if k == "api_key"] == ["canary-query key/7&="]
    assert seen.header("x-api-key") is None


async def test_a_rotated_api_key_is_sent_on_the_next_request(
    upstream: RecordingUpstream, creds: Credentials
) -> None:
    key = creds.write("billing-creds/api-key", "canary-apikey-old")
    auth = ApiKeyAuth(ApiKeyConfig(value_file=key), creds.store)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/a")
        creds.write(key, "canary-apikey-new\n")
        await client.get(upstream.url + "/b")
    assert [r.header("x-api-key") for r in upstream.requests] == [
        "canary-apikey-old",
        "canary-apikey-new",
    ]


# --------------------------------------------------------------------------- Bearer, Basic


async def test_bearer(upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache) -> None:
    token = creds.write("billing-creds/token", "canary-bearer-Zk81")
    auth = auth_of(creds, AuthConfig(type="Bearer", bearer=BearerConfig(token_file=token)))
    async with client_for(auth) as client:
        await client.post(upstream.url + "/x", json={"a": 1})
        creds.write(token, "canary-bearer-rotated")
        await client.post(upstream.url + "/x", json={"a": 1})
    assert [r.header("authorization") for r in upstream.requests] == [
        "Bearer canary-bearer-Zk81",
        "Bearer canary-bearer-rotated",
    ]


def _basic_pair(recorded: RecordedRequest) -> str:
    scheme, _, encoded = (recorded.header("authorization") or "").partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode("utf-8")


async def test_basic_with_a_literal_username(
    upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache
) -> None:
    password = creds.write("billing-creds/password", "canary-pässwörd:with:colons\n")
    config = BasicConfig(username="svc-user", password_file=password)
    auth = auth_of(creds, AuthConfig(type="Basic", basic=config), tokens)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/")
    pair = "svc-user:canary-pässwörd:with:colons"
    assert _basic_pair(upstream.requests[0]) == pair
    creds.canaries.add(base64.b64encode(pair.encode()).decode())


async def test_basic_with_the_username_from_a_file(
    upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache
) -> None:
    user = creds.write("billing-creds/username", "canary-user-Ür")
    password = creds.write("billing-creds/password", "canary-password-9c")
    config = BasicConfig(username_file=user, password_file=password)
    auth = auth_of(creds, AuthConfig(type="Basic", basic=config), tokens)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/")
        creds.write(password, "canary-password-rotated")
        await client.get(upstream.url + "/")
    assert [_basic_pair(r) for r in upstream.requests] == [
        "canary-user-Ür:canary-password-9c",
        "canary-user-Ür:canary-password-rotated",
    ]


async def test_basic_refuses_a_username_with_a_colon(
    upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache
) -> None:
    user = creds.write("billing-creds/username", "canary-user:colon")
    password = creds.write("billing-creds/password", "canary-password-3d")
    config = BasicConfig(username_file=user, password_file=password)
    auth = auth_of(creds, AuthConfig(type="Basic", basic=config), tokens)
    async with client_for(auth) as client:
        with pytest.raises(CredentialError, match="billing-creds/username") as caught:
            await client.get(upstream.url + "/")
    creds.assert_clean(caught.value)
    assert upstream.requests == []


# --------------------------------------------------------------------------- credential files


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "is not mounted"),
        ("", "is empty"),
        ("\n", "is empty"),
        ("canary-injected\r\nX-Evil: 1", "cannot be sent in an HTTP header"),
        ("canary-trailing-space ", "cannot be sent in an HTTP header"),
    ],
)
async def test_an_unusable_credential_file_names_the_file_not_the_value(
    upstream: RecordingUpstream, creds: Credentials, content: str | None, reason: str
) -> None:
    path = "billing-creds/token"
    if content is not None:
        creds.write(path, content)
        creds.canaries.add("canary-injected")
    auth = auth_of(creds, AuthConfig(type="Bearer", bearer=BearerConfig(token_file=path)))
    async with client_for(auth) as client:
        with pytest.raises(CredentialError) as caught:
            await client.get(upstream.url + "/")
    assert f"credential {path} {reason}" in str(caught.value)
    creds.assert_clean(caught.value)
    assert upstream.requests == []


# --------------------------------------------------------------------------- OAuth2


def oauth2_source(server: TokenServer, secret_file: str, **overrides: Any) -> DataSourceConfig:
    fields: dict[str, Any] = {
        "token_url": server.url,
        "client_id": server.client_id,
        "client_secret_file": secret_file,
        "scopes": server.scopes,
        "audience": server.audience,
        "client_authentication": server.client_authentication,
        "extra_params": server.extra_params,
        **overrides,
    }
    return source(AuthConfig(type="OAuth2ClientCredentials", oauth2=OAuth2Config(**fields)))


@pytest.mark.parametrize("method", ["Basic", "Body"])
async def test_oauth2_client_authentication_scopes_and_audience(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
    method: Any,
) -> None:
    secret = "canary-client-secret:+/=&é"
    secret_file = creds.write("billing-creds/client-secret", secret + "\n")
    server = TokenServer(
        upstream,
        client_id="my client/1",
        client_secret=secret,
        client_authentication=method,
        scopes=("billing.read", "billing.write"),
        audience="https://billing.example.com",
        extra_params={"resource": "https://billing.example.com/api"},
    )
    upstream.set_handler(server.protected())
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        first = await client.get(upstream.url + "/invoices/1")
        second = await client.delete(upstream.url + "/invoices/2")
    assert (first.status_code, second.status_code) == (200, 200)
    assert server.rejections == []
    assert server.count == 1
    (token_request,) = upstream.requests_to(server.path)
    form = token_request.form()
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "billing.read billing.write"
    if method == "Basic":
        expected = base64.b64encode(b"my+client%2F1:" + quote(secret, safe="").encode())
        assert token_request.header("authorization") == "Basic " + expected.decode()
        assert "client_id" not in form
    downstream = upstream.requests_to("/invoices/1") + upstream.requests_to("/invoices/2")
    assert [bearer_of(r) for r in downstream] == [server.issued[0]] * 2


async def test_oauth2_client_id_from_a_file(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="canary-client-id-f1", client_secret="canary-cs-f1")
    upstream.set_handler(server.protected())
    id_file = creds.write("billing-creds/client-id", "canary-client-id-f1\n")
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-f1")
    config = oauth2_source(server, secret_file, client_id=None, client_id_file=id_file)
    async with client_for(build_auth(config, creds.store, tokens, token_client)) as client:
        assert (await client.get(upstream.url + "/x")).status_code == 200
    assert server.rejections == []


async def test_200_concurrent_calls_on_a_cold_cache_make_one_token_request(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-cold", delay=0.05)
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-cold")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        answers = await asyncio.gather(
            *(client.get(f"{upstream.url}/items/{i}") for i in range(200))
        )
    assert {a.status_code for a in answers} == {200}
    assert server.count == 1
    assert len(tokens.known_values()) == 1


async def test_an_expiring_token_is_refreshed_before_it_expires(
    upstream: RecordingUpstream, creds: Credentials, token_client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    tokens = TokenCache(clock=clock)
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-exp", expires_in=100)
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-exp")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/x")
        clock.now += 89  # skew: min(60, 10% of 100 s) = 10 s, so refresh from 90 s on
        await client.get(upstream.url + "/x")
        assert server.count == 1
        clock.now += 2
        await client.get(upstream.url + "/x")
    assert server.count == 2
    assert [bearer_of(r) for r in upstream.requests_to("/x")] == [
        server.issued[0],
        server.issued[0],
        server.issued[1],
    ]


async def test_a_short_lived_token_is_refreshed_in_real_time(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-short", expires_in=0.3)
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-short")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/x")
        await asyncio.sleep(0.35)
        await client.get(upstream.url + "/x")
    assert server.count == 2


async def test_without_expires_in_a_token_lives_five_minutes(
    upstream: RecordingUpstream, creds: Credentials, token_client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    tokens = TokenCache(clock=clock)
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-300", expires_in=None)
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-300")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        assert (await client.get(upstream.url + "/x")).status_code == 200
        clock.now += 269  # 300 s minus a skew of min(60 s, 10% of 300 s)
        await client.get(upstream.url + "/x")
        assert server.count == 1
        clock.now += 2
        await client.get(upstream.url + "/x")
    assert server.count == 2


async def test_a_downstream_401_refreshes_once_and_retries_once_not_a_loop(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-401")
    upstream.set_handler(lambda _: JSONResponse({"error": "nope"}, status_code=401))
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-401")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        response = await client.get(upstream.url + "/always-401")
    assert response.status_code == 401
    downstream = upstream.requests_to("/always-401")
    assert len(downstream) == 2
    assert server.count == 2
    assert [bearer_of(r) for r in downstream] == server.issued


async def test_calls_answered_401_force_at_most_one_token_request_per_10_s(
    upstream: RecordingUpstream, creds: Credentials, token_client: httpx.AsyncClient
) -> None:
    """Issue #15: any caller reaching a path that answers 401 made the gateway ask the
    token endpoint once per call, spending the identity provider's rate limit."""
    clock = FakeClock()
    tokens = TokenCache(clock=clock)
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-storm")
    upstream.set_handler(lambda _: JSONResponse({"error": "nope"}, status_code=401))
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-storm")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        for _ in range(30):
            assert (await client.get(upstream.url + "/always-401")).status_code == 401
        assert server.count == 2  # the first token, and one forced replacement
        assert len(upstream.requests_to("/always-401")) == 60  # each call still retried once
        clock.now += 9.9
        await client.get(upstream.url + "/always-401")
        assert server.count == 2
        clock.now += 0.2  # 10 s after the forced replacement: one more is allowed
        await client.get(upstream.url + "/always-401")
        await client.get(upstream.url + "/always-401")
    assert server.count == 3


async def test_a_revoked_token_is_replaced_and_the_post_retried_with_its_body(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-revoke")
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-revoke")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/warm")
        server.revoke()
        response = await client.post(upstream.url + "/invoices", json={"amount": 12})
    assert response.status_code == 200
    posts = upstream.requests_to("/invoices")
    assert [r.json() for r in posts] == [{"amount": 12}] * 2
    assert [bearer_of(r) for r in posts] == server.issued


async def test_concurrent_401s_replace_the_token_once(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-many", delay=0.02)
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-many")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/warm")
        server.revoke()
        answers = await asyncio.gather(*(client.get(f"{upstream.url}/x") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    assert server.count == 2  # the rejected token was replaced by the first caller only
    assert len(upstream.requests_to("/x")) == 40


async def test_a_rotated_client_secret_gets_a_token_of_its_own(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-before")
    upstream.set_handler(server.protected())
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-before")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        await client.get(upstream.url + "/x")
        server.client_secret = "canary-cs-after"
        creds.write(secret_file, "canary-cs-after\n")
        assert (await client.get(upstream.url + "/x")).status_code == 200
    assert server.count == 2
    assert server.rejections == []
    key = tokens.key(token_url=server.url, client_id="c", client_secret="canary-cs-after")
    creds.assert_clean(repr(tokens), repr(key), str(dataclasses.astuple(key)))


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("500", "answered 500 (server_error)"),
        ("malformed", "answered 200 with a non-JSON body"),
        ("missing_token", "answered 200 without an access_token"),
        ("echo_secret", "answered 401 (invalid_client)"),
    ],
)
async def test_token_endpoint_failures_are_upstream_errors_without_secrets(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
    failure: Any,
    message: str,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-fail")
    server.failure = failure
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-fail")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get(upstream.url + "/x")
    assert str(caught.value) == f"token endpoint {server.url} {message}"
    creds.assert_clean(caught.value)
    assert upstream.requests_to("/x") == []


async def test_a_wrong_client_secret_is_reported_by_its_oauth_error_code(
    upstream: RecordingUpstream,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    server = TokenServer(upstream, client_id="c", client_secret="canary-cs-right")
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-wrong")
    auth = build_auth(oauth2_source(server, secret_file), creds.store, tokens, token_client)
    async with client_for(auth) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get(upstream.url + "/x")
    assert str(caught.value) == f"token endpoint {server.url} answered 401 (invalid_client)"
    creds.assert_clean(caught.value)


async def test_an_unreachable_token_endpoint(
    refused_url: str,
    creds: Credentials,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> None:
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-down")
    config = OAuth2Config(
        token_url=refused_url + "/oauth2/token", client_id="c", client_secret_file=secret_file
    )
    auth = build_auth(
        source(AuthConfig(type="OAuth2ClientCredentials", oauth2=config)),
        creds.store,
        tokens,
        token_client,
    )
    async with client_for(auth) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get(refused_url + "/x")
    assert str(caught.value) == (
        f"token endpoint {refused_url}/oauth2/token could not be reached (ConnectError)"
    )
    creds.assert_clean(caught.value)
    assert caught.value.__cause__ is None


def test_oauth2_refuses_a_sync_client(creds: Credentials, tokens: TokenCache) -> None:
    secret_file = creds.write("billing-creds/client-secret", "canary-cs-sync")
    config = OAuth2Config(
        token_url="http://127.0.0.1:1/t", client_id="c", client_secret_file=secret_file
    )
    auth = OAuth2ClientCredentialsAuth(config, creds.store, tokens, _NO_TOKEN_CLIENT)
    with httpx.Client(auth=auth) as client, pytest.raises(RuntimeError, match="AsyncClient"):
        client.get("http://127.0.0.1:1/x")


# --------------------------------------------------------------------------- SigV4

LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
}


def sigv4_source(
    creds: Credentials,
    keys: AwsKeys | None,
    *,
    with_token: bool = True,
    region: str = "eu-west-1",
    service: str = "dynamodb",
) -> DataSourceConfig:
    config: dict[str, Any] = {"region": region, "service": service}
    if keys is not None:
        config["access_key_id_file"] = creds.write("aws/AWS_ACCESS_KEY_ID", keys.access_key_id)
        config["secret_access_key_file"] = creds.write(
            "aws/AWS_SECRET_ACCESS_KEY", keys.secret_access_key
        )
        if with_token and keys.session_token:
            config["session_token_file"] = creds.write("aws/AWS_SESSION_TOKEN", keys.session_token)
    return source(AuthConfig(type="AwsSigV4", aws_sig_v4=AwsSigV4Config(**config)))


async def list_tables(auth: httpx.Auth | None, url: str) -> httpx.Response:
    async with client_for(auth) as client:
        return await client.post(url + "/", headers=LIST_TABLES, content=b"{}")


async def test_sigv4_signed_request_is_accepted_by_moto(
    moto_server: MotoServer, creds: Credentials, tokens: TokenCache
) -> None:
    config = sigv4_source(creds, moto_server.user_keys)
    auth = auth_of(creds, config)
    response = await list_tables(auth, moto_server.url)
    assert response.status_code == 200, response.text
    assert response.json() == {"TableNames": []}


async def test_sigv4_with_a_wrong_secret_is_rejected_by_moto(
    moto_server: MotoServer, creds: Credentials, tokens: TokenCache
) -> None:
    wrong = AwsKeys(moto_server.user_keys.access_key_id, "canary-wrong-sk")
    auth = auth_of(creds, sigv4_source(creds, wrong))
    response = await list_tables(auth, moto_server.url)
    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text


async def test_sigv4_sends_the_session_token_of_temporary_credentials(
    moto_server: MotoServer, creds: Credentials, tokens: TokenCache
) -> None:
    role = moto_server.role_keys
    auth = auth_of(creds, sigv4_source(creds, role))
    response = await list_tables(auth, moto_server.url)
    assert response.status_code == 200, response.text
    # The same keys without their session token are refused: moto checked the token.
    bare = auth_of(creds, sigv4_source(creds, role, with_token=False))
    response = await list_tables(bare, moto_server.url)
    assert response.status_code == 403
    assert "InvalidClientTokenId" in response.text


async def test_sigv4_resigns_a_resent_request(
    moto_server: MotoServer, creds: Credentials, tokens: TokenCache
) -> None:
    config = sigv4_source(creds, moto_server.role_keys)
    auth = auth_of(creds, config)
    async with client_for(auth) as client:
        request = client.build_request(
            "POST", moto_server.url + "/", headers=LIST_TABLES, content=b"{}"
        )
        first = await client.send(request)
        stamp = request.headers["X-Amz-Date"]
        second = await client.send(request)  # what a retry of the same request does
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert request.headers.get_list("Authorization")[0].startswith("AWS4-HMAC-SHA256 ")
    assert len(request.headers.get_list("Authorization")) == 1
    assert len(request.headers.get_list("X-Amz-Date")) == 1
    assert request.headers["X-Amz-Date"] >= stamp


async def test_sigv4_from_the_default_credential_chain(
    moto_server: MotoServer,
    creds: Credentials,
    tokens: TokenCache,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    keys = moto_server.user_keys
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_access_key)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds.canaries.add(keys.secret_access_key)
    auth = auth_of(creds, sigv4_source(creds, None))
    assert "default chain" in repr(auth)
    response = await list_tables(auth, moto_server.url)
    assert response.status_code == 200, response.text


async def test_sigv4_headers_as_an_upstream_sees_them(
    upstream: RecordingUpstream, creds: Credentials, tokens: TokenCache
) -> None:
    keys = AwsKeys("AKIDCANARY0001", "canary-sk-upstream", "canary-session-token-7")
    auth = auth_of(creds, sigv4_source(creds, keys, service="execute-api"), tokens)
    body = b'{"note": "payload"}'
    async with client_for(auth) as client:
        await client.put(upstream.url + "/items/1?b=2&a=1", content=body)
    (seen,) = upstream.requests
    assert seen.header("x-amz-content-sha256") == hashlib.sha256(body).hexdigest()
    assert seen.header("x-amz-security-token") == "canary-session-token-7"
    authorization = seen.header("authorization") or ""
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDCANARY0001/")
    assert "/eu-west-1/execute-api/aws4_request, SignedHeaders=" in authorization
    assert seen.body == body
    # The session token and secret key never reached a log record (botocore logs its
    # canonical request at DEBUG; build_auth caps that logger).


def _independent_sigv4(
    request: httpx.Request, secret_key: str, stamp: str, region: str, service: str
) -> tuple[str, str]:
    """SignedHeaders and signature computed by hand from the AWS SigV4 specification."""
    names = sorted(
        {k.lower() for k in request.headers} - {"authorization", "user-agent", "connection"}
    )
    canonical_headers = "".join(f"{n}:{' '.join(request.headers[n].split())}\n" for n in names)
    query = "&".join(sorted(request.url.query.decode().split("&"))) if request.url.query else ""
    path = quote(request.url.raw_path.split(b"?")[0].decode(), safe="/~")
    canonical = "\n".join(
        [
            request.method,
            path,
            query,
            canonical_headers,
            ";".join(names),
            request.headers["x-amz-content-sha256"],
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return ";".join(names), hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# 2026-01-02T03:04:05Z, as the signer's clock (seconds since the epoch) and as SigV4 spells it.
FIXED_AWS_TIME = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC).timestamp()
FIXED_AWS_STAMP = "20260102T030405Z"


@pytest.mark.parametrize("flow", ["sync", "async"])
async def test_sigv4_is_deterministic_with_a_fixed_clock(creds: Credentials, flow: str) -> None:
    keys = AwsKeys("AKIDEXAMPLE", "canary-sk-fixed/K7MDENG", "canary-st-fixed")
    config = sigv4_source(creds, keys)
    assert config.auth.aws_sig_v4 is not None
    auth = AwsSigV4Auth(config.auth.aws_sig_v4, creds.store, clock=lambda: FIXED_AWS_TIME)
    request = httpx.Request(
        "POST",
        "https://dynamodb.eu-west-1.amazonaws.com/tables/a%20b?z=1&a=x%2Fy",
        headers={**LIST_TABLES, "X-Amz-Date": "stale", "Authorization": "stale"},
        content=b"{}",
    )
    if flow == "sync":
        signed = next(auth.sync_auth_flow(request))
    else:
        signed = await auth.async_auth_flow(request).__anext__()
    assert signed.headers["X-Amz-Date"] == FIXED_AWS_STAMP
    assert signed.headers["X-Amz-Content-Sha256"] == hashlib.sha256(b"{}").hexdigest()
    assert signed.headers["X-Amz-Security-Token"] == "canary-st-fixed"
    credential, signed_headers, signature = signed.headers["Authorization"].split(", ")
    assert credential == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/eu-west-1/dynamodb/aws4_request"
    )
    assert signed_headers == (
        "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-security-token;x-amz-target"
    )
    expected_headers, expected_signature = _independent_sigv4(
        signed, "canary-sk-fixed/K7MDENG", FIXED_AWS_STAMP, "eu-west-1", "dynamodb"
    )
    assert signed_headers == f"SignedHeaders={expected_headers}"
    assert signature == f"Signature={expected_signature}"


def test_sigv4_needs_both_key_files_or_neither(creds: Credentials) -> None:
    config = AwsSigV4Config(region="eu-west-1", service="s3", access_key_id_file="aws/id")
    with pytest.raises(ValueError, match="both key files or neither"):
        AwsSigV4Auth(config, creds.store)
