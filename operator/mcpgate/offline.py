"""The operator's checks, run offline over manifest files: `mcpgate render` and `mcpgate up`.

Both commands judge the files with the functions the operator uses (`plan_server`,
`plan_data_source` over a `Namespace` filled from the files instead of from the
cluster), so the three cannot disagree: same conditions, same reasons, same messages
naming object and field. Available is left out: no pods exist offline.

`mcpgate render` prints the objects as a YAML stream and one line per condition of
each McpServer and HttpApiDataSource, and exits by whether every server would be
Ready. `mcpgate up` prints the lines of the server it runs, then serves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcpgate.api import McpServer
from mcpgate.api.conditions import ConditionType
from mcpgate.manifests import ManifestError, Manifests, load_manifests
from mcpgate.render.conditions import Cond, ready
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import ServerPlan, plan_data_source, plan_invalid_server, plan_server
from mcpgate.render.settings import RenderSettings

__all__ = [
    "READ_FILES",
    "Checked",
    "OfflineCheck",
    "OfflineRender",
    "check_manifests",
    "render_files",
]

READ_FILES = (
    "mcpgate reads McpServer, HttpApiDataSource and Secret manifests from .yaml and .yml"
    " files; a folder means the files at its top, as kubectl apply -f reads it"
)


@dataclass(frozen=True)
class Checked:
    """One object's verdict, as the operator would report it once applied."""

    kind: str
    namespace: str
    name: str
    conditions: list[Cond]  # Ready first
    plan: ServerPlan | None = None  # McpServers only
    server: McpServer | None = None  # None when the models refuse the spec

    @property
    def ready(self) -> Cond:
        return self.conditions[0]

    def lines(self) -> list[str]:
        where = f"{self.kind} {self.namespace}/{self.name}"
        notices = self.plan.notices if self.plan is not None else []
        return [
            *(
                f"{where}: {c.type}={c.status} ({c.reason}) {c.message}".rstrip()
                for c in self.conditions
            ),
            # The Warning Events the operator would post, said the same way.
            *(f"{where}: warning ({reason}) {message}" for reason, message in notices),
        ]


@dataclass
class OfflineCheck:
    manifests: Manifests
    spaces: dict[str, Namespace]
    data_sources: list[Checked] = field(default_factory=list)
    servers: list[Checked] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [line for obj in (*self.data_sources, *self.servers) for line in obj.lines()]


def _namespaces(manifests: Manifests, require_secrets: bool) -> dict[str, Namespace]:
    spaces: dict[str, Namespace] = {}

    def space(name: str) -> Namespace:
        return spaces.setdefault(name, Namespace(name, assume_secrets=not require_secrets))

    for (ns, name), source in manifests.data_sources.items():
        space(ns).data_sources[name] = source
    for (kind, ns, name), invalid in manifests.invalid.items():
        space(ns)
        if kind == "HttpApiDataSource":
            space(ns).invalid_data_sources[name] = "; ".join(invalid.lines)
    for (ns, name), secret in manifests.secrets.items():
        space(ns).secrets[name] = SecretInfo.from_values(name, secret.values, secret.type)
    for ns, _ in manifests.servers:
        space(ns)
    return spaces


def _offline(plan: ServerPlan) -> list[Cond]:
    """Ready as it would be once pods run: Available is not known offline."""
    kept = [
        c for c in plan.conditions if c.type not in (ConditionType.READY, ConditionType.AVAILABLE)
    ]
    return [ready(kept), *kept]


def check_manifests(
    manifests: Manifests, *, settings: RenderSettings, require_secrets: bool
) -> OfflineCheck:
    """Every McpServer and HttpApiDataSource of the files, judged as the operator would.
    Secrets absent from the files are assumed present unless `require_secrets`."""
    spaces = _namespaces(manifests, require_secrets)
    check = OfflineCheck(manifests, spaces)
    source_names = {*manifests.data_sources, *manifests.invalid_names("HttpApiDataSource")}
    for ns, name in sorted(source_names):
        conditions = plan_data_source(name, spaces[ns], settings)
        check.data_sources.append(Checked("HttpApiDataSource", ns, name, conditions))
    for (ns, name), server in manifests.servers.items():
        plan = plan_server(server, spaces[ns], settings)
        check.servers.append(Checked("McpServer", ns, name, _offline(plan), plan, server))
    for ns, name in manifests.invalid_names("McpServer"):
        invalid = manifests.invalid[("McpServer", ns, name)]
        message = "; ".join(invalid.lines)
        plan = plan_invalid_server(
            name, ns, invalid.reason, message, settings=settings, spec=invalid.body.get("spec")
        )
        check.servers.append(Checked("McpServer", ns, name, _offline(plan), plan))
    check.servers.sort(key=lambda c: (c.namespace, c.name))
    return check


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
    """Render every McpServer of the files. Raises ManifestError for unreadable input and
    for files that hold no McpServer or HttpApiDataSource (a false pass in CI otherwise)."""
    manifests = load_manifests(paths, namespace, strict=False)
    if not manifests.servers and not manifests.data_sources and not manifests.invalid:
        raise ManifestError(f"the files hold no McpServer or HttpApiDataSource ({READ_FILES})")
    check = check_manifests(
        manifests, settings=settings or RenderSettings(), require_secrets=require_secrets
    )
    objects = [
        _drop_unknown_uids(obj)
        for server in check.servers
        if server.plan is not None
        for obj in server.plan.objects
    ]
    all_ready = all(server.ready.ok for server in check.servers)
    return OfflineRender(objects, check.lines(), all_ready)
