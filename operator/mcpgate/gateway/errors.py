"""The gateway's exceptions, one tree:

    GatewayError            every failure of a tool call the gateway answers for
    ├── UnknownToolError    no tool of that name: a JSON-RPC error, not a tool result
    ├── ToolInputError      the arguments do not fit the tool; nothing was sent downstream
    ├── CredentialError     a mounted credential is missing, empty or unusable
    └── UpstreamError       the data source could not be called, or its answer not used
        ├── SendError       the request could not be sent, or its answer not read
        └── TokenError      the token endpoint of OAuth2 client credentials failed

Messages reach MCP clients and logs, so they never hold a credential value or a
downstream body: they say the cause (the file, the status, the OAuth `error` code). The
data source is an attribute, `data_source`, set by the data source's client as the error
leaves it; `describe()` is the text a tool error shows, "data source NAME: cause". Callers
decide by type and attribute, never by message text.
"""

from __future__ import annotations

__all__ = [
    "CredentialError",
    "GatewayError",
    "SendError",
    "TokenError",
    "ToolInputError",
    "UnknownToolError",
    "UpstreamError",
]


class GatewayError(Exception):
    """Base of the gateway's errors. `data_source` names the data source a failed call
    went to, when there was one and it is known."""

    def __init__(self, message: str, *, data_source: str | None = None) -> None:
        super().__init__(message)
        self.data_source = data_source

    def describe(self) -> str:
        """The message with the data source in front, as a tool error shows it."""
        if self.data_source is None:
            return str(self)
        return f"data source {self.data_source}: {self}"


class UnknownToolError(GatewayError):
    """No tool of that name: a JSON-RPC error (-32602), not a tool result."""


class ToolInputError(GatewayError):
    """The arguments do not fit the tool; nothing was sent downstream."""


class CredentialError(GatewayError):
    """A mounted credential is missing, empty or unusable."""


class UpstreamError(GatewayError):
    """The data source could not be called, or its answer could not be used. `status` is
    the answer's HTTP status when one came (a body over the cap, an unknown encoding)."""

    def __init__(
        self, message: str, *, data_source: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, data_source=data_source)
        self.status = status


class SendError(UpstreamError):
    """A request that could not be sent, or whose answer could not be read: the message
    names the cause only (no URL, no header). `read_timeout`: the API took the request, so
    it is not safe to send again."""

    def __init__(self, message: str, *, read_timeout: bool = False) -> None:
        super().__init__(message)
        self.read_timeout = read_timeout


class TokenError(UpstreamError):
    """The token endpoint could not be reached or gave no usable token. The message names
    the token URL, its status and OAuth `error` code, never the secret or the body."""
