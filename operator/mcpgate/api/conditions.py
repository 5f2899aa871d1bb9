"""Condition types and reasons, named once, beside what they mean.

The operator and `mcpgate render` use these names, never the bare strings, and
`docs/conditions.md` is generated from `ROWS` (`python -m mcpgate.api.conditions >
docs/conditions.md`; a test keeps the page equal to that output, and another checks that
every reason of API.md's "Conditions" table is named here).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ROWS",
    "WARNING_REASONS",
    "ConditionType",
    "EventReason",
    "Reason",
    "Row",
    "conditions_markdown",
]


class ConditionType:
    """The `type` of each condition the two kinds report."""

    READY: Final = "Ready"
    ACCEPTED: Final = "Accepted"
    RESOLVED_REFS: Final = "ResolvedRefs"
    AVAILABLE: Final = "Available"
    PASSTHROUGH_CONFIGURED: Final = "PassthroughConfigured"


class Reason:
    """Every `reason` a condition can carry (CamelCase, for programs)."""

    # True
    READY: Final = "Ready"
    ACCEPTED: Final = "Accepted"
    RESOLVED_REFS: Final = "ResolvedRefs"
    PODS_READY: Final = "PodsReady"
    CONFIGURED: Final = "Configured"
    # Unknown
    NOT_CHECKED: Final = "NotChecked"
    # Accepted=False
    INVALID_SPEC: Final = "InvalidSpec"
    UNKNOWN_PARAMETER: Final = "UnknownParameter"
    DUPLICATE_TOOL: Final = "DuplicateTool"
    UNKNOWN_TOOL: Final = "UnknownTool"
    NO_SUBJECT_TOKEN: Final = "NoSubjectToken"  # noqa: S105 - names, not secrets
    CONFIG_TOO_LARGE: Final = "ConfigTooLarge"
    NAME_CONFLICT: Final = "NameConflict"
    # ResolvedRefs=False
    DATA_SOURCE_NOT_FOUND: Final = "DataSourceNotFound"
    SECRET_NOT_FOUND: Final = "SecretNotFound"  # noqa: S105
    SECRET_KEY_NOT_FOUND: Final = "SecretKeyNotFound"  # noqa: S105
    API_KEYS_MISSING: Final = "ApiKeysMissing"
    # Available=False
    PODS_NOT_READY: Final = "PodsNotReady"
    # Ready=False, of its own
    APPLY_FAILED: Final = "ApplyFailed"
    # PassthroughConfigured=False
    DATA_SOURCE_HAS_AUTH: Final = "DataSourceHasAuth"
    INSECURE_DOWNSTREAM: Final = "InsecureDownstream"


class EventReason:
    """Reasons of Warning Events that belong to no condition (a condition's own warning
    reasons are in WARNING_REASONS)."""

    WEAK_API_KEY: Final = "WeakApiKey"  # an inbound key under 16 characters


# Reasons of warnings: they leave Ready alone and come with a Warning Event.
WARNING_REASONS: Final = frozenset({Reason.DATA_SOURCE_HAS_AUTH, Reason.INSECURE_DOWNSTREAM})


@dataclass(frozen=True)
class Row:
    """One line of the conditions reference: a (type, status, reason) and what it means."""

    kind: str  # McpServer | HttpApiDataSource
    type: str
    status: str
    reason: str  # a Reason, or (in words) where the reason comes from
    meaning: str = ""
    todo: str = ""
    # Named by the API contract but not produced by this version: what will produce it.
    planned: str = ""


_T, _R = ConditionType, Reason
_SERVER, _SOURCE = "McpServer", "HttpApiDataSource"

ROWS: Final[tuple[Row, ...]] = (
    Row(_SERVER, _T.READY, "True", _R.READY, "the MCP endpoint is serving"),
    Row(
        _SERVER,
        _T.READY,
        "False",
        "the reason of the first of Accepted, ResolvedRefs, Available that is False",
        todo="see that condition",
    ),
    Row(
        _SERVER,
        _T.READY,
        "False",
        _R.APPLY_FAILED,
        "the API server refused a write of an owned object (the message quotes its reason);"
        " the status is written all the same, and the write retried with backoff",
        "read the quoted reason: a ResourceQuota, an admission policy or webhook",
    ),
    Row(_SERVER, _T.ACCEPTED, "True", _R.ACCEPTED, "the spec is valid"),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.INVALID_SPEC,
        "the spec breaks a rule the CRD schema cannot check (a reserved header, an optional"
        " path parameter, a default of the wrong type, ...), a data source it uses is"
        " invalid, or an AwsSigV4 data source needs ambient credentials the operator does"
        " not allow",
        "fix the field the message names",
    ),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.UNKNOWN_PARAMETER,
        "a whole path segment `/:word` names no declared parameter",
        "declare the parameter or fix the typo",
    ),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.DUPLICATE_TOOL,
        "two tools share a name",
        "rename one",
    ),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.UNKNOWN_TOOL,
        "a `toolAccess` rule names a tool the server does not have",
        "fix the tool name",
        planned="no `toolAccess` yet (it comes with OAuth2 inbound authorization)",
    ),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.NO_SUBJECT_TOKEN,
        "a TokenExchange data source is used by a server that receives no caller token",
        "use OAuth2 inbound authorization, or another auth type on the data source",
        planned="no TokenExchange auth type yet",
    ),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.CONFIG_TOO_LARGE,
        "the gateway configuration is over 1 MiB after gzip (configurations over 256 KiB"
        " are stored gzipped); nothing is written",
        "split the tools over more servers",
    ),
    Row(
        _SERVER,
        _T.ACCEPTED,
        "False",
        _R.NAME_CONFLICT,
        "a ConfigMap `<name>-config`, Deployment, Service, HPA or PDB of the server's name"
        " exists and is not owned by it",
        "rename the McpServer or remove the object",
    ),
    Row(_SERVER, _T.RESOLVED_REFS, "True", _R.RESOLVED_REFS, "every reference resolves"),
    Row(
        _SERVER,
        _T.RESOLVED_REFS,
        "False",
        _R.DATA_SOURCE_NOT_FOUND,
        "a tool's `dataSource` does not exist in the namespace",
        "create it, or fix the name",
    ),
    Row(
        _SERVER,
        _T.RESOLVED_REFS,
        "False",
        _R.SECRET_NOT_FOUND,
        "a referenced Secret (of the server or of its data sources) does not exist",
        "create it",
    ),
    Row(
        _SERVER,
        _T.RESOLVED_REFS,
        "False",
        _R.SECRET_KEY_NOT_FOUND,
        "the Secret exists without the key, or the value counts as empty (nothing but one"
        " trailing newline, or under 4 characters)",
        "add the key",
    ),
    Row(
        _SERVER,
        _T.RESOLVED_REFS,
        "False",
        _R.API_KEYS_MISSING,
        "the key Secret of an ApiKey or BearerPassthrough server has no non-empty value",
        "add at least one key",
    ),
    Row(
        _SERVER,
        _T.RESOLVED_REFS,
        "Unknown",
        _R.NOT_CHECKED,
        "the spec is not valid: references are checked once it is",
        "see Accepted",
    ),
    Row(
        _SERVER,
        _T.AVAILABLE,
        "False",
        _R.PODS_NOT_READY,
        "no Deployment yet, its rollout is not observed, or fewer than the wanted replicas"
        " are updated and available",
        "`kubectl describe deployment <name>`,"
        " `kubectl get pods -l app.kubernetes.io/instance=<name>`",
    ),
    Row(
        _SERVER,
        _T.AVAILABLE,
        "True",
        _R.PODS_READY,
        "every wanted replica is updated and available",
    ),
    Row(_SERVER, _T.AVAILABLE, "Unknown", _R.NOT_CHECKED, "the spec is not valid", "see Accepted"),
    Row(
        _SERVER,
        _T.PASSTHROUGH_CONFIGURED,
        "False",
        _R.API_KEYS_MISSING,
        "BearerPassthrough only: as above",
        "add a key",
    ),
    Row(
        _SERVER,
        _T.PASSTHROUGH_CONFIGURED,
        "False",
        _R.DATA_SOURCE_HAS_AUTH,
        "a data source used by the server has its own auth, so the caller's token is not"
        " forwarded to it (a warning: Ready is not affected; a Warning Event is posted)",
        "set that data source's `auth.type: None` if it should receive the caller's token,"
        " or leave it if its own credentials are meant",
    ),
    Row(
        _SERVER,
        _T.PASSTHROUGH_CONFIGURED,
        "False",
        _R.INSECURE_DOWNSTREAM,
        "a data source that receives the caller's token uses plain http (a warning, with a"
        " Warning Event)",
        "use https",
    ),
    Row(
        _SERVER,
        _T.PASSTHROUGH_CONFIGURED,
        "True",
        _R.CONFIGURED,
        "the caller's `Authorization` reaches every data source",
    ),
    Row(_SOURCE, _T.READY, "True", _R.READY, "the data source is usable"),
    Row(
        _SOURCE,
        _T.READY,
        "False",
        _R.INVALID_SPEC,
        "the spec breaks a rule the CRD schema cannot check, or uses ambient AWS credentials"
        " the operator does not allow",
        "fix the field the message names, or start the operator with"
        " `--allow-ambient-aws-credentials`",
    ),
    Row(_SOURCE, _T.READY, "False", "a ResolvedRefs reason", "as ResolvedRefs"),
    Row(_SOURCE, _T.RESOLVED_REFS, "True", _R.RESOLVED_REFS, "every reference resolves"),
    Row(
        _SOURCE,
        _T.RESOLVED_REFS,
        "False",
        _R.SECRET_NOT_FOUND,
        "a referenced Secret does not exist",
        "create it",
    ),
    Row(
        _SOURCE,
        _T.RESOLVED_REFS,
        "False",
        _R.SECRET_KEY_NOT_FOUND,
        "the Secret exists without the key, or the value counts as empty",
        "add the key",
    ),
)

_INTRO = """\
# Conditions reference

