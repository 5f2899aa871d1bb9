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
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx
import orjson

from mcpgate.gateway.arguments import ToolArguments
from mcpgate.gateway.audit import AuditLog, Outcome
from mcpgate.gateway.auth import TokenCache
from mcpgate.gateway.config import GatewayConfig, ToolConfig
from mcpgate.gateway.credentials import CredentialStore
from mcpgate.gateway.destinations import Destinations
from mcpgate.gateway.errors import GatewayError, ToolInputError, UnknownToolError, UpstreamError
from mcpgate.gateway.inbound import Accepted
from mcpgate.gateway.observability import Metrics, caller_text, redact_text
from mcpgate.gateway.outbound import DataSourceClient, UpstreamResponse
from mcpgate.gateway.redaction import Redaction, redaction_of
from mcpgate.gateway.templates import CompiledTool
from mcpgate.gateway.transport import NoCookies

__all__ = ["EXCERPT_CHARS", "ToolRunner"]

EXCERPT_CHARS = 2048  # of the downstream body, in a tool error
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


def _listed(tool: ToolConfig, input_schema: dict[str, Any]) -> dict[str, Any]:
    """A tool as `tools/list` shows it; its title (its own, else `annotations.title`) at
    the top level, where clients look first (MCP 2025-06-18 and later)."""
    listed: dict[str, Any] = {"name": tool.name}
    title = tool.title or tool.annotations.get("title")
    if isinstance(title, str) and title:
        listed["title"] = title
    listed.update(
        description=tool.description,
        inputSchema=input_schema,
        annotations=dict(tool.annotations),
    )
    return listed


