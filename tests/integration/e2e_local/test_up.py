"""`mcpgate up` as a user meets it in the first hour: real processes, real ports.

- It judges the files with the operator's checks: the same condition lines as
  `mcpgate render --require-secrets`, warnings included, then serves (or exits 1).
- Every error a user can cause is one line, never a traceback: bad Secret keys, busy
  ports, out-of-range ports, Ctrl-C at any moment.
- It lists the tools it serves, and serves an edit of the files on the same port, or
  says why not and keeps the last good configuration.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcpgate.offline import render_files

from support.gateway import free_port
from support.paths import EXAMPLES
from support.poll import wait_for_sync

MCPGATE = [sys.executable, "-m", "mcpgate.cli"]
TRACEBACK = "Traceback (most recent call last)"
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
JSON = {"Accept": "application/json", "Content-Type": "application/json"}


class Up:
    """A running `mcpgate up`, its stderr collected into a file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port, self.metrics = free_port(), free_port()
        self.log = tmp_path / f"up-{self.port}.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen(
            [*MCPGATE, "up", *args, "--port", str(self.port), "--metrics-port", str(self.metrics)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    @property
    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, words: str, within: float = 30) -> None:
        def said() -> bool:
            if self.process.poll() is not None and words not in self.text:
                raise RuntimeError(f"exited without saying {words!r}:\n{self.text}")
            assert words in self.text, f"never said {words!r}:\n{self.text}"
            return True

        wait_for_sync(said, within=within, what=repr(words))

    def tools(self) -> list[str]:
        reply = httpx.post(self.url, json=LIST, headers=JSON, timeout=10)
        return [t["name"] for t in reply.json()["result"]["tools"]]

    def exited(self) -> int:
        """The exit code of a run that ends by itself."""
        code = self.process.wait(timeout=60)
        self._out.close()
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self._out.close()
        return code


@pytest.fixture
def up(tmp_path: Path) -> Iterator[type[Up]]:
    started: list[Up] = []

    class Started(Up):
        def __init__(self, *args: str) -> None:
            super().__init__(tmp_path, *args)
            started.append(self)

    yield Started
    for process in started:
        process.stop(signal.SIGKILL)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MCPGATE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def copy(example: str, target: Path, *, drop: tuple[str, ...] = ()) -> Path:
    folder = target / example
    shutil.copytree(EXAMPLES / example, folder)
    for name in drop:
        (folder / name).unlink()
    return folder


def condition_lines(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith(("McpServer ", "HttpApiDataSource ")) and "=" in line.split(":")[1]
    ]


# --- one checking path --------------------------------------------------------------------


SECRETS = {
    "present": "stringData: {token: tickets-token-change-me}",
    "whitespace-only": "stringData: {token: '    '}",
    "under-4-characters": "stringData: {token: 'abc'}",
    "one-newline": "data: {token: Cg==}",
    "key-missing": "stringData: {other: tickets-token-change-me}",
}


@pytest.mark.parametrize("variant", SECRETS, ids=list(SECRETS))
def test_up_and_render_say_the_same_lines(up: type[Up], tmp_path: Path, variant: str) -> None:
    """Both run the operator's functions: a missing key, an empty value or one Kubernetes
    would mount get one verdict, one reason and one message in both commands."""
    folder = copy("outbound-bearer", tmp_path, drop=("secret.yaml",))
    (folder / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tickets-api-token}\n"
        + SECRETS[variant]
        + "\n"
    )
    rendered = render_files([folder], require_secrets=True)
    process = up("-f", str(folder))
    if rendered.all_ready:
        process.wait_for("serving McpServer")
        assert process.stop() == 0
    else:
        assert process.exited() == 1
        assert "would not be Ready" in process.text
    assert condition_lines(process.text) == rendered.lines
    assert TRACEBACK not in process.text


