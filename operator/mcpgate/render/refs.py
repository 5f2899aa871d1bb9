"""What a server's references resolve to: data sources, Secrets and their keys.

The operator fills `Namespace` from its indexes, `mcpgate render` from the
files. Secrets are known by their key names and whether each value is
non-empty: never by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.common import secret_key_refs
from mcpgate.api.conditions import Reason
from mcpgate.gateway.config import MIN_CREDENTIAL_LENGTH, credential_value, is_empty_value

__all__ = [
    "AMBIENT_AWS_NOT_ALLOWED",
    "WEAK_KEY_CHARS",
    "Namespace",
    "RefProblem",
    "SecretInfo",
    "data_source_problems",
    "key_secret_problem",
    "server_ref_problems",
    "weak_key_notice",
]

AMBIENT_AWS_NOT_ALLOWED = (
    "auth.awsSigV4 names no key Secrets, so the gateway would use its pod's own AWS identity;"
    " this operator does not allow that (start it with --allow-ambient-aws-credentials)"
)


@dataclass(frozen=True)
class SecretInfo:
    """A Secret as the operator may know it: its key names, and which values are non-empty
    (as the gateway reads them: `gateway.config.credential_value`)."""

    name: str
    keys: frozenset[str]
    nonempty_keys: frozenset[str]
    type: str = "Opaque"
    # Non-empty values under WEAK_KEY_CHARS: as inbound keys they work, with a warning.
    short_keys: frozenset[str] = frozenset()

    @classmethod
    def from_values(
        cls, name: str, values: Mapping[str, bytes], type_: str = "Opaque"
    ) -> SecretInfo:
        """Key names and two yes/no of each value; the values themselves are not kept."""
        nonempty = {k for k, v in values.items() if not is_empty_value(v)}
        short = {k for k in nonempty if _is_short(values[k])}
        return cls(name, frozenset(values), frozenset(nonempty), type_, frozenset(short))


WEAK_KEY_CHARS = 16  # API.md "Secret references": shorter inbound keys get WeakApiKey


def _is_short(raw: bytes) -> bool:
    if len(raw) > 4 * WEAK_KEY_CHARS + 1:  # UTF-8 has at most 4 bytes a character
        return False
    return len(credential_value(raw.decode("utf-8", errors="replace"))) < WEAK_KEY_CHARS


def weak_key_notice(server: McpServer, namespace: Namespace) -> str | None:
    """The WeakApiKey warning of an ApiKey or BearerPassthrough server whose key Secret
    holds keys under 16 characters (never a value, nor its length)."""
    ref = server.spec.authorization.api_key_secret_ref
    secret = namespace.secrets.get(ref.name) if ref is not None else None
    if secret is None or not secret.short_keys:
        return None
    names = ", ".join(sorted(secret.short_keys)[:5])
    return (
        f"Secret {secret.name} (authorization.apiKeySecretRef): the inbound keys in {names}"
        f" are under {WEAK_KEY_CHARS} characters, easy to guess: replace them with long random"
        " ones (openssl rand -hex 32)"
    )


@dataclass(frozen=True)
class RefProblem:
    """Why a reference does not resolve: a ResolvedRefs reason and a message naming it."""

    reason: str
    message: str


@dataclass
class Namespace:
    """The objects of one namespace that references resolve against."""

    name: str
    data_sources: dict[str, HttpApiDataSource] = field(default_factory=dict)
    # Data sources present but invalid beyond the CRD schema: name -> why.
    invalid_data_sources: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretInfo] = field(default_factory=dict)
    # `mcpgate render` without --require-secrets: Secrets not in the files are assumed present.
    assume_secrets: bool = False


def data_source_problems(
    source: HttpApiDataSource, namespace: Namespace, *, owner: str | None = None
) -> list[RefProblem]:
    """The Secret references of one data source that do not resolve. `owner` prefixes the
    messages (a server reports its data sources' problems)."""
    prefix = f"{owner}: " if owner else ""
    problems = []
    for path, ref in secret_key_refs(source.spec):
        secret = namespace.secrets.get(ref.name)
        if secret is None:
            if not namespace.assume_secrets:
                problems.append(
                    RefProblem(
                        Reason.SECRET_NOT_FOUND, f"{prefix}Secret {ref.name} ({path}) not found"
                    )
                )
        elif ref.key not in secret.keys:
            problems.append(
                RefProblem(
                    Reason.SECRET_KEY_NOT_FOUND,
                    f"{prefix}Secret {ref.name} has no key {ref.key} ({path})",
                )
            )
        elif ref.key not in secret.nonempty_keys:
            problems.append(
                RefProblem(
                    Reason.SECRET_KEY_NOT_FOUND,
                    f"{prefix}Secret {ref.name} key {ref.key} is empty ({path}); an empty value,"
                    f" or one under {MIN_CREDENTIAL_LENGTH} characters, is never a credential",
                )
            )
    return problems


def key_secret_problem(server: McpServer, namespace: Namespace) -> RefProblem | None:
    """Whether the key Secret of an ApiKey or BearerPassthrough server holds a key."""
    ref = server.spec.authorization.api_key_secret_ref
    if ref is None:
        return None
    secret = namespace.secrets.get(ref.name)
    if secret is None:
        if namespace.assume_secrets:
            return None
        return RefProblem(
            Reason.SECRET_NOT_FOUND, f"Secret {ref.name} (authorization.apiKeySecretRef) not found"
        )
    if not secret.nonempty_keys:
        return RefProblem(
            Reason.API_KEYS_MISSING,
            f"Secret {ref.name} (authorization.apiKeySecretRef) holds no non-empty value:"
            " add at least one API key",
        )
    return None


def server_ref_problems(server: McpServer, namespace: Namespace) -> list[RefProblem]:
    """Every unresolved reference of a server, its data sources' Secrets included."""
    problems: list[RefProblem] = []
    for name in server.spec.data_source_names():
        source = namespace.data_sources.get(name)
        if source is None and name not in namespace.invalid_data_sources:
            problems.append(
                RefProblem(Reason.DATA_SOURCE_NOT_FOUND, f"HttpApiDataSource {name} not found")
            )
        elif source is not None:
            problems.extend(
                data_source_problems(source, namespace, owner=f"HttpApiDataSource {name}")
            )
    key_problem = key_secret_problem(server, namespace)
    if key_problem is not None:
        problems.append(key_problem)
    return problems
