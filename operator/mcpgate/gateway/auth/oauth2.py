"""OAuth2 client credentials (RFC 6749 section 4.4) with one token cache per gateway process.

Why it is built this way:

- Token endpoints rate-limit, and a cold gateway can get hundreds of calls at once, so a
  `TokenCache` allows one token request in flight per key (an `asyncio.Lock` per key and a
  re-check once it is held): 200 concurrent calls with an empty cache cost 1 token request.
- The key holds the token URL, client id, scopes, audience, extra form fields and an HMAC
  of the client secret under a per-process random key, never the secret itself. A rotated
  secret (read from its file on every call) therefore gets a fresh token of its own.
- Tokens are refreshed before they expire, by min(60 s, 10% of their lifetime), so a call
  does not leave with a token that dies on the way. Without `expires_in` a token lives 5
  minutes.
- A downstream 401 means the cached token may have been revoked: it is replaced once, and
  only if the rejected token is still the cached one (a concurrent call may have replaced
  it already), and the call is retried once, whatever its method. Never more.
- Errors name the token URL, the status and the OAuth `error` code, never the secret, the
  token or the response body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from base64 import b64encode
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote_plus

import httpx

from mcpgate.gateway.auth._common import header_safe
from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.config import OAuth2Config
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.destinations import refusal
from mcpgate.gateway.errors import CredentialError, TokenError

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "FORCED_REFRESH_INTERVAL",
    "IssuedToken",
    "OAuth2ClientCredentialsAuth",
    "TokenCache",
    "TokenKey",
]

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = 300.0
FORCED_REFRESH_INTERVAL = 10.0  # seconds between token replacements a 401 may force, per key
_MAX_SKEW = 60.0
_SKEW_FRACTION = 0.1
# RFC 6749 error codes are short ASCII words; anything else from the server is not repeated.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True, slots=True)
class TokenKey:
    """What makes two data sources share a token. `secret_digest` is an HMAC, not the secret."""

    token_url: str
    client_id: str
    secret_digest: str
    scopes: tuple[str, ...]
    audience: str | None
    extra_params: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token endpoint's answer: the token and its lifetime in seconds, if it gave one."""

    access_token: str = field(repr=False)
    expires_in: float | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    token: str = field(repr=False)
    refresh_at: float
    expires_at: float


FetchToken = Callable[[], Awaitable[IssuedToken]]


