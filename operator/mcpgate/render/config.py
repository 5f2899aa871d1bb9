"""The one translation from resources to the gateway's configuration.

`mcpgate up` and the operator both call `gateway_config_json` (the text the gateway
reads; `gateway_config` is that text, parsed): what runs locally is what runs in the
cluster. Pure: no I/O, no Secret values (only references, which become file paths
under the credentials directory).

Why text, written tool by tool: a server's tools are most of its configuration (200
tools, 175 KiB). Built as models and then serialised, a large server kept thousands of
objects alive at once, enough to set the cyclic garbage collector going, which made
rendering grow faster than the number of tools (docs/performance.md). Each tool is now
written as soon as it is built, and only the small rest of the configuration is a
validated model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from mcpgate.api import HttpApiDataSource, McpServer, SecretKeyRef, Tool
from mcpgate.api.common import secret_key_refs
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
    TlsConfig,
)

__all__ = [
    "credential_path",
    "gateway_config",
    "gateway_config_json",
    "referenced_secret_keys",
    "tool_annotations",
]


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
    if method in ("POST", "PUT", "PATCH"):
        out["destructiveHint"] = False  # MCP's default is true: a write is not a deletion
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


def _tool(tool: Tool) -> dict[str, Any]:
    """One tool's `ToolConfig` as JSON data (what `exclude_none` would write: a None
    field is left out, its default is None)."""
    request = tool.request
    parameters = []
    for p in tool.parameters:
        parameter: dict[str, Any] = {
            "name": p.name,
            "type": p.type,
            "description": p.description,
            "required": p.required,
        }
        if p.enum is not None:
            parameter["enum"] = p.enum
        if p.default is not None:
            parameter["default"] = p.default
        if p.items is not None:
            parameter["items_type"] = p.items.type
        parameters.append(parameter)
    wire: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
    }
    if request.body is not None:
        wire["body"] = request.body
    rendered: dict[str, Any] = {"name": tool.name}
    if tool.title is not None:
        rendered["title"] = tool.title
    rendered.update(
        description=tool.description,
        data_source=tool.data_source,
        parameters=parameters,
        request=wire,
        annotations=tool_annotations(tool),
    )
    return rendered


def _tool_line(tool: Tool) -> str:
    data = _tool(tool)
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits in a default, enum or body
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


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
        refs.update((ref.name, ref.key) for _, ref in secret_key_refs(source.spec))
    return refs


def gateway_config(
    server: McpServer,
    data_sources: Mapping[str, HttpApiDataSource],
    *,
    credentials_dir: str = DEFAULT_CREDENTIALS_DIR,
    api_keys_dir: str | None = None,
    limits: LimitsConfig | None = None,
    allow_loopback_destinations: bool = False,
) -> GatewayConfig:
    """`gateway_config_json`, read as the gateway reads it."""
    return GatewayConfig.model_validate_json(
        gateway_config_json(
            server,
            data_sources,
            credentials_dir=credentials_dir,
            api_keys_dir=api_keys_dir,
            limits=limits,
            allow_loopback_destinations=allow_loopback_destinations,
        )
    )


# Where the tools go in the rest of the configuration's text: a top-level key (a string
# value cannot hold a raw newline, so nothing else can look like this).
_NO_TOOLS = '\n  "tools": []'


def gateway_config_json(
    server: McpServer,
    data_sources: Mapping[str, HttpApiDataSource],
    *,
    credentials_dir: str = DEFAULT_CREDENTIALS_DIR,
    api_keys_dir: str | None = None,
    limits: LimitsConfig | None = None,
    allow_loopback_destinations: bool = False,
) -> str:
    """The gateway configuration of one server, as the text the gateway reads: indented
    JSON, one tool per line. `data_sources` maps names to the data sources in the server's
    namespace; a tool whose data source is missing is an error for the caller to have
    reported (ResolvedRefs), so it raises KeyError here.

    The key Secret of an ApiKey/BearerPassthrough server is read from `api_keys_dir`
    (a pod mounts it whole, apart from the other keys), by default `<secret name>` under
    the credentials directory (as `mcpgate up` writes it)."""
    used = server.spec.data_source_names()
    auth = server.spec.authorization
    rest = GatewayConfig(
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
        limits=limits or LimitsConfig(),
        credentials_dir=credentials_dir,
        allow_loopback_destinations=True if allow_loopback_destinations else None,
    )
    text = rest.to_json()
    if not server.spec.tools:
        return text
    tools = ",\n    ".join(_tool_line(tool) for tool in server.spec.tools)
    head, found, tail = text.partition(_NO_TOOLS)
    assert found, "GatewayConfig.to_json writes tools as a top-level key"
    return f'{head}\n  "tools": [\n    {tools}\n  ]{tail}'
