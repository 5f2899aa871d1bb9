"""The generated CRDs: checked in, structural, bounded, and what `kubectl` shows."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
import yaml

from mcpgate.api.crd import KINDS, CrdKind, crd, crd_yaml, crds_yaml
from mcpgate.cli import main

from support.kube_schema import CrdValidator, schema_nodes
from support.paths import CRDS

# The only nodes left untyped: free JSON values that the models check.
FREE_JSON = {
    ".spec.tools[].request.body",
    ".spec.tools[].parameters[].default",
    ".spec.tools[].parameters[].enum[]",
}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_checked_in_crd_equals_generated(kind: CrdKind) -> None:
    checked_in = (CRDS / f"{kind.plural}.yaml").read_text()
    assert checked_in == crd_yaml(kind), "run `mcpgate crds -o crds` and commit the result"


def test_crds_command_prints_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["spec"]["names"]["kind"] for d in printed] == ["McpServer", "HttpApiDataSource"]
    assert printed == list(yaml.safe_load_all(crds_yaml()))


def _schema(kind: CrdKind) -> dict[str, Any]:
    schema: dict[str, Any] = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_bounded(kind: CrdKind) -> None:
    untyped, unbounded = [], []
    int_or_string = {
        p for p, n in schema_nodes(_schema(kind)) if n.get("x-kubernetes-int-or-string")
    }
    for path, node in schema_nodes(_schema(kind)):
        if path in int_or_string and node in [{"type": "integer"}, {"type": "string"}]:
            continue  # the branches of a quantity, as Kubernetes itself declares them
        assert "$ref" not in node, path
        assert "$defs" not in node, path
        if "type" not in node:
            if node.get("x-kubernetes-int-or-string"):
                continue
            if path in FREE_JSON and node.get("x-kubernetes-preserve-unknown-fields"):
                continue
            untyped.append(path)
        if node.get("type") == "string" and "maxLength" not in node:
            unbounded.append(path)
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
        if "nullable" in node or (
            "additionalProperties" in node and not isinstance(node["additionalProperties"], dict)
        ):
            untyped.append(f"{path} (nullable/additionalProperties)")
    assert untyped == []
    # Top-level apiVersion/kind are the API server's, validated before the schema.
    assert [p for p in unbounded if p not in (".apiVersion", ".kind")] == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_free_json_nodes_exist_only_where_expected(kind: CrdKind) -> None:
    free = {
        path
        for path, node in schema_nodes(_schema(kind))
        if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node
    }
    assert free <= FREE_JSON


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_is_described(kind: CrdKind) -> None:
    missing = [
        path
        for path, node in schema_nodes(_schema(kind))
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[]", "{}"))
        and not node.get("description")
    ]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_cel_rule_compiles(kind: CrdKind) -> None:
    rules = [
        r for _, n in schema_nodes(_schema(kind)) for r in n.get("x-kubernetes-validations", [])
    ]
    assert rules, "the cross-field rules live in CEL"
    CrdValidator(crd(kind))  # compiles every rule; raises on a bad one
    for rule in rules:
        assert rule["message"], rule


def test_a_bad_cel_rule_fails_to_compile() -> None:
    broken = crd(KINDS[1])
    schema = broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["x-kubernetes-validations"] = [{"rule": "self.spec ==", "message": "x"}]
    with pytest.raises(celpy.CELParseError):
        CrdValidator(broken)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_names_columns_and_status(kind: CrdKind) -> None:
    doc = crd(kind)
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["metadata"]["name"] == f"{kind.plural}.mcpgate.io"
    names = doc["spec"]["names"]
    assert names["categories"] == ["mcpgate"]
    assert names["shortNames"]
    assert doc["spec"]["scope"] == "Namespaced"
    (version,) = doc["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["storage"]
    assert version["served"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"]]
    expected = {
        "McpServer": ["READY", "AUTH", "TOOLS", "URL", "AGE"],
        "HttpApiDataSource": ["READY", "AUTH", "BASE URL", "AGE"],
    }
    assert columns == expected[kind.kind]


@pytest.mark.parametrize(
    ("kind", "obj", "column_path"),
    [
        (
            KINDS[0],
            {
                "apiVersion": "mcpgate.io/v1alpha1",
                "kind": "McpServer",
                "metadata": {"name": "s"},
                "spec": {},
            },
            ("spec", "authorization", "type"),
        ),
        (
            KINDS[1],
            {
                "apiVersion": "mcpgate.io/v1alpha1",
                "kind": "HttpApiDataSource",
                "metadata": {"name": "d"},
                "spec": {"baseUrl": "https://a.example.com"},
            },
            ("spec", "auth", "type"),
        ),
    ],
    ids=["McpServer", "HttpApiDataSource"],
)
def test_schema_defaults_fill_the_auth_column(
    kind: CrdKind, obj: dict[str, Any], column_path: tuple[str, ...]
) -> None:
    stored: Any = CrdValidator(crd(kind)).defaulted(obj)
    for part in column_path:
        stored = stored[part]
    assert stored == "None"


def test_conditions_are_a_map_keyed_by_type() -> None:
    for kind in KINDS:
        conditions = _schema(kind)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
