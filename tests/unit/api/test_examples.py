"""Every example parses into the models and would be accepted by the API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpgate.api.crd import KINDS, crd
from mcpgate.manifests import load_manifests, read_documents

from support.kube_schema import CrdValidator
from support.paths import EXAMPLE_DIRS

VALIDATORS = {kind.kind: CrdValidator(crd(kind)) for kind in KINDS}


def test_every_case_has_an_example() -> None:
    names = {d.name for d in EXAMPLE_DIRS}
    assert {
        "quickstart",
        "outbound-apikey",
        "outbound-bearer",
        "outbound-basic",
        "outbound-oauth2",
        "outbound-aws-sigv4",
        "inbound-apikey",
        "bearer-passthrough",
        "passthrough-misconfigured",
    } <= names


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_parses_into_the_models(folder: Path) -> None:
    manifests = load_manifests([folder])
    assert len(manifests.servers) == 1, "each example folder holds exactly one McpServer"
    (server,) = manifests.servers.values()
    # Every data source a tool names is in the folder, and so is every referenced Secret.
    for name in server.spec.data_source_names():
        assert (server.metadata.namespace or "default", name) in manifests.data_sources


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_is_valid_against_the_crd_schema_and_cel(folder: Path) -> None:
    checked = 0
    for doc in read_documents([folder]):
        validator = VALIDATORS.get(doc.body["kind"])
        if validator is None:
            continue
        assert validator.errors(doc.body) == [], doc.source
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_secrets_use_obviously_fake_values(folder: Path) -> None:
    manifests = load_manifests([folder])
    for secret in manifests.secrets.values():
        for key, value in secret.values.items():
            text = value.decode()
            assert any(w in text.lower() for w in ("fake", "example", "change-me", "not-a-real")), (
                f"{secret.name}.{key} should look obviously fake"
            )
