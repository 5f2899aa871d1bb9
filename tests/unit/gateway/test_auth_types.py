"""The gateway restates the API's auth types (it may not import mcpgate.api): these tests
keep the two lists equal, and make sure that every type the gateway knows has a method.
A type added to the API fails here until the gateway serves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from mcpgate.api.datasource import AuthType
from mcpgate.api.mcpserver import ServerAuthorization
from mcpgate.gateway import config as gateway_config
from mcpgate.gateway.auth import (
    ApiKeyAuth,
    AwsSigV4Auth,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentialsAuth,
    TokenCache,
    build_auth,
)
from mcpgate.gateway.config import (
    ApiKeyConfig,
    AuthConfig,
    AwsSigV4Config,
    BasicConfig,
    BearerConfig,
    DataSourceConfig,
    GatewayConfig,
    InboundConfig,
    OAuth2Config,
)
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.inbound import (
    ApiKeyInbound,
    BearerPassthroughInbound,
    NoInboundAuth,
    build_inbound,
)

# One configuration and the method it must give, per gateway auth type.
OUTBOUND: dict[str, tuple[dict[str, Any], type | None]] = {
    "None": ({}, None),
    "ApiKey": ({"api_key": ApiKeyConfig(value_file="s/k")}, ApiKeyAuth),
    "Bearer": ({"bearer": BearerConfig(token_file="s/k")}, BearerAuth),
    "Basic": ({"basic": BasicConfig(username="u", password_file="s/k")}, BasicAuth),
    "OAuth2ClientCredentials": (
        {"oauth2": OAuth2Config(token_url="https://t", client_id="c", client_secret_file="s/k")},
        OAuth2ClientCredentialsAuth,
    ),
    "AwsSigV4": ({"aws_sig_v4": AwsSigV4Config(region="r", service="s")}, AwsSigV4Auth),
}
INBOUND: dict[str, type] = {
    "None": NoInboundAuth,
    "ApiKey": ApiKeyInbound,
    "BearerPassthrough": BearerPassthroughInbound,
}


def test_the_outbound_types_are_the_apis() -> None:
    assert get_args(gateway_config.AuthType) == get_args(AuthType)
    assert get_args(AuthConfig.model_fields["type"].annotation) == get_args(AuthType)


def test_the_inbound_types_are_the_apis() -> None:
    api_types = get_args(ServerAuthorization.model_fields["type"].annotation)
    assert get_args(gateway_config.InboundType) == api_types
    assert get_args(InboundConfig.model_fields["type"].annotation) == api_types


@pytest.mark.parametrize("auth_type", get_args(gateway_config.AuthType))
async def test_every_outbound_type_has_its_method(auth_type: str, tmp_path: Path) -> None:
    blocks, method = OUTBOUND[auth_type]
    source = DataSourceConfig(
        name="s", base_url="https://x", auth=AuthConfig(type=auth_type, **blocks)
    )
    async with httpx.AsyncClient() as client:
        auth = build_auth(source, CredentialStore(tmp_path), TokenCache(), client)
    assert (type(auth) if auth is not None else None) is method


@pytest.mark.parametrize("inbound_type", get_args(gateway_config.InboundType))
def test_every_inbound_type_has_its_mode(inbound_type: str, tmp_path: Path) -> None:
    config = GatewayConfig(
        server_name="s",
        authorization=InboundConfig(type=inbound_type, api_keys_dir="keys"),
    )
    assert type(build_inbound(config, CredentialStore(tmp_path))) is INBOUND[inbound_type]
