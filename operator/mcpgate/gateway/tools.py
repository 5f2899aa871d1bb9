"""Running tools: arguments -> HTTP request -> MCP tool result.

The results follow API.md's "Tool results": a 2xx body as one text content (a
JSON object body is also the `structuredContent`); any failure an `isError`
result whose short message names the data source and the cause, with at most
2 KiB of the downstream body and every known credential value removed.
"""

from __future__ import annotations

import base64
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import orjson

from mcpgate.gateway.arguments import ToolArguments
from mcpgate.gateway.auth import TokenCache
from mcpgate.gateway.config import GatewayConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.errors import GatewayError, ToolInputError, UnknownToolError
from mcpgate.gateway.observability import Metrics, redact_text
from mcpgate.gateway.outbound import DataSourceClient, UpstreamResponse
from mcpgate.gateway.templates import CompiledTool
from mcpgate.gateway.transport import NoCookies

__all__ = ["EXCERPT_BYTES", "ToolRunner"]

EXCERPT_BYTES = 2048
log = logging.getLogger("mcpgate.gateway.tools")


def _error_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _ok_result(response: UpstreamResponse) -> dict[str, Any]:
    text = response.body.decode("utf-8", errors="replace")
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False}
    if response.body[:1] == b"{" or response.body.lstrip()[:1] == b"{":
        try:
            parsed = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            result["structuredContent"] = parsed
    return result


@dataclass(frozen=True, slots=True)
class _Tool:
    """A tool as the runner calls it: its arguments checked, its request filled in, sent
    through its data source's client."""

    arguments: ToolArguments
    request: CompiledTool
    client: DataSourceClient


class ToolRunner:
    """Owns the compiled tools and one pooled client per data source."""

    def __init__(self, config: GatewayConfig, credentials: CredentialStore, metrics: Metrics):
        self._credentials = credentials
        self._metrics = metrics
        self._passthrough = config.authorization.type == "BearerPassthrough"
        self._basic = [
            s.auth.basic for s in config.data_sources.values() if s.auth.basic is not None
        ]
        # Token endpoints are trusted as data sources are: by the system's CA store.
        self.token_client = httpx.AsyncClient(
            follow_redirects=False,
            cookies=NoCookies(),
            timeout=30.0,
            verify=ssl.create_default_context(),
        )
        self.tokens = TokenCache(on_fetch=self._count_token_request)
        self.clients: dict[str, DataSourceClient] = {
            name: DataSourceClient(
                source,
                credentials,
                self.tokens,
                self.token_client,
                max_response_bytes=config.limits.max_response_bytes,
            )
            for name, source in config.data_sources.items()
        }
        self.tools = {
            tool.name: _Tool(
                ToolArguments(tool),
                CompiledTool(tool, config.data_sources[tool.data_source]),
                self.clients[tool.data_source],
            )
            for tool in config.tools
        }
        self._tool_list = [
            {
                "name": tool.name,
                "description": tool.description,
                "inputSchema": self.tools[tool.name].arguments.input_schema,
                "annotations": dict(tool.annotations),
            }
            for tool in config.tools
        ]

    def _count_token_request(self, token_url: str, ok: bool) -> None:
        self._metrics.token_requests.labels(token_url, "ok" if ok else "error").inc()

    def known_secrets(self) -> list[str]:
        """Every credential value seen so far (files and fetched tokens), with the forms
        they travel in (percent-encoded in a query, base64 in a Basic header): an API that
        echoes a request back must not get them shown."""
        values = [*self._credentials.known_values(), *self.tokens.known_values()]
        found = set(values)
        for value in values:
            found.update((quote(value, safe=""), quote_plus(value)))
        for basic in self._basic:
            try:
                user = basic.username or self._credentials.read(basic.username_file or "")
                password = self._credentials.read(basic.password_file)
            except GatewayError:
                continue
            found.add(base64.b64encode(f"{user}:{password}".encode()).decode())
        return list(found)

    def list_tools(self) -> list[dict[str, Any]]:
        return self._tool_list

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        await self.token_client.aclose()

    async def call(
        self, name: str, arguments: Any, *, caller_authorization: str | None = None
    ) -> dict[str, Any]:
        """One tools/call. Raises UnknownToolError; every other failure is a result."""
        tool = self.tools.get(name)
        if tool is None:
            raise UnknownToolError(name)
        client = tool.client
        source_name = client.name
        started = time.perf_counter()
        outcome = "ok"
        try:
            try:
                prepared = tool.request.prepare(tool.arguments.check(arguments))
            except ToolInputError as err:
                outcome = "invalid_arguments"
                return _error_result(f"invalid arguments for tool {name}: {err}")
            except RecursionError:  # JSON nested deeper than the text form can be written
                outcome = "invalid_arguments"
                return _error_result(f"invalid arguments for tool {name}: nested too deeply")
            forward = caller_authorization if self._passthrough else None
            if client.config.auth.type != "None":
                forward = None  # the caller's token never reaches an API with its own auth
            try:
                response = await client.call(prepared, forwarded_authorization=forward)
            except GatewayError as err:
                outcome = "upstream_error"
                return _error_result(self._redact(err.describe(), forward))
            if response.status >= 300:
                outcome = "tool_error"
                return _error_result(self._status_text(source_name, response, forward))
            return _ok_result(response)
        finally:
            self._metrics.record_call(name, source_name, outcome, time.perf_counter() - started)
            if outcome != "ok":
                log.info("tool call failed", extra={"fields": {"tool": name, "outcome": outcome}})

    def _status_text(self, source: str, response: UpstreamResponse, forward: str | None) -> str:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        head = f"data source {source} answered {response.status} {phrase}".rstrip()
        if 300 <= response.status < 400:
            head += " (redirects are not followed)"
        excerpt = response.body[:EXCERPT_BYTES].decode("utf-8", errors="replace").strip()
        text = f"{head}: {excerpt}" if excerpt else head
        return self._redact(text, forward)

    def _redact(self, text: str, forward: str | None) -> str:
        secrets: Iterable[str] = self.known_secrets()
        if forward:
            secrets = [*secrets, forward, *forward.split()[1:]]
        return redact_text(text, secrets)
