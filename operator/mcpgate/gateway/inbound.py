"""Inbound authorization of the MCP endpoint: None, ApiKey or BearerPassthrough.

Keys are every non-empty value of the mounted key Secret, read from its
directory on each check (kubelet adds and removes files as the Secret changes),
so keys take effect and stop working without a restart. A candidate key is
compared with every key in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from mcpgate.gateway.config import InboundConfig
from mcpgate.gateway.credentials import CredentialStore

__all__ = ["Decision", "InboundAuth"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: refused with a reason (for metrics and the 401 text), or accepted
    with the `Authorization` value to forward (BearerPassthrough only)."""

    ok: bool
    reason: str = ""
    forward_authorization: str | None = None


_ACCEPTED = Decision(ok=True)


class InboundAuth:
    def __init__(self, config: InboundConfig, credentials: CredentialStore) -> None:
        self.type = config.type
        self._keys_dir = config.api_keys_dir
        self._credentials = credentials

    def check(self, api_keys: list[bytes], authorizations: list[bytes]) -> Decision:
        """Decide on one request from its `x-api-key` and `Authorization` header values
        (every occurrence, as received)."""
        if self.type == "None":
            return _ACCEPTED
        if len(api_keys) > 1 or len(authorizations) > 1:
            return Decision(ok=False, reason="duplicate x-api-key or Authorization header")
        if not api_keys or not api_keys[0]:
            return Decision(ok=False, reason="missing x-api-key header")
        if not self._key_matches(api_keys[0]):
            return Decision(ok=False, reason="invalid API key")
        if self.type == "ApiKey":
            return _ACCEPTED
        if not authorizations or not authorizations[0].strip():
            return Decision(ok=False, reason="missing Authorization header")
        return Decision(ok=True, forward_authorization=authorizations[0].decode("latin-1"))

    def _key_matches(self, candidate: bytes) -> bool:
        keys = self._credentials.read_dir(self._keys_dir) if self._keys_dir else []
        matched = False
        for key in keys:
            # No early exit: the time taken does not say which key matched.
            matched |= hmac.compare_digest(candidate, key.encode())
        return matched
