"""The gateway configuration's text, written tool by tool: what the gateway reads back from
it must be every field of every tool as the spec says, falsy values, nulls inside
templates, non-ASCII text and integers beyond 64 bits included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.config import GatewayConfig
from mcpgate.local import CredentialsFolder, load_local
from mcpgate.render.config import gateway_config_json, tool_annotations
from mcpgate.render.objects import API_KEYS_DIR, render_objects
from mcpgate.render.settings import RenderSettings

from support.paths import EXAMPLES

NAMESPACE = "team-a"

SOURCE = HttpApiDataSource.model_validate(
    {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "HttpApiDataSource",
        "metadata": {"name": "billing", "namespace": NAMESPACE},
        "spec": {"baseUrl": "https://billing.example.com/api", "headers": {"Accept": "x/y"}},
    }
)

TOOLS: list[dict[str, Any]] = [
    {
        "name": "falsy_values",
        "description": "",
        "dataSource": "billing",
        "parameters": [
            {"name": "zero", "type": "Integer", "default": 0, "enum": [0, 1]},
            {"name": "empty", "type": "String", "default": "", "enum": ["", "a"]},
            {"name": "off", "type": "Boolean", "default": False},
            {"name": "none_yet", "type": "Array", "default": [], "items": {"type": "Number"}},
            {"name": "blank", "type": "Object", "default": {}},
        ],
        "request": {"method": "GET", "path": "/x", "query": {"z": ":zero", "e": ":empty"}},
    },
    {
        "name": "nulls_in_templates",
        "description": 'Prüfe die Rechnung: 5 € — 請求書 \u2028 "quoted" \\ back',
        "dataSource": "billing",
        "parameters": [
            {"name": "id", "type": "String", "required": True, "description": "Ünïcode"},
            {"name": "nested", "type": "Object", "default": {"a": None, "b": [None, {"c": None}]}},
        ],
        "request": {
            "method": "POST",
            "path": "/invoices/:id",
            "headers": {"X-Note": "ä-:id"},
            "body": {"id": ":id", "keep": None, "list": [None, 1.5, True], "obj": ":nested"},
        },
        "annotations": {"title": "Nulls", "readOnlyHint": False},
    },
    {
        "name": "big_integer",
        "dataSource": "billing",
        "parameters": [{"name": "n", "type": "Integer", "default": 2**70, "enum": [2**70, 1]}],
        "request": {"method": "PUT", "path": "/n", "body": {"n": ":n", "huge": 2**80}},
    },
]


def server(tools: list[dict[str, Any]]) -> McpServer:
    return McpServer.model_validate(
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "McpServer",
            "metadata": {"name": "text-mcp", "namespace": NAMESPACE},
            "spec": {"authorization": {"type": "None"}, "tools": tools},
        }
    )


def test_every_tool_field_is_read_back_as_the_spec_says() -> None:
    spec_server = server(TOOLS)
    text = gateway_config_json(spec_server, {"billing": SOURCE})
    config = GatewayConfig.model_validate_json(text)
    assert [t.name for t in config.tools] == [t["name"] for t in TOOLS]
    for tool, read in zip(spec_server.spec.tools, config.tools, strict=True):
        assert read.description == tool.description
        assert read.data_source == tool.data_source
        assert read.annotations == tool_annotations(tool)
        assert read.request.method == tool.request.method
        assert read.request.path == tool.request.path
        assert read.request.query == tool.request.query
        assert read.request.headers == tool.request.headers
        assert read.request.body == tool.request.body
        for parameter, read_parameter in zip(tool.parameters, read.parameters, strict=True):
            assert read_parameter.name == parameter.name
            assert read_parameter.type == parameter.type
            assert read_parameter.description == parameter.description
            assert read_parameter.required == parameter.required
            assert read_parameter.default == parameter.default
            assert read_parameter.enum == (
                tuple(parameter.enum) if parameter.enum is not None else None
            )
            expected_items = parameter.items.type if parameter.items is not None else None
            assert read_parameter.items_type == expected_items
    # Falsy values are values, not absences; nulls inside a template stay.
    falsy = {p.name: p.default for p in config.tools[0].parameters}
    assert falsy == {"zero": 0, "empty": "", "off": False, "none_yet": [], "blank": {}}
    assert config.tools[1].request.body["keep"] is None
    assert config.tools[2].parameters[0].default == 2**70


def test_the_text_is_indented_json_with_one_tool_per_line() -> None:
    text = gateway_config_json(server(TOOLS), {"billing": SOURCE})
    data = json.loads(text)
    # The models' field order; an unset optional field (None) is left out.
    assert list(data) == [
        f for f in GatewayConfig.model_fields if f != "allow_loopback_destinations"
    ]
    lines = text.split("\n")  # not splitlines(): U+2028 in a description is not a line end
    tool_lines = [line for line in lines if line.startswith("    {")]
    assert [json.loads(line.rstrip(","))["name"] for line in tool_lines] == [
        t["name"] for t in TOOLS
    ]
    assert lines[0] == "{"
    assert lines[-1] == "}"
    assert '  "tools": [' in lines


def test_a_server_without_tools_has_an_empty_tool_list() -> None:
    text = gateway_config_json(server([]), {})
    assert json.loads(text)["tools"] == []
    assert GatewayConfig.model_validate_json(text).tools == ()


@pytest.mark.parametrize("count", [1, 2, 200])
def test_the_same_spec_gives_the_same_text(count: int) -> None:
    tools = [dict(TOOLS[i % len(TOOLS)], name=f"tool_{i}") for i in range(count)]
    first = gateway_config_json(server(tools), {"billing": SOURCE})
    again = gateway_config_json(server(tools), {"billing": SOURCE})
    assert first == again
    assert len(GatewayConfig.model_validate_json(first).tools) == count


def test_loopback_destinations_are_allowed_only_when_asked() -> None:
    """API.md "Destinations": `mcpgate up` and an operator run with
    --allow-loopback-destinations let gateways reach loopback upstreams. Left out of the
    text otherwise, so that every other configuration keeps its hash."""
    srv, sources = server(TOOLS[:1]), {"billing": SOURCE}
    default = gateway_config_json(srv, sources)
    assert "allow_loopback_destinations" not in default
    assert GatewayConfig.model_validate_json(default).allow_loopback_destinations is None
    allowed = gateway_config_json(srv, sources, allow_loopback_destinations=True)
    assert GatewayConfig.model_validate_json(allowed).allow_loopback_destinations is True

    settings = RenderSettings(allow_loopback_destinations=True)
    config_json, _, _ = render_objects(srv, sources, settings)
    assert GatewayConfig.model_validate_json(config_json).allow_loopback_destinations is True
    config_json, _, _ = render_objects(srv, sources, RenderSettings())
    assert config_json == gateway_config_json(srv, sources, api_keys_dir=API_KEYS_DIR)


def test_up_serves_with_loopback_destinations_allowed() -> None:
    local, manifests = load_local([EXAMPLES / "quickstart"], None, RenderSettings())
    folder = CredentialsFolder()
    try:
        assert folder.config(local, manifests).allow_loopback_destinations is True
    finally:
        folder.remove()
