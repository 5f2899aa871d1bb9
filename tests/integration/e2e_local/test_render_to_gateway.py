"""The rendered configuration, run by the real gateway as a pod would run it: render ->
files laid out as kubelet mounts the ConfigMap and Secrets -> `mcpgate gateway --config`
-> the official MCP client -> the upstream sees the data source's auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from mcpgate.offline import render_files
from mcpgate.render.objects import API_KEYS_DIR
from mcpgate.render.settings import RenderSettings

from support.gateway import free_port, mcp_session
from support.poll import wait_for
from support.upstream import RecordingUpstream

API_KEY = "inbound-key-for-e2e-1"
TOKEN = "outbound-token-for-e2e-2"


def _manifests(folder: Path, upstream_url: str) -> None:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "api-creds"},
            "stringData": {"token": TOKEN + "\n", "unused": "never-mounted"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mcp-keys"},
            "stringData": {"ci": API_KEY},
        },
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "HttpApiDataSource",
            "metadata": {"name": "api"},
            "spec": {
                "baseUrl": f"{upstream_url}/v1",
                "auth": {
                    "type": "Bearer",
                    "bearer": {"tokenSecretRef": {"name": "api-creds", "key": "token"}},
                },
            },
        },
        {
            "apiVersion": "mcpgate.io/v1alpha1",
            "kind": "McpServer",
            "metadata": {"name": "e2e"},
            "spec": {
                "authorization": {"type": "ApiKey", "apiKeySecretRef": {"name": "mcp-keys"}},
                "tools": [
                    {
                        "name": "get_thing",
                        "dataSource": "api",
                        "parameters": [{"name": "id", "type": "Integer", "required": True}],
                        "request": {"path": "/things/:id"},
                    }
                ],
            },
        },
    ]
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))


def _mount_like_kubelet(
    objects: list[dict[str, Any]], folder: Path, secrets: dict[str, Any]
) -> tuple[Path, Path, Path]:
    """Write what the pod would see: the ConfigMap's keys, the projected credentials, the
    key Secret whole; each from the Deployment's own volume definitions."""
    by_kind = {o["kind"]: o for o in objects}
    config = folder / "etc" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(by_kind["ConfigMap"]["data"]["config.json"])
    creds, keys = folder / "credentials", folder / "api-keys"
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    for volume in pod["volumes"]:
        if "projected" in volume:
            for source in volume["projected"]["sources"]:
                for item in source["secret"]["items"]:
                    target = creds / item["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(secrets[source["secret"]["name"]][item["key"]])
        elif "secret" in volume:
            assert mounts[volume["name"]] == API_KEYS_DIR
            keys.mkdir()
            for key, value in secrets[volume["secret"]["secretName"]].items():
                (keys / key).write_text(value)
    return config, creds, keys


async def test_rendered_config_runs_in_the_real_gateway(
    upstream: RecordingUpstream, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    _manifests(manifests, upstream.url)
    # The upstream lives on loopback, which a cluster's gateway may reach only so.
    result = render_files([manifests], settings=RenderSettings(allow_loopback_destinations=True))
    assert result.all_ready
    secrets = {
        "api-creds": {"token": TOKEN + "\n", "unused": "never-mounted"},
        "mcp-keys": {"ci": API_KEY},
    }
    config, creds, keys = _mount_like_kubelet(result.objects, tmp_path / "pod", secrets)
    assert not (creds / "api-creds" / "unused").exists()  # only referenced keys are mounted

    port, metrics = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcpgate.cli",
            "gateway",
            "--config",
            str(config),
            "--credentials-dir",
            str(creds),
            "--api-keys-dir",
            str(keys),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=1).status_code == 200,
            within=20,
            retry_on=(httpx.TransportError,),
            what="the gateway's start",
        )
        async with mcp_session(f"{base}/mcp", headers={"x-api-key": API_KEY}) as client:
            result_call = await client.call_tool("get_thing", {"id": 42})
        assert result_call.is_error is False
        (seen,) = upstream.requests
        assert (seen.method, seen.path) == ("GET", "/v1/things/42")
        assert seen.header("authorization") == f"Bearer {TOKEN}"
        assert seen.header("x-api-key") is None
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert TOKEN not in output.decode()
    assert API_KEY not in output.decode()
