"""The gateway's configuration: the payload of the ConfigMap the operator renders and
of the file `mcpgate up` writes.

It holds no secret value. Every credential is a path, relative to the
credentials directory, of a file mounted from a Secret (`<secret>/<key>`), so
rotating a Secret changes what the gateway reads without changing this file.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_CREDENTIALS_DIR",
    "MIN_CREDENTIAL_LENGTH",
    "ApiKeyConfig",
    "AuthConfig",
    "AuthType",
    "AwsSigV4Config",
    "BasicConfig",
    "BearerConfig",
    "DataSourceConfig",
    "GatewayConfig",
    "InboundConfig",
    "InboundType",
    "LimitsConfig",
    "OAuth2Config",
    "ParameterConfig",
    "RequestConfig",
    "TlsConfig",
    "ToolConfig",
    "credential_value",
    "is_empty_value",
    "load_config",
]

CONFIG_VERSION: Final = 1
DEFAULT_CREDENTIALS_DIR = "/var/run/mcpgate/credentials"

# A credential: a file path relative to the credentials directory, `<secret>/<key>`.
CredentialPath = str

# No credential is shorter: a value under this many characters counts as empty.
MIN_CREDENTIAL_LENGTH: Final = 4


def credential_value(text: str) -> str:
    """The credential a Secret value holds, as API.md "Secret references" has it: one
    trailing newline ignored (`kubectl create secret --from-file` adds one), and "" when
    what is left counts as empty (under `MIN_CREDENTIAL_LENGTH` characters).

    The one place that decides it: the gateway reading a mounted file asks here, and so
    do the operator's Secret index and `mcpgate render` (through `render.refs.SecretInfo`)."""
    value = text.removesuffix("\n")
    return value if len(value) >= MIN_CREDENTIAL_LENGTH else ""


# A UTF-8 character takes at most 4 bytes (and an invalid byte decodes as one character),
# so a value longer than this holds enough characters whatever its bytes are.
_SURELY_LONG_ENOUGH = 4 * MIN_CREDENTIAL_LENGTH + 1


def is_empty_value(raw: bytes) -> bool:
    """Whether raw Secret data counts as empty (`credential_value` of its text is ""). A
    large value is not decoded: the operator asks this of every Secret it sees."""
    if len(raw) > _SURELY_LONG_ENOUGH:
        return False
    return not credential_value(raw.decode("utf-8", errors="replace"))


# The auth types, outbound and inbound. They restate the API's (mcpgate.api), which the
# gateway may not import: tests/unit/gateway/test_auth_types.py keeps them equal.
AuthType = Literal["None", "ApiKey", "Bearer", "Basic", "OAuth2ClientCredentials", "AwsSigV4"]
InboundType = Literal["None", "ApiKey", "BearerPassthrough"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Config):
    insecure_skip_verify: bool = False
    ca_file: CredentialPath | None = None


class ApiKeyConfig(_Config):
    location: Literal["Header", "Query"] = "Header"
    name: str = "X-API-Key"
    prefix: str = ""
    value_file: CredentialPath


class BearerConfig(_Config):
    token_file: CredentialPath


class BasicConfig(_Config):
    username: str | None = None
    username_file: CredentialPath | None = None
    password_file: CredentialPath


class OAuth2Config(_Config):
    token_url: str
    client_id: str | None = None
    client_id_file: CredentialPath | None = None
    client_secret_file: CredentialPath
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    client_authentication: Literal["Basic", "Body"] = "Basic"
    extra_params: dict[str, str] = {}


class AwsSigV4Config(_Config):
    region: str
    service: str
    access_key_id_file: CredentialPath | None = None
    secret_access_key_file: CredentialPath | None = None
    session_token_file: CredentialPath | None = None


class AuthConfig(_Config):
    type: AuthType = "None"
    api_key: ApiKeyConfig | None = None
    bearer: BearerConfig | None = None
    basic: BasicConfig | None = None
    oauth2: OAuth2Config | None = None
    aws_sig_v4: AwsSigV4Config | None = None


class DataSourceConfig(_Config):
    name: str
    base_url: str
    headers: dict[str, str] = {}
    timeout_seconds: float = 30
    tls: TlsConfig = TlsConfig()
    auth: AuthConfig = AuthConfig()


class ParameterConfig(_Config):
    name: str
    type: Literal["String", "Number", "Integer", "Boolean", "Array", "Object"] = "String"
    description: str = ""
    required: bool = False
    enum: tuple[Any, ...] | None = None
    default: Any = None
    items_type: Literal["String", "Number", "Integer", "Boolean", "Object"] | None = None


class RequestConfig(_Config):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    body: Any = None


class ToolConfig(_Config):
    name: str
    title: str | None = None  # the display name; None: annotations.title, if any
    description: str = ""
    data_source: str
    parameters: tuple[ParameterConfig, ...] = ()
    request: RequestConfig
    # MCP annotations with the method's defaults already applied.
    annotations: dict[str, Any] = {}


class InboundConfig(_Config):
    type: InboundType = "None"
    # The key Secret's directory (relative to the credentials directory, or absolute):
    # every file in it is an accepted key.
    api_keys_dir: CredentialPath | None = None


class LimitsConfig(_Config):
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


class GatewayConfig(_Config):
    """Everything one gateway serves. Secret values never appear here."""

    version: Literal[1] = CONFIG_VERSION
    server_name: str
    namespace: str = "default"
    authorization: InboundConfig = InboundConfig()
    allowed_origins: tuple[str, ...] = ()
    data_sources: dict[str, DataSourceConfig] = {}
    tools: tuple[ToolConfig, ...] = ()
    limits: LimitsConfig = LimitsConfig()
    credentials_dir: str = DEFAULT_CREDENTIALS_DIR
    # API.md "Destinations": True lets data sources reach loopback addresses (`mcpgate up`,
    # and the gateways of an operator run with --allow-loopback-destinations, for local
    # clusters only). Absent (None) means not: the text of every other configuration, and
    # so its hash, stays as it was.
    allow_loopback_destinations: Literal[True] | None = None

    def to_json(self) -> str:
        """The stable text form written to the ConfigMap (its hash marks the pods)."""
        return self.model_dump_json(indent=2, exclude_none=True)


def load_config(path: str | Path) -> GatewayConfig:
    """Read a gateway configuration file: JSON as rendered, or gzipped JSON (the operator
    stores configurations over 256 KiB so, in the ConfigMap's binaryData)."""
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return GatewayConfig.model_validate_json(data)


_GZIP_MAGIC: Final = b"\x1f\x8b"
