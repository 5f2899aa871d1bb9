"""A tool's request templates, compiled once and filled in on every call.

A tool's `request` (path, query, headers, body) holds `:name` placeholders that take the
call's arguments (API.md, "Parameter mapping"). This is where caller-controlled text meets
the outbound request, so it is where injection is stopped: a path value is one
percent-encoded segment and can never change the host or climb out of the base path, query
keys and values are encoded so that `&`, `=`, `#` and `+` stay data, header values never
carry CR, LF or NUL, and body values are typed JSON, never spliced JSON text.

Every template string is parsed at startup into literal and placeholder parts, so a call
only joins strings. The arguments come checked (arguments.py): every value has its
parameter's type, and absent ones their default.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx

from mcpgate.gateway.config import DataSourceConfig, ToolConfig
from mcpgate.gateway.errors import ToolInputError

__all__ = ["CompiledTool", "PreparedRequest"]

# `:` and a name running greedily over identifier characters: `:id` never matches inside
# `:idx`. Only names of declared parameters become placeholders; any other `:word` is text.
_PLACEHOLDER: Final = re.compile(r":([A-Za-z0-9_]+)")

_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})

# Characters a path template's literal text may hold as they are (RFC 3986 pchar, with `%`
# so that an already-encoded literal is kept); anything else (space, non-ASCII) is encoded.
_PATH_LITERAL_SAFE: Final = "!$&'()*+,;=:@%"

# Control characters are not allowed in a header value (RFC 9110 §5.5), horizontal tab
# aside; nor are lone surrogates, which no encoding can send.
_HEADER_FORBIDDEN: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")

_UNRESERVED: Final = re.compile(r"[A-Za-z0-9._~-]*")

# A whole path segment `:word`: a placeholder, or a typo the operator calls UnknownParameter.
_WHOLE_SEGMENT: Final = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")

_OMIT: Final = object()  # a body node whose placeholder has no value


# --- JSON -----------------------------------------------------------------------------


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _load_dumps() -> Callable[[Any], bytes]:
    """orjson when it is installed (several times faster), else the standard library."""
    try:
        orjson = importlib.import_module("orjson")
    except ImportError:  # pragma: no cover - depends on the environment
        return _std_dumps
    fast: Callable[[Any], bytes] = orjson.dumps

    def dumps(value: Any) -> bytes:
        try:
            return fast(value)
        except TypeError:  # orjson refuses integers beyond 64 bits; the standard library not
            return _std_dumps(value)

    return dumps


_dumps: Final = _load_dumps()


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str:
    """The text form of an argument: a String as is, a Boolean `true`/`false`, a Number or
    Integer as JSON, an Array or Object as compact JSON."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # what JSON writes for a finite float
    return _compact_json(value)


