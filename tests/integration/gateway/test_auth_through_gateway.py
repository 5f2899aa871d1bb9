"""Each outbound auth method through the running gateway, which drives the methods itself
(test_outbound_auth.py drives them through httpx clients): the official MCP client calls a
tool, and what reaches a real upstream (or moto, for SigV4 signatures) is checked."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from mcpgate.gateway.config import (
    ApiKeyConfig,
    AuthConfig,
    AwsSigV4Config,
    BasicConfig,
    BearerConfig,
    DataSourceConfig,
    GatewayConfig,
    OAuth2Config,
    ParameterConfig,
    RequestConfig,
    ToolConfig,
)

from support.gateway import mcp_session, running_gateway
from support.upstream import MotoServer, RecordedRequest, RecordingUpstream, TokenServer


class Files:
    """Credential files under one directory, as kubelet mounts them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, value: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
        return relative


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def config(files: Files, base_url: str, auth: AuthConfig, **request: Any) -> GatewayConfig:
    tool = ToolConfig(
        name="get_item",
        data_source="api",
        parameters=(ParameterConfig(name="id", required=True),),
        request=RequestConfig(
            **{"path": "/items/:id", "query": {"q": "a b", "id": ":id"}, **request}
        ),
    )
    return GatewayConfig(
        server_name="auth-mcp",
        data_sources={"api": DataSourceConfig(name="api", base_url=base_url, auth=auth)},
        tools=(tool,),
        credentials_dir=str(files.root),
        allow_loopback_destinations=True,  # the upstreams of these tests live there
    )


async def call(cfg: GatewayConfig, arguments: dict[str, Any] | None = None) -> Any:
    async with running_gateway(cfg) as gw, mcp_session(gw.url) as client:
        return await client.call_tool("get_item", arguments or {"id": "7"})


async def test_none_sends_the_defaults_and_the_url_as_built(
    files: Files, upstream: RecordingUpstream
) -> None:
    result = await call(config(files, upstream.url + "/api", AuthConfig()))
    assert result.is_error is False
    (seen,) = upstream.requests
    assert (seen.method, seen.path) == ("GET", "/api/items/7")
    assert seen.query_params() == [("q", "a b"), ("id", "7")]
    assert seen.header("user-agent") == "mcpgate"
    assert seen.header("accept-encoding") == "gzip, deflate"
    assert seen.header("authorization") is None


async def test_a_tools_own_user_agent_replaces_the_default(
    files: Files, upstream: RecordingUpstream
) -> None:
    cfg = config(files, upstream.url, AuthConfig(), headers={"User-Agent": "billing-bot/2"})
    assert (await call(cfg)).is_error is False
    (seen,) = upstream.requests
    assert seen.header_values("user-agent") == ["billing-bot/2"]


@pytest.mark.parametrize("location", ["Header", "Query"])
async def test_api_key(files: Files, upstream: RecordingUpstream, location: str) -> None:
    value = files.write("keys/v", "canary-apikey-gw-1")
    auth = AuthConfig(
        type="ApiKey",
        api_key=ApiKeyConfig(location=location, name="X-Key", prefix="", value_file=value),
    )
    assert (await call(config(files, upstream.url, auth))).is_error is False
    (seen,) = upstream.requests
    if location == "Header":
        assert seen.header("x-key") == "canary-apikey-gw-1"
        assert seen.query_params() == [("q", "a b"), ("id", "7")]
    else:
        assert seen.header("x-key") is None
        assert seen.query_params() == [("q", "a b"), ("id", "7"), ("X-Key", "canary-apikey-gw-1")]


async def test_bearer_and_basic(files: Files, upstream: RecordingUpstream) -> None:
    token = files.write("b/t", "canary-bearer-gw")
    bearer = AuthConfig(type="Bearer", bearer=BearerConfig(token_file=token))
    assert (await call(config(files, upstream.url, bearer))).is_error is False
    password = files.write("basic/p", "canary-pässword")
    basic = AuthConfig(type="Basic", basic=BasicConfig(username="ann", password_file=password))
    assert (await call(config(files, upstream.url, basic))).is_error is False
    first, second = upstream.requests
    assert first.header("authorization") == "Bearer canary-bearer-gw"
    expected = base64.b64encode("ann:canary-pässword".encode()).decode()
    assert second.header("authorization") == f"Basic {expected}"


