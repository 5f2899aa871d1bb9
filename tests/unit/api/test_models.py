"""Rules of the models that the invalid-manifest table does not show: what is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.mcpserver import path_placeholders

from support.objects import wire as to_wire


def _server(tool: dict[str, Any]) -> McpServer:
    return McpServer.model_validate(
        {"metadata": {"name": "s"}, "spec": {"tools": [{"name": "t", "dataSource": "d", **tool}]}}
    )


def _source(spec: dict[str, Any]) -> HttpApiDataSource:
    return HttpApiDataSource.model_validate({"metadata": {"name": "d"}, "spec": spec})


@pytest.mark.parametrize(
    ("path", "declared", "used", "unknown"),
    [
        ("/invoices/:id", {"id"}, {"id"}, set()),
        ("/invoices/:idx", {"id"}, set(), {"idx"}),
        ("/items:batchGet", set(), set(), set()),
        ("/items:batchGet", {"batchGet"}, {"batchGet"}, set()),
        ("/a/:id.json", {"id"}, {"id"}, set()),
        ("/a/v:version/b", {"version"}, {"version"}, set()),
        ("/a/:x/:y", {"x"}, {"x"}, {"y"}),
    ],
)
def test_path_placeholders(
    path: str, declared: set[str], used: set[str], unknown: set[str]
) -> None:
    assert path_placeholders(path, declared) == (used, unknown)


def test_literal_colon_words_are_allowed() -> None:
    server = _server(
        {"request": {"method": "POST", "path": "/items:batchGet", "body": {"type": "type:invoice"}}}
    )
    assert server.spec.tools[0].request.path == "/items:batchGet"


def test_colon_inside_a_segment_naming_no_parameter_is_literal() -> None:
    _server({"request": {"path": "/v1/projects/p:undeclared"}})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/token",
        "http://localhost/token",
        "http://[::1]:9000/oauth/token",
        "https://login.example.com/oauth2/token?p=policy",
    ],
)
def test_token_url_allows_https_and_loopback_http(url: str) -> None:
    _source(
        {
            "baseUrl": "https://a.example.com",
            "auth": {
                "type": "OAuth2ClientCredentials",
                "oauth2ClientCredentials": {
                    "tokenUrl": url,
                    "clientId": "c",
                    "clientSecretSecretRef": {"name": "s", "key": "k"},
                },
            },
        }
    )


@pytest.mark.parametrize(
    "url",
    ["https://a.example.com", "http://a.example.com:8080/api/v1", "https://a.example.com/api/"],
)
def test_base_urls_accepted(url: str) -> None:
    assert _source({"baseUrl": url}).spec.base_url == url


def test_aws_default_chain_needs_no_keys() -> None:
    source = _source(
        {
            "baseUrl": "https://a.example.com",
            "auth": {
                "type": "AwsSigV4",
                "awsSigV4": {"region": "eu-west-1", "service": "execute-api"},
            },
        }
    )
    assert source.spec.auth.aws_sig_v4 is not None


def test_api_key_header_name_may_be_authorization() -> None:
    # `Authorization: Token <key>` is a common API key scheme; auth is applied last.
    source = _source(
        {
            "baseUrl": "https://a.example.com",
            "auth": {
                "type": "ApiKey",
                "apiKey": {
                    "name": "Authorization",
                    "prefix": "Token ",
                    "valueSecretRef": {"name": "s", "key": "k"},
                },
            },
        }
    )
    assert source.spec.auth.api_key is not None


def test_content_type_and_amz_target_are_the_users() -> None:
    _source(
        {
            "baseUrl": "https://a.example.com",
            "headers": {
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.Scan",
            },
        }
    )


@pytest.mark.parametrize(
    ("param", "ok"),
    [
        ({"type": "Integer", "default": 3}, True),
        ({"type": "Integer", "default": True}, False),
        ({"type": "Number", "default": 2.5}, True),
        ({"type": "Boolean", "default": "true"}, False),
        ({"type": "String", "enum": ["a", "b"], "default": "c"}, False),
        ({"type": "Array", "items": {"type": "Integer"}, "default": [1, 2]}, True),
        ({"type": "Array", "items": {"type": "Integer"}, "default": [1, "2"]}, False),
        ({"type": "Object", "default": {"a": 1}}, True),
    ],
)
def test_parameter_defaults_and_enums_have_the_parameter_type(
    param: dict[str, Any], ok: bool
) -> None:
    tool = {"parameters": [{"name": "p", **param}], "request": {"path": "/x"}}
    if ok:
        _server(tool)
    else:
        with pytest.raises(ValidationError, match=r"spec|parameter 'p'"):
            _server(tool)


def test_models_round_trip_to_the_wire_form() -> None:
    server = _server(
        {"parameters": [{"name": "id", "required": True}], "request": {"path": "/x/:id"}}
    )
    wire = to_wire(server)
    assert wire["spec"]["tools"][0]["dataSource"] == "d"
    assert McpServer.model_validate(wire) == server
