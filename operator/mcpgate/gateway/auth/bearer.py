"""Bearer token auth: `Authorization: Bearer <token>` from a mounted file.

The token is read on every request (a `stat` when nothing changed), so a rotated Secret
takes effect without a restart.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from mcpgate.gateway.auth._common import read_header_credential
from mcpgate.gateway.config import BearerConfig
from mcpgate.gateway.credentials import CredentialStore

__all__ = ["BearerAuth"]


class BearerAuth(httpx.Auth):
    """Sends a static bearer token."""

    def __init__(self, config: BearerConfig, credentials: CredentialStore) -> None:
        self._config = config
        self._credentials = credentials

    def __repr__(self) -> str:
        return "BearerAuth()"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = read_header_credential(self._credentials, self._config.token_file)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
