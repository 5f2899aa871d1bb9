"""`mcpgate render`: what the operator would create for some manifests, offline.

For CI pipelines and GitOps reviews: the objects as a YAML stream, one line per
condition of each McpServer (Available is left out: no pods exist offline),
and an exit code saying whether every server would be Ready.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mcpgate.manifests import Manifests, load_manifests
from mcpgate.render.conditions import Cond, ready
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import ServerPlan, plan_invalid_server, plan_server
from mcpgate.render.settings import RenderSettings

__all__ = ["OfflineRender", "render_files"]


@dataclass
class OfflineRender:
    objects: list[dict[str, Any]]
    lines: list[str]
    all_ready: bool

    def yaml(self) -> str:
        return yaml.dump_all(self.objects, Dumper=_Dumper, sort_keys=False, width=100)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the gateway's config.json) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _namespaces(manifests: Manifests, require_secrets: bool) -> dict[str, Namespace]:
    spaces: dict[str, Namespace] = {}

    def space(name: str) -> Namespace:
        return spaces.setdefault(name, Namespace(name, assume_secrets=not require_secrets))

    for (ns, name), source in manifests.data_sources.items():
        space(ns).data_sources[name] = source
    for (kind, ns, name), invalid in manifests.invalid.items():
        if kind == "HttpApiDataSource":
            space(ns).invalid_data_sources[name] = "; ".join(invalid.lines)
    for (ns, name), secret in manifests.secrets.items():
        space(ns).secrets[name] = SecretInfo.from_values(name, secret.values, secret.type)
    for ns, _ in manifests.servers:
        space(ns)
    return spaces


def _offline_conditions(plan: ServerPlan) -> list[Cond]:
    """Ready as it would be once pods run: Available is not known offline."""
    kept = [c for c in plan.conditions if c.type not in ("Ready", "Available")]
    return [ready(kept), *kept]


def _drop_unknown_uids(obj: dict[str, Any]) -> dict[str, Any]:
    for ref in obj["metadata"].get("ownerReferences", []):
        if not ref.get("uid"):
            ref.pop("uid", None)  # assigned by the API server when the McpServer is created
    return obj


def render_files(
    paths: Iterable[str | Path],
    *,
    namespace: str = "default",
    settings: RenderSettings | None = None,
    require_secrets: bool = False,
) -> OfflineRender:
    """Render every McpServer of the files (raises ManifestError for unreadable input)."""
    settings = settings or RenderSettings()
    manifests = load_manifests(paths, namespace, strict=False)
    spaces = _namespaces(manifests, require_secrets)
    plans: list[tuple[str, str, ServerPlan]] = []
    for (ns, name), server in sorted(manifests.servers.items()):
        plans.append((ns, name, plan_server(server, spaces[ns], settings)))
    for (kind, ns, name), invalid in sorted(manifests.invalid.items()):
        if kind == "McpServer":
            plans.append(
                (
                    ns,
                    name,
                    plan_invalid_server(
                        name, ns, invalid.reason, "; ".join(invalid.lines), settings=settings
                    ),
                )
            )
    objects: list[dict[str, Any]] = []
    lines: list[str] = []
    all_ready = True
    for ns, name, plan in sorted(plans, key=lambda p: (p[0], p[1])):
        objects.extend(_drop_unknown_uids(o) for o in plan.objects)
        conditions = _offline_conditions(plan)
        all_ready &= conditions[0].ok
        lines.extend(
            f"McpServer {ns}/{name}: {c.type}={c.status} ({c.reason}) {c.message}".rstrip()
            for c in conditions
        )
    return OfflineRender(objects, lines, all_ready)