def _encode(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (UTF-8 first)."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


# --- Templates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    """A placeholder: where the argument `name` goes."""

    name: str


# A parsed template string: literal text and placeholders, in order.
_Parts = tuple[str | _Slot, ...]


@dataclass(frozen=True, slots=True)
class _Interpolated:
    """A body string with placeholders inside longer text."""

    parts: _Parts


@dataclass(frozen=True, slots=True)
class _BodyObject:
    """A body object with a placeholder somewhere under it."""

    fields: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class _BodyArray:
    """A body array with a placeholder somewhere under it."""

    items: tuple[Any, ...]


def _parse(template: str, names: Container[str]) -> _Parts:
    """Split `template` into literal text and placeholders of the declared `names`."""
    parts: list[str | _Slot] = []
    literal_from = 0
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name not in names:
            continue  # `:word` naming no parameter is literal text
        if match.start() > literal_from:
            parts.append(template[literal_from : match.start()])
        parts.append(_Slot(name))
        literal_from = match.end()
    if literal_from < len(template):
        parts.append(template[literal_from:])
    return tuple(parts)


def _whole(parts: _Parts) -> str | None:
    """The parameter name when the template is exactly one placeholder."""
    if len(parts) == 1 and isinstance(parts[0], _Slot):
        return parts[0].name
    return None


def _compile_body(node: Any, names: Container[str]) -> Any:
    """The body template with its strings parsed; a subtree without placeholders stays the
    plain JSON value it was."""
    if isinstance(node, str):
        parts = _parse(node, names)
        whole = _whole(parts)
        if whole is not None:
            return _Slot(whole)
        if any(isinstance(p, _Slot) for p in parts):
            return _Interpolated(parts)
        return node
    if isinstance(node, dict):
        fields = tuple((key, _compile_body(value, names)) for key, value in node.items())
        if any(_has_slot(v) for _, v in fields):
            return _BodyObject(fields)
        return node
    if isinstance(node, list | tuple):
        items = tuple(_compile_body(item, names) for item in node)
        if any(_has_slot(v) for v in items):
            return _BodyArray(items)
        return list(node)
    return node


def _compile_segment(segment: str, names: Container[str], tool: str) -> str | _Parts:
    """A path segment: its final text when it holds no placeholder, else its parts."""
    parts = _parse(segment, names)
    if not any(isinstance(p, _Slot) for p in parts):
        # The operator refuses this as UnknownParameter, so a rendered config never holds it.
        if _WHOLE_SEGMENT.fullmatch(segment):
            raise ValueError(f"tool {tool!r}: path segment {segment!r} names no parameter")
        return quote(segment, safe=_PATH_LITERAL_SAFE)
    return tuple(p if isinstance(p, _Slot) else quote(p, safe=_PATH_LITERAL_SAFE) for p in parts)


def _entries(
    templates: dict[str, str], names: Container[str]
) -> tuple[tuple[str, _Parts, str | None], ...]:
    """Query or header templates: (name, parts, the parameter when it is the whole value)."""
    out = []
    for key, template in templates.items():
        parts = _parse(template, names)
        out.append((key, parts, _whole(parts)))
    return tuple(out)


def _has_slot(node: Any) -> bool:
    return isinstance(node, _Slot | _Interpolated | _BodyObject | _BodyArray)


def _check_path_value(name: str, text: str) -> None:
    if text == "":
        raise ToolInputError(f"argument '{name}' must not be empty: it is part of the path")
    if text in (".", ".."):
        raise ToolInputError(f"argument '{name}' must not be '{text}': it is part of the path")


# --- The compiled tool ------------------------------------------------------------------


def canonical_base(base_url: str) -> str:
    """`scheme://host[:port]/path` without a trailing slash, written as httpx would send it
    (host lower-cased and IDNA-encoded, a default port dropped, the path percent-encoded):
    the gateway sends a tool's URL byte for byte, and everything after the base is
    encoded here already."""
    return str(httpx.URL(base_url).copy_with(query=None, fragment=None)).rstrip("/")


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """The downstream request a tool call becomes, before auth is applied."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None


class CompiledTool:
    """A tool's templates compiled once at startup; `prepare` is the hot path of every call."""

    def __init__(self, tool: ToolConfig, source: DataSourceConfig) -> None:
        self.tool = tool
        self.source = source
        self.name = tool.name
        names = {p.name for p in tool.parameters}
        request = tool.request
        self._method = request.method

        self._base = canonical_base(source.base_url)
        path = request.path if request.path.startswith("/") else "/" + request.path
        self._path = tuple(_compile_segment(s, names, tool.name) for s in path.split("/"))

        self._query = tuple(
            (_encode(key), parts, whole) for key, parts, whole in _entries(request.query, names)
        )

        for header, value in source.headers.items():
            if _HEADER_FORBIDDEN.search(value):
                raise ValueError(f"data source {source.name!r}: header {header!r} is invalid")
        self._source_headers = tuple(
            (name.lower(), name, value) for name, value in source.headers.items()
        )
        self._headers = _entries(request.headers, names)
        for header, parts, _ in self._headers:
            if any(isinstance(p, str) and _HEADER_FORBIDDEN.search(p) for p in parts):
                raise ValueError(f"tool {tool.name!r}: header {header!r} is invalid")

        has_body = request.method in _BODY_METHODS and request.body is not None
        self._body = _compile_body(request.body, names) if has_body else _OMIT
        # A Content-Type the data source or the tool sets goes only with a body: a request
        # without one has no content to describe (and some servers refuse, say, an empty
        # body typed application/json).
        self._sets_content_type = any(
            name.lower() == "content-type" for name in (*source.headers, *request.headers)
        )

    def __repr__(self) -> str:
        return f"CompiledTool({self.name!r})"

    def prepare(self, arguments: dict[str, Any]) -> PreparedRequest:
        """The request for checked arguments (`ToolArguments.check`). ToolInputError when
        a value cannot go where the template puts it (an empty path segment, a line break in
        a header); then nothing may be sent."""
        try:
            url = self._base + self._render_path(arguments)
            query = self._render_query(arguments)
            if query:
                url += "?" + query
            headers = self._render_headers(arguments)
            body: bytes | None = None
            if self._body is not _OMIT:
                filled = self._fill(self._body, arguments)
                if filled is not _OMIT:
                    body = _dumps(filled)
                    if not self._sets_content_type:
                        headers.append(("Content-Type", "application/json"))
            if body is None and self._sets_content_type:
                headers = [
                    (name, value) for name, value in headers if name.lower() != "content-type"
                ]
        except UnicodeEncodeError:  # a lone surrogate, which JSON parsers may let through
            raise ToolInputError("an argument holds text that is not valid Unicode") from None
        return PreparedRequest(method=self._method, url=url, headers=headers, body=body)

    def _render(self, parts: _Parts, arguments: dict[str, Any]) -> str:
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = arguments.get(part.name)
                if value is not None:
                    out.append(_text(value))
        return "".join(out)

    def _render_path(self, arguments: dict[str, Any]) -> str:
        segments: list[str] = []
        for segment in self._path:
            if isinstance(segment, str):
                segments.append(segment)
                continue
            out: list[str] = []
            for part in segment:
                if isinstance(part, str):
                    out.append(part)
                    continue
                value = arguments.get(part.name)
                if value is None:
                    raise ToolInputError(f"argument '{part.name}' is required")
                text = _text(value)
                _check_path_value(part.name, text)
                out.append(_encode(text))
            segments.append("".join(out))
        return "/".join(segments)

    def _render_query(self, arguments: dict[str, Any]) -> str:
        pairs: list[str] = []
        for key, parts, whole in self._query:
            if whole is None:
                pairs.append(f"{key}={_encode(self._render(parts, arguments))}")
                continue
            value = arguments.get(whole)
            if value is None:
                continue
            if isinstance(value, list):  # an Array repeats the key; an empty one leaves it out
                pairs.extend(f"{key}={_encode(_text(item))}" for item in value)
            else:
                pairs.append(f"{key}={_encode(_text(value))}")
        return "&".join(pairs)

    def _render_headers(self, arguments: dict[str, Any]) -> list[tuple[str, str]]:
        tool_headers: list[tuple[str, str]] = []
        for header, parts, whole in self._headers:
            if whole is not None and arguments.get(whole) is None:
                continue
            out: list[str] = []
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                value = arguments.get(part.name)
                if value is None:
                    continue
                text = _text(value)
                if _HEADER_FORBIDDEN.search(text):
                    raise ToolInputError(
                        f"argument '{part.name}' makes header {header} invalid"
                        " (control characters such as CR, LF and NUL are not allowed)"
                    )
                out.append(text)
            tool_headers.append((header, "".join(out)))
        if not tool_headers:
            return [(name, value) for _, name, value in self._source_headers]
        replaced = {name.lower() for name, _ in tool_headers}
        headers = [
            (name, value) for low, name, value in self._source_headers if low not in replaced
        ]
        headers.extend(tool_headers)
        return headers

    def _fill(self, node: Any, arguments: dict[str, Any]) -> Any:
        """The body node with its placeholders replaced; `_OMIT` for a placeholder with no
        value, which leaves its object field or array element out."""
        if isinstance(node, _Slot):
            value = arguments.get(node.name)
            return _OMIT if value is None else value
        if isinstance(node, _Interpolated):
            return self._render(node.parts, arguments)
        if isinstance(node, _BodyObject):
            filled = {key: self._fill(child, arguments) for key, child in node.fields}
            return {key: value for key, value in filled.items() if value is not _OMIT}
        if isinstance(node, _BodyArray):
            items = [self._fill(child, arguments) for child in node.items]
            return [item for item in items if item is not _OMIT]
        return node