def oauth2(files: Files, tokens: TokenServer) -> AuthConfig:
    secret = files.write("oauth/secret", tokens.client_secret)
    return AuthConfig(
        type="OAuth2ClientCredentials",
        oauth2=OAuth2Config(
            token_url=tokens.url, client_id=tokens.client_id, client_secret_file=secret
        ),
    )


async def test_oauth2_replaces_a_revoked_token_and_retries_once(
    files: Files, upstream: RecordingUpstream
) -> None:
    tokens = TokenServer(upstream, client_id="gw", client_secret="canary-oauth-gw")
    upstream.route("/items/7", tokens.protected())
    cfg = config(files, upstream.url, oauth2(files, tokens))
    async with running_gateway(cfg) as gw, mcp_session(gw.url) as client:
        assert (await client.call_tool("get_item", {"id": "7"})).is_error is False
        assert tokens.count == 1
        tokens.revoke()  # the API now refuses the cached token: 401, then a new one
        result = await client.call_tool("get_item", {"id": "7"})
    assert result.is_error is False
    assert tokens.count == 2
    attempts = upstream.requests_to("/items/7")
    assert [a.header("authorization") for a in attempts] == [
        f"Bearer {tokens.issued[0]}",
        f"Bearer {tokens.issued[0]}",
        f"Bearer {tokens.issued[1]}",
    ]


async def test_oauth2_gives_up_after_one_retry(files: Files, upstream: RecordingUpstream) -> None:
    tokens = TokenServer(upstream, client_id="gw", client_secret="canary-oauth-gw2")

    def always_401(_: RecordedRequest) -> Response:
        return JSONResponse({"error": "invalid_token"}, status_code=401)

    upstream.route("/items/7", always_401)
    result = await call(config(files, upstream.url, oauth2(files, tokens)))
    assert result.is_error is True
    assert "401" in result.content[0].text
    assert len(upstream.requests_to("/items/7")) == 2
    assert tokens.count == 2


LIST_TABLES = {"X-Amz-Target": "DynamoDB_20120810.ListTables"}


@pytest.mark.parametrize("with_token", [False, True], ids=["user keys", "session token"])
async def test_sigv4_signatures_are_accepted_by_moto(
    files: Files, moto_server: MotoServer, with_token: bool
) -> None:
    keys = moto_server.role_keys if with_token else moto_server.user_keys
    auth = AuthConfig(
        type="AwsSigV4",
        aws_sig_v4=AwsSigV4Config(
            region="eu-west-1",
            service="dynamodb",
            access_key_id_file=files.write("aws/id", keys.access_key_id),
            secret_access_key_file=files.write("aws/secret", keys.secret_access_key),
            session_token_file=(
                files.write("aws/token", keys.session_token or "") if with_token else None
            ),
        ),
    )
    cfg = config(
        files,
        moto_server.url,
        auth,
        method="POST",
        path="/",
        query={},
        headers={**LIST_TABLES, "Content-Type": "application/x-amz-json-1.0"},
        body={},
    )
    result = await call(cfg)
    assert result.is_error is False, result.content[0].text
    assert result.structured_content == {"TableNames": []}


async def test_sigv4_signs_the_host_the_gateway_sends(
    files: Files, upstream: RecordingUpstream
) -> None:
    auth = AuthConfig(
        type="AwsSigV4",
        aws_sig_v4=AwsSigV4Config(
            region="eu-west-1",
            service="execute-api",
            access_key_id_file=files.write("aws/id", "AKIDCANARYGW"),
            secret_access_key_file=files.write("aws/secret", "canary-sk-gw"),
        ),
    )
    assert (await call(config(files, upstream.url + "/api", auth))).is_error is False
    (seen,) = upstream.requests
    authorization = seen.header("authorization") or ""
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "host" in signed
    assert seen.header_values("host") == [upstream.url.removeprefix("http://")]
    assert seen.header("x-amz-content-sha256") is not None
