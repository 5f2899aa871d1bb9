"""The outbound connection pool of one data source: aiohttp, driven directly.

Measured here (DESIGN.md, docs/performance.md), httpx's own transport degrades as
concurrency grows while aiohttp's pool does not, and httpx's request and response models
around an aiohttp pool cost as much CPU as the pool itself; so a tool call goes from an
`Outgoing` request straight to aiohttp. One pool per data source: a slow API fills only
its own.

Deliberate choices: redirects are never followed (a 3xx goes back to the caller as it is),
no cookie jar exists at this level or in the token client (`NoCookies`), bodies stay
encoded here (the caller decodes them within its size cap), and the URL is sent exactly
as built (yarl would re-normalise its encoding, %3A -> :, which changes what a SigV4
signature covers and what the API sees).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http.cookiejar import Cookie, CookieJar
from typing import Any

import aiohttp
from yarl import URL

from mcpgate.gateway.auth.base import Outgoing
from mcpgate.gateway.destinations import Destinations, refusal
from mcpgate.gateway.errors import SendError

__all__ = ["NoCookies", "Pool", "send_error"]


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing: no caller's cookies reach another caller."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None


def send_error(err: BaseException) -> SendError:
    """aiohttp's exceptions as one the rest of the gateway understands."""
    refused = refusal(err)
    if refused is not None:
        return refused
    if isinstance(err, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return SendError(f"TLS handshake failed: {err.__class__.__name__}")
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return SendError("name resolution failed")
    if isinstance(err, aiohttp.ClientConnectorError):
        return SendError("connection failed")
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return SendError("connection timed out")
    if isinstance(err, aiohttp.SocketTimeoutError | asyncio.TimeoutError):
        return SendError("timed out waiting for the answer", read_timeout=True)
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return SendError("server disconnected")
    if isinstance(err, aiohttp.ClientPayloadError):
        return SendError("connection broken while reading the body")
    return SendError(err.__class__.__name__)


class Pool:
    """One connection pool (at most `limit` connections) for one data source."""

    def __init__(
        self,
        *,
        ssl_context: Callable[[], ssl.SSLContext | bool],
        limit: int,
        timeout_seconds: float,
        destinations: Destinations,
    ) -> None:
        self._ssl_context = ssl_context
        self._destinations = destinations
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | bool | None = None
        # Connecting, waiting for a free connection, and each wait for the answer's bytes.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeout_seconds,
            sock_connect=timeout_seconds,
            sock_read=timeout_seconds,
        )

    def _current_session(self) -> aiohttp.ClientSession:
        wanted = self._ssl_context()  # cheap; a new object only when the CA file changed
        if self._session is None or wanted is not self._ssl:
            old = self._session
            self._ssl = wanted
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit,
                    ssl=wanted,
                    enable_cleanup_closed=True,
                    # the destination rule, on every address a connection would use
                    resolver=self._destinations.resolver(),
                    socket_factory=self._destinations.socket_factory,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                # Only what the request carries: aiohttp would add its own User-Agent,
                # Accept-Encoding, and an application/octet-stream Content-Type to a POST,
                # PUT or PATCH without a body.
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
            # aiohttp resends an idempotent request once when a reused connection turns out
            # closed; the gateway's own retries cover that, and the attempts it counts (and
            # documents) would double. (A private switch: aiohttp has no public one.)
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
            if old is not None:  # let requests in flight on the old pool finish
                asyncio.get_running_loop().call_later(60, asyncio.ensure_future, old.close())
        return self._session

    @asynccontextmanager
    async def send(self, request: Outgoing) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer to `request`, its body unread; its connection goes back to the pool
        when the block ends. Raises SendError."""
        try:
            response = await self._current_session().request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
                timeout=self._timeout,
            )
        except (TimeoutError, aiohttp.ClientError) as err:
            raise send_error(err) from None
        try:
            yield response
        finally:
            response.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
