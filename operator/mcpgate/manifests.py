"""Manifest files, read as `kubectl apply -f` reads them.

`mcpgate up` and `mcpgate render` take the very files a user would apply:
McpServers, HttpApiDataSources and Secrets, several documents per file, a
folder meaning every `.yaml`/`.yml` file in it. Other kinds are skipped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from mcpgate.api import API_VERSION, HttpApiDataSource, McpServer
from mcpgate.api.common import DATA_KEY_RULE, is_data_key
from mcpgate.api.errors import error_lines, invalid_reason

__all__ = [
    "InvalidObject",
    "ManifestError",
    "Manifests",
    "SecretData",
    "load_manifests",
    "manifest_files",
    "parse_upstream",
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
    # What `--upstream` changed, one line each.
    redirected: list[str] = field(default_factory=list)

    def invalid_names(self, kind: str) -> list[tuple[str, str]]:
        """(namespace, name) of the objects of `kind` that the models refuse, sorted."""
        return sorted((ns, name) for k, ns, name in self.invalid if k == kind)


@dataclass(frozen=True)
class Document:
    """One YAML document and where it came from (`file.yaml#2`)."""

    source: str
    body: dict[str, Any]


def manifest_files(path: Path) -> list[Path]:
    """The files `-f path` means: the file, or the `.yaml`/`.yml` files at a folder's top."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not path.exists():
        raise ManifestError(f"{path}: no such file or directory")
    return [path]


def read_documents(paths: Iterable[str | Path]) -> list[Document]:
    """Every non-empty YAML document of the files (folders expanded, in name order)."""
    docs: list[Document] = []
    for given in paths:
        for file in manifest_files(Path(given)):
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
    data = _mapping(body, "data", source, f"Secret {name}")
    string_data = _mapping(body, "stringData", source, f"Secret {name}")
    for field_name, mapping in (("data", data), ("stringData", string_data)):
        for key in mapping:
            # A key names a file under the credentials folder: what Kubernetes refuses
            # (`../x`, `a/b`) could otherwise write outside it.
            if not isinstance(key, str) or not is_data_key(key):
                raise ManifestError(
                    f"{source}: Secret {name}: {field_name} key {str(key)[:80]!r} is not a"
                    f" valid Secret key ({DATA_KEY_RULE}); Kubernetes would refuse it"
                )
    for key, encoded in data.items():
        try:
            values[key] = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            # Never echo the value: it is a credential.
            raise ManifestError(
                f"{source}: Secret {name}: data.{key} is not valid base64"
                " (use stringData for plain text)"
            ) from None
    for key, text in string_data.items():
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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc.rpartition('@')[2]).lower()}"


def _redirect(
    body: dict[str, Any], upstreams: Mapping[str, str], notes: list[str]
) -> dict[str, Any]:
    """A data source's body with every URL on a redirected origin (baseUrl, tokenUrl)
    sent to its replacement, path kept; the checks then judge the result."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return body
    spec = dict(spec)
    name = (body.get("metadata") or {}).get("name")

    def moved(value: Any, field_path: str) -> Any:
        if not isinstance(value, str):
            return value
        target = upstreams.get(_origin(value), upstreams.get(EVERY_ORIGIN))
        if target is None:
            return value
        parts = urlsplit(value)
        new = target.rstrip("/") + value[len(f"{parts.scheme}://{parts.netloc}") :]
        notes.append(f"HttpApiDataSource {name}: {field_path} {value} -> {new} (--upstream)")
        return new

    spec["baseUrl"] = moved(spec.get("baseUrl"), "spec.baseUrl")
    auth = spec.get("auth")
    if isinstance(auth, dict):
        auth = dict(auth)
        for block_name, block in auth.items():
            if isinstance(block, dict) and "tokenUrl" in block:
                path = f"spec.auth.{block_name}.tokenUrl"
                auth[block_name] = {**block, "tokenUrl": moved(block["tokenUrl"], path)}
        spec["auth"] = auth
    return {**body, "spec": spec}


EVERY_ORIGIN = "*"


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def parse_upstream(text: str) -> tuple[str, str]:
    """`ORIGIN=URL` of `mcpgate up --upstream` (ORIGIN `*`: every other one), checked;
    raises ManifestError."""
    origin, sep, target = text.partition("=")
    if not sep or not _is_http_url(target) or not (origin == EVERY_ORIGIN or _is_http_url(origin)):
        raise ManifestError(
            f"--upstream {text!r}: give ORIGIN=URL, both http(s) URLs, or *=URL for every"
            " origin (e.g. https://billing.example.com=http://127.0.0.1:8081)"
        )
    if origin == EVERY_ORIGIN:
        return origin, target
    if urlsplit(origin).path.strip("/"):
        raise ManifestError(f"--upstream {text!r}: ORIGIN is scheme://host[:port], without a path")
    return _origin(origin), target


def load_manifests(
    paths: Iterable[str | Path],
    namespace: str = "default",
    *,
    strict: bool = True,
    upstreams: Mapping[str, str] | None = None,
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
        if upstreams and kind == "HttpApiDataSource":
            body = _redirect(body, upstreams, out.redirected)
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
