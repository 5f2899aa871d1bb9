"""Specs whose rendered objects the API server would refuse (issue #15): before, they were
reported Ready and every write then failed. Now `Accepted` False, with nothing written:
`InvalidSpec` for labels, annotations and names, `ConfigTooLarge` for a configuration
over 1 MiB after gzip; configurations over 256 KiB are stored gzipped and the gateway
reads them. Checked through `mcpgate render`, which runs the operator's own plan."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpgate.cli import main
from mcpgate.gateway.config import load_config

DATA_SOURCE = {
    "apiVersion": "mcpgate.io/v1alpha1",
    "kind": "HttpApiDataSource",
    "metadata": {"name": "api"},
    "spec": {"baseUrl": "https://api.example.com"},
}


def _server(**spec: Any) -> dict[str, Any]:
    tools = spec.pop("tools", [{"name": "t", "dataSource": "api", "request": {"path": "/x"}}])
    return {
        "apiVersion": "mcpgate.io/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": "s"},
        "spec": {"tools": tools, **spec},
    }


def _render(tmp_path: Path, capsys: pytest.CaptureFixture[str], server: Any) -> Any:
    file = tmp_path / "m.yaml"
    file.write_text(yaml.safe_dump_all([DATA_SOURCE, server]))
    code = main(["render", "-f", str(file)])
    out, err = capsys.readouterr()
    objects = [o for o in yaml.safe_load_all(out) if o]
    accepted = re.search(r"McpServer default/s: Accepted=(\w+) \((\w+)\) ?(.*)", err)
    assert accepted is not None, err
    return code, objects, accepted.groups()


BAD = [
    ({"metadata": {"labels": {"bad key": "x"}}}, "spec.podTemplate.metadata.labels", "bad key"),
    ({"metadata": {"labels": {"team": "a b"}}}, "spec.podTemplate.metadata.labels", "a b"),
    ({"metadata": {"labels": {"x": "v" * 64}}}, "spec.podTemplate.metadata.labels", "v" * 20),
    ({"metadata": {"labels": {"Bad_Prefix.io/a": "x"}}}, "labels", "Bad_Prefix.io/a"),
    ({"metadata": {"annotations": {"-dash": "x"}}}, "spec.podTemplate.metadata.annotations", ""),
    (
        {"metadata": {"annotations": {f"k{i}": "v" * 4096 for i in range(64)}}},
        "spec.podTemplate.metadata.annotations",
        "256 KiB",
    ),
    ({"spec": {"nodeSelector": {"disk type": "ssd"}}}, "spec.podTemplate.spec.nodeSelector", ""),
    ({"spec": {"tolerations": [{"key": "a b", "operator": "Exists"}]}}, "tolerations[0].key", ""),
    (
        {"spec": {"priorityClassName": "High_Priority"}},
        "spec.podTemplate.spec.priorityClassName",
        "",
    ),
]


@pytest.mark.parametrize(("template", "field", "named"), BAD)
def test_what_the_api_server_would_refuse_is_invalid_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: Any, field: str, named: str
) -> None:
    code, objects, (status, reason, message) = _render(
        tmp_path, capsys, _server(podTemplate=template)
    )
    assert (code, status, reason) == (1, "False", "InvalidSpec")
    assert field in message
    assert named in message
    assert "\n" not in message
    assert objects == []  # nothing would be written


GOOD = [
    {"metadata": {"labels": {"example.com/team": "billing", "tier": "", "a.b_c-d": "X.y_z"}}},
    {"metadata": {"annotations": {"Example.COM/Owner": "anything at all: ünïcode, spaces"}}},
    {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "priorityClassName": "high.prio"}},
    {"spec": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane"}]}},
]


@pytest.mark.parametrize("template", GOOD)
def test_valid_labels_and_names_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: Any
) -> None:
    code, objects, (status, _, _) = _render(tmp_path, capsys, _server(podTemplate=template))
    assert (code, status) == (0, "True")
    assert {o["kind"] for o in objects} >= {"ConfigMap", "Deployment"}


def _tools(count: int, text: str) -> list[dict[str, Any]]:
    return [
        {"name": f"t{i}", "dataSource": "api", "description": text, "request": {"path": "/x"}}
        for i in range(count)
    ]


def test_a_configuration_over_256_kib_is_stored_gzipped_and_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _server(tools=_tools(100, "A long, repetitive description. " * 100))
    code, objects, (status, _, _) = _render(tmp_path, capsys, server)
    assert (code, status) == (0, "True")
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert "data" not in config_map
    packed = base64.b64decode(config_map["binaryData"]["config.json"])
    text = gzip.decompress(packed)
    assert len(text) > 256 * 1024 > len(packed)
    # The gateway reads the mounted key as it is, gzipped.
    mounted = tmp_path / "config.json"
    mounted.write_bytes(packed)
    config = load_config(mounted)
    assert [t.name for t in config.tools] == [f"t{i}" for i in range(100)]
    assert json.loads(text)["server_name"] == "s"


def test_a_small_configuration_stays_plain_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, objects, _ = _render(tmp_path, capsys, _server())
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert "binaryData" not in config_map
    assert json.loads(config_map["data"]["config.json"])["server_name"] == "s"


def test_a_configuration_over_1_mib_gzipped_is_config_too_large(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Incompressible descriptions: 200 tools of 4 KiB random text gzip to about 600 KiB,
    # so each tool also carries parameters described as long.
    def tool(i: int) -> dict[str, Any]:
        noise = [base64.b64encode(os.urandom(3000)).decode() for _ in range(3)]
        return {
            "name": f"t{i}",
            "dataSource": "api",
            "description": noise[0],
            "parameters": [
                {"name": f"p{j}", "type": "String", "description": noise[j]} for j in (1, 2)
            ],
            "request": {"path": "/x"},
        }

    code, objects, (status, reason, message) = _render(
        tmp_path, capsys, _server(tools=[tool(i) for i in range(200)])
    )
    assert (code, status, reason) == (1, "False", "ConfigTooLarge")
    assert "after gzip" in message
    assert "split the tools" in message
    assert objects == []


def _keyed(tmp_path: Path, keys: dict[str, str]) -> Path:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keys"},
        "stringData": keys,
    }
    server = _server(authorization={"type": "ApiKey", "apiKeySecretRef": {"name": "keys"}})
    file = tmp_path / "keyed.yaml"
    file.write_text(yaml.safe_dump_all([DATA_SOURCE, secret, server]))
    return file


def test_an_inbound_key_under_16_characters_works_with_a_weak_api_key_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _keyed(tmp_path, {"laptop": "short-key-15chr", "ci": "a-long-enough-random-key"})
    code = main(["render", "-f", str(file)])
    _, err = capsys.readouterr()
    assert code == 0  # accepted: Ready all the same
    (warning,) = [line for line in err.splitlines() if "(WeakApiKey)" in line]
    assert warning.startswith("McpServer default/s: warning (WeakApiKey) Secret keys")
    assert "laptop" in warning
    assert "16 characters" in warning
    assert "ci" not in warning.split("keys in ", 1)[1].split(" are ")[0]
    assert "short-key-15chr" not in err  # never the value


def test_keys_of_16_characters_or_more_get_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _keyed(tmp_path, {"ci": "exactly-16-chars", "next": "exactly-16-chars\n"})
    assert main(["render", "-f", str(file)]) == 0
    assert "WeakApiKey" not in capsys.readouterr().err
