"""What every outbound auth method is: edits to a request as it will go on the wire.

The gateway sends through its aiohttp pool directly (outbound.py), without building an
httpx request per call: an auth method works on an `Outgoing` (method, URL, header list,
body) in `apply`, and may ask for one more attempt after a 401 in `unauthorized`. Each
method is also an `httpx.Auth` built on the same two calls, so that any httpx client (the
tests, a script) can use it; one implementation serves both.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field

import httpx

__all__ = ["OutboundAuth", "Outgoing", "header_text"]


@dataclass(slots=True)
class Outgoing:
    """One downstream request as it will be sent. `url` is absolute and percent-encoded and
    goes on the wire byte for byte; `headers` keep their order and repeats. Its repr shows
    the method only: the URL (a query API key), the headers and the body carry credentials."""

    method: str
    url: str = field(repr=False)
    headers: list[tuple[str, str]] = field(repr=False)
    body: bytes = field(default=b"", repr=False)

    def set_header(self, name: str, value: str) -> None:
        """`name: value`, in place of every header of that name."""
        lower = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lower]
        self.headers.append((name, value))

    def header(self, name: str) -> str | None:
        """The last value of header `name`, if any."""
        lower = name.lower()
        found = None
        for n, v in self.headers:
            if n.lower() == lower:
                found = v
        return found

    @classmethod
    def of(cls, request: httpx.Request) -> Outgoing:
        """The httpx request's method, URL, headers (Host and Content-Length included, as
        httpx will send them) and body, which must have been read."""
        headers = [(k.decode("latin-1"), header_text(v)) for k, v in request.headers.raw]
        return cls(request.method, str(request.url), headers, request.content)

    def into(self, request: httpx.Request) -> httpx.Request:
        """`request` with this URL and these headers."""
        request.url = httpx.URL(self.url)
        request.headers = httpx.Headers(
            [(name.encode("latin-1"), value.encode()) for name, value in self.headers]
        )
        return request


def header_text(value: bytes) -> str:
    """A raw header value as text: UTF-8, as the gateway's templates write it; other bytes
    (a caller's Latin-1 token) byte for byte as Latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class OutboundAuth(httpx.Auth):
    """An outbound auth method: `apply` adds credentials to a request; `unauthorized` says,
    after a 401, whether to send it again (it may re-authenticate it first)."""

    # The body is read before the flow starts: SigV4 hashes it, a retry resends it.
    requires_request_body = True

    async def apply(self, request: Outgoing) -> None:
        self.apply_now(request)

    def apply_now(self, request: Outgoing) -> None:
        """`apply` for a method that never waits (no token endpoint, no credential chain
        lookup); also what a synchronous httpx client runs."""
        raise NotImplementedError(f"{type(self).__name__} works with httpx.AsyncClient only")

    async def unauthorized(self, request: Outgoing) -> bool:
        return False

    def known_values(self) -> list[str]:
        """Credential values this method learned outside the credential files and the
        token cache (the default AWS chain's keys): the redactor removes them too."""
        return []

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        outgoing = Outgoing.of(request)
        self.apply_now(outgoing)
        yield outgoing.into(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        outgoing = Outgoing.of(request)
        await self.apply(outgoing)
        response = yield outgoing.into(request)
        if response.status_code == httpx.codes.UNAUTHORIZED and await self.unauthorized(outgoing):
            yield outgoing.into(request)
