"""The outbound HTTP transport: httpx's API over an aiohttp connection pool.

Measured here (DESIGN.md), httpx's own transport degrades as concurrency grows
while aiohttp's pool does not; httpx keeps what we want from it (`httpx.Auth`
flows, URL and header handling, content decoding). One transport, hence one
pool, per data source: a slow API fills only its own pool.

Deliberate choices: redirects are never followed (a 3xx goes back to the
caller as it is), no cookie jar exists at this level or in the httpx client
(`NoCookies`), and bodies stay encoded here so that httpx decodes them and the
size cap applies to what the caller would read.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from http.cookiejar import Cookie, CookieJar
from typing import Any

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport", "NoCookies"]


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing: no caller's cookies reach another caller."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None


def _map_error(err: BaseException, request: httpx.Request) -> httpx.HTTPError:
    """aiohttp's exceptions as the httpx ones the rest of the gateway understands."""
    if isinstance(err, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return httpx.ConnectError(
            f"TLS handshake failed: {err.__class__.__name__}", request=request
        )
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return httpx.ConnectError("name resolution failed", request=request)
    if isinstance(err, aiohttp.ClientConnectorError):
        return httpx.ConnectError("connection failed", request=request)
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout("connect timed out", request=request)
    if isinstance(err, aiohttp.SocketTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout("read timed out", request=request)
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("server disconnected", request=request)
    if isinstance(err, aiohttp.ClientPayloadError):
        return httpx.ReadError("connection broken while reading the body", request=request)
    return httpx.NetworkError(f"{err.__class__.__name__}", request=request)


def _text(value: bytes) -> str:
    """A header value for aiohttp, which writes header strings as UTF-8: our templates'
    values are UTF-8 already; other bytes (a caller's Latin-1 token) pass as Latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as err:
            raise _map_error(err, self._request) from None

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One connection pool (at most `limit` connections) for one data source."""

    def __init__(self, *, ssl_context: Callable[[], ssl.SSLContext | bool], limit: int) -> None:
        self._ssl_context = ssl_context
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | bool | None = None
        # One ClientTimeout per distinct httpx timeout (a data source has one): building it
        # per request showed in the profile.
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _current_session(self) -> aiohttp.ClientSession:
        wanted = self._ssl_context()  # cheap; a new object only when the CA file changed
        if self._session is None or wanted is not self._ssl:
            old = self._session
            self._ssl = wanted
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, ssl=wanted, enable_cleanup_closed=True
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
            # aiohttp resends an idempotent request once when a reused connection turns out
            # closed; the gateway's own retries cover that, and the attempts it counts (and
            # documents) would double. (A private switch: aiohttp has no public one.)
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
            if old is not None:  # let requests in flight on the old pool finish
                asyncio.get_running_loop().call_later(60, asyncio.ensure_future, old.close())
        return self._session

    def _timeout(self, httpx_timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        parts = (httpx_timeout.get("connect"), httpx_timeout.get("read"), httpx_timeout.get("pool"))
        timeout = self._timeouts.get(parts)
        if timeout is None:
            connect, read, pool = parts
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=connect, sock_read=read, connect=pool
            )
            if len(self._timeouts) < 16:  # per-request timeouts would otherwise grow it
                self._timeouts[parts] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._current_session()
        timeout = self._timeout(request.extensions.get("timeout", {}))
        try:
            response = await session.request(
                request.method,
                # As built: yarl would re-normalise the encoding (%3A -> :), which changes
                # what a SigV4 signature covers and what the API sees.
                URL(str(request.url), encoded=True),
                headers=[(k.decode("latin-1"), _text(v)) for k, v in request.headers.raw],
                data=request.content or None,
                allow_redirects=False,
                timeout=timeout,
            )
        except (TimeoutError, aiohttp.ClientError) as err:
            raise _map_error(err, request) from None
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
