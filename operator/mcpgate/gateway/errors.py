"""The gateway's exceptions. Their messages reach MCP clients and logs, so they never
hold a credential value: they name the data source, the file or the cause."""

from __future__ import annotations

__all__ = ["CredentialError", "GatewayError", "ToolInputError", "UpstreamError"]


class GatewayError(Exception):
    """Base of every error the gateway turns into a tool error."""


class ToolInputError(GatewayError):
    """The arguments do not fit the tool; nothing was sent downstream."""


class CredentialError(GatewayError):
    """A mounted credential is missing or empty."""


class UpstreamError(GatewayError):
    """The data source could not be called or answered with a failure."""
