"""`HttpApiDataSource`: a downstream HTTP API and how to authenticate to it."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from mcpgate.api.common import (
    API_VERSION,
    Condition,
    KubeModel,
    ObjectMeta,
    SecretKeyRef,
    ShortString,
    cel,
    list_map,
)

__all__ = [
    "AUTH_BLOCKS",
    "RESERVED_HEADERS",
    "ApiKeyAuth",
    "AuthType",
    "AwsSigV4Auth",
    "BasicAuth",
    "BearerAuth",
    "DataSourceAuth",
    "HttpApiDataSource",
    "HttpApiDataSourceSpec",
    "HttpApiDataSourceStatus",
    "OAuth2ClientCredentialsAuth",
    "TlsConfig",
    "check_header_names",
    "is_loopback_host",
]

AuthType = Literal["None", "ApiKey", "Bearer", "Basic", "OAuth2ClientCredentials", "AwsSigV4"]

# Headers that auth, the transport or the gateway own: no template may set them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Authorization",
        "Cookie",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "x-api-key",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "X-Amz-Content-Sha256",
    )
)

_URL = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=_HEADER_NAME)]
HeaderMap = Annotated[
    dict[str, Annotated[str, StringConstraints(max_length=4096)]],
    Field(max_length=64),
]


def is_loopback_host(host: str) -> bool:
    """Whether `host` (from a URL, brackets stripped) names this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Control characters are not allowed in a header value (RFC 9110 5.5), tab aside.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_header_names(headers: dict[str, str], extra_reserved: str | None = None) -> None:
    """Refuse header names that are not HTTP tokens or that mcpgate owns."""
    reserved = RESERVED_HEADERS | ({extra_reserved.lower()} if extra_reserved else set())
    for name, value in headers.items():
        if not name or any(c in name for c in ' \t\r\n:()<>@,;\\"/[]?={}'):
            raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        if name.lower() in reserved:
            raise ValueError(
                f"header {name!r} is reserved (auth or the transport sets it); remove it"
            )
        if _CONTROL.search(value):
            raise ValueError(
                f"header {name!r} holds a control character (a line break, NUL, ...);"
                " only tab is allowed"
            )


def _check_http_url(url: str, *, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{what} must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"{what} has no host: {url!r}")
    if "@" in parts.netloc:
        raise ValueError(f"{what} must not hold a user or password; use auth instead")
    if any(c.isspace() for c in url):
        raise ValueError(f"{what} must not hold white space")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"{what} has an invalid port: {url!r}") from None
    return url


class TlsConfig(KubeModel):
    """How the gateway checks the API's certificate."""

    insecure_skip_verify: bool = False
    """Accept any certificate. For tests only: it makes man-in-the-middle attacks trivial."""
    ca_secret_ref: SecretKeyRef | None = None
    """A PEM bundle of CAs to trust instead of the system's."""


class ApiKeyAuth(KubeModel):
    """An API key sent as a header or a query parameter."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    # `in` is a CEL keyword: Kubernetes exposes the field as `__in__`.
                    "self.__in__ == 'Header' || !has(self.prefix) || self.prefix == ''",
                    "prefix applies to a header only: remove it, or use in: Header",
                    ".prefix",
                )
            ]
        },
    )

    in_: Literal["Header", "Query"] = Field(default="Header", alias="in")
    """Where the key goes: Header or Query."""
    name: HeaderName = "X-API-Key"
    """The header or query parameter name."""
    prefix: Annotated[str, StringConstraints(max_length=64)] = ""
    """Text put before the value, e.g. `Token ` (Header only)."""
    value_secret_ref: SecretKeyRef
    """The key itself."""

    @model_validator(mode="after")
    def _prefix_in_header(self) -> ApiKeyAuth:
        if self.prefix and self.in_ != "Header":
            raise ValueError("prefix applies to a header only: remove it, or use in: Header")
        return self


class BearerAuth(KubeModel):
    """`Authorization: Bearer <token>`."""

    token_secret_ref: SecretKeyRef
    """The token."""


class BasicAuth(KubeModel):
    """HTTP Basic authentication (RFC 7617)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.username) != has(self.usernameSecretRef)",
                    "exactly one of username and usernameSecretRef must be set",
                )
            ]
        }
    )

    username: ShortString | None = None
    """The user name, when it is not secret."""
    username_secret_ref: SecretKeyRef | None = None
    """The user name, from a Secret."""
    password_secret_ref: SecretKeyRef
    """The password."""

    @model_validator(mode="after")
    def _one_username(self) -> BasicAuth:
        if (self.username is None) == (self.username_secret_ref is None):
            raise ValueError("exactly one of username and usernameSecretRef must be set")
        return self


