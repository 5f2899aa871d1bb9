"""The field reference (`docs/api.md`), generated from the same schemas as the CRDs so
the two cannot drift. Regenerate with `python -m mcpgate.api.reference > docs/api.md`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from mcpgate.api.crd import KINDS, CrdKind, crd

__all__ = ["reference_markdown"]

_INTRO = """\
# API reference

Every field of the two custom resources of `mcpgate.io/v1alpha1`, generated from
the models that also generate the CRDs (`python -m mcpgate.api.reference > docs/api.md`;
a test keeps this page equal to that output). What the fields do is explained in
the guides; the exact rules are in the validation sections of each kind.

Both kinds are namespaced, and every reference (data source, Secret) resolves in
the object's own namespace.
"""


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type")
    if kind is None:
        return "any JSON"
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    return str(kind)


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "minimum" in node or "maximum" in node:
        parts.append(f"{node.get('minimum', '')}..{node.get('maximum', '')}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    if "maxLength" in node and "enum" not in node:
        parts.append(f"at most {node['maxLength']} characters")
    if "maxItems" in node:
        parts.append(f"at most {node['maxItems']} items")
    if "maxProperties" in node:
        parts.append(f"at most {node['maxProperties']} entries")
    if node.get("x-kubernetes-list-type") == "map":
        parts.append("unique by " + ", ".join(node["x-kubernetes-list-map-keys"]))
    return "; ".join(parts)


def _fields(
    node: dict[str, Any], path: str, required: bool
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    yield path, node, required
    child_required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        yield from _fields(child, f"{path}.{name}", name in child_required)
    items = node.get("items")
    if isinstance(items, dict) and "properties" in items:
        for name, child in items["properties"].items():
            yield from _fields(child, f"{path}[].{name}", name in set(items.get("required", [])))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _kind_section(kind: CrdKind) -> list[str]:
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    lines = [f"## {kind.kind}", "", kind.description, ""]
    names = crd(kind)["spec"]["names"]
    lines += [
        f"Plural `{names['plural']}`, short name `{', '.join(names['shortNames'])}`,"
        f" category `mcpgate`.",
        "",
    ]
    for part in ("spec", "status"):
        lines += [
            f"### {kind.kind} `.{part}`",
            "",
            "| Field | Type | Required | Default | Description | Limits |",
            "|---|---|---|---|---|---|",
        ]
        for path, node, required in _fields(schema["properties"][part], part, False):
            if path == part:
                continue
            default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
            lines.append(
                f"| `{path}` | {_type(node)} | {'yes' if required else ''} | {default}"
                f" | {_cell(node.get('description', ''))} | {_cell(_constraints(node))} |"
            )
        lines.append("")
    rules = [
        (path, rule)
        for path, node, _ in _fields(schema, "", False)
        for rule in node.get("x-kubernetes-validations", [])
    ]
    lines += [f"### {kind.kind} validation rules (CEL, checked by the API server)", ""]
    lines += [f"- `{path.lstrip('.') or '<object>'}`: {rule['message']}" for path, rule in rules]
    lines.append("")
    return lines


def reference_markdown() -> str:
    """The whole reference page."""
    lines = [_INTRO]
    for kind in KINDS:
        lines += _kind_section(kind)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
