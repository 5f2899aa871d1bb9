"""Invalid manifests refused by the real API server's own schema and CEL rules, with the
rule's message: every case of tests/unit/api/test_invalid.py that says the CRD refuses
it (`crd_says`). CEL rules carry our message word for word; for schema checks the real
server words its refusal differently from the jsonschema validator the unit test uses,
so REAL_WORDING gives what it says there. The cases the CRD cannot express are accepted
by the real server as well (the operator reports them as Accepted=False)."""

from __future__ import annotations

import json

import pytest

from unit.api.test_invalid import CASES, Case, _broken

from cluster.kube import Kube

# The real server's wording where the emulated schema check words it otherwise.
REAL_WORDING = {
    "baseUrl with a query": 'spec.baseUrl: Invalid value: "https://billing.example.com/api?v=2"'
    ": spec.baseUrl in body should match",
    "Secret ref without key": "spec.auth.bearer.tokenSecretRef.key: Required value",
    "unknown field": 'unknown field "spec.baseURL"',
    "apiKey in a cookie": 'spec.auth.apiKey.in: Unsupported value: "Cookie"',
    "apiKeySecretRef with a key": 'unknown field "spec.authorization.apiKeySecretRef.key"',
    "unknown parameter type": 'spec.tools[0].parameters[0].type: Unsupported value: "Float"',
    "unsupported method": 'spec.tools[0].request.method: Unsupported value: "TRACE"',
    "unknown field in a tool": 'unknown field "spec.tools[0].timeout"',
    "more than 200 tools": "spec.tools: Too many: 201: must have at most 200 items",
}


def _create(kube: Kube, ns: str, case: Case) -> tuple[int, str]:
    done = kube.kubectl(
        "-n",
        ns,
        "create",
        "--dry-run=server",
        "-f",
        "-",
        input=json.dumps(_broken(case)),
        check=False,
    )
    return done.returncode, done.stderr


def test_the_wording_table_names_real_cases() -> None:
    assert set(REAL_WORDING) <= {c.id for c in CASES if c.crd_says}


@pytest.mark.parametrize("case", [c for c in CASES if c.crd_says], ids=lambda c: c.id)
def test_the_real_server_refuses_it_with_the_rules_message(
    kube: Kube, operator: str, case: Case
) -> None:
    code, said = _create(kube, "default", case)
    assert code != 0
    assert REAL_WORDING.get(case.id, case.crd_says or "") in said, said


@pytest.mark.parametrize("case", [c for c in CASES if not c.crd_says], ids=lambda c: c.id)
def test_rules_beyond_the_crd_pass_the_real_server(kube: Kube, operator: str, case: Case) -> None:
    code, said = _create(kube, "default", case)
    assert code == 0, said