class TokenCache:
    """Access tokens shared by every data source of one gateway process.

    Its locks belong to the event loop that first waits on them: use one cache per loop.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        default_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        on_fetch: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._clock = clock
        self._on_fetch = on_fetch  # (token URL, succeeded): for metrics
        self._default_lifetime = default_lifetime
        self._hmac_key = secrets.token_bytes(32)
        self._entries: dict[TokenKey, _Entry] = {}
        self._locks: dict[TokenKey, asyncio.Lock] = {}
        self._forced: dict[TokenKey, float] = {}  # when a 401 last replaced the token

    def __repr__(self) -> str:
        return f"TokenCache({len(self._entries)} tokens)"

    def known_values(self) -> list[str]:
        """Every cached access token: for the redactor, which strips them from error texts."""
        return [entry.token for entry in self._entries.values()]

    def key(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: tuple[str, ...] = (),
        audience: str | None = None,
        extra_params: Mapping[str, str] | None = None,
    ) -> TokenKey:
        """The cache key for one client; the secret enters it only as an HMAC."""
        digest = hmac.new(self._hmac_key, client_secret.encode(), hashlib.sha256).hexdigest()
        return TokenKey(
            token_url=token_url,
            client_id=client_id,
            secret_digest=digest,
            scopes=tuple(sorted(set(scopes))),
            audience=audience,
            extra_params=tuple(sorted((extra_params or {}).items())),
        )

    async def get(self, key: TokenKey, fetch: FetchToken) -> str:
        """A fresh token for `key`, calling `fetch` only when none is cached and fresh, and
        only from one caller at a time."""
        seen = self._entries.get(key)
        if seen is not None and self._clock() < seen.refresh_at:
            return seen.token
        async with self._lock(key):
            current = self._entries.get(key)
            if current is not None:
                now = self._clock()
                if now < current.refresh_at or (current is not seen and now < current.expires_at):
                    return current.token  # fetched by another caller while this one waited
            return await self._fetch(key, fetch)

    async def replace(self, key: TokenKey, rejected: str, fetch: FetchToken) -> str:
        """The token to retry with after `rejected` got a 401: a new one if `rejected` is still
        the cached token, else the one another caller has already put in its place."""
        async with self._lock(key):
            current = self._entries.get(key)
            now = self._clock()
            if current is not None and now < current.expires_at:
                if not hmac.compare_digest(current.token.encode(), rejected.encode()):
                    return current.token
                # An API that answers 401 to every call must not make each call a token
                # request: callers would spend the identity provider's rate limit.
                forced = self._forced.get(key)
                if forced is not None and now - forced < FORCED_REFRESH_INTERVAL:
                    return current.token
            self._forced[key] = now
            self._entries.pop(key, None)
            return await self._fetch(key, fetch)

    def _lock(self, key: TokenKey) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _fetch(self, key: TokenKey, fetch: FetchToken) -> str:
        started = self._clock()  # lifetimes count from the request, not from its answer
        try:
            issued = await fetch()
        except BaseException:
            if self._on_fetch is not None:
                self._on_fetch(key.token_url, False)
            raise
        if self._on_fetch is not None:
            self._on_fetch(key.token_url, True)
        lifetime = issued.expires_in or self._default_lifetime
        skew = min(_MAX_SKEW, lifetime * _SKEW_FRACTION)
        entry = _Entry(issued.access_token, started + lifetime - skew, started + lifetime)
        self._entries[key] = entry
        self._prune(self._clock(), keep=key)
        return entry.token

    def _prune(self, now: float, keep: TokenKey) -> None:
        """Forget expired tokens (rotated secrets leave their old key behind) and idle locks."""
        for key, entry in list(self._entries.items()):
            if key != keep and entry.expires_at <= now:
                del self._entries[key]
        for key, lock in list(self._locks.items()):
            if key not in self._entries and not lock.locked():
                del self._locks[key]
        for key in [k for k in self._forced if k not in self._entries]:
            del self._forced[key]


class OAuth2ClientCredentialsAuth(OutboundAuth):
    """Sends `Authorization: Bearer <token>` with a token from the shared cache. Async only."""

    def __init__(
        self,
        config: OAuth2Config,
        credentials: CredentialStore,
        tokens: TokenCache,
        token_client: httpx.AsyncClient,
    ) -> None:
        if (config.client_id is None) == (config.client_id_file is None):
            raise ValueError("OAuth2 needs exactly one of client_id and client_id_file")
        self._config = config
        self._credentials = credentials
        self._tokens = tokens
        self._token_client = token_client
        # (client id, client secret, cache key): the key, an HMAC of the secret and sorted
        # scopes and parameters, is rebuilt only when a credential file changes.
        self._key: tuple[str, str, TokenKey] | None = None

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentialsAuth(token_url={self._config.token_url!r})"

    async def apply(self, request: Outgoing) -> None:
        key, fetch = self._client()
        request.set_header("Authorization", f"Bearer {await self._tokens.get(key, fetch)}")

    async def unauthorized(self, request: Outgoing) -> bool:
        """A 401: the token may have been revoked. Replace it (unless another call did
        already) and send the request once more."""
        logger.debug("downstream answered 401: retrying once with a replaced token")
        key, fetch = self._client()
        rejected = (request.header("Authorization") or "").removeprefix("Bearer ")
        token = await self._tokens.replace(key, rejected, fetch)
        request.set_header("Authorization", f"Bearer {token}")
        return True

    def _client(self) -> tuple[TokenKey, FetchToken]:
        client_id, client_secret = self._client_credentials()
        return (
            self._key_for(client_id, client_secret),
            partial(self._request_token, client_id, client_secret),
        )

    def _key_for(self, client_id: str, client_secret: str) -> TokenKey:
        cached = self._key
        if cached is not None and cached[0] == client_id and cached[1] == client_secret:
            return cached[2]
        config = self._config
        key = self._tokens.key(
            token_url=config.token_url,
            client_id=client_id,
            client_secret=client_secret,
            scopes=config.scopes,
            audience=config.audience,
            extra_params=config.extra_params,
        )
        self._key = (client_id, client_secret, key)
        return key

    def _client_credentials(self) -> tuple[str, str]:
        config = self._config
        if config.client_id_file is not None:
            client_id = self._credentials.read(config.client_id_file)
        else:
            client_id = config.client_id or ""
        return client_id, self._credentials.read(config.client_secret_file)

    async def _request_token(self, client_id: str, client_secret: str) -> IssuedToken:
        """One token request. Raises TokenError with a message safe to show anyone."""
        config = self._config
        url = config.token_url
        form = dict(config.extra_params)  # the protocol's own fields below win over extras
        form["grant_type"] = "client_credentials"
        if config.scopes:
            form["scope"] = " ".join(config.scopes)
        if config.audience:
            form["audience"] = config.audience
        headers = {"Accept": "application/json"}
        if config.client_authentication == "Basic":
            headers["Authorization"] = client_secret_basic(client_id, client_secret)
        else:
            form["client_id"] = client_id
            form["client_secret"] = client_secret
        try:
            response = await self._token_client.post(url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            # `from None`: the httpx exception holds the request, Basic credentials included.
            refused = refusal(exc)
            why = str(refused) if refused is not None else type(exc).__name__
            raise TokenError(f"token endpoint {url} could not be reached ({why})") from None
        status = response.status_code
        if not httpx.codes.is_success(status):
            code = _error_code(response, client_secret)
            raise TokenError(
                f"token endpoint {url} answered {status}" + (f" ({code})" if code else "")
            )
        body = _json_object(response)
        if body is None:
            raise TokenError(f"token endpoint {url} answered {status} with a non-JSON body")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError(f"token endpoint {url} answered {status} without an access_token")
        try:
            header_safe(token, "the access token")
        except CredentialError:
            raise TokenError(
                f"token endpoint {url} answered an access_token unusable in a header"
            ) from None
        lifetime = _lifetime(body.get("expires_in"))
        logger.debug("fetched an access token from %s (expires_in %s)", url, lifetime)
        return IssuedToken(token, lifetime)


def client_secret_basic(client_id: str, client_secret: str) -> str:
    """RFC 6749 section 2.3.1: each part form-urlencoded, then joined and base64-encoded."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(client_secret, safe='')}"
    return "Basic " + b64encode(pair.encode()).decode("ascii")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        return None
    return body if isinstance(body, dict) else None


def _error_code(response: httpx.Response, client_secret: str) -> str | None:
    """The OAuth `error` code of a failed answer, when it looks like one (and is not an echo
    of the secret); the description and the rest of the body are never repeated."""
    body = _json_object(response)
    code = body.get("error") if body is not None else None
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code) and client_secret not in code:
        return code
    return None


def _lifetime(value: object) -> float | None:
    """`expires_in` as positive seconds, or None when absent or unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None
