"""What the API server would refuse in the objects rendered from a valid spec.

The CRD schema cannot say what a label key is (a DNS prefix and a 63-character name),
and a pod's labels, annotations, node selector, tolerations and PriorityClass name pass
it as plain strings; the Deployment built from them would then be refused at every
write, forever, while the McpServer looked fine. These checks run before anything is
written, so such a spec is `Accepted` False `InvalidSpec` with a line naming the field
(API.md "Conditions"). They follow Kubernetes' own validation (apimachinery's
IsQualifiedName, IsValidLabelValue, IsDNS1123Subdomain and the 256 KiB annotation limit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from mcpgate.api import McpServer

__all__ = ["inadmissible"]

_NAME: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ANNOTATIONS_BYTES: Final = 256 * 1024

_KEY_RULE: Final = (
    "a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with a"
    " letter or digit, after an optional DNS subdomain prefix and '/'"
)
_VALUE_RULE: Final = (
    "empty, or at most 63 letters, digits, '-', '_' or '.', starting and ending with a"
    " letter or digit"
)
_SUBDOMAIN_RULE: Final = (
    "at most 253 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit"
)


def _key_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and _SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _NAME.fullmatch(name) is not None


def _value_ok(value: str) -> bool:
    return value == "" or (len(value) <= 63 and _NAME.fullmatch(value) is not None)


def _labels(field: str, labels: Mapping[str, str]) -> list[str]:
    problems = []
    for key, value in labels.items():
        if not _key_ok(key):
            problems.append(f"{field}: key {key[:80]!r} is not a valid label key ({_KEY_RULE})")
        elif not _value_ok(value):
            problems.append(
                f"{field}[{key!r}]: value {value[:80]!r} is not a valid label value ({_VALUE_RULE})"
            )
    return problems


def _annotations(field: str, annotations: Mapping[str, str]) -> list[str]:
    # Kubernetes checks annotation keys lower-cased: upper-case letters are allowed.
    problems = [
        f"{field}: key {key[:80]!r} is not a valid annotation key ({_KEY_RULE})"
        for key in annotations
        if not _key_ok(key.lower())
    ]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > _ANNOTATIONS_BYTES:
        problems.append(
            f"{field}: {size} bytes in all, over Kubernetes' 262144 (256 KiB): make them shorter"
        )
    return problems


def inadmissible(server: McpServer) -> list[str]:
    """One line per field of `server` whose rendered form the API server would refuse."""
    template = server.spec.pod_template
    if template is None:
        return []
    where = "spec.podTemplate"
    problems = []
    if template.metadata is not None:
        problems += _labels(f"{where}.metadata.labels", template.metadata.labels)
        problems += _annotations(f"{where}.metadata.annotations", template.metadata.annotations)
    pod = template.spec
    if pod is not None:
        problems += _labels(f"{where}.spec.nodeSelector", pod.node_selector)
        for index, toleration in enumerate(pod.tolerations):
            field = f"{where}.spec.tolerations[{index}]"
            if toleration.key and not _key_ok(toleration.key):
                problems.append(f"{field}.key: {toleration.key[:80]!r} is not valid ({_KEY_RULE})")
            if toleration.value and not _value_ok(toleration.value):
                problems.append(
                    f"{field}.value: {toleration.value[:80]!r} is not valid ({_VALUE_RULE})"
                )
        name = pod.priority_class_name
        if name and not (len(name) <= 253 and _SUBDOMAIN.fullmatch(name)):
            problems.append(
                f"{where}.spec.priorityClassName: {name[:80]!r} is not a valid name"
                f" ({_SUBDOMAIN_RULE})"
            )
    return problems