class ToolRunner:
    """Owns the compiled tools and one pooled client per data source."""

    def __init__(self, config: GatewayConfig, credentials: CredentialStore, metrics: Metrics):
        self._credentials = credentials
        self._metrics = metrics
        self._audit = AuditLog(config.server_name, config.namespace)
        self._secrets: tuple[tuple[str, ...], list[str]] = ((), [])  # values -> their forms
        self._passthrough = config.authorization.type == "BearerPassthrough"
        self._basic = [
            s.auth.basic for s in config.data_sources.values() if s.auth.basic is not None
        ]
        destinations = Destinations(allow_loopback=bool(config.allow_loopback_destinations))
        # Token endpoints are trusted as data sources are: by the system's CA store, and
        # under the same destination rule.
        self.token_client = httpx.AsyncClient(
            follow_redirects=False,
            cookies=NoCookies(),
            timeout=30.0,
            transport=destinations.httpx_transport(verify=ssl.create_default_context()),
        )
        self.tokens = TokenCache(on_fetch=self._count_token_request)
        self.clients: dict[str, DataSourceClient] = {
            name: DataSourceClient(
                source,
                credentials,
                self.tokens,
                self.token_client,
                max_response_bytes=config.limits.max_response_bytes,
                destinations=destinations,
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
            _listed(tool, self.tools[tool.name].arguments.input_schema) for tool in config.tools
        ]

    def _count_token_request(self, token_url: str, ok: bool) -> None:
        self._metrics.token_requests.labels(token_url, "ok" if ok else "error").inc()

    def known_secrets(self) -> list[str]:
        """Every credential value seen so far (files and fetched tokens), with the forms
        they travel in (percent-encoded in a query, base64 in a Basic header): an API that
        echoes a request back must not get them shown. The redactor asks on every log
        line, an audit line per call among them: the forms are worked out again only when
        the values changed."""
        values = (
            *self._credentials.known_values(),
            *self.tokens.known_values(),
            *(value for client in self.clients.values() for value in client.known_values()),
        )
        if values == self._secrets[0]:
            return self._secrets[1]
        found = set(values)  # their encoded forms are redaction.py's to find
        for basic in self._basic:
            try:
                user = basic.username or self._credentials.read(basic.username_file or "")
                password = self._credentials.read(basic.password_file)
            except GatewayError:
                continue
            pair = f"{user}:{password}".encode()
            for encoded in (base64.b64encode(pair), base64.urlsafe_b64encode(pair)):
                found.update((encoded.decode(), encoded.rstrip(b"=").decode()))
        self._secrets = (values, sorted(found))
        return self._secrets[1]

    def list_tools(self) -> list[dict[str, Any]]:
        return self._tool_list

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        await self.token_client.aclose()

    async def call(
        self, name: Any, arguments: Any, *, request_id: Any, accepted: Accepted
    ) -> dict[str, Any]:
        """One tools/call, counted, written to the audit log, and logged with its cause when
        it fails. Raises UnknownToolError when `name` names no tool (or is no string); every
        other failure is a result."""
        started = time.perf_counter()
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            self._audit.write(
                tool=caller_text(name) if isinstance(name, str) else None,
                data_source=None,
                caller=accepted.caller,
                outcome="invalidArguments",
                status=None,
                seconds=time.perf_counter() - started,
                request_id=request_id,
            )
            raise UnknownToolError("unknown tool")
        client = tool.client
        outcome = "ok"  # the metric's label
        status: int | None = None  # the downstream answer's
        cause = ""  # why it failed, for the log: never a body, a tool error's text or a value
        try:
            try:
                prepared = tool.request.prepare(tool.arguments.check(arguments))
            except ToolInputError as err:
                outcome, cause = "invalid_arguments", f"invalid arguments: {err}"
                return _error_result(f"invalid arguments for tool {name}: {err}")
            except RecursionError:  # JSON nested deeper than the text form can be written
                outcome, cause = "invalid_arguments", "invalid arguments: nested too deeply"
                return _error_result(f"invalid arguments for tool {name}: nested too deeply")
            forward = accepted.forward_authorization if self._passthrough else None
            if client.config.auth.type != "None":
                forward = None  # the caller's token never reaches an API with its own auth
            try:
                response = await client.call(prepared, forwarded_authorization=forward)
            except GatewayError as err:
                outcome, cause = "upstream_error", err.describe()
                status = err.status if isinstance(err, UpstreamError) else None
                return _error_result(self._redact(err.describe(), forward))
            status = response.status
            if not 200 <= status < 300:  # a 1xx final answer (101) is no result either
                outcome, cause = "tool_error", f"data source {client.name} answered {status}"
                return _error_result(self._status_text(client.name, response, forward))
            return _ok_result(response)
        except BaseException as err:  # a bug, or the call cancelled: still counted and told
            outcome, cause = "upstream_error", f"{type(err).__name__} in the gateway"
            raise
        finally:
            seconds = time.perf_counter() - started
            self._metrics.record_call(name, client.name, outcome, seconds)
            self._audit.write(
                tool=name,
                data_source=client.name,
                caller=accepted.caller,
                outcome=_AUDIT_OUTCOMES[outcome],
                status=status,
                seconds=seconds,
                request_id=request_id,
            )
            if outcome != "ok":
                _log_failure(name, client.name, outcome, status, cause, seconds)

    def _status_text(self, source: str, response: UpstreamResponse, forward: str | None) -> str:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        head = f"data source {source} answered {response.status} {phrase}".rstrip()
        if 300 <= response.status < 400:
            head += " (redirects are not followed)"
        # The whole body is redacted before it is cut (redaction.py): wherever the cut
        # falls, no piece of a value survives it.
        body = response.body.decode("utf-8", errors="replace")
        excerpt = self._redaction(forward).excerpt(body, EXCERPT_CHARS).strip()
        text = f"{head}: {excerpt}" if excerpt else head
        return self._redact(text, forward)

    def _secrets_of_call(self, forward: str | None) -> tuple[str, ...]:
        secrets = self.known_secrets()
        if forward:
            return (*secrets, forward, *forward.split()[1:])
        return tuple(secrets)

    def _redaction(self, forward: str | None) -> Redaction:
        return redaction_of(self._secrets_of_call(forward))

    def _redact(self, text: str, forward: str | None) -> str:
        return redact_text(text, self._secrets_of_call(forward))


# The metric's outcome labels -> the audit line's outcomes.
_AUDIT_OUTCOMES: dict[str, Outcome] = {
    "ok": "ok",
    "invalid_arguments": "invalidArguments",
    "upstream_error": "toolError",
    "tool_error": "toolError",
}


def _log_failure(
    tool: str, source: str, outcome: str, status: int | None, cause: str, seconds: float
) -> None:
    """The ordinary log line of a failed call: what went wrong and where, how long it took.
    Never the downstream body nor the tool error's text (an API may echo arguments)."""
    milliseconds = round(seconds * 1000, 3)
    log.info(
        "tool %s failed after %.1f ms: %s",
        tool,
        milliseconds,
        cause,
        extra={
            "fields": {
                "tool": tool,
                "dataSource": source,
                "outcome": _AUDIT_OUTCOMES[outcome],
                "status": status,
                "durationMs": milliseconds,
            }
        },
    )
