"""Drift detection compares only what the operator sets."""

from __future__ import annotations

import copy
from typing import Any

from mcpgate.controller.drift import contains, merge_patch, needs_write, owned_by
from mcpgate.render.objects import HASH_ANNOTATION

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "s", "annotations": {HASH_ANNOTATION: "h1"}},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "gateway",
                        "image": "img:1",
                        "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}},
                    }
                ],
                "nodeSelector": {"disk": "ssd"},
            }
        },
    },
}


def _live() -> dict[str, Any]:
    live = copy.deepcopy(DESIRED)
    live["metadata"].update(uid="u", resourceVersion="7", generation=3)
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
    container = live["spec"]["template"]["spec"]["containers"][0]
    container.update(terminationMessagePath="/dev/termination-log", imagePullPolicy="Always")
    container["resources"]["requests"] = {"cpu": "500m", "memory": "1Gi"}  # canonicalised
    live["spec"]["template"]["spec"]["containers"].append({"name": "istio-proxy"})
    live["spec"]["replicas"] = 5  # an HPA's choice
    live["status"] = {"readyReplicas": 5}
    return live


def test_defaults_sidecars_hpa_replicas_and_canonical_quantities_are_not_drift() -> None:
    assert contains(DESIRED, _live())
    assert not needs_write(DESIRED, _live())


def test_a_hand_edit_is_drift() -> None:
    live = _live()
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    assert needs_write(DESIRED, live)


def test_a_changed_desired_state_is_a_write_even_if_contained() -> None:
    live = _live()
    live["metadata"]["annotations"][HASH_ANNOTATION] = "h0"
    assert needs_write(DESIRED, live)


def test_a_missing_object_is_a_write() -> None:
    assert needs_write(DESIRED, None)


def test_merge_patch_clears_pod_fields_no_longer_asked_for() -> None:
    desired = copy.deepcopy(DESIRED)
    del desired["spec"]["template"]["spec"]["nodeSelector"]
    pod = merge_patch(desired)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] is None
    assert pod["tolerations"] is None
    assert pod["containers"][0]["image"] == "img:1"
    assert "kind" not in merge_patch(desired)


def test_ownership_is_by_controller_uid() -> None:
    live = {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]}}
    assert owned_by(live, "u1")
    assert not owned_by(live, "u2")
    assert not owned_by({"metadata": {"ownerReferences": [{"uid": "u1"}]}}, "u1")
