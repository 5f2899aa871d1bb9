"""The one translation from resources to the gateway's configuration.

`mcpgate up` and the operator both call `gateway_config`: what runs locally is
what runs in the cluster. Pure: no I/O, no Secret values (only references,
which become file paths under the credentials directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcpgate.api import HttpApiDataSource, McpServer, SecretKeyRef, Tool
from mcpgate.api.datasource import DataSourceAuth
from mcpgate.gateway.config import (
    DEFAULT_CREDENTIALS_DIR,
    ApiKeyConfig,
    AuthConfig,
    AwsSigV4Config,
    BasicConfig,
    BearerConfig,
    DataSourceConfig,
    GatewayConfig,
    InboundConfig,
    LimitsConfig,
    OAuth2Config,
    ParameterConfig,
    RequestConfig,
    TlsConfig,
    ToolConfig,
)
from mcpgate.render.refs import key_refs

__all__ = ["credential_path", "gateway_config", "referenced_secret_keys", "tool_annotations"]


def credential_path(ref: SecretKeyRef) -> str:
    """Where a Secret key is mounted, relative to the credentials directory."""
    return f"{ref.name}/{ref.key}"


def _optional_path(ref: SecretKeyRef | None) -> str | None:
    return credential_path(ref) if ref is not None else None


def tool_annotations(tool: Tool) -> dict[str, Any]:
    """The tool's MCP annotations: the method's defaults, then what the user set."""
    method = tool.request.method
    out: dict[str, Any] = {"openWorldHint": True}
    if method == "GET":
        out["readOnlyHint"] = True
    if method == "DELETE":
        out["destructiveHint"] = True
    if method in ("PUT", "DELETE"):
        out["idempotentHint"] = True
    if tool.annotations is not None:
        out.update(tool.annotations.model_dump(by_alias=True, exclude_none=True))
    return out


def _auth(auth: DataSourceAuth) -> AuthConfig:
    match auth.type:
        case "ApiKey":
            assert auth.api_key is not None
            key = auth.api_key
            return AuthConfig(
                type="ApiKey",
                api_key=ApiKeyConfig(
                    location=key.in_,
                    name=key.name,
                    prefix=key.prefix,
                    value_file=credential_path(key.value_secret_ref),
                ),
            )
        case "Bearer":
            assert auth.bearer is not None
            return AuthConfig(
                type="Bearer",
                bearer=BearerConfig(token_file=credential_path(auth.bearer.token_secret_ref)),
            )
        case "Basic":
            assert auth.basic is not None
            basic = auth.basic
            return AuthConfig(
                type="Basic",
                basic=BasicConfig(
                    username=basic.username,
                    username_file=_optional_path(basic.username_secret_ref),
                    password_file=credential_path(basic.password_secret_ref),
                ),
            )
        case "OAuth2ClientCredentials":
            assert auth.oauth2_client_credentials is not None
            oauth = auth.oauth2_client_credentials
            return AuthConfig(
                type="OAuth2ClientCredentials",
                oauth2=OAuth2Config(
                    token_url=oauth.token_url,
                    client_id=oauth.client_id,
                    client_id_file=_optional_path(oauth.client_id_secret_ref),
                    client_secret_file=credential_path(oauth.client_secret_secret_ref),
                    scopes=tuple(oauth.scopes),
                    audience=oauth.audience,
                    client_authentication=oauth.client_authentication,
                    extra_params=dict(oauth.extra_params),
                ),
            )
        case "AwsSigV4":
            assert auth.aws_sig_v4 is not None
            aws = auth.aws_sig_v4
            return AuthConfig(
                type="AwsSigV4",
                aws_sig_v4=AwsSigV4Config(
                    region=aws.region,
                    service=aws.service,
                    access_key_id_file=_optional_path(aws.access_key_id_secret_ref),
                    secret_access_key_file=_optional_path(aws.secret_access_key_secret_ref),
                    session_token_file=_optional_path(aws.session_token_secret_ref),
                ),
            )
    return AuthConfig()


def _data_source(source: HttpApiDataSource) -> DataSourceConfig:
    spec = source.spec
    tls = spec.tls
    return DataSourceConfig(
        name=source.metadata.name,
        base_url=spec.base_url,
        headers=dict(spec.headers),
        timeout_seconds=spec.timeout_seconds,
        tls=TlsConfig(
            insecure_skip_verify=tls.insecure_skip_verify if tls else False,
            ca_file=_optional_path(tls.ca_secret_ref) if tls else None,
        ),
        auth=_auth(spec.auth),
    )


def _tool(tool: Tool) -> ToolConfig:
    return ToolConfig(
        name=tool.name,
        description=tool.description,
        data_source=tool.data_source,
        parameters=tuple(
            ParameterConfig(
                name=p.name,
                type=p.type,
                description=p.description,
                required=p.required,
                enum=tuple(p.enum) if p.enum is not None else None,
                default=p.default,
                items_type=p.items.type if p.items is not None else None,
            )
            for p in tool.parameters
        ),
        request=RequestConfig(
            method=tool.request.method,
            path=tool.request.path,
            query=dict(tool.request.query),
            headers=dict(tool.request.headers),
            body=tool.request.body,
        ),
        annotations=tool_annotations(tool),
    )


def referenced_secret_keys(
    server: McpServer, data_sources: Mapping[str, HttpApiDataSource]
) -> set[tuple[str, str]]:
    """Every (Secret, key) the gateway reads, for mounting; the whole key Secret is not
    included (it is mounted whole)."""
    refs: set[tuple[str, str]] = set()
    for name in server.spec.data_source_names():
        source = data_sources.get(name)
        if source is None:
            continue
        refs.update((ref.name, ref.key) for _, ref in key_refs(source.spec))
    return refs


def gateway_config(
    server: McpServer,
    data_sources: Mapping[str, HttpApiDataSource],
    *,
    credentials_dir: str = DEFAULT_CREDENTIALS_DIR,
    api_keys_dir: str | None = None,
    limits: LimitsConfig | None = None,
) -> GatewayConfig:
    """The gateway configuration of one server. `data_sources` maps names to the data
    sources in the server's namespace; a tool whose data source is missing is an error
    for the caller to have reported (ResolvedRefs), so it raises KeyError here.

    The key Secret of an ApiKey/BearerPassthrough server is read from `api_keys_dir`
    (a pod mounts it whole, apart from the other keys), by default `<secret name>` under
    the credentials directory (as `mcpgate up` writes it)."""
    used = server.spec.data_source_names()
    auth = server.spec.authorization
    return GatewayConfig(
        server_name=server.metadata.name,
        namespace=server.metadata.namespace or "default",
        authorization=InboundConfig(
            type=auth.type,
            api_keys_dir=(api_keys_dir or auth.api_key_secret_ref.name)
            if auth.api_key_secret_ref
            else None,
        ),
        allowed_origins=tuple(server.spec.allowed_origins),
        data_sources={name: _data_source(data_sources[name]) for name in used},
        tools=tuple(_tool(t) for t in server.spec.tools),
        limits=limits or LimitsConfig(),
        credentials_dir=credentials_dir,
    )
