"""Validation errors as people and conditions need them: one line per problem, each
naming the field path, and the condition reason the first problem stands for."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mcpgate.api.conditions import Reason

__all__ = ["error_lines", "field_path", "invalid_reason"]

# pydantic error types raised by the models -> Accepted condition reasons.
_REASONS = {"unknown_parameter": Reason.UNKNOWN_PARAMETER, "duplicate_tool": Reason.DUPLICATE_TOOL}


def field_path(loc: tuple[int | str, ...] | list[Any]) -> str:
    """`('spec', 'tools', 0, 'request')` -> `spec.tools[0].request`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


def _message(error: Any) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        return "unknown field; remove it or check its spelling"
    if error["type"] == "missing":
        return "required field is missing"
    return message


def error_lines(err: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[str]:
    """One `path: message` line per problem. Never holds input values of Secrets:
    the models hold no Secret values, only references."""
    return [f"{field_path((*prefix, *e['loc'])) or '<root>'}: {_message(e)}" for e in err.errors()]


def invalid_reason(err: ValidationError) -> str:
    """The Accepted=False reason for a spec that failed validation."""
    for e in err.errors():
        if e["type"] in _REASONS:
            return _REASONS[e["type"]]
    return Reason.INVALID_SPEC
