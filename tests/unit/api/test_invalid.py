"""Invalid manifests, one broken rule each: the models reject every one with an error
that names the field path and the problem, and the CRD schema plus its CEL rules
reject the same manifest wherever the rule can be expressed there."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.crd import KINDS, crd
from mcpgate.api.errors import error_lines, invalid_reason

from support.kube_schema import CrdValidator

VALIDATORS = {kind.kind: CrdValidator(crd(kind)) for kind in KINDS}

DATA_SOURCE: dict[str, Any] = {
    "apiVersion": "mcpgate.io/v1alpha1",
    "kind": "HttpApiDataSource",
    "metadata": {"name": "billing"},
    "spec": {
        "baseUrl": "https://billing.example.com/api",
        "auth": {"type": "Bearer", "bearer": {"tokenSecretRef": {"name": "creds", "key": "t"}}},
    },
}

SERVER: dict[str, Any] = {
    "apiVersion": "mcpgate.io/v1alpha1",
    "kind": "McpServer",
    "metadata": {"name": "billing-mcp"},
    "spec": {
        "authorization": {"type": "ApiKey", "apiKeySecretRef": {"name": "keys"}},
        "tools": [
            {
                "name": "get_invoice",
                "description": "Fetch one invoice.",
                "dataSource": "billing",
                "parameters": [
                    {"name": "id", "type": "String", "required": True},
                    {"name": "expand", "type": "Boolean"},
                ],
                "request": {"path": "/invoices/:id", "query": {"expand": ":expand"}},
            }
        ],
    },
}

Mutation = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "ds" or "srv"
    mutate: Mutation
    path: str  # the field path the model's error names
    says: str  # a fragment of the model's message
    crd_says: str | None  # a fragment of the API server's error; None: not expressible there
    reason: str = "InvalidSpec"


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _do(*mutations: Mutation) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        for m in mutations:
            m(obj)

    return mutate


def _tool(**changes: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["tools"][0].update(changes)

    return mutate


def _request(**changes: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["tools"][0]["request"].update(changes)

    return mutate


SECRET = {"name": "creds", "key": "k"}

CASES = [
    # --- HttpApiDataSource -------------------------------------------------------------
    Case(
        "auth block does not match type",
        "ds",
        _set("spec.auth", {"type": "Bearer", "apiKey": {"valueSecretRef": SECRET}}),
        "spec.auth",
        "auth.bearer is required",
        "auth.bearer must be set when auth.type is Bearer",
    ),
    Case(
        "auth type None with a block",
        "ds",
        _set("spec.auth", {"type": "None", "bearer": {"tokenSecretRef": SECRET}}),
        "spec.auth",
        "remove auth.bearer",
        "auth.bearer must be set when auth.type is Bearer, and only then",
    ),
    Case(
        "two auth blocks",
        "ds",
        _set(
            "spec.auth",
            {
                "type": "Bearer",
                "bearer": {"tokenSecretRef": SECRET},
                "basic": {"username": "u", "passwordSecretRef": SECRET},
            },
        ),
        "spec.auth",
        "remove auth.basic",
        "auth.basic must be set when auth.type is Basic",
    ),
    Case(
        "both username and usernameSecretRef",
        "ds",
        _set(
            "spec.auth",
            {
                "type": "Basic",
                "basic": {
                    "username": "u",
                    "usernameSecretRef": SECRET,
                    "passwordSecretRef": SECRET,
                },
            },
        ),
        "spec.auth.basic",
        "exactly one of username and usernameSecretRef",
        "exactly one of username and usernameSecretRef",
    ),
    Case(
        "neither username nor usernameSecretRef",
        "ds",
        _set("spec.auth", {"type": "Basic", "basic": {"passwordSecretRef": SECRET}}),
        "spec.auth.basic",
        "exactly one of username and usernameSecretRef",
        "exactly one of username and usernameSecretRef",
    ),
    Case(
        "both clientId and clientIdSecretRef",
        "ds",
        _set(
            "spec.auth",
            {
                "type": "OAuth2ClientCredentials",
                "oauth2ClientCredentials": {
                    "tokenUrl": "https://login.example.com/token",
                    "clientId": "c",
                    "clientIdSecretRef": SECRET,
                    "clientSecretSecretRef": SECRET,
                },
            },
        ),
        "spec.auth.oauth2ClientCredentials",
        "exactly one of clientId and clientIdSecretRef",
        "exactly one of clientId and clientIdSecretRef",
    ),
    Case(
        "tokenUrl over plain http to a remote host",
        "ds",
        _set(
            "spec.auth",
            {
                "type": "OAuth2ClientCredentials",
                "oauth2ClientCredentials": {
                    "tokenUrl": "http://login.example.com/token",
                    "clientId": "c",
                    "clientSecretSecretRef": SECRET,
                },
            },
        ),
        "spec.auth.oauth2ClientCredentials.tokenUrl",
        "tokenUrl must use https",
        "tokenUrl must use https",
    ),
    Case(
        "AWS access key without secret key",
        "ds",
        _set(
            "spec.auth",
            {
                "type": "AwsSigV4",
                "awsSigV4": {
                    "region": "eu-west-1",
                    "service": "execute-api",
                    "accessKeyIdSecretRef": SECRET,
                },
            },
        ),
        "spec.auth.awsSigV4",
        "set both accessKeyIdSecretRef and secretAccessKeySecretRef, or neither",
        "set both accessKeyIdSecretRef and secretAccessKeySecretRef, or neither",
    ),
    Case(
        "baseUrl with a query",
        "ds",
        _set("spec.baseUrl", "https://billing.example.com/api?v=2"),
        "spec.baseUrl",
        "must not hold a ?query",
        "spec.baseUrl: 'https://billing.example.com/api?v=2' does not match",
    ),
    Case(
        "baseUrl with a user",
        "ds",
        _set("spec.baseUrl", "https://user:pw@billing.example.com/"),
        "spec.baseUrl",
        "must not hold a user or password",
        "spec.baseUrl:",
    ),
    Case(
        "baseUrl that is not http",
        "ds",
        _set("spec.baseUrl", "ftp://billing.example.com/"),
        "spec.baseUrl",
        "must start with http:// or https://",
        "spec.baseUrl:",
    ),
    Case(
        "baseUrl with a fragment",
        "ds",
        _set("spec.baseUrl", "https://billing.example.com/api#x"),
        "spec.baseUrl",
        "#fragment",
        "spec.baseUrl:",
    ),
    Case(
        "reserved header",
        "ds",
        _set("spec.headers", {"Authorization": "Bearer x"}),
        "spec",
        "'Authorization' is reserved",
        None,
    ),
    Case(
        "header that the API key uses",
        "ds",
        _set(
            "spec",
            {
                "baseUrl": "https://a.example.com",
                "headers": {"x-token": "1"},
                "auth": {"type": "ApiKey", "apiKey": {"name": "X-Token", "valueSecretRef": SECRET}},
            },
        ),
        "spec",
        "'x-token' is reserved",
        None,
    ),
    Case(
        "timeout out of range",
        "ds",
        _set("spec.timeoutSeconds", 0),
        "spec.timeoutSeconds",
        "greater than or equal to 1",
        "spec.timeoutSeconds:",
    ),
    Case(
        "Secret ref without key",
        "ds",
        _set("spec.auth.bearer.tokenSecretRef", {"name": "creds"}),
        "spec.auth.bearer.tokenSecretRef.key",
        "required field is missing",
        "'key' is a required property",
    ),
    Case(
        "Secret name that is not a DNS name",
        "ds",
        _set("spec.auth.bearer.tokenSecretRef", {"name": "Creds_1", "key": "t"}),
        "spec.auth.bearer.tokenSecretRef.name",
        "should match pattern",
        "spec.auth.bearer.tokenSecretRef.name:",
    ),
    Case(
        "unknown field",
        "ds",
        _set("spec.baseURL", "https://typo.example.com"),
        "spec.baseURL",
        "unknown field",
        "Additional properties are not allowed ('baseURL'",
    ),
    Case(
        "apiKey in a cookie",
        "ds",
        _set("spec.auth", {"type": "ApiKey", "apiKey": {"in": "Cookie", "valueSecretRef": SECRET}}),
        "spec.auth.apiKey.in",
        "'Header' or 'Query'",
        "spec.auth.apiKey.in: 'Cookie' is not one of",
    ),
    Case(
        "API key prefix in a query",
        "ds",
        _set(
            "spec.auth",
            {
                "type": "ApiKey",
                "apiKey": {"in": "Query", "prefix": "Token ", "valueSecretRef": SECRET},
            },
        ),
        "spec.auth.apiKey",
        "prefix applies to a header only",
        "prefix applies to a header only",
    ),
    # --- McpServer ----------------------------------------------------------------------
    Case(
        "tool name with a space",
        "srv",
        _tool(name="get invoice"),
        "spec.tools[0].name",
        "should match pattern",
        "spec.tools[0].name:",
    ),
    Case(
        "duplicate tools",
        "srv",
        lambda o: o["spec"]["tools"].append(copy.deepcopy(o["spec"]["tools"][0])),
        "spec.tools",
        "tool names must be unique in the server; repeated: get_invoice",
        "spec.tools[1]: Duplicate value",
        reason="DuplicateTool",
    ),
    Case(
        "undeclared /:param segment",
        "srv",
        _request(path="/invoices/:invoice_id"),
        "spec.tools[0]",
        "segment ':invoice_id' names no declared parameter",
        None,
        reason="UnknownParameter",
    ),
    Case(
        "body on GET",
        "srv",
        _request(body={"a": 1}),
        "spec.tools[0].request",
        "body is only allowed with method POST, PUT or PATCH",
        None,  # body is free JSON, which CEL cannot name: a real API server refuses the rule
    ),
    Case(
        "optional path parameter",
        "srv",
        _request(path="/invoices/:id/:expand"),
        "spec.tools[0]",
        "path parameters must be required: set required: true on expand",
        None,
    ),
    Case(
        "Array parameter without items",
        "srv",
        _tool(parameters=[{"name": "id", "required": True}, {"name": "tags", "type": "Array"}]),
        "spec.tools[0].parameters[1]",
        "items is required for type Array",
        "items is required for type Array, and allowed only there",
    ),
    Case(
        "items on a String parameter",
        "srv",
        _tool(parameters=[{"name": "id", "required": True, "items": {"type": "String"}}]),
        "spec.tools[0].parameters[0]",
        "items is required for type Array, and allowed only there",
        "items is required for type Array, and allowed only there",
    ),
    Case(
        "path without a leading slash",
        "srv",
        _request(path="invoices/:id"),
        "spec.tools[0].request.path",
        "path must start with '/'",
        "spec.tools[0].request.path:",
    ),
    Case(
        "ApiKey without apiKeySecretRef",
        "srv",
        _set("spec.authorization", {"type": "ApiKey"}),
        "spec.authorization",
        "apiKeySecretRef is required",
        "apiKeySecretRef is required for ApiKey and BearerPassthrough",
    ),
    Case(
        "apiKeySecretRef with a key",
        "srv",
        _set("spec.authorization.apiKeySecretRef", {"name": "keys", "key": "k"}),
        "spec.authorization.apiKeySecretRef.key",
        "unknown field",
        "Additional properties are not allowed ('key'",
    ),
    Case(
        "autoscaling with replicas",
        "srv",
        _do(
            _set("spec.replicas", 2),
            _set("spec.autoscaling", {"maxReplicas": 4}),
            _set("spec.resources", {"requests": {"cpu": "100m"}}),
        ),
        "spec",
        "set replicas or autoscaling, not both",
        "set replicas or autoscaling, not both",
    ),
    Case(
        "autoscaling without a CPU request",
        "srv",
        _set("spec.autoscaling", {"maxReplicas": 4}),
        "spec",
        "autoscaling needs resources.requests.cpu",
        "autoscaling needs resources.requests.cpu",
    ),
    Case(
        "autoscaling min above max",
        "srv",
        _do(
            _set("spec.autoscaling", {"minReplicas": 5, "maxReplicas": 4}),
            _set("spec.resources", {"requests": {"cpu": "100m"}}),
        ),
        "spec.autoscaling",
        "minReplicas must not exceed maxReplicas",
        "minReplicas must not exceed maxReplicas",
    ),
    Case(
        "server name not a DNS-1035 label",
        "srv",
        _set("metadata.name", "1billing"),
        "metadata",
        "must be a DNS-1035 label",
        "metadata.name must be a DNS-1035 label",
    ),
    Case(
        "server name over 63 characters",
        "srv",
        _set("metadata.name", "b" * 64),
        "metadata",
        "at most 63 characters",
        "metadata.name must be a DNS-1035 label of at most 63 characters",
    ),
    Case(
        "parameter name with a dash",
        "srv",
        _tool(parameters=[{"name": "id", "required": True}, {"name": "page-size"}]),
        "spec.tools[0].parameters[1].name",
        "should match pattern",
        "spec.tools[0].parameters[1].name:",
    ),
    Case(
        "unknown parameter type",
        "srv",
        _tool(parameters=[{"name": "id", "required": True, "type": "Float"}]),
        "spec.tools[0].parameters[0].type",
        "Input should be 'String'",
        "spec.tools[0].parameters[0].type: 'Float' is not one of",
    ),
    Case(
        "duplicate parameter names",
        "srv",
        _tool(parameters=[{"name": "id", "required": True}, {"name": "id", "required": True}]),
        "spec.tools[0]",
        "parameter names must be unique",
        "spec.tools[0].parameters[1]: Duplicate value",
    ),
    Case(
        "default of the wrong type",
        "srv",
        _tool(
            parameters=[
                {"name": "id", "required": True},
                {"name": "n", "type": "Integer", "default": "ten"},
            ]
        ),
        "spec.tools[0].parameters[1]",
        "default value 'ten' is not of type Integer",
        None,
    ),
    Case(
        "unsupported method",
        "srv",
        _request(method="TRACE"),
        "spec.tools[0].request.method",
        "Input should be 'GET'",
        "spec.tools[0].request.method: 'TRACE' is not one of",
    ),
    Case(
        "reserved header in a tool",
        "srv",
        _request(headers={"Host": "evil.example.com"}),
        "spec.tools[0].request",
        "'Host' is reserved",
        None,
    ),
    Case(
        "data source name with capitals",
        "srv",
        _tool(dataSource="Billing"),
        "spec.tools[0].dataSource",
        "should match pattern",
        "spec.tools[0].dataSource:",
    ),
    Case(
        "allowed origin with a path",
        "srv",
        _set("spec.allowedOrigins", ["https://console.example.com/app"]),
        "spec.allowedOrigins[0]",
        "should match pattern",
        "spec.allowedOrigins[0]:",
    ),
    Case(
        "unknown field in a tool",
        "srv",
        _tool(timeout=3),
        "spec.tools[0].timeout",
        "unknown field",
        "Additional properties are not allowed ('timeout'",
    ),
    Case(
        "more than 200 tools",
        "srv",
        lambda o: o["spec"].update(
            tools=[{**o["spec"]["tools"][0], "name": f"t{i}"} for i in range(201)]
        ),
        "spec.tools",
        "at most 200 items",
        "spec.tools: [",
    ),
]


def _broken(case: Case) -> dict[str, Any]:
    obj = copy.deepcopy(DATA_SOURCE if case.kind == "ds" else SERVER)
    case.mutate(obj)
    return obj


def _model(case: Case) -> type[HttpApiDataSource] | type[McpServer]:
    return HttpApiDataSource if case.kind == "ds" else McpServer


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("base", [DATA_SOURCE, SERVER], ids=["data source", "server"])
def test_the_base_objects_are_valid(base: dict[str, Any]) -> None:
    model = HttpApiDataSource if base["kind"] == "HttpApiDataSource" else McpServer
    model.model_validate(base)
    assert VALIDATORS[base["kind"]].errors(base) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_models_reject_it_naming_the_field(case: Case) -> None:
    with pytest.raises(ValidationError) as caught:
        _model(case).model_validate(_broken(case))
    lines = error_lines(caught.value)
    assert any(line.startswith(f"{case.path}: ") and case.says in line for line in lines), lines
    assert invalid_reason(caught.value) == case.reason


@pytest.mark.parametrize("case", [c for c in CASES if c.crd_says], ids=lambda c: c.id)
def test_the_crd_rejects_it_too(case: Case) -> None:
    kind = "HttpApiDataSource" if case.kind == "ds" else "McpServer"
    errors = VALIDATORS[kind].errors(_broken(case))
    assert any(case.crd_says in e for e in errors), errors


@pytest.mark.parametrize("case", [c for c in CASES if not c.crd_says], ids=lambda c: c.id)
def test_rules_cel_cannot_express_pass_the_crd(case: Case) -> None:
    """These rules are the operator's to report (Accepted=False): if the CRD started to
    catch one, the table should say so."""
    kind = "HttpApiDataSource" if case.kind == "ds" else "McpServer"
    assert VALIDATORS[kind].errors(_broken(case)) == []