Both kinds report conditions in `.status.conditions`; `kubectl describe` shows
them, `kubectl get -o yaml` shows them whole, and
`kubectl wait --for=condition=Ready` waits for them. Messages name the object,
field and key concerned and never hold a Secret value.

This page is generated from the names the operator uses
(`python -m mcpgate.api.conditions > docs/conditions.md`).
"""

_SERVER_NOTES = """\
PassthroughConfigured is present only in BearerPassthrough mode. When the
McpServer's own spec fails validation (InvalidSpec from its fields,
UnknownParameter, DuplicateTool), ResolvedRefs and Available are `Unknown`
(`NotChecked`); when it is refused because of a data source (an invalid one,
ambient AWS credentials not allowed, a tool header the API key owns), they are
still computed.
"""

_PLANNED_INTRO = """\
## Reasons not produced yet

The API contract names these reasons for features this version does not have yet;
programs may match them already.
"""


_REASON_NAMES = frozenset(
    value for name, value in vars(Reason).items() if name.isupper() and isinstance(value, str)
)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    def line(cells: tuple[str, ...]) -> str:
        return "|" + "|".join(" " + c.replace("|", "\\|") + " " if c else " " for c in cells) + "|"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows), ""]


def _cells(row: Row) -> tuple[str, ...]:
    reason = f"`{row.reason}`" if row.reason in _REASON_NAMES else row.reason
    return (row.type, row.status, reason, row.meaning, row.todo)


def conditions_markdown() -> str:
    """The whole conditions reference page."""
    header = ("type", "status", "reason", "meaning", "what to do")
    lines = [_INTRO]
    for kind in (_SERVER, _SOURCE):
        rows = [_cells(r) for r in ROWS if r.kind == kind and not r.planned]
        lines += [f"## {kind}", "", *_table(header, rows)]
        if kind == _SERVER:
            lines.append(_SERVER_NOTES)
    planned = [(r.kind, *_cells(r), r.planned) for r in ROWS if r.planned]
    lines += [_PLANNED_INTRO, *_table(("kind", *header, "until then"), planned)]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(conditions_markdown())
