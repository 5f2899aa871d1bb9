"""One table of the kinds an McpServer owns (render.objects.OWNED_KINDS) and one API group:
what is rendered, read, watched and addressed all come from them."""

from __future__ import annotations

from mcpgate.api import API_GROUP, API_VERSION, CRD_VERSION, McpServer
from mcpgate.api.crd import KINDS as CRD_KINDS
from mcpgate.controller.handlers import make_registry
from mcpgate.controller.kube import KINDS
from mcpgate.render.objects import OWNED_KINDS, render_objects
from mcpgate.render.settings import RenderSettings


def test_the_api_version_is_the_group_and_version() -> None:
    assert f"{API_GROUP}/{CRD_VERSION}" == API_VERSION
    assert {k.kind for k in CRD_KINDS} <= set(KINDS)
    assert all(KINDS[k.kind].group == API_GROUP for k in CRD_KINDS)


def test_everything_rendered_is_an_owned_kind_and_every_optional_one_can_be_absent() -> None:
    server = McpServer.model_validate(
        {
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {
                "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
                "resources": {"requests": {"cpu": "100m"}},
            },
        }
    )
    _, objects, absent = render_objects(server, {}, RenderSettings())
    by_kind = {o.kind: o for o in OWNED_KINDS}
    assert [o["kind"] for o in objects] == [o.kind for o in OWNED_KINDS]
    for obj in objects:
        owned = by_kind[obj["kind"]]
        assert obj["apiVersion"] == owned.api_version
        assert obj["metadata"]["name"] == owned.name("s")
    assert absent == []
    plain = server.model_copy(update={"spec": server.spec.model_copy(update={"autoscaling": None})})
    _, objects, absent = render_objects(plain, {}, RenderSettings())
    assert {kind for kind, _ in absent} == {o.kind for o in OWNED_KINDS if o.optional}


def test_the_client_addresses_every_owned_kind() -> None:
    for owned in OWNED_KINDS:
        base = f"/apis/{owned.api_version}" if owned.group else f"/api/{owned.version}"
        assert KINDS[owned.kind].path("ns", "x") == f"{base}/namespaces/ns/{owned.plural}/x"


def test_owned_kinds_are_watched() -> None:
    registry = make_registry()
    watched = {
        handler.id
        for handler in registry._watching.get_all_handlers()  # kopf lists them only here
    }
    assert {f"owned_{o.plural}" for o in OWNED_KINDS} <= watched
