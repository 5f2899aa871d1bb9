"""API key auth: `name: prefix+value` as a header, or `name=value` in the query string.

The key is read from its mounted file on every request (a `stat` when nothing changed), so
a rotated Secret takes effect without a restart.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus

from mcpgate.gateway.auth._common import cap_logger, read_header_credential
from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.config import ApiKeyConfig
from mcpgate.gateway.credentials import CredentialStore

__all__ = ["ApiKeyAuth"]


class ApiKeyAuth(OutboundAuth):
    """Adds the data source's API key to each request."""

    def __init__(self, config: ApiKeyConfig, credentials: CredentialStore) -> None:
        self._config = config
        self._credentials = credentials
        if config.location == "Query":
            cap_logger("httpx")  # it logs full URLs at INFO

    def __repr__(self) -> str:
        return f"ApiKeyAuth(in={self._config.location}, name={self._config.name!r})"

    def apply_now(self, request: Outgoing) -> None:
        name = self._config.name
        if self._config.location == "Query":
            value = self._credentials.read(self._config.value_file)
            base, _, query = request.url.partition("?")
            request.url = f"{base}?{_with_param(query, name, value)}"
        else:
            value = read_header_credential(self._credentials, self._config.value_file)
            request.set_header(name, self._config.prefix + value)


def _with_param(query: str, name: str, value: str) -> str:
    """The raw query with every `name` parameter replaced by `name=value`.

    Works on the query text as built rather than through `httpx.QueryParams`, which would
    re-encode every other parameter (`%20` becomes `+`, `%7E` becomes `~`) and so change
    what the tool's template produced.
    """
    kept = [
        pair for pair in query.split("&") if pair and unquote_plus(pair.split("=", 1)[0]) != name
    ]
    kept.append(f"{quote(name, safe='')}={quote(value, safe='')}")
    return "&".join(kept)
