"""The one kubelet API the local node serves: `/containerLogs`, so `kubectl logs` works.

The API server reaches it at the node's InternalIP (loopback) with its kubelet client
certificate; callers must hold a certificate of the cluster's CA. A container's log
file holds each run after a marker line; `kubectl logs` shows the current run,
`--previous` the one before.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["START_MARKER", "serve_logs"]

START_MARKER = b"--- mcpgate-node start "
PATH = re.compile(r"/containerLogs/([^/]+)/([^/]+)/([^/]+)")

# (namespace, pod, container) -> the log file and whether the pod still runs
Finder = Callable[[str, str, str], tuple[Path, Callable[[], bool]] | None]


def _runs(data: bytes) -> list[bytes]:
    """The runs in a log file, oldest first, without their marker lines."""
    runs: list[bytes] = []
    for chunk in data.split(START_MARKER)[1:]:
        runs.append(chunk.split(b"\n", 1)[1] if b"\n" in chunk else b"")
    return runs or [b""]


def _tail(data: bytes, lines: int | None, limit: int | None) -> bytes:
    if lines is not None:
        data = b"".join(data.splitlines(keepends=True)[-lines:]) if lines > 0 else b""
    return data[:limit] if limit is not None else data


def serve_logs(host: str, port: int, cert: str, key: str, ca: str, find: Finder) -> None:
    """Serve in a daemon thread until the process ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            m = PATH.fullmatch(url.path)
            found = find(*m.groups()) if m else None
            if found is None:
                self._plain(404, "no such container on this node")
                return
            path, alive = found
            q = urllib.parse.parse_qs(url.query)
            lines = int(q["tailLines"][0]) if "tailLines" in q else None
            limit = int(q["limitBytes"][0]) if "limitBytes" in q else None
            runs = _runs(path.read_bytes() if path.exists() else b"")
            previous = q.get("previous") == ["true"]
            if previous and len(runs) < 2:
                self._plain(400, "previous terminated container not found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(_tail(runs[-2] if previous else runs[-1], lines, limit))
            if q.get("follow") != ["true"] or previous:
                return
            # Follow: what the file gains, until the pod is gone or a new run starts.
            offset = path.stat().st_size if path.exists() else 0
            while alive():
                time.sleep(0.5)
                with open(path, "rb") as f:
                    f.seek(offset)
                    new = f.read()
                if not new:
                    continue
                offset += len(new)
                if START_MARKER in new:
                    self.wfile.write(new.split(START_MARKER, 1)[0])
                    return
                self.wfile.write(new)
                self.wfile.flush()

        def _plain(self, code: int, message: str) -> None:
            body = message.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet: the node logs enough
            pass

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.verify_mode = ssl.CERT_REQUIRED  # only holders of the cluster CA's certificates
    ctx.load_cert_chain(cert, key)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="logs", daemon=True).start()
