"""`mcpgate up`: one McpServer's gateway run locally from manifest files.

The files are judged by the operator's own checks (`offline.check_manifests`, with
every Secret required), and the server is configured by the same translation
(`render.config.gateway_config`) and served by the same gateway as in a pod. The only
difference is where the Secret files come from: the manifests' Secrets are written to
a private temporary folder (0700, files 0600) laid out as kubelet mounts them, and
removed on exit.

`Reloader` keeps `up` in step with the files while a user edits them: each change is
checked again, and a good one replaces the served configuration on the same port; a
bad one is reported and the last good configuration keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.app import GatewayApp
from mcpgate.gateway.config import GatewayConfig
from mcpgate.manifests import ManifestError, Manifests, load_manifests, manifest_files
from mcpgate.offline import Checked, check_manifests
from mcpgate.render.config import gateway_config, referenced_secret_keys
from mcpgate.render.settings import RenderSettings

__all__ = [
    "CredentialsFolder",
    "LocalServer",
    "NotReady",
    "Reloader",
    "load_local",
    "tool_lines",
]

log = logging.getLogger("mcpgate.up")

RETIRE_AFTER_SECONDS = 310.0  # longer than any call: a data source's timeout is at most 300 s


@dataclass(frozen=True)
class LocalServer:
    """The McpServer to run, its data sources, and the condition lines of both."""

    checked: Checked
    server: McpServer
    data_sources: dict[str, HttpApiDataSource]
    lines: list[str]

    @property
    def ready(self) -> bool:
        return self.checked.ready.ok

    @property
    def name(self) -> str:
        return self.server.metadata.name


class NotReady(ManifestError):
    """The files are readable, but the server would not be Ready: its lines say why."""


def _pick(servers: Sequence[Checked], name: str | None) -> Checked:
    names = sorted(s.name for s in servers)
    if name is not None:
        matches = [s for s in servers if s.name == name]
        if not matches:
            known = ", ".join(names) or "none"
            raise ManifestError(f"no McpServer named {name!r} in the files (found: {known})")
        return matches[0]
    if len(servers) == 1:
        return servers[0]
    if not servers:
        raise ManifestError("the files hold no McpServer")
    raise ManifestError(
        f"the files hold several McpServers ({', '.join(names)}): pick one with --server"
    )


def load_local(
    paths: Sequence[str | Path],
    name: str | None,
    settings: RenderSettings,
    *,
    upstreams: Mapping[str, str] | None = None,
) -> tuple[LocalServer, Manifests]:
    """Read and check the files as the operator would, every Secret required; raises
    ManifestError for input that cannot be run at all (exit 2). A server that would not
    be Ready comes back all the same: its lines say why."""
    manifests = load_manifests(paths, upstreams=upstreams, strict=False)
    check = check_manifests(manifests, settings=settings, require_secrets=True)
    picked = _pick(check.servers, name)
    if picked.server is None:  # the models refuse the spec: its lines say where
        raise ManifestError("\n".join(picked.lines()))
    server = picked.server
    space = check.spaces[picked.namespace]
    used = server.spec.data_source_names()
    lines = [
        line
        for source in check.data_sources
        if source.namespace == picked.namespace and source.name in used
        for line in source.lines()
    ]
    local = LocalServer(
        checked=picked,
        server=server,
        data_sources={n: s for n, s in space.data_sources.items() if n in used},
        lines=[*lines, *picked.lines()],
    )
    return local, manifests


def tool_lines(config: GatewayConfig) -> list[str]:
    """One line per served tool: name, method and path (what a user iterates on)."""
    width = max((len(tool.name) for tool in config.tools), default=0)
    return [
        f"  {tool.name:<{width}}  {tool.request.method:<6} {tool.data_source}{tool.request.path}"
        for tool in config.tools
    ]


def _write_private(path: Path, value: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(value)


class CredentialsFolder:
    """The private folder of `up`'s Secret files, one generation per configuration (a
    reload writes a new one, so calls in flight keep the files they started with)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mcpgate-credentials-"))
        self.root.chmod(0o700)
        self._generation = 0

    def write(self, local: LocalServer, manifests: Manifests) -> Path:
        """Every Secret key the server reads, and its key Secret whole. The checks have
        passed: every reference resolves, and every key is one Kubernetes accepts."""
        self._generation += 1
        folder = self.root / str(self._generation)
        folder.mkdir(mode=0o700)
        namespace = local.checked.namespace
        secrets = manifests.secrets
        for name, key in sorted(referenced_secret_keys(local.server, local.data_sources)):
            _write_private(folder / name / key, secrets[(namespace, name)].values[key])
        keys_ref = local.server.spec.authorization.api_key_secret_ref
        if keys_ref is not None:
            for key, value in secrets[(namespace, keys_ref.name)].values.items():
                _write_private(folder / keys_ref.name / key, value)
        return folder

    def config(self, local: LocalServer, manifests: Manifests) -> GatewayConfig:
        """The gateway configuration of `local`, its Secret files written."""
        folder = self.write(local, manifests)
        return gateway_config(
            local.server,
            local.data_sources,
            credentials_dir=str(folder),
            allow_loopback_destinations=True,  # local upstreams live there (API.md)
        )

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _snapshot(paths: Sequence[str | Path]) -> dict[str, tuple[int, int]]:
    """What the files are now: a change of name, size or time is an edit."""
    seen: dict[str, tuple[int, int]] = {}
    for given in paths:
        try:
            files = manifest_files(Path(given))
        except ManifestError:
            continue  # gone for now (an editor's save): the next look tells
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                continue
            seen[str(file)] = (stat.st_mtime_ns, stat.st_size)
    return seen


class Reloader:
    """An ASGI app serving the current GatewayApp, replaced when the files change."""

    def __init__(
        self,
        app: GatewayApp,
        build: Callable[[], GatewayApp],
        paths: Sequence[str | Path],
        *,
        interval: float = 1.0,
        say: Callable[[str], None],
    ) -> None:
        self.app = app
        self._build = build
        self._paths = list(paths)
        self._interval = interval
        self._say = say
        self._seen = _snapshot(self._paths)
        self._retired: list[GatewayApp] = []
        self._watch: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.app.ready = True
                self._watch = asyncio.create_task(self._watch_files())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._watch is not None:
                    self._watch.cancel()
                self.app.ready = False
                for app in (*self._retired, self.app):
                    await app.runner.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _watch_files(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_now()

    async def check_now(self) -> bool:
        """Reload if the files changed since the last look; True if a new app serves."""
        seen = _snapshot(self._paths)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            app = await asyncio.to_thread(self._build)
        except ManifestError as err:
            self._say(f"{err}\nmcpgate up: the edit is not served; the last good configuration is")
            return False
        app.ready = True
        old, self.app = self.app, app
        config = app.config
        self._say(f"mcpgate up: reloaded McpServer {config.server_name}: {len(config.tools)} tools")
        for line in tool_lines(config):
            self._say(line)
        # Calls in flight finish on the app they started on; its pools close after them.
        self._retired.append(old)
        asyncio.get_running_loop().call_later(
            RETIRE_AFTER_SECONDS, lambda: asyncio.ensure_future(self._retire(old))
        )
        return True

    async def _retire(self, app: GatewayApp) -> None:
        if app in self._retired:
            self._retired.remove(app)
            await app.runner.aclose()

    def known_secrets(self) -> list[str]:
        """What the log redactor must hide: the credentials of every app still serving."""
        return [s for app in (self.app, *self._retired) for s in app.runner.known_secrets()]
