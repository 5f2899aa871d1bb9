"""Which modules does the gateway process load? The real entrypoint, run in this process.

    python -m bench.modules_probe OUT PORT REQUEST_JSON BODY mcpgate-args...

runs `mcpgate.cli.main(mcpgate-args)` (e.g. `up -f DIR --port PORT ...`) in the main thread,
as the console script would. A helper thread waits until `/readyz` answers, sends one
request (the benchmark's tools/call) so that whatever a call imports lazily is loaded too,
writes `{"answered": bool, "modules": sorted(sys.modules)}` to OUT and sends this process
SIGTERM, which the gateway handles as in a pod (graceful shutdown, exit 0).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["main"]


def _probe(out: Path, port: int, request: dict[str, object], body: bytes) -> None:
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                connection.close()
                break
        except OSError:
            pass
        time.sleep(0.05)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = request["headers"]
        assert isinstance(headers, dict)
        connection.request(str(request["method"]), str(request["path"]), body=body, headers=headers)
        response = connection.getresponse()
        answered = response.status == 200 and b'"isError":false' in response.read()
        connection.close()
    except OSError:
        pass
    out.write_text(json.dumps({"answered": answered, "modules": sorted(sys.modules)}))
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    out, port, request, body, *args = sys.argv[1:]
    threading.Thread(
        target=_probe,
        args=(Path(out), int(port), json.loads(request), body.encode()),
        daemon=True,
    ).start()
    from mcpgate.cli import main as mcpgate_main

    return mcpgate_main(args)


if __name__ == "__main__":
    sys.exit(main())
