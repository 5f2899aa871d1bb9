"""HTTP Basic auth (RFC 7617): `Authorization: Basic base64(utf8(username ":" password))`.

The username is literal configuration or a mounted file; the password always a file. Both
are read on every request (a `stat` when nothing changed), so rotation needs no restart.
"""

from __future__ import annotations

from base64 import b64encode

from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.config import BasicConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import CredentialError

__all__ = ["BasicAuth"]


class BasicAuth(OutboundAuth):
    """Sends a username and password, UTF-8 encoded as RFC 7617's `charset="UTF-8"` asks."""

    def __init__(self, config: BasicConfig, credentials: CredentialStore) -> None:
        if (config.username is None) == (config.username_file is None):
            raise ValueError("Basic auth needs exactly one of username and username_file")
        self._config = config
        self._credentials = credentials

    def __repr__(self) -> str:
        return "BasicAuth()"

    def apply_now(self, request: Outgoing) -> None:
        request.set_header("Authorization", basic_header(self._username(), self._password()))

    def _username(self) -> str:
        if self._config.username_file is not None:
            username = self._credentials.read(self._config.username_file)
            where = f"credential {self._config.username_file}"
        else:
            username = self._config.username or ""
            where = "the configured username"
        if ":" in username:
            # RFC 7617 section 2: the user-id cannot hold a colon; the server would split there.
            raise CredentialError(f"{where} holds a colon, which a Basic username cannot")
        return username

    def _password(self) -> str:
        return self._credentials.read(self._config.password_file)


def basic_header(username: str, password: str) -> str:
    """The `Authorization` value for a user-pass pair."""
    return "Basic " + b64encode(f"{username}:{password}".encode()).decode("ascii")