class OAuth2ClientCredentialsAuth(KubeModel):
    """OAuth 2.0 client credentials grant (RFC 6749 section 4.4)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.clientId) != has(self.clientIdSecretRef)",
                    "exactly one of clientId and clientIdSecretRef must be set",
                ),
                cel(
                    "self.tokenUrl.startsWith('https://')"
                    " || self.tokenUrl.matches('^http://(localhost|127(\\\\.[0-9]+){3}|\\\\[::1\\\\])(:[0-9]+)?([/?].*)?$')",
                    "tokenUrl must use https (plain http only to a loopback host)",
                    ".tokenUrl",
                ),
            ]
        }
    )

    token_url: _URL
    """The token endpoint. https, or plain http to a loopback host."""
    client_id: ShortString | None = None
    """The client id, when it is not secret."""
    client_id_secret_ref: SecretKeyRef | None = None
    """The client id, from a Secret."""
    client_secret_secret_ref: SecretKeyRef
    """The client secret."""
    scopes: Annotated[
        list[Annotated[str, StringConstraints(max_length=256)]], Field(max_length=64)
    ] = []
    """Scopes to ask for, sent space-separated as `scope`."""
    audience: ShortString | None = None
    """Sent as `audience` when set."""
    client_authentication: Literal["Basic", "Body"] = "Basic"
    """How the client authenticates to the token endpoint: Basic (client_secret_basic)
    or Body (client_secret_post)."""
    extra_params: Annotated[
        dict[str, Annotated[str, StringConstraints(max_length=1024)]], Field(max_length=32)
    ] = {}
    """Extra form fields for the token request."""

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, url: str) -> str:
        _check_http_url(url, what="tokenUrl")
        parts = urlsplit(url)
        if parts.fragment:
            raise ValueError("tokenUrl must not hold a #fragment")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            raise ValueError("tokenUrl must use https (plain http only to a loopback host)")
        return url

    @model_validator(mode="after")
    def _one_client_id(self) -> OAuth2ClientCredentialsAuth:
        if (self.client_id is None) == (self.client_id_secret_ref is None):
            raise ValueError("exactly one of clientId and clientIdSecretRef must be set")
        reserved = {"grant_type", "client_id", "client_secret", "scope", "audience"}
        clash = sorted(reserved & set(self.extra_params))
        if clash:
            raise ValueError(f"extraParams must not set {', '.join(clash)}: mcpgate sets them")
        return self


class AwsSigV4Auth(KubeModel):
    """AWS Signature Version 4."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.accessKeyIdSecretRef) == has(self.secretAccessKeySecretRef)",
                    "set both accessKeyIdSecretRef and secretAccessKeySecretRef, or neither",
                ),
                cel(
                    "!has(self.sessionTokenSecretRef) || has(self.accessKeyIdSecretRef)",
                    "sessionTokenSecretRef needs accessKeyIdSecretRef and secretAccessKeySecretRef",
                ),
            ]
        }
    )

    region: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
    """The AWS region, e.g. eu-west-1."""
    service: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9.-]+$")
    ]
    """The signing name of the service, e.g. execute-api."""
    access_key_id_secret_ref: SecretKeyRef | None = None
    """The access key id. Omit both key refs to use the gateway's default credential chain."""
    secret_access_key_secret_ref: SecretKeyRef | None = None
    """The secret access key."""
    session_token_secret_ref: SecretKeyRef | None = None
    """A session token, for temporary credentials."""

    @model_validator(mode="after")
    def _keys_together(self) -> AwsSigV4Auth:
        if (self.access_key_id_secret_ref is None) != (self.secret_access_key_secret_ref is None):
            raise ValueError(
                "set both accessKeyIdSecretRef and secretAccessKeySecretRef, or neither"
            )
        if self.session_token_secret_ref is not None and self.access_key_id_secret_ref is None:
            raise ValueError(
                "sessionTokenSecretRef needs accessKeyIdSecretRef and secretAccessKeySecretRef"
            )
        return self


