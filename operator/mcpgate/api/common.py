"""Building blocks shared by both custom resources.

Every model here is what the Kubernetes API server stores: camelCase on the
wire, unknown fields rejected, every field described (the descriptions become
the CRD's and `kubectl explain`'s text), and every string and list bounded,
because the API server refuses CEL rules over unbounded values.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CRD_VERSION",
    "DATA_KEY_PATTERN",
    "DATA_KEY_RULE",
    "DNS1035_LABEL",
    "DNS1123_SUBDOMAIN",
    "Condition",
    "ConditionStatus",
    "DnsSubdomain",
    "FreeJson",
    "KubeModel",
    "LabelMap",
    "ObjectMeta",
    "Quantity",
    "SecretKey",
    "SecretKeyRef",
    "SecretRef",
    "ShortString",
    "cel",
    "is_data_key",
    "list_map",
    "secret_key_refs",
]

API_GROUP: Final = "mcpgate.io"
CRD_VERSION: Final = "v1alpha1"
# f"{API_GROUP}/{CRD_VERSION}", spelled out so that it types as a Literal (a test checks).
API_VERSION: Final = "mcpgate.io/v1alpha1"

DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A Secret or ConfigMap data key as Kubernetes takes it: `[-._a-zA-Z0-9]+`, but not `.` or
# `..` and not starting with `..` (a key names a file in a mounted volume). Go's regexp
# (the API server's) has no lookahead, hence the spelled-out form.
DATA_KEY_PATTERN: Final = r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
DATA_KEY_RULE: Final = (
    "letters, digits, '-', '_' and '.', at most 253, not '.' or '..' and not starting with '..'"
)

DnsSubdomain = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)
]
SecretKey = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DATA_KEY_PATTERN)
]
ShortString = Annotated[str, StringConstraints(max_length=253)]
LabelMap = Annotated[
    dict[str, Annotated[str, StringConstraints(max_length=4096)]],
    Field(max_length=64),
]

# Any JSON value (a body template, a parameter's default or enum member). The
# CRD leaves such a node untyped and keeps it whole; the models check it.
FreeJson = Annotated[
    Any,
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]

# A resource quantity ("500m", "1Gi", 2), as Kubernetes itself declares it.
Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": (
                r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
            ),
        }
    ),
]


def is_data_key(key: str) -> bool:
    """Whether Kubernetes accepts `key` as a key of a Secret's data."""
    return len(key) <= 253 and re.fullmatch(DATA_KEY_PATTERN, key) is not None


def cel(rule: str, message: str, field_path: str | None = None) -> JsonValue:
    """One `x-kubernetes-validations` entry: a CEL rule and the error it gives."""
    entry: dict[str, JsonValue] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def list_map(*keys: str) -> dict[str, JsonValue]:
    """Schema markers of a list whose items are keyed (the API server refuses duplicates)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


class KubeModel(BaseModel):
    """Base of every spec model: camelCase aliases, no unknown fields, docstrings as
    descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


class SecretKeyRef(KubeModel):
    """One value of a Secret in the object's own namespace."""

    name: DnsSubdomain
    """Name of the Secret."""
    key: SecretKey
    """Key inside the Secret's data."""


def secret_key_refs(model: BaseModel, path: str = "") -> list[tuple[str, SecretKeyRef]]:
    """Every `SecretKeyRef` set anywhere in `model`, with the wire path of its field
    (`auth.bearer.tokenSecretRef`), in field order. Found by walking the model, not by a
    list: a field added to any model is found (and mounted) without more code."""
    found: list[tuple[str, SecretKeyRef]] = []
    for name, info in type(model).model_fields.items():
        wire = info.alias or name
        found += _refs_in(getattr(model, name), f"{path}.{wire}" if path else wire)
    return found


def _refs_in(value: Any, path: str) -> list[tuple[str, SecretKeyRef]]:
    if isinstance(value, SecretKeyRef):
        return [(path, value)]
    if isinstance(value, BaseModel):
        return secret_key_refs(value, path)
    if isinstance(value, list | tuple):
        return [ref for i, item in enumerate(value) for ref in _refs_in(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [ref for key, item in value.items() for ref in _refs_in(item, f"{path}.{key}")]
    return []


class SecretRef(KubeModel):
    """A whole Secret in the object's own namespace: every value is used."""

    name: DnsSubdomain
    """Name of the Secret."""


class ObjectMeta(BaseModel):
    """The part of `metadata` that mcpgate reads; everything else is kept as is."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    namespace: str | None = None
    generation: int | None = None
    uid: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


ConditionStatus = Literal["True", "False", "Unknown"]

_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(KubeModel):
    """One aspect of the object's state, as Kubernetes' metav1.Condition."""

    model_config = ConfigDict(extra="ignore")

    type: Annotated[str, StringConstraints(min_length=1, max_length=316)]
    """What this condition is about, e.g. Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=_REASON)]
    """A CamelCase word that says why, for programs."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """A sentence that says why, for people."""
    last_transition_time: Annotated[str, StringConstraints(max_length=64)]
    """When `status` last changed (RFC 3339)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` this condition was computed from."""
