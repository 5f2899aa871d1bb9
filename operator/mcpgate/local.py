"""`mcpgate up`: one McpServer's gateway run locally from manifest files.

It uses the same translation as the operator (`render.config.gateway_config`)
and the same gateway; the only difference from a pod is where the Secret files
come from: the manifests' Secrets are written to a private temporary folder
(0700, files 0600) laid out as kubelet mounts them, removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.gateway.config import GatewayConfig
from mcpgate.manifests import ManifestError, Manifests
from mcpgate.render.config import gateway_config, referenced_secret_keys

__all__ = ["LocalServer", "local_credentials", "pick_server", "prepare"]


@dataclass(frozen=True)
class LocalServer:
    server: McpServer
    data_sources: dict[str, HttpApiDataSource]


def pick_server(manifests: Manifests, name: str | None) -> LocalServer:
    """The McpServer to run (the only one, or the one named) and its data sources."""
    servers = manifests.servers
    if name is not None:
        matches = [s for (_, n), s in servers.items() if n == name]
        if not matches:
            known = ", ".join(sorted(n for _, n in servers)) or "none"
            raise ManifestError(f"no McpServer named {name!r} in the files (found: {known})")
        server = matches[0]
    elif len(servers) == 1:
        (server,) = servers.values()
    elif not servers:
        raise ManifestError("the files hold no McpServer")
    else:
        names = ", ".join(sorted(n for _, n in servers))
        raise ManifestError(f"the files hold several McpServers ({names}): pick one with --server")
    namespace = server.metadata.namespace or "default"
    sources = {n: ds for (ns, n), ds in manifests.data_sources.items() if ns == namespace}
    missing = [n for n in server.spec.data_source_names() if n not in sources]
    if missing:
        raise ManifestError(
            f"McpServer {server.metadata.name}: HttpApiDataSource {', '.join(missing)} not found"
            " in the files (add its manifest with -f)"
        )
    return LocalServer(server, sources)


def _write_private(path: Path, value: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(value)


def _check_and_write(local: LocalServer, manifests: Manifests, root: Path) -> None:
    namespace = local.server.metadata.namespace or "default"
    problems = []
    for secret_name, key in sorted(referenced_secret_keys(local.server, local.data_sources)):
        secret = manifests.secrets.get((namespace, secret_name))
        if secret is None:
            problems.append(f"Secret {secret_name} not found in the files")
        elif key not in secret.values:
            problems.append(f"Secret {secret_name} has no key {key!r}")
        elif not secret.values[key].strip():
            problems.append(f"Secret {secret_name} key {key!r} is empty")
        else:
            _write_private(root / secret_name / key, secret.values[key])
    keys_ref = local.server.spec.authorization.api_key_secret_ref
    if keys_ref is not None:
        secret = manifests.secrets.get((namespace, keys_ref.name))
        if secret is None or not any(v.strip() for v in secret.values.values()):
            problems.append(
                f"Secret {keys_ref.name} (authorization.apiKeySecretRef) holds no API key"
            )
        else:
            for key, value in secret.values.items():
                _write_private(root / keys_ref.name / key, value)
    if problems:
        raise ManifestError("; ".join(dict.fromkeys(problems)))


@contextlib.contextmanager
def local_credentials(local: LocalServer, manifests: Manifests) -> Iterator[Path]:
    """A private folder holding the referenced Secret keys, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="mcpgate-credentials-") as folder:
        root = Path(folder)
        root.chmod(0o700)
        _check_and_write(local, manifests, root)
        yield root


def prepare(local: LocalServer, credentials_dir: Path) -> GatewayConfig:
    return gateway_config(local.server, local.data_sources, credentials_dir=str(credentials_dir))
