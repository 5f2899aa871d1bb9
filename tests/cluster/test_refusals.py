"""What a real API server refuses, and how the operator reports it (issue #15): a refused
write is Ready False `ApplyFailed` with the status written; what it would refuse in the
rendered objects is caught before writing; a configuration over 256 KiB travels gzipped
and the real gateway pod reads it; the API token is never mounted."""

from __future__ import annotations

import json
from typing import Any

from cluster.common import SERVER, SOURCE, call, deploy, objects
from cluster.kube import Kube, ready_pods
from support.objects import mcp_server, tool
from support.poll import wait_for_sync
from support.upstream import RecordingUpstream


def _deny_gateway_configs(ns: str) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy (CEL, in the API server itself) that refuses the
    gateway's ConfigMaps in `ns`: a real refusal, as a quota or a policy engine makes."""
    name = f"deny-gateway-configs-{ns}"[:63]
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!object.metadata.name.endsWith('-config')",
                        "message": "no gateway configurations in this namespace (test policy)",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
                },
            },
        },
    ]


def test_a_refused_write_is_apply_failed_with_the_status_written(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    policy = _deny_gateway_configs(ns)
    kube.apply(policy, ns)
    try:
        probe = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "probe-config"},
            "data": {"a": "b"},
        }

        def policy_in_force() -> bool:  # the API server loads new policies in a moment
            done = kube.run(
                "kubectl", "-n", ns, "create", "-f", "-", input=json.dumps(probe), check=False
            )
            if done.returncode == 0:
                kube.kubectl("-n", ns, "delete", "configmap", "probe-config")
                return False
            return "test policy" in done.stderr

        wait_for_sync(policy_in_force, within=30, interval=0.5, what="the policy in force")
        kube.apply(objects(upstream.url), ns)

        def refused() -> dict[str, Any]:
            ready = kube.condition("mcpserver", SERVER, ns, "Ready")
            return ready if ready.get("reason") == "ApplyFailed" else {}

        ready = wait_for_sync(refused, within=60, interval=0.5, what="Ready ApplyFailed")
        assert ready["status"] == "False"
        assert "test policy" in ready["message"]  # the API server's own words
        server = kube.get("mcpserver", SERVER, ns)
        assert server["status"]["observedGeneration"] == server["metadata"]["generation"]
        assert not kube.exists("deployment", SERVER, ns)
    finally:
        for obj in reversed(policy):
            kube.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], check=False)
    kube.wait_ready(ns, f"mcpserver/{SERVER}")  # the operator's retry, once allowed


def test_labels_the_api_server_would_refuse_are_invalid_spec_and_nothing_is_written(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    kube.apply(objects(upstream.url, podTemplate={"metadata": {"labels": {"bad key": "x"}}}), ns)

    def judged() -> dict[str, Any]:
        return kube.condition("mcpserver", SERVER, ns, "Accepted")

    accepted = wait_for_sync(judged, within=60, interval=0.5, what="Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "InvalidSpec")
    assert "spec.podTemplate.metadata.labels" in accepted["message"]
    assert not kube.exists("configmap", f"{SERVER}-config", ns)


async def test_a_configuration_over_256_kib_is_gzipped_and_served(
    kube: Kube, ns: str, upstream: RecordingUpstream
) -> None:
    pod = deploy(kube, ns, upstream, serviceAccountName="default")
    assert pod["spec"]["automountServiceAccountToken"] is False  # the API token, never
    assert "data" in kube.get("configmap", f"{SERVER}-config", ns)
    # Grow the server past 256 KiB: the ConfigMap moves to binaryData (its `data` removed
    # by the same patch), the pods roll, and the gateway reads the gzipped file.
    text = "A long and repetitive description of a tool. " * 60
    tools = [tool("get_item", SOURCE)] + [
        {**tool(f"extra_{i}", SOURCE), "description": text} for i in range(120)
    ]
    grown = mcp_server(
        SERVER, tools=tools, authorization={"type": "None"}, serviceAccountName="default"
    )
    grown["metadata"]["namespace"] = ns
    # `replace`, not `apply`: apply's last-applied annotation would hold the whole spec,
    # over the 256 KiB an object's annotations may hold.
    kube.run("kubectl", "-n", ns, "replace", "-f", "-", input=json.dumps(grown))

    def gzipped() -> bool:
        config_map = kube.get("configmap", f"{SERVER}-config", ns)
        return "binaryData" in config_map and "data" not in config_map

    wait_for_sync(gzipped, within=60, interval=0.5, what="the gzipped ConfigMap")
    kube.wait_ready(ns, f"mcpserver/{SERVER}")

    def rolled() -> bool:
        pods = ready_pods(kube, ns, SERVER)
        return bool(pods) and all(p["metadata"]["name"] != pod["metadata"]["name"] for p in pods)

    wait_for_sync(rolled, within=90, interval=0.5, what="only new gateway pods")
    result = await call(kube, ns)
    assert result.is_error is False
