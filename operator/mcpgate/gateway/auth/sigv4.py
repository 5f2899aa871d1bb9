"""AWS Signature Version 4, computed at send time by mcpgate's own signer.

Why at send time: a signature is bound to its timestamp (AWS accepts 15 minutes of skew)
and to the exact bytes sent, so every attempt, each retry included, is signed afresh; the
previous attempt's signing headers are dropped first.

What is signed: method, URL (path and query as they will be sent), every header except the
hop-by-hop ones botocore leaves out, and the SHA-256 of the body, which is also sent as
`X-Amz-Content-Sha256` (services such as S3 require it; the others ignore it).

Why not botocore's `SigV4Auth`: per request it builds an `AWSRequest` with an
`email.message`-based header store twice over, a `Credentials` object and a signer, and
derives the signing key with four HMACs: about 90 us, a third of a whole tool call. The
canonical form here is botocore's, to the byte (its header exclusions and path
normalisation are imported, and a test signs the same requests with both); the signing key
is derived once per secret and UTC day.

Credentials come from the mounted files, read on every request (a `stat` when nothing
changed) so that rotation needs no restart, or, when no key file is configured, from
botocore's default chain (environment, IRSA web identity, pod identity, instance profile),
resolved once, lazily, in a worker thread; refreshable credentials refresh through
`get_frozen_credentials`, in a worker thread when a refresh is due.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, NamedTuple
from urllib.parse import quote

import botocore.auth  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import botocore.utils  # type: ignore[import-untyped]

from mcpgate.gateway.auth._common import cap_logger, read_header_credential
from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.config import AwsSigV4Config
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError

__all__ = ["AwsSigV4Auth", "canonical_request"]

# Set by the signer; stale copies from an earlier attempt are removed before signing.
_SIGNING_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")
# Headers a proxy may change on the way, so botocore leaves them out of the signature.
_UNSIGNED_HEADERS = frozenset(botocore.auth.SIGNED_HEADERS_BLACKLIST)
# S3 signs the path as sent; every other service signs it dot-segment-normalised and
# percent-encoded once more (AWS SigV4: "each path segment URI-encoded twice").
_PATH_AS_SENT_SERVICES = frozenset({"s3", "s3-outposts", "s3express"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# How long an empty default chain is believed before it is asked again (IMDS lookups are slow).
_EMPTY_CHAIN_RETRY_SECONDS = 30.0


class _Keys(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class AwsSigV4Auth(OutboundAuth):
    """Signs each request for one region and service."""

    def __init__(
        self,
        config: AwsSigV4Config,
        credentials: CredentialStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from_files = config.access_key_id_file is not None
        if from_files != (config.secret_access_key_file is not None):
            raise ValueError("SigV4 needs both key files or neither (the default chain)")
        if not from_files and config.session_token_file is not None:
            raise ValueError("a SigV4 session token file needs the key files too")
        self._config = config
        self._credentials = credentials
        self._from_files = from_files
        self._clock = clock
        self._path_as_sent = config.service in _PATH_AS_SENT_SERVICES
        self._scope_tail = f"/{config.region}/{config.service}/aws4_request"
        self._stamped: tuple[int, str] = (-1, "")  # (second, its SigV4 timestamp)
        # (secret key, UTC date, signing key): the key changes only with either of them.
        self._signing_key: tuple[str, str, bytes] | None = None
        self._chain: Any = None  # botocore Credentials, once resolved
        self._chain_checked_at: float | None = None
        self._chain_lock = threading.Lock()
        cap_logger("botocore")  # it logs what the default chain resolves at DEBUG

    def __repr__(self) -> str:
        source = "files" if self._from_files else "default chain"
        return (
            f"AwsSigV4Auth(region={self._config.region!r}, service={self._config.service!r}, "
            f"credentials from {source})"
        )

    def apply_now(self, request: Outgoing) -> None:
        # A synchronous client: the default chain's first lookup blocks here.
        keys = self._file_keys() if self._from_files else _frozen(self._resolve_chain())
        self._sign(request, keys)

    async def apply(self, request: Outgoing) -> None:
        self._sign(request, await self._async_keys())

    async def _async_keys(self) -> _Keys:
        if self._from_files:
            return self._file_keys()
        chain = self._chain
        if chain is None:  # first use: botocore reads config files and may call IMDS
            chain = await asyncio.to_thread(self._resolve_chain)
        refresh_needed = getattr(chain, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(_frozen, chain)  # may call STS or IMDS
        return _frozen(chain)

    def _file_keys(self) -> _Keys:
        config = self._config
        assert config.access_key_id_file is not None
        assert config.secret_access_key_file is not None
        access_key = read_header_credential(self._credentials, config.access_key_id_file)
        secret_key = self._credentials.read(config.secret_access_key_file)
        token = None
        if config.session_token_file is not None:
            token = read_header_credential(self._credentials, config.session_token_file)
        return _Keys(access_key, secret_key, token)

    def _resolve_chain(self) -> Any:
        """botocore's default credentials, resolved once (blocking: call from a thread)."""
        with self._chain_lock:
            checked = self._chain_checked_at
            now = time.monotonic()
            if self._chain is None and (
                checked is None or now - checked >= _EMPTY_CHAIN_RETRY_SECONDS
            ):
                self._chain_checked_at = now
                try:
                    self._chain = botocore.session.Session().get_credentials()
                except botocore.exceptions.BotoCoreError as exc:
                    raise CredentialError(
                        f"the default AWS credential chain failed ({type(exc).__name__})"
                    ) from None
            chain = self._chain
        if chain is None:
            raise CredentialError("the default AWS credential chain found no credentials")
        return chain

    def _key_for(self, secret_key: str, date: str) -> bytes:
        cached = self._signing_key
        if cached is not None and cached[0] == secret_key and cached[1] == date:
            return cached[2]
        key = _hmac(f"AWS4{secret_key}".encode(), date)
        for part in (self._config.region, self._config.service, "aws4_request"):
            key = _hmac(key, part)
        self._signing_key = (secret_key, date, key)
        return key

    def _stamp(self, now: float) -> str:
        second = int(now)
        if second != self._stamped[0]:
            self._stamped = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
        return self._stamped[1]

    def _sign(self, request: Outgoing, keys: _Keys) -> None:
        now = self._clock()
        stamp = self._stamp(now)
        origin, path, query = _split(request.url)
        # One pass over the headers: an earlier attempt's signing headers go, the new ones
        # are added. The Host header is signed, so it is sent as signed (an httpx request
        # has one already; the gateway's own client would otherwise let aiohttp add it).
        headers: list[tuple[str, str]] = []
        dated = hosted = False
        for name, value in request.headers:
            lower = name.lower()
            if lower in _SIGNING_HEADERS:
                continue
            if lower == "date":  # as botocore: a Date header carries the time instead
                dated = True
                value = formatdate(int(now))
            hosted = hosted or lower == "host"
            headers.append((name, value))
        if not hosted:
            headers.append(("Host", _host(origin)))
        if not dated:
            headers.append(("X-Amz-Date", stamp))
        if keys.token is not None:
            headers.append(("X-Amz-Security-Token", keys.token))
        payload_hash = hashlib.sha256(request.body).hexdigest() if request.body else _EMPTY_SHA256
        headers.append(("X-Amz-Content-Sha256", payload_hash))
        if not self._path_as_sent:
            if "//" in path or "/." in path:  # else normalising would change nothing
                path = botocore.utils.normalize_url_path(path)
            path = quote(path, safe="/~")
        canonical, signed_headers = canonical_request(
            request.method, path, query, headers, payload_hash
        )
        date = stamp[:8]
        scope = date + self._scope_tail
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        signature = hmac.new(
            self._key_for(keys.secret_key, date), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers.append(
            (
                "Authorization",
                f"AWS4-HMAC-SHA256 Credential={keys.access_key}/{scope}, "
                f"SignedHeaders={signed_headers}, Signature={signature}",
            )
        )
        request.headers = headers


def canonical_request(
    method: str, path: str, query: str, headers: list[tuple[str, str]], payload_hash: str
) -> tuple[str, str]:
    """SigV4's canonical request, and its signed header list, for a request sent with this
    (already canonical) path and this query: byte for byte what botocore's signer builds.
    The query's pairs are sorted as sent; every header but the unsigned ones is signed,
    its values' whitespace collapsed and repeats joined by commas."""
    if query:
        query = "&".join(
            f"{key}={value}"
            for key, _, value in sorted(pair.partition("=") for pair in query.split("&"))
        )
    values: dict[str, list[str]] = {}
    for name, value in headers:
        lower = name.lower()
        if lower not in _UNSIGNED_HEADERS:
            values.setdefault(lower, []).append(" ".join(value.split()))
    names = sorted(values)
    canonical_headers = "".join(f"{name}:{','.join(values[name])}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join(
        (method.upper(), path, query, canonical_headers, signed_headers, payload_hash)
    )
    return canonical, signed_headers


def _split(url: str) -> tuple[str, str, str]:
    """(scheme://authority, path, query) of an absolute URL without a fragment; an empty
    path is sent as "/"."""
    scheme, _, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    path, _, query = rest[end:].partition("?")
    return f"{scheme}://{rest[:end]}", path or "/", query


def _host(origin: str) -> str:
    """The Host header for `scheme://authority`: lower-cased, without a default port."""
    scheme, _, authority = origin.partition("://")
    authority = authority.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and authority.endswith(default):
        authority = authority.removesuffix(default)
    return authority


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _frozen(chain: Any) -> _Keys:
    """One consistent (key, secret, token) triple; refreshes temporary credentials if due."""
    try:
        frozen = chain.get_frozen_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialError(
            f"refreshing AWS credentials from the default chain failed ({type(exc).__name__})"
        ) from None
    return _Keys(frozen.access_key, frozen.secret_key, frozen.token or None)
