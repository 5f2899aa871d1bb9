"""Inbound authorization: who may call the MCP endpoint, one `InboundAuth` per mode.

The twin of outbound auth (auth/): each mode lives in its own small module, and
`build_inbound` picks one from the server's `authorization.type`. A mode decides on a
request from its headers alone, before the body is read, and a refusal carries the
status and the `WWW-Authenticate` challenge of its mode (base.py says what a mode is).
"""

from __future__ import annotations

from typing import assert_never

from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.inbound.apikey import ApiKeyInbound, key_fingerprint
from mcpgate.gateway.inbound.base import Accepted, Headers, InboundAuth, Refused, field_value
from mcpgate.gateway.inbound.none import NoInboundAuth
from mcpgate.gateway.inbound.passthrough import BearerPassthroughInbound

__all__ = [
    "Accepted",
    "ApiKeyInbound",
    "BearerPassthroughInbound",
    "Headers",
    "InboundAuth",
    "NoInboundAuth",
    "Refused",
    "build_inbound",
    "field_value",
    "key_fingerprint",
]


def build_inbound(config: GatewayConfig, credentials: CredentialStore) -> InboundAuth:
    """The inbound authorization mode of the server `config` describes."""
    inbound = config.authorization
    if inbound.type == "None":
        return NoInboundAuth()
    if inbound.type == "ApiKey":
        return ApiKeyInbound(config.server_name, inbound.api_keys_dir, credentials)
    if inbound.type == "BearerPassthrough":
        return BearerPassthroughInbound(config.server_name, inbound.api_keys_dir, credentials)
    assert_never(inbound.type)  # a new mode fails type checks here, never open