def test_up_names_a_missing_secret_by_object_and_field(tmp_path: Path) -> None:
    folder = copy("outbound-bearer", tmp_path, drop=("secret.yaml",))
    done = run("up", "-f", str(folder))
    assert done.returncode == 1
    assert (
        "McpServer default/tickets-mcp: ResolvedRefs=False (SecretNotFound) HttpApiDataSource"
        " tickets: Secret tickets-api-token (auth.bearer.tokenSecretRef) not found"
    ) in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "mcpgate: McpServer tickets-mcp would not be Ready (SecretNotFound): see above"
    )


def test_up_prints_passthrough_warnings_and_serves(up: type[Up]) -> None:
    process = up("-f", str(EXAMPLES / "passthrough-misconfigured"))
    process.wait_for("serving McpServer wiki-mcp")
    assert (
        "McpServer default/wiki-mcp: PassthroughConfigured=False (DataSourceHasAuth)"
    ) in process.text
    assert httpx.get(f"http://127.0.0.1:{process.port}/readyz", timeout=10).status_code == 200


def test_up_warns_before_forwarding_a_token_over_plain_http(up: type[Up], tmp_path: Path) -> None:
    folder = copy("bearer-passthrough", tmp_path)
    source = folder / "datasource.yaml"
    source.write_text(source.read_text().replace("https://docs.example.com", "http://127.0.0.1:9"))
    process = up("-f", str(folder))
    process.wait_for("serving McpServer docs-mcp")
    assert "PassthroughConfigured=False (InsecureDownstream)" in process.text
    assert "use https" in process.text


@pytest.mark.parametrize(
    "key", ["../../../../tmp/mcpgate-escape", "a/b", "..", ".", "..hidden", "x" * 254]
)
def test_secret_keys_kubernetes_refuses_are_refused(tmp_path: Path, key: str) -> None:
    """A key names a file under the credentials folder: `up` on an untrusted repository must
    never write elsewhere. `render` refuses the same files, with exit 2 as well."""
    folder = copy("outbound-bearer", tmp_path, drop=("secret.yaml",))
    (folder / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tickets-api-token}\n"
        f"stringData: {{token: tickets-token-change-me, '{key}': planted}}\n"
    )
    escape = Path("/tmp/mcpgate-escape")
    escape.unlink(missing_ok=True)
    for command in ("up", "render"):
        done = run(command, "-f", str(folder))
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert "is not a valid Secret key" in line
        assert "Kubernetes would refuse it" in line
        assert done.stdout == ""
    assert not escape.exists()


# --- one line, never a traceback ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["--port", "--metrics-port"])
def test_a_busy_port_is_one_line_naming_the_flag(flag: str) -> None:
    holder = socket.socket()  # a socket of ours holds the port
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy, other = holder.getsockname()[1], free_port()
    ports = {"--port": busy, "--metrics-port": other}
    if flag == "--metrics-port":
        ports = {"--port": other, "--metrics-port": busy}
    try:
        done = run(
            "up", "-f", str(EXAMPLES / "quickstart"), *(str(x) for kv in ports.items() for x in kv)
        )
    finally:
        holder.close()
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"mcpgate: cannot listen on 127.0.0.1:{busy} (Address already in use):"
        f" pick another with {flag}"
    )
    assert "serving McpServer" not in done.stderr
    assert TRACEBACK not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["up", "-f", str(EXAMPLES / "quickstart"), "--port", "99999"],
        ["up", "-f", str(EXAMPLES / "quickstart"), "--metrics-port", "0"],
        ["gateway", "--config", "x.json", "--port", "-1"],
        ["demo-api", "--port", "http"],
    ],
    ids=["port-too-big", "metrics-port-zero", "negative", "not-a-number"],
)
def test_an_out_of_range_port_is_refused(args: list[str]) -> None:
    done = run(*args)
    assert done.returncode == 2
    assert "is not a port number (1-65535)" in done.stderr.strip().splitlines()[-1]


