"""Builders of the objects tests apply, render or validate: McpServer, HttpApiDataSource and
Secret bodies as plain dicts (the wire form), small and valid by default.

    mcp_server("srv", tools=[tool("get_item", "api")], authorization=api_key("keys"))
    data_source("api", auth=bearer("api-token", "token"))
    secret("api-token", {"token": "fake-token-value"})

Each takes `namespace` (left out of the metadata when None) and keyword extras for the
spec, so a test states only what it is about.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mcpgate.api import API_VERSION

__all__ = [
    "api_key",
    "aws",
    "basic",
    "bearer",
    "data_source",
    "mcp_server",
    "secret",
    "tool",
    "wire",
]

Body = dict[str, Any]


def _metadata(name: str, namespace: str | None, extra: Body | None) -> Body:
    meta: Body = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {**meta, **(extra or {})}


def tool(
    name: str = "get_item",
    data_source: str = "api",
    *,
    path: str = "/items/:id",
    method: str | None = None,
    parameters: list[Body] | None = None,
    description: str = "",
    **request: Any,
) -> Body:
    """A tool; `parameters` defaults to each `:name` of the path, as a required String."""
    if parameters is None:
        names = [part[1:] for part in path.split("/") if part.startswith(":")]
        parameters = [{"name": n, "type": "String", "required": True} for n in names]
    wanted: Body = {"path": path, **request}
    if method is not None:
        wanted["method"] = method
    body: Body = {"name": name, "dataSource": data_source, "request": wanted}
    if parameters:
        body["parameters"] = parameters
    if description:
        body["description"] = description
    return body


def api_key(holder: str = "keys", type_: str = "ApiKey") -> Body:
    """Inbound authorization by the keys of a whole Secret (ApiKey or BearerPassthrough)."""
    return {"type": type_, "apiKeySecretRef": {"name": holder}}


def mcp_server(
    name: str = "srv",
    *,
    namespace: str | None = None,
    tools: list[Body] | None = None,
    authorization: Body | None = None,
    metadata: Body | None = None,
    **spec: Any,
) -> Body:
    """An McpServer; one `tool()` unless `tools` is given."""
    body: Body = {"tools": [tool()] if tools is None else tools, **spec}
    if authorization is not None:
        body["authorization"] = authorization
    return {
        "apiVersion": API_VERSION,
        "kind": "McpServer",
        "metadata": _metadata(name, namespace, metadata),
        "spec": body,
    }


def bearer(holder: str = "api-token", key: str = "token") -> Body:
    return {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": holder, "key": key}}}


def basic(holder: str = "creds", key: str = "password", username: str = "svc") -> Body:
    ref = {"name": holder, "key": key}
    return {"type": "Basic", "basic": {"username": username, "passwordSecretRef": ref}}


def aws(*, keys: bool = True, holder: str = "aws") -> Body:
    """AwsSigV4; without `keys`, the ambient credential chain."""
    block: Body = {"region": "eu-west-1", "service": "execute-api"}
    if keys:
        block["accessKeyIdSecretRef"] = {"name": holder, "key": "id"}
        block["secretAccessKeySecretRef"] = {"name": holder, "key": "secret"}
    return {"type": "AwsSigV4", "awsSigV4": block}


def data_source(
    name: str = "api",
    *,
    namespace: str | None = None,
    base_url: str | None = None,
    auth: Body | None = None,
    metadata: Body | None = None,
    **spec: Any,
) -> Body:
    """An HttpApiDataSource at `https://<name>.example.com/api` unless `base_url` says."""
    body: Body = {"baseUrl": base_url or f"https://{name}.example.com/api", **spec}
    if auth is not None:
        body["auth"] = auth
    return {
        "apiVersion": API_VERSION,
        "kind": "HttpApiDataSource",
        "metadata": _metadata(name, namespace, metadata),
        "spec": body,
    }


def secret(
    name: str,
    values: dict[str, str],
    *,
    namespace: str | None = None,
    type_: str = "Opaque",
) -> Body:
    """A Secret as a manifest writes it (`stringData`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(name, namespace, None),
        "type": type_,
        "stringData": values,
    }


def wire(model: BaseModel) -> Body:
    """A model as the API server stores it: aliases, no unset optional fields."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
