"""CustomResourceDefinitions generated from the models.

pydantic's JSON Schema is not a Kubernetes structural schema as it stands:
`structural()` inlines `$ref`s, folds `anyOf [X, null]` into X, drops titles,
`additionalProperties: false` and empty defaults, and keeps everything
Kubernetes reads (`x-kubernetes-*`, bounds, patterns, enums, descriptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, JsonValue

from mcpgate.api.common import API_GROUP, API_VERSION, CRD_VERSION
from mcpgate.api.conditions import ConditionType
from mcpgate.api.datasource import HttpApiDataSourceSpec, HttpApiDataSourceStatus
from mcpgate.api.mcpserver import MCPSERVER_ROOT_VALIDATIONS, McpServerSpec, McpServerStatus

__all__ = ["KINDS", "CrdKind", "crd", "crd_yaml", "crds_yaml", "structural"]

_READY = f'.status.conditions[?(@.type=="{ConditionType.READY}")].status'
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class CrdKind:
    """What a CRD is made of besides the schema of its spec and status."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[dict[str, str], ...]
    description: str
    root_validations: tuple[JsonValue, ...] = ()


KINDS = (
    CrdKind(
        kind="McpServer",
        plural="mcpservers",
        short_names=("mcps",),
        spec=McpServerSpec,
        status=McpServerStatus,
        columns=(
            {"name": "Ready", "type": "string", "jsonPath": _READY},
            {"name": "Auth", "type": "string", "jsonPath": ".spec.authorization.type"},
            {"name": "Tools", "type": "integer", "jsonPath": ".status.tools"},
            {"name": "URL", "type": "string", "jsonPath": ".status.url"},
            _AGE,
        ),
        description="One MCP endpoint: its inbound authorization and its tools.",
        root_validations=tuple(MCPSERVER_ROOT_VALIDATIONS),
    ),
    CrdKind(
        kind="HttpApiDataSource",
        plural="httpapidatasources",
        short_names=("hads",),
        spec=HttpApiDataSourceSpec,
        status=HttpApiDataSourceStatus,
        columns=(
            {"name": "Ready", "type": "string", "jsonPath": _READY},
            {"name": "Auth", "type": "string", "jsonPath": ".spec.auth.type"},
            {"name": "Base URL", "type": "string", "jsonPath": ".spec.baseUrl"},
            _AGE,
        ),
        description="A downstream HTTP API: its base URL and how to authenticate to it.",
    ),
)

_DROPPED_KEYS = {"title", "$defs"}


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn pydantic's JSON Schema of a model into a Kubernetes structural schema."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = dict(node)
        if "$ref" in node:
            target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
            node = {**target, **node}  # the field's own description wins
        any_of = node.get("anyOf")
        if any_of and {"type": "null"} in any_of:
            rest = [branch for branch in any_of if branch != {"type": "null"}]
            node.pop("anyOf")
            if len(rest) == 1:
                node = {**rest[0], **node}
            else:
                node["anyOf"] = rest
            if node.get("default", ...) is None:
                del node["default"]
            return resolve(node)
        out: dict[str, Any] = {}
        for key, value in sorted(node.items(), key=_key_order):
            if key in _DROPPED_KEYS:
                continue
            if key == "additionalProperties" and isinstance(value, bool):
                continue  # false: the API server prunes; true: preserve-unknown-fields says so
            if key == "properties":
                out[key] = {name: resolve(prop) for name, prop in value.items()}
            elif key == "default" and not _keep_default(node, value):
                continue
            elif key == "description":
                out[key] = " ".join(value.split())
            else:
                out[key] = resolve(value)
        if out.get("type") == "string" and "enum" in out and "maxLength" not in out:
            # CEL cost estimates need a bound on every string; an enum has a natural one.
            out["maxLength"] = max(len(member) for member in out["enum"])
        return out

    result: dict[str, Any] = resolve(schema)
    return result


_FIRST_KEYS = ("type", "description", "default", "enum")


def _key_order(item: tuple[str, Any]) -> tuple[int, str]:
    """`type` and `description` first, then the rest alphabetically: readable YAML."""
    key = item[0]
    return (_FIRST_KEYS.index(key), "") if key in _FIRST_KEYS else (len(_FIRST_KEYS), key)


def _keep_default(node: dict[str, Any], value: Any) -> bool:
    """Empty defaults are noise in stored objects, except `{}` on a struct, which lets
    its members' own defaults apply (so `spec.auth.type` is always filled in)."""
    if value is None or value == "" or value == []:
        return False
    if value == {}:
        return "properties" in node
    return True


def crd(kind: CrdKind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec_schema = structural(kind.spec.model_json_schema(by_alias=True, mode="validation"))
    status_schema = structural(kind.status.model_json_schema(by_alias=True, mode="validation"))
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION},
            "kind": {"type": "string", "description": kind.kind},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if kind.root_validations:
        root["x-kubernetes-validations"] = list(kind.root_validations)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "mcpgate"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
                "categories": ["mcpgate"],
            },
            "versions": [
                {
                    "name": CRD_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in kind.columns],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crd_yaml(kind: CrdKind) -> str:
    """One CRD as YAML, as checked in under `crds/<plural>.yaml`."""
    return yaml.safe_dump(crd(kind), sort_keys=False, width=100, allow_unicode=True)


def crds_yaml(kinds: tuple[CrdKind, ...] = KINDS) -> str:
    """The CRDs as one YAML stream, in a stable order."""
    return "---\n".join(crd_yaml(kind) for kind in kinds)
