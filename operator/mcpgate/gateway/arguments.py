"""Checking a tool call's arguments against the tool's parameters.

A tool's MCP `inputSchema` is the JSON Schema of its parameters (API.md, "Parameter
mapping"); arguments that do not match it (missing required, wrong type, unknown name, not
in `enum`) are a `ToolInputError`, which the runner answers with an `isError` result before
anything is sent. Checked arguments are what the request templates (templates.py) are
filled with: absent and null ones replaced by their default, integral floats given for an
Integer made ints.

Error messages name the argument, never its value: an argument may be a secret of the
caller's, and the message goes back to the caller and into no log.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from mcpgate.gateway.config import ParameterConfig, ToolConfig
from mcpgate.gateway.errors import ToolInputError

__all__ = ["ToolArguments"]

_JSON_TYPES: Final = {
    "String": "string",
    "Number": "number",
    "Integer": "integer",
    "Boolean": "boolean",
    "Array": "array",
    "Object": "object",
}
_TYPE_WORDS: Final = {
    "String": "a string",
    "Number": "a number",
    "Integer": "an integer",
    "Boolean": "a boolean",
    "Array": "an array",
    "Object": "an object",
}

_MISMATCH: Final = object()  # what _conform returns for a value of the wrong type


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values, where (unlike Python) `true` is not `1`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _conform(value: Any, type_: str) -> Any:
    """`value` if it has the parameter type `type_` (an integral float given for an Integer
    becomes an int), else `_MISMATCH`."""
    match type_:
        case "String":
            ok = isinstance(value, str)
        case "Boolean":
            ok = isinstance(value, bool)
        case "Integer":
            if isinstance(value, float) and value.is_integer():
                return int(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
        case "Number":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and math.isfinite(value)
            )
        case "Array":
            ok = isinstance(value, list)
        case "Object":
            ok = isinstance(value, dict)
        case _:
            ok = False
    return value if ok else _MISMATCH


def _shown(name: object) -> str:
    """A caller-chosen argument name, quoted and cut short for an error message."""
    text = name if isinstance(name, str) else repr(name)
    return repr(text if len(text) <= 64 else text[:64] + "...")


class _Parameter:
    """One declared parameter, ready to check an argument."""

    __slots__ = (
        "default",
        "description",
        "enum",
        "enum_text",
        "items_type",
        "name",
        "required",
        "type",
    )

    def __init__(self, config: ParameterConfig) -> None:
        self.name = config.name
        self.description = config.description
        self.type = config.type
        self.required = config.required
        self.items_type = config.items_type if config.type == "Array" else None
        # An empty enum would allow nothing; it is read as "no restriction".
        self.enum = tuple(config.enum) if config.enum else None
        enum_text = json.dumps(list(self.enum or ()), separators=(",", ":"), ensure_ascii=False)
        self.enum_text = enum_text if len(enum_text) <= 200 else enum_text[:200] + "..."
        self.default: Any = None
        if config.default is not None:
            try:
                self.default = self.check(config.default)
            except ToolInputError as err:
                raise ValueError(f"parameter {self.name!r}: default value: {err}") from None

    def check(self, value: Any) -> Any:
        """The argument as the tool uses it; ToolInputError when it does not fit."""
        conformed = _conform(value, self.type)
        if conformed is _MISMATCH:
            raise ToolInputError(f"argument '{self.name}' must be {_TYPE_WORDS[self.type]}")
        if self.items_type is not None:
            items = []
            for index, item in enumerate(conformed):
                element = _conform(item, self.items_type)
                if element is _MISMATCH:
                    raise ToolInputError(
                        f"argument '{self.name}' item {index} must be"
                        f" {_TYPE_WORDS[self.items_type]}"
                    )
                items.append(element)
            conformed = items
        if self.enum is not None and not any(_json_equal(conformed, e) for e in self.enum):
            raise ToolInputError(f"argument '{self.name}' must be one of {self.enum_text}")
        return conformed

    def schema(self) -> dict[str, Any]:
        """This parameter's JSON Schema, for the tool's `inputSchema`."""
        out: dict[str, Any] = {"type": _JSON_TYPES[self.type]}
        if self.items_type is not None:
            out["items"] = {"type": _JSON_TYPES[self.items_type]}
        if self.description:
            out["description"] = self.description
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.default is not None:
            out["default"] = self.default
        return out


class ToolArguments:
    """A tool's parameters, built once at startup: its `input_schema`, and `check` for the
    arguments of every call. Raises ValueError when a default does not fit its parameter
    (the operator refuses such a tool, so a rendered configuration never holds one)."""

    def __init__(self, tool: ToolConfig) -> None:
        try:
            params = [_Parameter(p) for p in tool.parameters]
        except ValueError as err:
            raise ValueError(f"tool {tool.name!r}: {err}") from None
        self._params: dict[str, _Parameter] = {p.name: p for p in params}
        self.input_schema: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: p.schema() for p in params},
            "required": [p.name for p in params if p.required],
            "additionalProperties": False,
        }

    def check(self, arguments: Any) -> dict[str, Any]:
        """The effective arguments of a call: checked against the input schema, with
        defaults applied for absent and null ones. ToolInputError when they do not fit."""
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            raise ToolInputError("arguments must be an object")
        for name in arguments:
            if name not in self._params:
                raise ToolInputError(f"unknown argument {_shown(name)}")
        effective: dict[str, Any] = {}
        for name, param in self._params.items():
            value = arguments.get(name)
            if value is not None:
                effective[name] = param.check(value)
            elif param.default is not None:
                effective[name] = param.default
            elif param.required:
                raise ToolInputError(f"argument '{name}' is required")
        return effective
