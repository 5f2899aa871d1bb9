"""What every inbound authorization mode is: a decision on one request from its headers.

A mode answers `Accepted` (who the caller is, as the audit line names them, and the
`Authorization` value to forward, if any) or `Refused` (an HTTP status, a reason and the
mode's own `WWW-Authenticate` challenge). The API key modes only ever refuse with 401; a
token validator (OAuth2) answers 401 for a missing or invalid token and 403 when its scopes
fall short, each with a challenge of its own, and may wait (for its issuer's keys) while
it decides: `check` is a coroutine.

Header values are taken as HTTP defines a field value (RFC 9110 section 5.5): without the
spaces and tabs around it, whichever server library parsed the request and whatever it
left in place. uvicorn 0.54 with httptools kept trailing white space, 0.55 drops it, h11
drops both sides; `field_value` makes the gateway's decision the same on all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Accepted", "Headers", "InboundAuth", "Refused", "field_value"]

# A request's headers: lower-case name -> every value, as received, in order.
Headers = Mapping[bytes, list[bytes]]


def field_value(raw: bytes) -> bytes:
    """A header's field value: `raw` without leading and trailing spaces and tabs (RFC
    9110 section 5.5: such white space is not part of the value)."""
    return raw.strip(b" \t")


@dataclass(frozen=True, slots=True)
class Accepted:
    """The request may go on. `caller` names the caller for the audit line (never a
    credential); `forward_authorization` is the caller's `Authorization` value, for the
    data sources that receive it (BearerPassthrough only)."""

    caller: Mapping[str, str] | None = None
    forward_authorization: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The request is refused before its body is read. `reason` is what the 401 or 403
    body, the log line and the metric's label say: fixed text, never a credential."""

    status: int
    reason: str
    challenge: bytes  # the WWW-Authenticate value


class InboundAuth(ABC):
    """One inbound authorization mode, built once per gateway (see `build_inbound`)."""

    @abstractmethod
    async def check(self, headers: Headers) -> Accepted | Refused:
        """Decide on one request from its headers."""
