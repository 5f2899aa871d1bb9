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
normalisation are imported, and a test signs the same requests with both). The signing key
is derived once per secret and UTC day, and what a request's method, origin and headers fix
in the canonical request is worked out once per distinct set of them (a tool sends the same
headers call after call): a call fills in path, query, time and payload hash, hashes, and
signs (about 7 us).

Credentials come from the mounted files, checked for changes once per turn of the event
loop (credentials.py), so that rotation needs no restart, or, when no key file is
configured, from botocore's default chain (environment, IRSA web identity, pod identity,
instance profile), resolved once, lazily, in a worker thread; refreshable credentials
refresh through `get_frozen_credentials`, in a worker thread when a refresh is due.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any, NamedTuple
from urllib.parse import quote

import botocore.auth  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import botocore.utils  # type: ignore[import-untyped]

from mcpgate.gateway.auth._common import cap_logger, header_safe
from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.config import AwsSigV4Config
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError

__all__ = ["AwsSigV4Auth"]

# Set by the signer; stale copies from an earlier attempt are removed before signing.
_SIGNING_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")
# Headers a proxy may change on the way, so botocore leaves them out of the signature.
_UNSIGNED_HEADERS = frozenset(botocore.auth.SIGNED_HEADERS_BLACKLIST)
# S3 signs the path as sent; every other service signs it dot-segment-normalised and
# percent-encoded once more (AWS SigV4: "each path segment URI-encoded twice").
_PATH_AS_SENT_SERVICES = frozenset({"s3", "s3-outposts", "s3express"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# A path of these characters only is the same encoded once more.
_UNRESERVED = re.compile(r"[A-Za-z0-9/._~-]*").fullmatch
# What changes from call to call in a canonical request: positional str.format fields.
_PATH, _QUERY, _DATE, _TOKEN, _PAYLOAD_HASH = "{0}", "{1}", "{2}", "{3}", "{4}"
# Header layouts kept per signer (one per tool and header set, as a rule).
_LAYOUTS_KEPT = 256
# How long an empty default chain is believed before it is asked again (IMDS lookups are slow).
_EMPTY_CHAIN_RETRY_SECONDS = 30.0


class _Moment(NamedTuple):
    """What one second fixes in a signature."""

    second: int
    stamp: str  # 20260304T050607Z
    scope: str  # 20260304/<region>/<service>/aws4_request
    to_sign: str  # the string to sign, up to the hash of the canonical request


class _Mac(NamedTuple):
    """HMAC-SHA256 with one key, its two padded key blocks hashed once (RFC 2104). Per
    message it copies two hash states: 0.7 us here, against 1.7 us for `hmac.digest`,
    which sets OpenSSL's MAC machinery up anew on every call."""

    inner: hashlib._Hash
    outer: hashlib._Hash

    @classmethod
    def of(cls, key: bytes) -> _Mac:
        block = key.ljust(64, b"\0")  # a SHA-256 block; SigV4 keys are 32 bytes
        return cls(
            hashlib.sha256(bytes(b ^ 0x36 for b in block)),
            hashlib.sha256(bytes(b ^ 0x5C for b in block)),
        )

    def hexdigest(self, message: bytes) -> str:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


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
        self._moment_seen = _Moment(-1, "", "", "")
        # (secret key, UTC date, HMAC with the signing key): changes only with either of them.
        self._signing_key: tuple[str, str, _Mac] | None = None
        # (method, origin, headers, with a token) -> what they fix in a signature
        self._layouts: dict[tuple[str, str, tuple[tuple[str, str], ...], bool], _Layout] = {}
        self._checked_keys: _Keys | None = None  # the last file keys found header-safe
        self._chain: Any = None  # botocore Credentials, once resolved
        self._chain_keys_seen: tuple[int, _Keys] | None = None  # (second, keys then)
        self._chain_checked_at: float | None = None
        self._chain_lock = threading.Lock()
        self._chain_values: tuple[str, ...] = ()  # the chain's keys last used
        cap_logger("botocore")  # it logs what the default chain resolves at DEBUG

    def __repr__(self) -> str:
        source = "files" if self._from_files else "default chain"
        return (
            f"AwsSigV4Auth(region={self._config.region!r}, service={self._config.service!r}, "
            f"credentials from {source})"
        )

    def apply_now(self, request: Outgoing) -> None:
        # A synchronous client: the default chain's first lookup blocks here.
        keys = self._file_keys() if self._from_files else self._seen(_frozen(self._resolve_chain()))
        self._sign(request, keys)

    async def apply(self, request: Outgoing) -> None:
        keys = self._file_keys() if self._from_files else self._seen(await self._chain_keys())
        self._sign(request, keys)

    def known_values(self) -> list[str]:
        return list(self._chain_values)

    def _seen(self, keys: _Keys) -> _Keys:
        """Keys of the default chain, remembered for the redactor (they are in no file)."""
        values = tuple(v for v in (keys.secret_key, keys.token, keys.access_key) if v)
        if values != self._chain_values:
            self._chain_values = values
        return keys

    async def _chain_keys(self) -> _Keys:
        # Looked up at most once a second: a refreshable chain (IRSA, pod identity, instance
        # profile) takes about 18 us per look, and botocore renews its keys 10 to 15 minutes
        # before they expire, so keys a second old are always still good.
        second = int(self._clock())
        seen = self._chain_keys_seen
        if seen is not None and seen[0] == second:
            return seen[1]
        keys = await self._look_up_chain()
        self._chain_keys_seen = (second, keys)
        return keys

    async def _look_up_chain(self) -> _Keys:
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
        read = self._credentials.read
        token_file = config.session_token_file
        keys = _Keys(
            read(config.access_key_id_file),
            read(config.secret_access_key_file),
            None if token_file is None else read(token_file),
        )
        if keys != self._checked_keys:  # the header values are checked once per change
            header_safe(keys.access_key, f"credential {config.access_key_id_file}")
            if keys.token is not None:
                header_safe(keys.token, f"credential {token_file}")
            self._checked_keys = keys
        return keys

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

    def _mac_for(self, secret_key: str, day: str) -> _Mac:
        cached = self._signing_key
        if cached is not None and cached[0] == secret_key and cached[1] == day:
            return cached[2]
        key = _hmac(f"AWS4{secret_key}".encode(), day)
        for part in (self._config.region, self._config.service, "aws4_request"):
            key = _hmac(key, part)
        mac = _Mac.of(key)
        self._signing_key = (secret_key, day, mac)
        return mac

    def _moment(self, now: float) -> _Moment:
        moment = self._moment_seen
        second = int(now)
        if second != moment.second:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            scope = stamp[:8] + self._scope_tail
            moment = _Moment(second, stamp, scope, f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n")
            self._moment_seen = moment
        return moment

    def _sign(self, request: Outgoing, keys: _Keys) -> None:
        now = self._clock()
        moment = self._moment(now)
        origin, path, query = _split(request.url)
        shape = (request.method, origin, tuple(request.headers), keys.token is not None)
        layout = self._layouts.get(shape)
        if layout is None:
            if len(self._layouts) >= _LAYOUTS_KEPT:  # headers filled from arguments vary
                self._layouts.clear()
            layout = self._layouts[shape] = _layout(*shape)
        payload_hash = hashlib.sha256(request.body).hexdigest() if request.body else _EMPTY_SHA256
        if not self._path_as_sent:
            if "//" in path or "/." in path:  # else normalising would change nothing
                path = botocore.utils.normalize_url_path(path)
            if not _UNRESERVED(path):
                path = quote(path, safe="/~")
        date = moment.stamp if layout.date_at < 0 else formatdate(moment.second)
        token = keys.token
        canonical = layout.canonical.format(  # _PATH, _QUERY, _DATE, _TOKEN, _PAYLOAD_HASH
            path,
            _canonical_query(query) if query else "",
            date,
            " ".join(token.split()) if token is not None else "",
            payload_hash,
        )
        to_sign = moment.to_sign + hashlib.sha256(canonical.encode()).hexdigest()
        signature = self._mac_for(keys.secret_key, moment.stamp[:8]).hexdigest(to_sign.encode())
        headers = list(layout.sent)
        if layout.date_at < 0:
            headers.append(("X-Amz-Date", date))
        else:
            headers[layout.date_at] = (headers[layout.date_at][0], date)
        if token is not None:
            headers.append(("X-Amz-Security-Token", token))
        headers.append(("X-Amz-Content-Sha256", payload_hash))
        headers.append(
            (
                "Authorization",
                f"AWS4-HMAC-SHA256 Credential={keys.access_key}/{moment.scope}, "
                f"SignedHeaders={layout.signed}, Signature={signature}",
            )
        )
        request.headers = headers


class _Layout(NamedTuple):
    """What a request's method, origin and headers fix in every signature of it."""

    sent: tuple[tuple[str, str], ...]  # its headers as sent: old signing ones out, Host in
    date_at: int  # where its Date header is in `sent` (the header then carries the time), or -1
    canonical: str  # the canonical request, with _PATH, _QUERY, ... to fill in (str.format)
    signed: str  # the signed header names


def _layout(
    method: str, origin: str, headers: tuple[tuple[str, str], ...], with_token: bool
) -> _Layout:
    """The request's headers as they will be sent (an earlier attempt's signing headers
    dropped; the signed Host header added unless it has one), and its canonical request
    with the parts that change from call to call left as fields."""
    sent: list[tuple[str, str]] = []
    date_at = -1
    hosted = False
    for name, value in headers:
        lower = name.lower()
        if lower in _SIGNING_HEADERS:
            continue
        if lower == "date":  # as botocore: a Date header carries the time instead
            date_at = len(sent)
        hosted = hosted or lower == "host"
        sent.append((name, value))
    if not hosted:
        sent.append(("Host", _host(origin)))
    fields = [(name, _literal(value)) for name, value in sent]
    if date_at < 0:
        fields.append(("X-Amz-Date", _DATE))
    else:
        fields[date_at] = (fields[date_at][0], _DATE)
    if with_token:
        fields.append(("X-Amz-Security-Token", _TOKEN))
    fields.append(("X-Amz-Content-Sha256", _PAYLOAD_HASH))
    block, signed = _canonical_headers(fields)
    canonical = "\n".join((_literal(method.upper()), _PATH, _QUERY, block, signed, _PAYLOAD_HASH))
    return _Layout(tuple(sent), date_at, canonical, signed)


def _canonical_query(query: str) -> str:
    """The query's pairs sorted, each as sent."""
    return "&".join(
        f"{key}={value}"
        for key, _, value in sorted(pair.partition("=") for pair in query.split("&"))
    )


def _canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The canonical header block and the signed header names: every header but the
    unsigned ones, names lower-cased and sorted, values' whitespace collapsed, repeats
    joined by commas."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        lower = name.lower()
        if lower not in _UNSIGNED_HEADERS:
            values.setdefault(lower, []).append(" ".join(value.split()))
    names = sorted(values)
    block = "".join(f"{name}:{','.join(values[name])}\n" for name in names)
    return block, ";".join(names)


def _split(url: str) -> tuple[str, str, str]:
    """(scheme://authority, path, query) of an absolute URL without a fragment; an empty
    path is sent as "/"."""
    start = url.find("://") + 3
    slash, mark = url.find("/", start), url.find("?", start)
    if slash < 0 or 0 <= mark < slash:
        slash = mark if mark >= 0 else len(url)
    path, _, query = url[slash:].partition("?")
    return url[:slash], path or "/", query


def _host(origin: str) -> str:
    """The Host header for `scheme://authority`: lower-cased, without a default port."""
    scheme, _, authority = origin.partition("://")
    authority = authority.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and authority.endswith(default):
        authority = authority.removesuffix(default)
    return authority


def _literal(text: str) -> str:
    """`text` as itself in a str.format template."""
    return text.replace("{", "{{").replace("}", "}}")


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
