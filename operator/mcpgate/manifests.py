"""Manifest files, read as `kubectl apply -f` reads them.

`mcpgate up` and `mcpgate render` take the very files a user would apply:
McpServers, HttpApiDataSources and Secrets, several documents per file, a
folder meaning every `.yaml`/`.yml` file in it. Other kinds are skipped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from mcpgate.api import API_VERSION, HttpApiDataSource, McpServer
from mcpgate.api.errors import error_lines, invalid_reason

__all__ = [
    "InvalidObject",
    "ManifestError",
    "Manifests",
    "SecretData",
    "load_manifests",
    "read_documents",
]

T = TypeVar("T")


class ManifestError(Exception):
    """The files cannot be read as manifests; the message names file and field."""


@dataclass(frozen=True)
class SecretData:
    """A Secret from a manifest: its decoded values, kept out of every repr."""

    name: str
    namespace: str
    values: dict[str, bytes] = field(repr=False)
    type: str = "Opaque"


@dataclass(frozen=True)
class InvalidObject:
    """An object the models refuse: the Accepted reason and one line per problem."""

    reason: str
    lines: list[str]
    body: dict[str, Any] = field(repr=False)


@dataclass
class Manifests:
    """The objects mcpgate reads, by namespace and name."""

    servers: dict[tuple[str, str], McpServer] = field(default_factory=dict)
    data_sources: dict[tuple[str, str], HttpApiDataSource] = field(default_factory=dict)
    secrets: dict[tuple[str, str], SecretData] = field(default_factory=dict)
    # Not strict only: (kind, namespace, name) -> why the models refuse it.
    invalid: dict[tuple[str, str, str], InvalidObject] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """One YAML document and where it came from (`file.yaml#2`)."""

    source: str
    body: dict[str, Any]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not path.exists():
        raise ManifestError(f"{path}: no such file or directory")
    return [path]


def read_documents(paths: Iterable[str | Path]) -> list[Document]:
    """Every non-empty YAML document of the files (folders expanded, in name order)."""
    docs: list[Document] = []
    for given in paths:
        for file in _files(Path(given)):
            try:
                loaded = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                raise ManifestError(f"{file}: not UTF-8 text") from None
            except OSError as err:
                raise ManifestError(f"{file}: cannot be read ({err.strerror})") from None
            except yaml.YAMLError as err:
                raise ManifestError(f"{file}: not valid YAML: {err}") from None
            for index, body in enumerate(loaded, start=1):
                if body is None:
                    continue
                if not isinstance(body, dict):
                    raise ManifestError(f"{file}#{index}: a manifest must be a mapping")
                if body.get("kind") == "List" and isinstance(body.get("items"), list):
                    docs.extend(
                        Document(f"{file}#{index}.items[{i}]", item)
                        for i, item in enumerate(body["items"])
                    )
                else:
                    docs.append(Document(f"{file}#{index}", body))
    return docs


def _mapping(body: dict[str, Any], field_name: str, source: str, what: str) -> dict[str, Any]:
    value = body.get(field_name) or {}
    if not isinstance(value, dict):
        raise ManifestError(f"{source}: {what}: {field_name} must be a mapping")
    return value


def _secret(body: dict[str, Any], namespace: str, source: str) -> SecretData:
    name = _mapping(body, "metadata", source, "Secret").get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{source}: Secret: metadata.name is required")
    values: dict[str, bytes] = {}
    for key, encoded in _mapping(body, "data", source, f"Secret {name}").items():
        try:
            values[key] = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            # Never echo the value: it is a credential.
            raise ManifestError(
                f"{source}: Secret {name}: data.{key} is not valid base64"
                " (use stringData for plain text)"
            ) from None
    for key, text in _mapping(body, "stringData", source, f"Secret {name}").items():
        values[key] = str(text).encode()
    return SecretData(name, namespace, values, str(body.get("type") or "Opaque"))


def _put(
    target: dict[tuple[str, str], T],
    key: tuple[str, str],
    obj: T,
    doc: Document,
    problems: list[str],
) -> None:
    if key in target:
        problems.append(f"{doc.source}: {doc.body['kind']} {key[0]}/{key[1]} is defined twice")
    target[key] = obj


def load_manifests(
    paths: Iterable[str | Path], namespace: str = "default", *, strict: bool = True
) -> Manifests:
    """Parse the files into typed objects; `namespace` is that of objects naming none.

    Strict (`mcpgate up`): any invalid McpServer or HttpApiDataSource is a ManifestError.
    Not strict (`mcpgate render`): they are collected in `Manifests.invalid`, with the
    condition reason the operator would report, as the operator would meet them.
    Unreadable files, Secrets and duplicates are ManifestErrors either way."""
    out = Manifests()
    problems: list[str] = []
    for doc in read_documents(paths):
        kind, api_version = doc.body.get("kind"), doc.body.get("apiVersion")
        meta = doc.body.get("metadata")
        ns = (meta.get("namespace") if isinstance(meta, dict) else None) or namespace
        if not isinstance(ns, str):
            problems.append(f"{doc.source}: metadata.namespace must be a string")
            continue
        if kind == "Secret" and api_version == "v1":
            secret = _secret(doc.body, ns, doc.source)
            _put(out.secrets, (ns, secret.name), secret, doc, problems)
            continue
        if kind not in ("McpServer", "HttpApiDataSource"):
            continue
        if api_version != API_VERSION:
            problems.append(f"{doc.source}: {kind}: apiVersion must be {API_VERSION}")
            continue
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"{doc.source}: {kind}: metadata.name is required")
            continue
        body = {**doc.body, "metadata": {**meta, "namespace": ns}}  # type: ignore[dict-item]
        try:
            if kind == "McpServer":
                server = McpServer.model_validate(body)
                _put(out.servers, (ns, name), server, doc, problems)
            else:
                source = HttpApiDataSource.model_validate(body)
                _put(out.data_sources, (ns, name), source, doc, problems)
        except ValidationError as err:
            lines = error_lines(err)
            if strict:
                problems.extend(f"{doc.source}: {kind}: {line}" for line in lines)
            else:
                out.invalid[(kind, ns, name)] = InvalidObject(invalid_reason(err), lines, body)
    if problems:
        raise ManifestError("\n".join(problems))
    return out
