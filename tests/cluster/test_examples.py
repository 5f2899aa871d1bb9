"""Every example under examples/, applied with `kubectl apply -f` as a user applies it,
each in a namespace of its own, after every baseUrl and tokenUrl in it is pointed at a
loopback fake (the quickstart's at its own demo API, run as a pod of the mcpgate image):
`kubectl wait --for=condition=Ready` holds for each McpServer and HttpApiDataSource,
`kubectl get` shows the printer columns, and every tool, called with the official MCP
client at the gateway pod's own address, reaches the upstream with the example's
credentials. The misconfigured example shows its warning condition and Event."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from integration.gateway.test_examples_served import _arguments, _assert_auth
from mcpgate.manifests import load_manifests

from cluster.kube import Kube, gateway_url, ready_pod
from support.gateway import mcp_session
from support.paths import EXAMPLE_DIRS, EXAMPLES
from support.poll import wait_for_sync
from support.upstream import RecordingUpstream, TokenServer


def _secret_value(docs: list[dict[str, Any]], name: str, key: str) -> str:
    (found,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == name]
    return str(found["stringData"][key])


def _pointed(docs: list[dict[str, Any]], base: str, upstream: RecordingUpstream) -> None:
    """Every data source at `base` (keeping its path), every token URL at a token server
    on `upstream` that checks what the example configures."""
    for doc in docs:
        if doc["kind"] != "HttpApiDataSource":
            continue
        spec = doc["spec"]
        spec["baseUrl"] = base + urlsplit(spec["baseUrl"]).path
        oauth = spec.get("auth", {}).get("oauth2ClientCredentials")
        if oauth is not None:
            ref = oauth["clientSecretSecretRef"]
            token = TokenServer(
                upstream,
                client_id=oauth["clientId"],
                client_secret=_secret_value(docs, ref["name"], ref["key"]),
                client_authentication=oauth.get("clientAuthentication", "Basic"),
                scopes=tuple(oauth.get("scopes", ())),
                audience=oauth.get("audience"),
                extra_params=oauth.get("extraParams"),
            )
            oauth["tokenUrl"] = token.url


def _documents(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        f.name: [d for d in yaml.safe_load_all(f.read_text()) if d]
        for f in sorted(folder.glob("*.yaml"))
    }


def _write(files: dict[str, list[dict[str, Any]]], into: Path) -> Path:
    into.mkdir()
    for name, docs in files.items():
        (into / name).write_text(yaml.safe_dump_all(docs))
    return into


def _demo_api(kube: Kube, ns: str, tmp_path: Path) -> str:
    """The quickstart's demo API as the pod it is (demo-api.yaml): its base URL."""
    kube.kubectl("-n", ns, "apply", "-f", str(EXAMPLES / "quickstart" / "demo-api.yaml"))
    kube.kubectl("-n", ns, "rollout", "status", "deployment/demo-api", "--timeout=90s", timeout=100)
    (pod,) = [
        p
        for p in kube.items("pods", ns, "-l", "app.kubernetes.io/name=demo-api")
        if p["metadata"].get("deletionTimestamp") is None
    ]
    assert pod["status"]["podIP"].startswith("127.")
    return f"http://{pod['status']['podIP']}:8081"


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)
async def test_example_applied_with_kubectl(
    kube: Kube, ns: str, upstream: RecordingUpstream, folder: Path, tmp_path: Path
) -> None:
    files = _documents(folder)
    files.pop("demo-api.yaml", None)
    docs = [d for group in files.values() for d in group]
    quickstart = folder.name == "quickstart"
    base = _demo_api(kube, ns, tmp_path) if quickstart else upstream.url
    _pointed(docs, base, upstream)
    kube.kubectl("-n", ns, "apply", "-f", str(_write(files, tmp_path / folder.name)))

    servers = [d["metadata"]["name"] for d in docs if d["kind"] == "McpServer"]
    sources = [d["metadata"]["name"] for d in docs if d["kind"] == "HttpApiDataSource"]
    kube.wait_ready(
        ns, *(f"mcpserver/{s}" for s in servers), *(f"httpapidatasource/{s}" for s in sources)
    )

    table = kube.kubectl("-n", ns, "get", "mcpservers,httpapidatasources").stdout
    headers = [line.split() for line in table.splitlines() if line.startswith("NAME")]
    assert headers == [
        ["NAME", "READY", "AUTH", "TOOLS", "URL", "AGE"],
        ["NAME", "READY", "AUTH", "BASE", "URL", "AGE"],
    ], table

    if folder.name == "passthrough-misconfigured":
        (server,) = servers
        passthrough = kube.condition("mcpserver", server, ns, "PassthroughConfigured")
        assert passthrough["status"] == "False", passthrough
        assert passthrough["reason"] == "DataSourceHasAuth", passthrough
        assert kube.condition("mcpserver", server, ns, "Ready")["status"] == "True"

        def warned() -> str:
            said = kube.kubectl("-n", ns, "describe", "mcpserver", server).stdout
            assert "Warning" in said, said
            assert "DataSourceHasAuth" in said or "wiki-api" in said, said
            return said

        wait_for_sync(warned, within=30, interval=0.5, what="the Warning Event")

    manifests = load_manifests([folder])
    for server in manifests.servers.values():
        await _call_every_tool(kube, ns, folder, server, manifests, upstream, quickstart)


async def _call_every_tool(
    kube: Kube,
    ns: str,
    folder: Path,
    server: Any,
    manifests: Any,
    upstream: RecordingUpstream,
    quickstart: bool,
) -> None:
    headers = {"authorization": "Bearer caller-token"}
    keys_ref = server.spec.authorization.api_key_secret_ref
    if keys_ref is not None:
        secret = manifests.secrets[("default", keys_ref.name)]
        headers["x-api-key"] = next(iter(secret.values.values())).decode()
    sources = {name: ds for (_, name), ds in manifests.data_sources.items()}
    pod = ready_pod(kube, ns, server.metadata.name)
    async with mcp_session(gateway_url(pod), headers=headers) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) == {t.name for t in server.spec.tools}
        for tool in server.spec.tools:
            before = len(upstream.requests)
            arguments = _arguments(listed[tool.name].input_schema)
            if quickstart:
                arguments = {"id": 1} if tool.name == "get_post" else arguments
            result = await client.call_tool(tool.name, arguments)
            assert result.is_error is False, (tool.name, result.content)
            if quickstart:
                continue  # the demo API answered; nothing of it goes to the upstream
            sent = [r for r in upstream.requests[before:] if "token" not in r.path]
            assert len(sent) == 1, tool.name
            _assert_auth(folder, sources[tool.data_source], sent[0], server)
