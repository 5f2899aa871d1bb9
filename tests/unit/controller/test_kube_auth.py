"""The operator's requests carry the kubeconfig's (or the pod's) token. The kubernetes
client keeps it under `BearerToken`; read from the wrong key, every request went out
anonymous and a real API server refused it (403 for system:anonymous)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from mcpgate.controller.kube import KubeClient, authorization_header
from mcpgate.controller.main import kube_configuration

TOKEN = "sa-token-for-the-test-0123456789"


def kubeconfig(tmp_path: Path, user: dict[str, str]) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


def test_a_kubeconfig_token_becomes_the_authorization_header(tmp_path: Path) -> None:
    configuration = kube_configuration(kubeconfig(tmp_path, {"token": TOKEN}))
    assert authorization_header(configuration) == f"Bearer {TOKEN}"


def test_a_client_certificate_user_sends_no_authorization(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.write_text("cert"), key.write_text("key")
    user = {"client-certificate": str(cert), "client-key": str(key)}
    assert authorization_header(kube_configuration(kubeconfig(tmp_path, user))) is None


async def test_every_request_of_the_client_carries_it(tmp_path: Path) -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"kind": "ConfigMap", "metadata": {"name": "x"}})

    configuration = kube_configuration(kubeconfig(tmp_path, {"token": TOKEN}))
    configuration.verify_ssl = False
    client = KubeClient(configuration)
    client._http._transport = httpx.MockTransport(answer)
    try:
        await client.get("ConfigMap", "default", "x")
    finally:
        await client.aclose()
    assert seen == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("key", ["BearerToken", "authorization"])
def test_either_key_of_a_hand_made_configuration(key: str) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.api_key[key] = f"Bearer {TOKEN}"
    assert authorization_header(configuration) == f"Bearer {TOKEN}"
