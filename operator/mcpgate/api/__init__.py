"""The public API of mcpgate: the `McpServer` and `HttpApiDataSource` resources as
pydantic models, and the CustomResourceDefinitions generated from them."""

from mcpgate.api.common import (
    API_GROUP,
    API_VERSION,
    CRD_VERSION,
    Condition,
    SecretKeyRef,
    SecretRef,
)
from mcpgate.api.datasource import (
    RESERVED_HEADERS,
    DataSourceAuth,
    HttpApiDataSource,
    HttpApiDataSourceSpec,
    HttpApiDataSourceStatus,
)
from mcpgate.api.mcpserver import (
    McpServer,
    McpServerSpec,
    McpServerStatus,
    Parameter,
    RequestTemplate,
    Tool,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CRD_VERSION",
    "RESERVED_HEADERS",
    "Condition",
    "DataSourceAuth",
    "HttpApiDataSource",
    "HttpApiDataSourceSpec",
    "HttpApiDataSourceStatus",
    "McpServer",
    "McpServerSpec",
    "McpServerStatus",
    "Parameter",
    "RequestTemplate",
    "SecretKeyRef",
    "SecretRef",
    "Tool",
]
