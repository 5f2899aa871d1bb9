"""Mode None: every request is accepted, and nothing is forwarded."""

from __future__ import annotations

from mcpgate.gateway.inbound.base import Accepted, Headers, InboundAuth, Refused

__all__ = ["NoInboundAuth"]

_ACCEPTED = Accepted()


class NoInboundAuth(InboundAuth):
    async def check(self, headers: Headers) -> Accepted | Refused:
        return _ACCEPTED