# auth.type -> the one block that may (and must) be present: (attribute, wire name).
AUTH_BLOCKS: dict[str, tuple[str, str]] = {
    "ApiKey": ("api_key", "apiKey"),
    "Bearer": ("bearer", "bearer"),
    "Basic": ("basic", "basic"),
    "OAuth2ClientCredentials": ("oauth2_client_credentials", "oauth2ClientCredentials"),
    "AwsSigV4": ("aws_sig_v4", "awsSigV4"),
}


class DataSourceAuth(KubeModel):
    """How the gateway authenticates to the API: `type` and exactly its block."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"(self.type == '{auth_type}') == has(self.{block})",
                    f"auth.{block} must be set when auth.type is {auth_type}, and only then",
                )
                for auth_type, (_, block) in AUTH_BLOCKS.items()
            ]
        }
    )

    type: AuthType = "None"
    """None, ApiKey, Bearer, Basic, OAuth2ClientCredentials or AwsSigV4."""
    api_key: ApiKeyAuth | None = None
    """Settings for type ApiKey."""
    bearer: BearerAuth | None = None
    """Settings for type Bearer."""
    basic: BasicAuth | None = None
    """Settings for type Basic."""
    oauth2_client_credentials: OAuth2ClientCredentialsAuth | None = Field(
        default=None, alias="oauth2ClientCredentials"
    )
    """Settings for type OAuth2ClientCredentials."""
    aws_sig_v4: AwsSigV4Auth | None = Field(default=None, alias="awsSigV4")
    """Settings for type AwsSigV4."""

    @model_validator(mode="after")
    def _exactly_the_matching_block(self) -> DataSourceAuth:
        present = {wire for attr, wire in AUTH_BLOCKS.values() if getattr(self, attr) is not None}
        wanted = AUTH_BLOCKS[self.type][1] if self.type in AUTH_BLOCKS else None
        if wanted and wanted not in present:
            raise ValueError(f"auth.type is {self.type}: auth.{wanted} is required")
        extra = sorted(present - {wanted} if wanted else present)
        if extra:
            raise ValueError(
                f"auth.type is {self.type}: remove auth.{', auth.'.join(extra)}"
                " (only the block matching auth.type may be set)"
            )
        return self


class HttpApiDataSourceSpec(KubeModel):
    """Where the API lives and how to authenticate to it."""

    base_url: Annotated[
        str,
        StringConstraints(min_length=1, max_length=2048),
        Field(json_schema_extra={"pattern": r"^https?://[^/?#@\s]+(/[^?#\s]*)?$"}),
    ]
    """The API's base URL, http or https, with no user, query or fragment. Tool paths are
    appended to its path."""
    headers: HeaderMap = {}
    """Static headers sent on every request (not secret; no reserved header)."""
    timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 30
    """Bounds the whole call, retries included."""
    tls: TlsConfig | None = None
    """TLS settings for https APIs."""
    # The default names its type: a real API server checks a default against the CEL rules
    # of its schema without filling in nested defaults first.
    auth: DataSourceAuth = Field(
        default_factory=DataSourceAuth, json_schema_extra={"default": {"type": "None"}}
    )
    """How the gateway authenticates to the API."""

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        _check_http_url(url, what="baseUrl")
        parts = urlsplit(url)
        if parts.query or url.endswith("?"):
            raise ValueError("baseUrl must not hold a ?query; put parameters in tools")
        if parts.fragment or "#" in url:
            raise ValueError("baseUrl must not hold a #fragment")
        return url

    @model_validator(mode="after")
    def _headers(self) -> HttpApiDataSourceSpec:
        key = self.auth.api_key
        own = key.name if key is not None and key.in_ == "Header" else None
        try:
            check_header_names(self.headers, own)
        except ValueError as err:
            raise ValueError(f"headers: {err}") from None
        return self


class HttpApiDataSourceStatus(KubeModel):
    """What the operator last saw of this data source."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = None
    """The `metadata.generation` the status was computed from."""
    conditions: Annotated[
        list[Condition], Field(max_length=16, json_schema_extra=list_map("type"))
    ] = []
    """Ready and ResolvedRefs."""


class HttpApiDataSource(KubeModel):
    """A downstream HTTP API: its base URL and how to authenticate to it."""

    api_version: Literal["mcpgate.io/v1alpha1"] = API_VERSION
    kind: Literal["HttpApiDataSource"] = "HttpApiDataSource"
    metadata: ObjectMeta
    spec: HttpApiDataSourceSpec
    status: HttpApiDataSourceStatus | None = None