def test_operator_without_a_cluster_is_one_line(tmp_path: Path) -> None:
    env_args = ["env", f"HOME={tmp_path}", f"KUBECONFIG={tmp_path}/none", *MCPGATE]
    done = subprocess.run(
        [*env_args, "operator"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("mcpgate: no cluster to talk to:")
    assert line.endswith("set KUBECONFIG or --kubeconfig")


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler: mcpgate's own, installed as `main`
    starts (Python installs none). Before that, a signal is the interpreter's: it ends
    the process by the signal, with a KeyboardInterrupt trace for SIGINT."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def starting_up(tmp_path: Path) -> subprocess.Popen[str]:
    """`mcpgate up` (with a key Secret to write) once mcpgate's own handler is in place."""
    ports = ["--port", str(free_port()), "--metrics-port", str(free_port())]
    process = subprocess.Popen(
        [*MCPGATE, "up", "-f", str(EXAMPLES / "inbound-apikey"), *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    wait_for_sync(lambda: catches_sigterm(process.pid), interval=0.005, what="mcpgate's handler")
    return process


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("delay", [0.0, 0.3, 0.7, 1.0, 1.5])
def test_a_signal_during_start_up_is_no_traceback(tmp_path: Path, delay: float, sig: int) -> None:
    """While modules load, while the files are checked, or as the server starts: an orderly
    stop (a swallowed KeyboardInterrupt used to leave it serving), and the credentials
    folder removed."""
    process = starting_up(tmp_path)
    time.sleep(delay)
    process.send_signal(sig)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out  # stopped, as API.md says of `up`
    assert TRACEBACK not in out
    assert "Exception ignored" not in out
    assert list(tmp_path.glob("mcpgate-credentials-*")) == []


def test_a_second_signal_while_starting_ends_it_at_once(tmp_path: Path) -> None:
    process = starting_up(tmp_path)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert (process.returncode, out.strip().splitlines()[-1]) in (
        (130, "mcpgate: interrupted"),  # the second came before serving
        (0, out.strip().splitlines()[-1]),  # both were the server's to take
    ), out
    assert TRACEBACK not in out
    assert list(tmp_path.glob("mcpgate-credentials-*")) == []


def test_ctrl_c_twice_while_serving_is_no_traceback(up: type[Up]) -> None:
    process = up("-f", str(EXAMPLES / "quickstart"))
    process.wait_for("watching the files")
    process.process.send_signal(signal.SIGINT)
    process.process.send_signal(signal.SIGINT)
    assert process.stop() in (0, 130)
    assert TRACEBACK not in process.text


# --- up for people iterating on tools -----------------------------------------------------


def test_up_lists_the_tools_it_serves(up: type[Up]) -> None:
    process = up("-f", str(EXAMPLES / "quickstart"))
    process.wait_for("watching the files")
    lines = process.text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("serving McpServer"))
    assert [line.split() for line in lines[start + 1 : start + 4]] == [
        ["list_posts", "GET", "blog/posts"],
        ["get_post", "GET", "blog/posts/:id"],
        ["create_post", "POST", "blog/posts"],
    ]


NEW_TOOL = """
    - name: count_posts
      description: How many posts there are.
      dataSource: blog
      request: {method: GET, path: /posts}
"""


def test_up_serves_an_edit_and_keeps_the_last_good_one(up: type[Up], tmp_path: Path) -> None:
    folder = copy("quickstart", tmp_path)
    server = folder / "mcpserver.yaml"
    process = up("-f", str(folder))
    process.wait_for("watching the files")
    port_before = process.port

    server.write_text(server.read_text() + textwrap.indent(NEW_TOOL.strip("\n"), "") + "\n")
    process.wait_for("reloaded McpServer quickstart: 4 tools")
    assert process.tools() == ["list_posts", "get_post", "create_post", "count_posts"]

    good = server.read_text()
    server.write_text(good.replace("path: /posts/:id", "path: /posts/:nope"))
    process.wait_for("UnknownParameter")
    process.wait_for("the last good configuration is")
    assert process.tools() == ["list_posts", "get_post", "create_post", "count_posts"]

    server.write_text(good.replace("name: count_posts", "name: tally_posts"))
    process.wait_for("tally_posts")
    assert process.port == port_before
    assert process.tools() == ["list_posts", "get_post", "create_post", "tally_posts"]
    assert process.stop() == 0
    assert TRACEBACK not in process.text
