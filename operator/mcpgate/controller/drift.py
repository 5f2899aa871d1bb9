"""Whether an owned object needs a write, and the merge patch that makes it right.

Only what the operator sets is compared: a rendered object must be contained
in the live one (API-server defaults, an HPA's `replicas` and fields others
own are extra, not drift), and the rendered-hash annotation says whether the
desired state itself changed (which also covers fields the operator stopped
setting: those are patched to null).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from mcpgate.render.objects import HASH_ANNOTATION

__all__ = ["contains", "merge_patch", "needs_write", "owned_by"]

# Pod-spec fields that only an McpServer's podTemplate/serviceAccountName sets: when the
# spec no longer asks for them, the patch removes them.
_OPTIONAL_POD_FIELDS = (
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "imagePullSecrets",
    "priorityClassName",
    "topologySpreadConstraints",
)


def contains(desired: Any, live: Any) -> bool:
    """Whether everything `desired` sets has the same value in `live`. Lists of named
    items are matched by name (order and extra items aside); other lists by position."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and contains(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if all(isinstance(d, dict) and "name" in d for d in desired):
            by_name = {item.get("name"): item for item in live if isinstance(item, dict)}
            return all(contains(d, by_name.get(d["name"])) for d in desired)
        return len(desired) == len(live) and all(map(contains, desired, live))
    return bool(desired == live) or _same_quantity(desired, live)


_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$"
)


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2) or ""])
    except InvalidOperation:
        return None


def _same_quantity(desired: Any, live: Any) -> bool:
    """The API server canonicalises resource quantities (`0.5` -> `500m`, `1024Mi` ->
    `1Gi`): equal amounts are not drift."""
    a, b = _quantity(desired), _quantity(live)
    return a is not None and a == b


def owned_by(live: dict[str, Any], uid: str) -> bool:
    """Whether `live` is controlled by the object with `uid`."""
    refs = live.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def _hash(obj: dict[str, Any]) -> str | None:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(HASH_ANNOTATION)
    return value if isinstance(value, str) else None


def needs_write(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Missing, changed in the spec, or edited by hand."""
    return live is None or _hash(desired) != _hash(live) or not contains(desired, live)


def merge_patch(desired: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that makes a live object match `desired`."""
    patch = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    if desired.get("kind") == "Deployment":
        pod = dict(patch["spec"]["template"]["spec"])
        for field in _OPTIONAL_POD_FIELDS:
            pod.setdefault(field, None)
        patch["spec"] = {**patch["spec"], "template": {**patch["spec"]["template"], "spec": pod}}
    if desired.get("kind") == "ConfigMap":
        # The configuration is in `data` or, gzipped, in `binaryData`: a patch that moves
        # it removes it from the other (a key in both is refused).
        for field in ("data", "binaryData"):
            patch.setdefault(field, None)
    return patch
