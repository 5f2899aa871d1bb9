"""Condition types and reasons are named once (`mcpgate.api.conditions`): every reason of
API.md's "Conditions" table is named there, docs/conditions.md is what they generate, and
a reason is marked planned exactly when nothing produces it yet."""

from __future__ import annotations

import ast
import re

import pytest

from mcpgate.api.conditions import ROWS, ConditionType, Reason, conditions_markdown
from mcpgate.gateway.config import MIN_CREDENTIAL_LENGTH

from support.paths import DOCS, ROOT

API_MD = ROOT.parent / "shared" / "API.md"
PACKAGE = ROOT / "operator" / "mcpgate"


def _names(holder: type) -> dict[str, str]:
    return {k: v for k, v in vars(holder).items() if k.isupper()}


def _api_md_conditions_table() -> list[list[str]]:
    if not API_MD.exists():
        pytest.skip("../shared/API.md is not beside this checkout")
    section = API_MD.read_text().split("\n## Conditions\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


def test_every_reason_of_api_md_is_named() -> None:
    table = _api_md_conditions_table()
    assert len(table) >= 6
    reasons = {r for row in table for r in re.findall(r"`([A-Z][A-Za-z]+)`", row[2])}
    assert {"ApiKeysMissing", "PodsNotReady", "Ready"} <= reasons
    assert reasons - set(_names(Reason).values()) == set()


def test_every_type_of_api_md_is_named() -> None:
    types = {row[1] for row in _api_md_conditions_table()}
    assert types - set(_names(ConditionType).values()) == set()


def test_the_page_states_the_empty_value_rule_as_the_gateway_applies_it() -> None:
    """api/ may not import the gateway, so the page's number is checked here."""
    assert f"under {MIN_CREDENTIAL_LENGTH} characters" in conditions_markdown()


def test_docs_conditions_md_is_generated() -> None:
    assert (DOCS / "conditions.md").read_text() == conditions_markdown(), (
        "run `python -m mcpgate.api.conditions > docs/conditions.md`"
    )


def test_every_name_is_documented() -> None:
    documented = {(row.type, row.reason) for row in ROWS}
    assert set(_names(Reason).values()) <= {reason for _, reason in documented}
    assert set(_names(ConditionType).values()) == {type_ for type_, _ in documented}


def _used_reasons() -> set[str]:
    """The Reason constants that code outside api/conditions.py names."""
    used = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "conditions.py" and path.parent.name == "api":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Reason"
            ):
                used.add(node.attr)
    return used


def test_a_reason_is_planned_exactly_when_nothing_produces_it() -> None:
    used = {getattr(Reason, name) for name in _used_reasons()}
    planned = {row.reason for row in ROWS if row.planned}
    produced = set(_names(Reason).values()) - planned
    assert planned & used == set(), "produced now: drop `planned` from its row"
    assert produced - used == set(), "nothing produces these: mark them planned, or drop them"


def test_no_bare_condition_strings_in_render_or_controller() -> None:
    """Condition types and reasons appear as names, not string literals."""
    names = set(_names(Reason).values()) | set(_names(ConditionType).values())
    found = []
    for folder in ("render", "controller"):
        for path in (PACKAGE / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []
