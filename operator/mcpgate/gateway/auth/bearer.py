"""Bearer token auth: `Authorization: Bearer <token>` from a mounted file.

The token is read on every request (a `stat` when nothing changed), so a rotated Secret
takes effect without a restart.
"""

from __future__ import annotations

from mcpgate.gateway.auth._common import read_header_credential
from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.config import BearerConfig
from mcpgate.gateway.credentials import CredentialStore

__all__ = ["BearerAuth"]


class BearerAuth(OutboundAuth):
    """Sends a static bearer token."""

    def __init__(self, config: BearerConfig, credentials: CredentialStore) -> None:
        self._config = config
        self._credentials = credentials

    def __repr__(self) -> str:
        return "BearerAuth()"

    def apply_now(self, request: Outgoing) -> None:
        token = read_header_credential(self._credentials, self._config.token_file)
        request.set_header("Authorization", f"Bearer {token}")
