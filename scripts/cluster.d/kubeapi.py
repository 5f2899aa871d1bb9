"""A small JSON client of the Kubernetes API over the standard library, for the local node.

Plain dicts in and out (no generated models), one keep-alive connection per thread, and
watches read line by line. It dials only the loopback URL it is given.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

__all__ = ["ApiError", "Client"]

Obj = dict[str, Any]


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:500]}")
        self.status = status
        self.body = body


class Client:
    """One identity (a client certificate) at one API server."""

    def __init__(self, server: str, ca: str, cert: str, key: str) -> None:
        url = urllib.parse.urlsplit(server)
        # The network rule: this client never dials anything but loopback.
        if not ipaddress.ip_address(url.hostname or "").is_loopback:
            raise ValueError(f"refusing a non-loopback API server {server}")
        self._host, self._port = url.hostname or "", url.port or 443
        self._ctx = ssl.create_default_context(cafile=ca)
        self._ctx.load_cert_chain(cert, key)
        self._local = threading.local()

    def _conn(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self._host, self._port, context=self._ctx, timeout=timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        text = self.text(method, path, body, params=params, content_type=content_type)
        return json.loads(text) if text else {}

    def text(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> str:
        if params:
            path += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a kept-alive connection the server closed: one retry
            conn = getattr(self._local, "conn", None) or self._conn(30)
            self._local.conn = conn
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                text = resp.read().decode()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status >= 400:
                raise ApiError(resp.status, text)
            return text
        raise AssertionError("unreachable")

    def get(self, path: str, **params: str) -> Obj:
        return self.request("GET", path, params=params)

    def patch(self, path: str, body: Obj) -> Obj:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def watch(self, path: str, params: dict[str, str], timeout: int = 60) -> Iterator[Obj]:
        """Events of one watch request, until the server ends it (timeoutSeconds)."""
        query = urllib.parse.urlencode(
            {**params, "watch": "1", "timeoutSeconds": str(timeout), "allowWatchBookmarks": "1"}
        )
        conn = self._conn(timeout + 30)  # its own connection: a watch holds it for long
        try:
            conn.request("GET", f"{path}?{query}", headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status >= 400:
                raise ApiError(resp.status, resp.read().decode())
            for line in resp:
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()
