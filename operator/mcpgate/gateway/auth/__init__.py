"""Outbound auth: how the gateway authenticates to a data source, one `OutboundAuth` (also
an `httpx.Auth`) per method.

Each method lives in its own small module; `build_auth` picks one from a data source's
configuration. Every credential is read from its mounted file per request (a `stat` when
nothing changed), so rotated Secrets take effect without a restart, and no value is ever
logged or put into an exception message.
"""

from __future__ import annotations

from typing import TypeVar, assert_never

import httpx

from mcpgate.gateway.auth._common import cap_logger
from mcpgate.gateway.auth.apikey import ApiKeyAuth
from mcpgate.gateway.auth.base import OutboundAuth, Outgoing
from mcpgate.gateway.auth.basic import BasicAuth
from mcpgate.gateway.auth.bearer import BearerAuth
from mcpgate.gateway.auth.oauth2 import (
    DEFAULT_TOKEN_LIFETIME,
    IssuedToken,
    OAuth2ClientCredentialsAuth,
    TokenCache,
    TokenKey,
)
from mcpgate.gateway.auth.sigv4 import AwsSigV4Auth
from mcpgate.gateway.config import DataSourceConfig
from mcpgate.gateway.credentials import CredentialStore

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "ApiKeyAuth",
    "AwsSigV4Auth",
    "BasicAuth",
    "BearerAuth",
    "IssuedToken",
    "OAuth2ClientCredentialsAuth",
    "OutboundAuth",
    "Outgoing",
    "TokenCache",
    "TokenKey",
    "build_auth",
    "quiet_credential_loggers",
]

_Block = TypeVar("_Block")

# Libraries that log what the auth flows add: httpx each request's full URL at INFO (a query
# API key with it), botocore its canonical request at DEBUG (a session token with it).
_LEAKY_LOGGERS = ("httpx", "botocore")


def quiet_credential_loggers() -> None:
    """Cap the loggers that would print credentials at WARNING (a level set higher stays).

    `build_auth` calls it; the gateway's logging setup may call it again after configuring.
    """
    for name in _LEAKY_LOGGERS:
        cap_logger(name)


def build_auth(
    source: DataSourceConfig,
    credentials: CredentialStore,
    tokens: TokenCache,
    token_client: httpx.AsyncClient,
) -> OutboundAuth | None:
    """The auth method of one data source, or None when it has none.

    `tokens` is the process's one OAuth2 token cache; `token_client` is the client token
    requests go through. Raises ValueError when the block that `auth.type` names is missing
    (the renderer never writes such a configuration). Every `AuthType` has its branch: a
    new one fails the type check here.
    """
    quiet_credential_loggers()
    auth = source.auth

    def block(config: _Block | None) -> _Block:
        if config is None:
            raise ValueError(
                f"data source {source.name}: auth type {auth.type} has no configuration"
            )
        return config

    if auth.type == "None":
        return None
    if auth.type == "ApiKey":
        return ApiKeyAuth(block(auth.api_key), credentials)
    if auth.type == "Bearer":
        return BearerAuth(block(auth.bearer), credentials)
    if auth.type == "Basic":
        return BasicAuth(block(auth.basic), credentials)
    if auth.type == "OAuth2ClientCredentials":
        return OAuth2ClientCredentialsAuth(block(auth.oauth2), credentials, tokens, token_client)
    if auth.type == "AwsSigV4":
        return AwsSigV4Auth(block(auth.aws_sig_v4), credentials)
    assert_never(auth.type)
