"""MCP over JSON-RPC, stateless: one request in, one response out.

The gateway speaks the newest protocol revision of the official SDK
(2026-07-28, reached through `server/discover`, no session and no
`initialize`) and the earlier revisions through `initialize`. No state is kept
between requests, so any replica can answer any request.

Wire facts (checked against the SDK's client and server): on 2026-07-28 every
result carries `resultType: complete`, and `tools/list` and `server/discover`
also `ttlMs` and `cacheScope`; errors are answered with the HTTP statuses the
SDK's own server uses (400 for malformed input, 404 for an unknown method),
while earlier revisions answer JSON-RPC errors with 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final

from mcpgate.gateway.errors import UnknownToolError
from mcpgate.gateway.inbound import Accepted
from mcpgate.gateway.tools import ToolRunner

__all__ = [
    "DEFAULT_VERSION",
    "HANDSHAKE_VERSIONS",
    "MODERN_VERSION",
    "SUPPORTED_VERSIONS",
    "UNAUTHORIZED",
    "McpHandler",
    "Reply",
    "error_body",
]

MODERN_VERSION: Final = "2026-07-28"
HANDSHAKE_VERSIONS: Final = ("2025-11-25", "2025-06-18", "2025-03-26")
SUPPORTED_VERSIONS: Final = (MODERN_VERSION, *HANDSHAKE_VERSIONS)
DEFAULT_VERSION: Final = "2025-03-26"  # what a request without MCP-Protocol-Version means

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
UNSUPPORTED_VERSION: Final = -32022
UNAUTHORIZED: Final = -32030
"""The body code of a 401 or 403 answer. In the server-error range, and defined by neither
official SDK (-32001 is their RequestTimeout; they use -32000, -32001, -32020..-32022 and
-32042; the spec -32002)."""

_MODERN_STATUS: Final = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    METHOD_NOT_FOUND: 404,
    UNSUPPORTED_VERSION: 400,
}
_CAPABILITIES: Final = {"tools": {"listChanged": False}}
_ANONYMOUS: Final = Accepted()  # mode None's caller


def _version() -> str:
    try:
        return metadata.version("mcpgate")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and a JSON body (None: 202 with no body, for notifications)."""

    status: int
    body: dict[str, Any] | None


def error_body(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class McpHandler:
    """Answers one JSON-RPC message for one protocol revision."""

    def __init__(self, server_name: str, runner: ToolRunner) -> None:
        self._runner = runner
        self._server_info = {"name": server_name, "version": _version()}

    def _error(self, version: str, request_id: Any, code: int, message: str) -> Reply:
        status = _MODERN_STATUS.get(code, 200) if version == MODERN_VERSION else 200
        if request_id is None:
            status = 400  # a client cannot match a 200 error without an id to a request
        return Reply(status, error_body(request_id, code, message))

    def _result(self, version: str, request_id: Any, result: dict[str, Any]) -> Reply:
        if version == MODERN_VERSION:
            result["resultType"] = "complete"
        return Reply(200, {"jsonrpc": "2.0", "id": request_id, "result": result})

    async def handle(self, message: Any, version: str, accepted: Accepted = _ANONYMOUS) -> Reply:
        """The reply to one message; `accepted` is what inbound authorization said of
        its caller."""
        if isinstance(message, list):
            return Reply(400, error_body(None, INVALID_REQUEST, "batch requests are not supported"))
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return Reply(400, error_body(None, INVALID_REQUEST, "not a JSON-RPC 2.0 message"))
        method = message.get("method")
        request_id = message.get("id")
        if method is None and ("result" in message or "error" in message):
            return Reply(202, None)  # a response from the client: nothing to answer
        if not isinstance(method, str):
            return self._error(version, request_id, INVALID_REQUEST, "method must be a string")
        if "id" not in message:
            return Reply(202, None)  # notifications need no answer in a stateless server
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return Reply(400, error_body(None, INVALID_REQUEST, "id must be a string or number"))
        params = message.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return self._error(version, request_id, INVALID_PARAMS, "params must be an object")

        if method == "tools/call":
            return await self._call(version, request_id, params, accepted)
        if method == "tools/list":
            if params.get("cursor") is not None:
                # The gateway lists every tool at once and issues no cursor.
                return self._error(
                    version, request_id, INVALID_PARAMS, "invalid cursor: this server issues none"
                )
            result: dict[str, Any] = {"tools": self._runner.list_tools()}
            if version == MODERN_VERSION:
                result.update(ttlMs=0, cacheScope="private")
            return self._result(version, request_id, result)
        if method == "initialize":
            return self._result(version, request_id, self._initialize(params))
        if method == "server/discover":
            return self._result(
                MODERN_VERSION,
                request_id,
                {
                    "supportedVersions": [MODERN_VERSION],
                    "capabilities": _CAPABILITIES,
                    "ttlMs": 0,
                    "cacheScope": "private",
                    "_meta": {"io.modelcontextprotocol/serverInfo": self._server_info},
                },
            )
        if method == "ping":
            return self._result(version, request_id, {})
        return self._error(version, request_id, METHOD_NOT_FOUND, f"method not found: {method}")

    def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        asked = params.get("protocolVersion")
        agreed = asked if asked in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
        return {
            "protocolVersion": agreed,
            "capabilities": _CAPABILITIES,
            "serverInfo": self._server_info,
        }

    async def _call(
        self, version: str, request_id: Any, params: dict[str, Any], accepted: Accepted
    ) -> Reply:
        name = params.get("name")
        arguments = params.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            return self._error(
                version, request_id, INVALID_PARAMS, "params.arguments must be an object"
            )
        try:
            result = await self._runner.call(
                name, arguments, request_id=request_id, accepted=accepted
            )
        except UnknownToolError:
            if not isinstance(name, str):
                message = "params.name must be a string"
            else:
                message = f"unknown tool: {name}"
            return self._error(version, request_id, INVALID_PARAMS, message)
        return self._result(version, request_id, result)
