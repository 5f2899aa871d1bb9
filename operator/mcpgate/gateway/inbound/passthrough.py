"""Mode BearerPassthrough: the API key of mode ApiKey, and an `Authorization` header that is
forwarded unchanged to the data sources whose own auth is None (tools.py decides which)."""

from __future__ import annotations

from mcpgate.gateway.inbound.apikey import ApiKeyInbound
from mcpgate.gateway.inbound.base import Accepted, Headers, Refused, field_value

__all__ = ["BearerPassthroughInbound"]


class BearerPassthroughInbound(ApiKeyInbound):
    async def check(self, headers: Headers) -> Accepted | Refused:
        decision = self.check_key(headers)
        if isinstance(decision, Refused):
            return decision
        given = headers.get(b"authorization")
        authorization = field_value(given[0]) if given else b""
        if not authorization:
            return self.missing_authorization
        # The caller's bytes, read as Latin-1 so that they are sent back byte for byte.
        return Accepted(decision.caller, authorization.decode("latin-1"))
