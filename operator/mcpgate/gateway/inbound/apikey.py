"""Mode ApiKey: `x-api-key` must equal one non-empty value of the key Secret.

The keys are the values of the mounted key Secret, read from its folder on every check
(kubelet adds and removes files as the Secret changes, and a `stat` per file is all an
unchanged one costs), so keys take effect and stop working without a restart. A value is
the file's content less one trailing newline, exactly (credentials.py); a presented key
is the header's field value (`field_value`), compared byte for byte with every key in
constant time, without stopping at a match.

The caller, in the audit line, is the first 8 hex digits of the key's SHA-256: enough to
tell keys apart, too little to help guess one.
"""

from __future__ import annotations

import hashlib
import hmac

from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.inbound.base import Accepted, Headers, InboundAuth, Refused, field_value

__all__ = ["ApiKeyInbound", "key_fingerprint"]


def key_fingerprint(key: bytes) -> str:
    """The first 8 hex digits of the SHA-256 of `key`: how logs name a key."""
    return hashlib.sha256(key).hexdigest()[:8]


class ApiKeyInbound(InboundAuth):
    """Accepts a request whose one `x-api-key` is a key of the key Secret."""

    def __init__(
        self, server_name: str, keys_dir: str | None, credentials: CredentialStore
    ) -> None:
        self._keys_dir = keys_dir
        self._credentials = credentials
        challenge = f'ApiKey realm="{server_name}"'.encode()
        self._missing_key = Refused(401, "missing x-api-key header", challenge)
        self._wrong_key = Refused(401, "invalid API key", challenge)
        self._duplicate = Refused(401, "duplicate x-api-key or Authorization header", challenge)
        self.missing_authorization = Refused(401, "missing Authorization header", challenge)

    async def check(self, headers: Headers) -> Accepted | Refused:
        return self.check_key(headers)

    def check_key(self, headers: Headers) -> Accepted | Refused:
        keys = headers.get(b"x-api-key", ())
        if len(keys) > 1 or len(headers.get(b"authorization", ())) > 1:
            return self._duplicate
        candidate = field_value(keys[0]) if keys else b""
        if not candidate:
            return self._missing_key
        if not self._matches(candidate):
            return self._wrong_key
        return Accepted(caller={"apiKey": key_fingerprint(candidate)})

    def _matches(self, candidate: bytes) -> bool:
        keys = self._credentials.read_dir(self._keys_dir) if self._keys_dir else []
        matched = False
        for key in keys:
            # No early exit: the time taken does not say which key matched.
            matched |= hmac.compare_digest(candidate, key.encode())
        return matched
