"""Validate objects against a CRD the way the Kubernetes API server does.

No API server runs here, so this module does its part of the job with real
implementations: schema defaulting as the API server applies it, JSON Schema
validation with `jsonschema` (unknown fields are errors, as `kubectl`'s strict
field validation makes them), `x-kubernetes-list-type: map` uniqueness, and
every `x-kubernetes-validations` rule evaluated with `cel-python`. A rule that
does not compile is an error, as it is for the API server.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import celpy
import jsonschema

__all__ = ["CrdValidator", "schema_nodes"]


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (`.spec.tools[]`), depth first."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")
    for branch in node.get("anyOf", []):
        yield from schema_nodes(branch, path)


def _strict(node: Any) -> Any:
    """The schema with `additionalProperties: false` wherever the API server prunes."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def _apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = _apply_defaults(prop, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in list(value):
                if key not in schema.get("properties", {}):
                    value[key] = _apply_defaults(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_apply_defaults(schema["items"], item) for item in value]
    return value


# CEL keywords that Kubernetes escapes as `__kw__` when they name an object property.
_CEL_RESERVED = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "false",
        "for",
        "function",
        "if",
        "import",
        "in",
        "let",
        "loop",
        "package",
        "namespace",
        "null",
        "return",
        "true",
        "var",
        "void",
        "while",
    ]
)


def _cel_view(value: Any) -> Any:
    """The value as Kubernetes hands it to CEL: reserved property names escaped."""
    if isinstance(value, dict):
        return {(f"__{k}__" if k in _CEL_RESERVED else k): _cel_view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cel_view(v) for v in value]
    return value


def _format_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


@dataclass
class CrdValidator:
    """Validates objects of one CRD version."""

    crd: dict[str, Any]
    schema: dict[str, Any] = field(init=False)
    _programs: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.schema = self.crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        self._validator = jsonschema.Draft202012Validator(_strict(self.schema))
        env = celpy.Environment()
        for _, node in schema_nodes(self.schema):
            for rule in node.get("x-kubernetes-validations", []):
                # Raises CELParseError for a rule the API server would refuse too.
                self._programs[rule["rule"]] = env.program(env.compile(rule["rule"]))

    def defaulted(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as the API server would store it, defaults filled in."""
        result: dict[str, Any] = _apply_defaults(self.schema, copy.deepcopy(obj))
        return result

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """What the API server would refuse about `obj`, as `path: message` lines."""
        obj = self.defaulted(obj)
        found = [
            f"{_format_path(err.absolute_path) or '<root>'}: {err.message}"
            for err in self._validator.iter_errors(obj)
        ]
        if found:  # CEL only runs on objects that pass the schema
            return found
        self._walk(self.schema, obj, [], found)
        return found

    def _walk(self, schema: dict[str, Any], value: Any, path: list[Any], found: list[str]) -> None:
        for rule in schema.get("x-kubernetes-validations", []):
            activation = {"self": celpy.json_to_cel(_cel_view(value))}
            result = self._programs[rule["rule"]].evaluate(activation)
            if isinstance(result, Exception) or not bool(result):
                where = _format_path(path) + rule.get("fieldPath", "")
                found.append(f"{where or '<root>'}: {rule['message']}")
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(value, list):
            keys = schema["x-kubernetes-list-map-keys"]
            seen = [tuple(item.get(k) for k in keys) for item in value]
            for index, key in enumerate(seen):
                if key in seen[:index]:
                    found.append(f"{_format_path([*path, index])}: Duplicate value: {key}")
        if isinstance(value, dict):
            for name, prop in schema.get("properties", {}).items():
                if name in value:
                    self._walk(prop, value[name], [*path, name], found)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                self._walk(schema["items"], item, [*path, index], found)
