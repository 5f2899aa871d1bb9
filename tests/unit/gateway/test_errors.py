"""The gateway's exception tree: one base, the whole tree in the module docstring, and the
data source as an attribute that the data source's client sets (never a message prefix)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcpgate.gateway import errors
from mcpgate.gateway.auth import TokenCache
from mcpgate.gateway.config import AuthConfig, BearerConfig, DataSourceConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.destinations import Destinations
from mcpgate.gateway.errors import (
    CredentialError,
    GatewayError,
    SendError,
    TokenError,
    UpstreamError,
)
from mcpgate.gateway.outbound import DataSourceClient
from mcpgate.gateway.templates import PreparedRequest


def test_every_error_is_a_gateway_error_named_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, GatewayError), name
        assert f" {name} " in doc, f"{name} is missing from the tree in the docstring"
    assert issubclass(SendError, UpstreamError)
    assert issubclass(TokenError, UpstreamError)


def test_describe_puts_the_data_source_in_front() -> None:
    err = UpstreamError("connection failed")
    assert err.describe() == "connection failed"
    err.data_source = "billing"
    assert str(err) == "connection failed"
    assert err.describe() == "data source billing: connection failed"


@pytest.fixture
def refused_url() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _call(source: DataSourceConfig, root: Path) -> None:
    async with httpx.AsyncClient() as token_client:
        client = DataSourceClient(
            source,
            CredentialStore(root),
            TokenCache(),
            token_client,
            max_response_bytes=1024 * 1024,
            destinations=Destinations(allow_loopback=True),
        )
        try:
            await client.call(PreparedRequest("POST", source.base_url + "/x", [], None))
        finally:
            await client.aclose()


async def test_a_failed_call_carries_its_data_source(refused_url: str, tmp_path: Path) -> None:
    source = DataSourceConfig(name="billing", base_url=refused_url, timeout_seconds=5)
    with pytest.raises(UpstreamError) as caught:
        await _call(source, tmp_path)
    assert caught.value.data_source == "billing"
    assert str(caught.value) == "connection failed"
    assert caught.value.describe() == "data source billing: connection failed"


async def test_an_auth_flow_error_gets_its_data_source(refused_url: str, tmp_path: Path) -> None:
    auth = AuthConfig(type="Bearer", bearer=BearerConfig(token_file="creds/token"))
    source = DataSourceConfig(name="billing", base_url=refused_url, auth=auth)
    with pytest.raises(CredentialError) as caught:
        await _call(source, tmp_path)
    assert caught.value.data_source == "billing"
    assert str(caught.value) == "credential creds/token is not mounted"
