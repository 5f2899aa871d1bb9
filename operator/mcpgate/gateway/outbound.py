"""Calling one data source: its pooled client, retries, deadline and size cap.

Every failure leaves as a `GatewayError` whose message says the cause and whose
`data_source` names this data source; a failed status is an answer, not an error (the
caller turns it into a tool error with an excerpt of the body).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import httpx

from mcpgate.gateway.auth import Outgoing, TokenCache, build_auth
from mcpgate.gateway.auth.base import header_text
from mcpgate.gateway.config import DataSourceConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.destinations import DestinationNotAllowed, Destinations
from mcpgate.gateway.errors import GatewayError, SendError, UpstreamError
from mcpgate.gateway.templates import PreparedRequest
from mcpgate.gateway.transport import Pool, send_error

__all__ = ["DataSourceClient", "UpstreamResponse"]

_RETRIED_METHODS = frozenset({"GET", "PUT", "DELETE"})
_RETRIED_STATUSES = frozenset({429, 502, 503})
_MAX_ATTEMPTS = 4
_BACKOFF_BASE = 0.1  # seconds; doubles each attempt, full jitter
_RETRY_AFTER_CAP = 30.0  # seconds: never wait longer than this for a Retry-After
_POOL_LIMIT = 100  # connections per data source: one slow API cannot take them all
# Sent unless a tool sets its own; only the encodings _read_capped decodes, step by step.
_DEFAULT_HEADERS = (("User-Agent", "mcpgate"), ("Accept-Encoding", "gzip, deflate"))


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    content_type: str
    body: bytes
    retry_after: float | None = None  # seconds, from a Retry-After header


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class DataSourceClient:
    """The pooled client of one data source. Built once per gateway, never per call."""

    def __init__(
        self,
        config: DataSourceConfig,
        credentials: CredentialStore,
        tokens: TokenCache,
        token_client: httpx.AsyncClient,
        *,
        max_response_bytes: int,
        destinations: Destinations,
    ) -> None:
        self.name = config.name
        self.config = config
        self._credentials = credentials
        self._max_bytes = max_response_bytes
        self._ssl_cache: tuple[str | None, ssl.SSLContext | bool] | None = None
        self._auth = build_auth(config, credentials, tokens, token_client)
        self._pool = Pool(
            ssl_context=self._ssl_context,
            limit=_POOL_LIMIT,
            timeout_seconds=config.timeout_seconds,
            destinations=destinations,
        )

    def _ssl_context(self) -> ssl.SSLContext | bool:
        tls = self.config.tls
        if tls.insecure_skip_verify:
            return False
        ca = self._credentials.read(tls.ca_file) if tls.ca_file else None
        if self._ssl_cache is None or self._ssl_cache[0] != ca:
            context = ssl.create_default_context()
            if ca is not None:
                context = ssl.create_default_context(cadata=ca)
            self._ssl_cache = (ca, context)
        return self._ssl_cache[1]

    def known_values(self) -> list[str]:
        """Credential values of this data source's auth that live outside the credential
        files and the token cache (for the redactor)."""
        return [] if self._auth is None else self._auth.known_values()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def call(
        self, prepared: PreparedRequest, *, forwarded_authorization: str | None = None
    ) -> UpstreamResponse:
        """Send the request (retrying where safe) within the data source's timeout.
        Raises GatewayError with `data_source` set to this data source."""
        deadline = time.monotonic() + self.config.timeout_seconds
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                return await self._attempts(prepared, forwarded_authorization, deadline)
        except TimeoutError:
            raise UpstreamError(
                f"no answer within {self.config.timeout_seconds:g} s", data_source=self.name
            ) from None
        except GatewayError as err:  # ours, or from an auth flow: a token endpoint, a file
            err.data_source = self.name
            raise

    async def _attempts(
        self, prepared: PreparedRequest, authorization: str | None, deadline: float
    ) -> UpstreamResponse:
        retry = prepared.method in _RETRIED_METHODS
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            answer: UpstreamResponse | None = None
            try:
                answer = await self._once(prepared, authorization)
            except SendError as err:
                cause = str(err)
                final = err.read_timeout or isinstance(err, DestinationNotAllowed)
                if not retry or attempt >= _MAX_ATTEMPTS or final:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise UpstreamError(f"{cause}{tries}") from None
            else:
                if not (retry and answer.status in _RETRIED_STATUSES):
                    return answer
                if attempt >= _MAX_ATTEMPTS:
                    return answer
                wait = answer.retry_after
            backoff = random.uniform(0, _BACKOFF_BASE * 2 ** (attempt - 1))  # noqa: S311
            delay = min(wait if wait is not None else backoff, _RETRY_AFTER_CAP)
            if time.monotonic() + delay >= deadline:
                if answer is not None:  # no time left for another try: its last answer
                    return answer
                raise UpstreamError(
                    f"{cause} (no time left to retry within {self.config.timeout_seconds:g} s)"
                )
            await asyncio.sleep(delay)

    async def _once(self, prepared: PreparedRequest, authorization: str | None) -> UpstreamResponse:
        headers = prepared.headers
        named = {name.lower() for name, _ in headers}
        headers = [h for h in _DEFAULT_HEADERS if h[0].lower() not in named] + headers
        if authorization is not None:  # the caller's bytes (read as Latin-1), sent back as such
            headers.append(("Authorization", header_text(authorization.encode("latin-1"))))
        request = Outgoing(prepared.method, prepared.url, headers, prepared.body or b"")
        auth = self._auth
        if auth is None:
            return await self._send(request)
        await auth.apply(request)
        answer = await self._send(request)
        if answer.status == 401 and await auth.unauthorized(request):
            answer = await self._send(request)
        return answer

    async def _send(self, request: Outgoing) -> UpstreamResponse:
        async with self._pool.send(request) as response:
            headers = response.headers
            return UpstreamResponse(
                response.status,
                headers.get("Content-Type", ""),
                await self._read_capped(response),
                _retry_after(headers),
            )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """The decoded body, refused as soon as it passes the cap. Decoding runs here in
        bounded steps (never more than the cap at once), so a small gzip bomb cannot
        expand in memory or stall the event loop."""
        status = response.status
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large(status)
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        decoder = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib, by its header
        elif encoding not in ("", "identity"):
            raise UpstreamError(f"unsupported Content-Encoding {encoding[:40]!r}", status=status)
        body = bytearray()
        try:
            while data := await response.content.readany():
                while data:
                    if decoder is None:
                        piece, data = data, b""
                    else:
                        piece = decoder.decompress(data, self._max_bytes - len(body) + 1)
                        data = decoder.unconsumed_tail
                    body += piece
                    if len(body) > self._max_bytes:
                        raise self._too_large(status)
            if decoder is not None:
                body += decoder.flush()
        except zlib.error:
            raise UpstreamError("the body could not be decoded", status=status) from None
        except (TimeoutError, aiohttp.ClientError) as err:
            raise send_error(err) from None
        if len(body) > self._max_bytes:
            raise self._too_large(status)
        return bytes(body)

    def _too_large(self, status: int) -> UpstreamError:
        return UpstreamError(
            f"the response is larger than the {self._max_bytes // 1024} KiB limit", status=status
        )
