"""Where the gateway may connect (API.md "Outbound behaviour", Destinations).

Whoever may create a data source chooses its host, so without a rule a gateway pod
would fetch the node's cloud metadata (169.254.169.254: cloud credentials), its own
metrics port on 127.0.0.1 or a sidecar, for anyone allowed to call a tool. The rule is
checked on the address each connection is about to use, after name resolution, so a
name that resolves (or re-resolves, DNS rebinding) to such an address is refused too:

- aiohttp (tool calls): a resolver that drops refused addresses, and a socket factory
  that refuses them before any socket exists (it also sees IP literals, which aiohttp
  connects to without resolving);
- httpx (token requests): a network backend that resolves, checks and connects to the
  checked address (TLS still verifies the URL's host name).

Private ranges stay allowed: in-cluster Services live there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any, Final

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from mcpgate.gateway.errors import SendError

__all__ = ["DestinationNotAllowed", "Destinations", "refusal", "why_refused"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")
_CLOUD_METADATA: Final = ipaddress.ip_address("fd00:ec2::254")


class DestinationNotAllowed(SendError):
    """The address a connection would use is one the rule refuses: never retried."""


class _Refused(OSError):
    """Raised where a socket would be made; carries the reason to DestinationNotAllowed."""


def why_refused(address: str, *, allow_loopback: bool) -> str | None:
    """Why `address` (an IP, as resolved) is refused, or None when it is allowed."""
    try:
        ip: _IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # drop a zone id
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip == _CLOUD_METADATA:
        return f"{ip} is the cloud metadata address"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return f"{ip} is an unspecified address"
    return None


class Destinations:
    """The rule for one gateway: `allow_loopback` under `mcpgate up` and for gateways of
    an operator started with --allow-loopback-destinations."""

    def __init__(self, *, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback

    def check(self, address: str) -> None:
        """Raises _Refused when a connection to `address` is not allowed."""
        reason = why_refused(address, allow_loopback=self.allow_loopback)
        if reason is not None:
            raise _Refused(f"destination not allowed: {reason}")

    # --- aiohttp --------------------------------------------------------------------

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """aiohttp's (aiohappyeyeballs') hook: called with each address to connect to."""
        family, type_, proto, _, sockaddr = addr_info
        self.check(sockaddr[0])
        return socket.socket(family=family, type=type_, proto=proto)

    def resolver(self) -> AbstractResolver:
        return _Resolver(self)

    # --- httpx -----------------------------------------------------------------------

    def httpx_transport(self, **kwargs: Any) -> httpx.AsyncHTTPTransport:
        transport = httpx.AsyncHTTPTransport(**kwargs)
        # httpx passes no network backend to its pool; the pool is rebuilt with ours and
        # the same settings (a private attribute: httpx has no public switch).
        pool = transport._pool
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=pool._ssl_context,
            max_connections=pool._max_connections,
            max_keepalive_connections=pool._max_keepalive_connections,
            keepalive_expiry=pool._keepalive_expiry,
            http1=pool._http1,
            http2=pool._http2,
            retries=pool._retries,
            network_backend=_Backend(self),
        )
        return transport


def refusal(err: BaseException) -> DestinationNotAllowed | None:
    """The DestinationNotAllowed behind an aiohttp or httpx connection error, if any."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, _Refused):
            return DestinationNotAllowed(str(seen))
        if isinstance(seen, aiohttp.ClientConnectorError):
            seen = seen.os_error
            continue
        seen = seen.__cause__ or seen.__context__
    return None


class _Resolver(AbstractResolver):
    """The default resolver's answers without the refused addresses."""

    def __init__(self, destinations: Destinations) -> None:
        self._destinations = destinations
        self._inner = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        return _allowed(self._destinations, answers, lambda a: a["host"])

    async def close(self) -> None:
        await self._inner.close()


def _allowed(destinations: Destinations, answers: Iterable[Any], address: Any) -> list[Any]:
    """The answers whose address is allowed; _Refused (the first reason) if none is."""
    allowed, first = [], None
    for answer in answers:
        try:
            destinations.check(address(answer))
        except _Refused as refused:
            first = first or refused
        else:
            allowed.append(answer)
    if not allowed and first is not None:
        raise first
    return allowed


async def lookup(host: str, port: int) -> list[Any]:
    """getaddrinfo for stream sockets (a seam: tests answer with stub addresses)."""
    return await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to addresses the rule allows."""

    def __init__(self, destinations: Destinations) -> None:
        self._destinations = destinations
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await lookup(host, port)
        except OSError as err:
            raise httpcore.ConnectError(f"name resolution failed ({err.strerror})") from err
        try:
            allowed = _allowed(self._destinations, infos, lambda info: info[4][0])
        except _Refused as refused:
            raise httpcore.ConnectError(str(refused)) from refused
        last: Exception | None = None
        for info in allowed:
            try:
                return await self._inner.connect_tcp(
                    info[4][0], port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as err:
                last = err
        raise last or httpcore.ConnectError("no address to connect to")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
