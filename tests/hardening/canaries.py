"""One canary value per credential for the whole hardening suite, and the sink every
place a credential must never reach is fed into.

Each credential the hardening tests configure (data-source auth, inbound keys, the
caller's token, the operator's Secrets, an access token a token endpoint hands out, a
downstream cookie) has exactly one canary value here. Tests write these values into
credential files and Secrets, and hand every text a credential must never reach to
`SINK`: tool results and error texts, JSON-RPC error bodies, metrics, the Kubernetes
objects the operator writes (Events, statuses, annotations, ConfigMaps, Deployments)
and the log lines of the test process (a root handler, see conftest.py) and of the
gateway subprocesses (their stderr). `SINK` looks for every canary as each text
arrives and remembers where it found one; the suite's last test (test_zz_leaks.py) and
a session finaliser fail on any hit.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

__all__ = ["CANARIES", "FORMS", "SINK", "LeakSink", "leaked"]

CANARIES: dict[str, str] = {
    "bearer": "hc-bearer-token-6a1f0c9e",
    "apikey_header": "hc-apikey-header-3b7d22",
    "apikey_query": "hc-apikey/query+91ce4a==",  # base64-like: it must be percent-encoded
    "basic_user": "hc-basic-user-5d0e8b",
    "basic_password": "hc-basic-password-c4f2a7",
    "oauth_client_secret": "hc-oauth-client-secret-77ab01",
    "oauth_access_token": "hc-oauth-access-token-e3d9f4",
    "aws_key_id": "AKIAHCCANARY00000001",
    "aws_secret": "hc-aws-secret-key-2e8c6d",
    "aws_session": "hc-aws-session-token-0f4b3a",
    "inbound_key": "hc-inbound-key-8c1e5f",
    "inbound_key_2": "hc-inbound-key-two-5b9a03",
    "caller_token": "hc-caller-token-a9d3b2",
    "operator_secret": "hc-operator-secret-4e7a1c",
    "operator_apikey": "hc-operator-apikey-d06b17",
    "cookie": "hc-downstream-cookie-b2c8d0",
}


def _forms() -> list[tuple[str, str]]:
    """Every form a canary can take on the wire: as is, percent-encoded, and the Basic
    credentials as their base64 `user:password`."""
    forms = []
    for name, value in CANARIES.items():
        for form in dict.fromkeys((value, quote(value, safe=""), quote_plus(value))):
            forms.append((name, form))
    pair = f"{CANARIES['basic_user']}:{CANARIES['basic_password']}".encode()
    forms.append(("basic_user:basic_password", base64.b64encode(pair).decode()))
    return forms


FORMS = _forms()


@dataclass
class LeakSink:
    """Collects where canaries were seen; thread-safe (gateway threads log into it)."""

    hits: list[tuple[str, str, str]] = field(default_factory=list)  # (where, canary, excerpt)
    scanned: Counter[str] = field(default_factory=Counter)  # texts scanned per category
    scanned_chars: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, where: str, text: str) -> None:
        """Scan one text. `where` is `category: detail` (category counts in the figures)."""
        found = [(name, form) for name, form in FORMS if form in text]
        with self._lock:
            self.scanned[where.split(":", 1)[0]] += 1
            self.scanned_chars += len(text)
            for name, value in found:
                at = text.index(value)
                excerpt = text[max(0, at - 80) : at + len(value) + 40]
                self.hits.append((where, name, excerpt))

    def report(self) -> str:
        lines = [
            f"{where}: canary {name!r} in ...{excerpt!r}..." for where, name, excerpt in self.hits
        ]
        return "\n".join(lines)


SINK = LeakSink()


def leaked(text: str) -> list[str]:
    """The canaries (in any of their forms) in one text."""
    return [name for name, form in FORMS if form in text]
