"""The local node of scripts/cluster: a small kubelet for pods of the mcpgate image.

It registers one Node, binds pods that no scheduler binds, and runs each container of
the mcpgate image as a local process of this checkout's `mcpgate`, with the container's
args. Each pod gets an address of its own in 127.0.0.0/8 and its process listens there;
its ConfigMap, Secret, projected and downwardAPI volumes are written as the kubelet
writes them and bind-mounted at their mountPaths in a mount namespace of its own; probes
decide readiness and liveness; restartPolicy is honoured. A process reaches the API
server only through a kubeconfig (KUBECONFIG) with a token from the TokenRequest API for
its pod's ServiceAccount, bound to the pod: never KUBERNETES_SERVICE_*, which would name
a ClusterIP. Pods of other images are marked Failed.

The node speaks as `system:node:<name>` (so the Node authorizer and NodeRestriction judge
it as they judge a kubelet) and binds pods as `system:kube-scheduler`.

    python node.py CONFIG.json
"""

# ruff: noqa: S603 - it runs the commands of the pods it was given: that is its job
from __future__ import annotations

import base64
import dataclasses
import http.client
import ipaddress
import json
import logging
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubeapi import ApiError, Client, Obj
from logs import START_MARKER, serve_logs
from podfiles import Payload, write_atomic

log = logging.getLogger("node")

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# What the mcpgate image sets (Dockerfile): its user, its home and its environment.
IMAGE_USER = 10001
IMAGE_PASSWD = "mcpgate:x:10001:10001::/tmp:/usr/sbin/nologin\n"  # noqa: S105 - no password
IMAGE_GROUP = "mcpgate:x:10001:\n"
IMAGE_ENV = {
    "HOME": "/tmp",  # noqa: S108 - the image's home: the pod's /tmp emptyDir
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONFAULTHANDLER": "1",
}
# The image's commands that listen on 0.0.0.0 unless told otherwise, and the flag that
# tells them the pod's address instead.
DEFAULT_BINDS = {
    "gateway": ("--host", "--host={ip}"),
    "operator": ("--liveness", "--liveness=http://{ip}:8081/healthz"),
}
ANY_ADDRESS = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])")
TOKEN_SECONDS = 86400
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# HTTPS probes: the kubelet does not verify the certificate either.
UNVERIFIED = ssl._create_unverified_context()  # noqa: S323


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    server: str
    ca: str
    node_cert: str
    node_key: str
    scheduler_cert: str
    scheduler_key: str
    node_name: str
    node_ip: str
    kubelet_port: int  # the node's log endpoint, on node_ip
    pod_prefix: str  # "127.A": pods get 127.A.B.C
    images: list[str]  # image repositories run as mcpgate processes
    mcpgate: str  # this checkout's .venv/bin/mcpgate
    state: str  # the node's directory in the cluster's state dir


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def repository(image: str) -> str:
    """The image reference without its digest or tag."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


class PodError(Exception):
    """A pod that cannot start yet (reason, message), like a missing Secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unsupported(PodError):
    """A pod this node can never run: it is marked Failed."""


class Objects:
    """The Secrets and ConfigMaps pods use, each kept current by a watch of its own
    (a field selector on its name: what the Node authorizer lets a node read)."""

    def __init__(self, api: Client, on_change: Any) -> None:
        self._api = api
        self._on_change = on_change
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], Obj | None] = {}
        self._users: dict[tuple[str, str, str], set[str]] = {}

    @staticmethod
    def _path(kind: str, ns: str) -> str:
        return f"/api/v1/namespaces/{ns}/{kind}"

    def get(self, kind: str, ns: str, name: str, user: str) -> Obj | None:
        key = (kind, ns, name)
        with self._lock:
            known = key in self._cache
            self._users.setdefault(key, set()).add(user)
        if not known:
            try:
                obj: Obj | None = self._api.get(f"{self._path(kind, ns)}/{name}")
            except ApiError as err:
                if err.status not in (403, 404):  # 403: the node graph lags the binding
                    raise
                obj = None
            with self._lock:
                self._cache[key] = obj
            threading.Thread(target=self._watch, args=(key,), daemon=True).start()
        with self._lock:
            return self._cache.get(key)

    def release(self, user: str) -> None:
        with self._lock:
            for users in self._users.values():
                users.discard(user)

    def _wanted(self, key: tuple[str, str, str]) -> bool:
        with self._lock:
            if self._users.get(key):
                return True
            self._users.pop(key, None)
            self._cache.pop(key, None)
            return False

    def _store(self, key: tuple[str, str, str], obj: Obj | None) -> None:
        with self._lock:
            old = self._cache.get(key)
            self._cache[key] = obj
            users = set(self._users.get(key, ()))
        if old != obj:
            self._on_change(users)

    def _watch(self, key: tuple[str, str, str]) -> None:
        kind, ns, name = key
        path, sel = self._path(kind, ns), {"fieldSelector": f"metadata.name={name}"}
        while self._wanted(key):
            try:
                listed = self._api.get(path, **sel)
                items = listed.get("items", [])
                self._store(key, items[0] if items else None)
                rv = listed["metadata"]["resourceVersion"]
                for ev in self._api.watch(path, {**sel, "resourceVersion": rv}, timeout=30):
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._store(key, ev["object"])
                    elif ev["type"] == "DELETED":
                        self._store(key, None)
                    elif ev["type"] == "ERROR":  # 410 Gone and the like: list again
                        break
                    if not self._wanted(key):
                        return
            except (ApiError, OSError, http.client.HTTPException) as err:
                log.debug("watch of %s %s/%s: %s", kind, ns, name, err)
                time.sleep(2)


@dataclasses.dataclass
class Probe:
    spec: Obj
    kind: str  # readiness, liveness, startup
    ok: bool
    due: float = 0.0
    successes: int = 0
    failures: int = 0


@dataclasses.dataclass
class Container:
    spec: Obj
    proc: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    started_mono: float = 0.0
    restarts: int = 0
    state: Obj = dataclasses.field(
        default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}}
    )
    last_state: Obj = dataclasses.field(default_factory=dict)
    next_start: float = 0.0
    backoff: float = 0.0
    done: bool = False  # exited and not to be restarted
    probes: list[Probe] = dataclasses.field(default_factory=list)

    def probe(self, kind: str) -> Probe | None:
        return next((p for p in self.probes if p.kind == kind), None)


class PodRunner:
    """One pod: its volumes, its processes, its probes and its status."""

    def __init__(self, node: Node, pod: Obj, ip: str) -> None:
        self.node, self.pod, self.ip = node, pod, ip
        md = pod["metadata"]
        self.uid: str = md["uid"]
        self.ns: str = md["namespace"]
        self.name: str = md["name"]
        self.dir = Path(node.cfg.state, "pods", f"{self.ns}_{self.name}_{self.uid}")
        self.containers = {c["name"]: Container(c) for c in pod["spec"]["containers"]}
        self.wake = threading.Event()
        self.gone = threading.Event()  # the pod object no longer exists
        self.started = now()
        self.token_expiry = 0.0
        self.tokens: dict[str, tuple[str, float]] = {}
        self.volumes_ok = False
        self.volume_sync = 0.0
        self.conditions: dict[str, Obj] = {}
        self.failed: PodError | None = None
        self.mount_error = ""
        self.sent: Obj | None = None
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)

    # --- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        # Other pods' processes can pass through (to their own kubeconfig) but read
        # nothing here: the volumes are root's, as under /var/lib/kubelet.
        self.dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        (self.dir / "volumes").mkdir(mode=0o700, exist_ok=True)
        try:
            self._check()
        except Unsupported as err:
            self.failed = err
            self.node.event(self.pod, "Warning", err.reason, str(err))
        while True:
            deleting = self.pod["metadata"].get("deletionTimestamp") is not None
            if self.gone.is_set() or deleting:
                self._terminate(deleting)
                return
            if self.failed is None:
                try:
                    self._step()
                except Exception:  # one pod's trouble must not stop the node
                    log.exception("pod %s/%s", self.ns, self.name)
            self._report()
            self.wake.wait(0.5)
            self.wake.clear()

    def _check(self) -> None:
        spec = self.pod["spec"]
        if spec.get("initContainers"):
            raise Unsupported("UnsupportedPod", "the local node runs no init containers")
        for c in spec["containers"]:
            if repository(c["image"]) not in self.node.cfg.images:
                raise Unsupported(
                    "UnsupportedImage",
                    f"the local node runs only the mcpgate images "
                    f"({', '.join(self.node.cfg.images)}), not {c['image']}",
                )
            if c.get("command") not in (None, [], ["mcpgate"]):
                raise Unsupported("UnsupportedCommand", "the local node runs only `mcpgate`")
            for m in c.get("volumeMounts", []):
                if m.get("subPath") or m.get("subPathExpr"):
                    raise Unsupported("UnsupportedMount", "the local node mounts no subPath")
                # Real paths: /var/run is /run on the host, and a mount follows the link.
                mp = os.path.realpath(m["mountPath"])
                for keep in (self.node.cfg.state, os.path.dirname(self.node.cfg.mcpgate)):
                    keep = os.path.realpath(keep)
                    if mp == "/" or keep == mp or keep.startswith(mp + "/"):
                        raise Unsupported("UnsupportedMount", f"{mp} would hide the node's files")

    def _step(self) -> None:
        if (
            not self.volumes_ok
            or self.node.objects_changed(self)
            or time.monotonic() > self.volume_sync
        ):
            try:
                self._write_volumes()
                self.volumes_ok = True
                self.volume_sync = time.monotonic() + 30
            except Unsupported as err:
                self.failed = err
                self.node.event(self.pod, "Warning", err.reason, str(err))
                return
            except PodError as err:
                self._waiting_all("ContainerCreating", str(err))
                if str(err) != self.mount_error:  # one Event per new trouble, not per retry
                    self.node.event(self.pod, "Warning", "FailedMount", str(err))
                self.mount_error = str(err)
                self.volume_sync = time.monotonic() + 2
                if not self.volumes_ok:
                    return
        for c in self.containers.values():
            self._supervise(c)

    # --- volumes ----------------------------------------------------------------------

    def _obj(self, kind: str, name: str) -> Obj | None:
        return self.node.objects.get(kind, self.ns, name, self.uid)

    def _keys(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        obj = self._obj(kind, name)
        if obj is None:
            if optional:
                return None
            raise PodError(
                "NotFound",
                f"{kind[:-1]} {self.ns}/{name} not found (or not yet readable by the node)",
            )
        if kind == "secrets":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
        return out

    def _project(
        self, src: Obj, kind: str, name: str, mode: int, into: dict[str, tuple[bytes, int]]
    ) -> None:
        keys = self._keys(kind, name, bool(src.get("optional")))
        if keys is None:
            return
        items = src.get("items")
        if not items:
            into.update({k: (v, mode) for k, v in keys.items()})
            return
        for item in items:
            if item["key"] not in keys:
                if src.get("optional"):
                    continue
                raise PodError("NotFound", f"key {item['key']} not in {kind[:-1]} {self.ns}/{name}")
            into[item["path"]] = (keys[item["key"]], item.get("mode", mode))

    def _token(self, audience: str | None, seconds: int) -> tuple[str, float]:
        """A token for the pod's ServiceAccount, bound to the pod; the kubelet asks again
        at 80% of a token's life, and so does this node."""
        key = f"{audience}/{seconds}"
        cached = self.tokens.get(key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached
        self.tokens[key] = self._request_token(audience, seconds)
        return self.tokens[key]

    def _request_token(self, audience: str | None, seconds: int) -> tuple[str, float]:
        spec: Obj = {
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": self.name,
                "uid": self.uid,
            },
        }
        if audience:
            spec["audiences"] = [audience]
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        path = f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token"
        try:
            got = self.node.api.request(
                "POST",
                path,
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
        except ApiError as err:
            raise PodError("TokenRequestFailed", f"token for ServiceAccount {sa}: {err}") from err
        expiry = datetime.strptime(got["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        left = (expiry.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
        # The kubelet refreshes a token at 80% of its life; so does this node.
        return got["status"]["token"], time.monotonic() + 0.8 * left

    def _payload(self, vol: Obj) -> Payload | None:
        files: dict[str, tuple[bytes, int]] = {}
        if "secret" in vol:
            s = vol["secret"]
            self._project(s, "secrets", s["secretName"], s.get("defaultMode", 0o644), files)
        elif "configMap" in vol:
            s = vol["configMap"]
            self._project(s, "configmaps", s["name"], s.get("defaultMode", 0o644), files)
        elif "downwardAPI" in vol:
            s = vol["downwardAPI"]
            for item in s.get("items", []):
                files[item["path"]] = (
                    self._field(item).encode(),
                    item.get("mode", s.get("defaultMode", 0o644)),
                )
        elif "projected" in vol:
            mode = vol["projected"].get("defaultMode", 0o644)
            for src in vol["projected"].get("sources", []):
                if "secret" in src:
                    self._project(src["secret"], "secrets", src["secret"]["name"], mode, files)
                elif "configMap" in src:
                    self._project(
                        src["configMap"], "configmaps", src["configMap"]["name"], mode, files
                    )
                elif "downwardAPI" in src:
                    for item in src["downwardAPI"].get("items", []):
                        files[item["path"]] = (self._field(item).encode(), item.get("mode", mode))
                elif "serviceAccountToken" in src:
                    t = src["serviceAccountToken"]
                    token, _ = self._token(t.get("audience"), t.get("expirationSeconds", 3600))
                    files[t["path"]] = (token.encode(), mode)
                else:
                    raise Unsupported(
                        "UnsupportedVolume", f"projected source {sorted(src)} in {vol['name']}"
                    )
        else:
            return None  # emptyDir (a plain directory), or refused in _mount_sources
        return files

    def _write_volumes(self) -> None:
        gid = self.pod["spec"].get("securityContext", {}).get("fsGroup")
        for vol in self.pod["spec"].get("volumes", []):
            path = self.dir / "volumes" / vol["name"]
            if "emptyDir" in vol:
                path.mkdir(parents=True, exist_ok=True)
                if gid is not None:
                    os.chown(path, 0, gid)
                path.chmod(0o777 if gid is None else 0o2775)
                continue
            payload = self._payload(vol)
            if payload is None:
                raise Unsupported(
                    "UnsupportedVolume", f"volume {vol['name']}: {sorted(set(vol) - {'name'})}"
                )
            if write_atomic(path, payload, gid) and self.volumes_ok:
                log.info("pod %s/%s: volume %s updated", self.ns, self.name, vol["name"])
        if self._wants_api() and time.monotonic() > self.token_expiry:
            token, self.token_expiry = self._token(None, TOKEN_SECONDS)
            self._write_kubeconfig(token)

    def _wants_api(self) -> bool:
        """Whether the pod asked for API credentials: the ServiceAccount admission plugin
        mounts a token at the in-cluster path unless automounting is off."""
        return any(
            m["mountPath"] == SA_DIR
            for c in self.pod["spec"]["containers"]
            for m in c.get("volumeMounts", [])
        )

    def _write_kubeconfig(self, token: str) -> None:
        ca = base64.b64encode(Path(self.node.cfg.ca).read_bytes()).decode()
        text = json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "pod",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {
                            "server": self.node.cfg.server,
                            "certificate-authority-data": ca,
                        },
                    }
                ],
                "users": [{"name": "pod", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "pod",
                        "context": {"cluster": "local", "user": "pod", "namespace": self.ns},
                    }
                ],
            }
        )
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "kubeconfig.tmp"
        tmp.write_text(text)
        uid, gid, _groups = self._identity(next(iter(self.containers.values())).spec)
        os.chown(tmp, uid, gid)
        tmp.chmod(0o400)
        tmp.rename(self.dir / "kubeconfig")

    # --- processes --------------------------------------------------------------------

    def _identity(self, c: Obj) -> tuple[int, int, list[int]]:
        psc = self.pod["spec"].get("securityContext", {})
        csc = c.get("securityContext", {})
        uid = csc.get("runAsUser", psc.get("runAsUser", IMAGE_USER))
        gid = csc.get("runAsGroup", psc.get("runAsGroup", IMAGE_USER))
        groups = [
            g for g in [psc.get("fsGroup"), *psc.get("supplementalGroups", [])] if g is not None
        ]
        return uid, gid, groups

    def _field(self, ref_holder: Obj) -> str:
        if "resourceFieldRef" in ref_holder:
            raise Unsupported(
                "UnsupportedField", "resourceFieldRef is not supported by the local node"
            )
        path: str = ref_holder["fieldRef"]["fieldPath"]
        md, spec = self.pod["metadata"], self.pod["spec"]
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.ns,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node.cfg.node_name,
            "spec.serviceAccountName": str(spec.get("serviceAccountName", "default")),
            "status.podIP": self.ip,
            "status.podIPs": self.ip,
            "status.hostIP": self.node.cfg.node_ip,
            "status.hostIPs": self.node.cfg.node_ip,
        }
        if path in simple:
            return simple[path]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return str((md.get(m[1]) or {}).get(m[2], ""))
        if path in ("metadata.labels", "metadata.annotations"):
            return "\n".join(f'{k}="{v}"' for k, v in sorted((md.get(path[9:]) or {}).items()))
        raise Unsupported("UnsupportedField", f"fieldRef {path}")

    def _env(self, c: Obj) -> dict[str, str]:
        env = {
            "PATH": f"{os.path.dirname(self.node.cfg.mcpgate)}:{SYSTEM_PATH}",
            "HOSTNAME": self.name,
            **IMAGE_ENV,
        }
        if self._wants_api():
            env["KUBECONFIG"] = str(self.dir / "kubeconfig")
        for src in c.get("envFrom", []):
            kind, ref = (
                ("configmaps", src["configMapRef"])
                if "configMapRef" in src
                else ("secrets", src["secretRef"])
            )
            keys = self._keys(kind, ref["name"], bool(ref.get("optional")))
            env |= {src.get("prefix", "") + k: v.decode() for k, v in (keys or {}).items()}
        for e in c.get("env", []):
            if "value" in e or "valueFrom" not in e:
                env[e["name"]] = expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf or "resourceFieldRef" in vf:
                env[e["name"]] = self._field(vf)
                continue
            kind, ref = (
                ("secrets", vf["secretKeyRef"])
                if "secretKeyRef" in vf
                else ("configmaps", vf["configMapKeyRef"])
            )
            keys = self._keys(kind, ref["name"], bool(ref.get("optional")))
            if keys is not None and ref["key"] in keys:
                env[e["name"]] = keys[ref["key"]].decode()
            elif not ref.get("optional"):
                raise PodError(
                    "CreateContainerConfigError",
                    f"key {ref['key']} of {kind[:-1]} {self.ns}/{ref['name']} not found",
                )
        return env

    def _args(self, c: Obj, env: dict[str, str]) -> list[str]:
        args = [ANY_ADDRESS.sub(self.ip, expand(a, env)) for a in c.get("args", [])]
        flag = DEFAULT_BINDS.get(args[0] if args else "")
        given = flag and any(a == flag[0] or a.startswith(flag[0] + "=") for a in args)
        if flag and not given and not (flag[0] == "--liveness" and "MCPGATE_LIVENESS" in env):
            args.append(flag[1].format(ip=self.ip))
        return args

    def _mount_script(self, c: Obj) -> str:
        """The shell lines that, in the process's own mount namespace, put each volume at
        its mountPath; the mount points themselves are made (empty) on the host."""
        lines = ["set -e"]
        for name in ("passwd", "group"):  # the image's user, as its /etc has it
            src = shlex.quote(str(Path(self.node.cfg.state, "image", name)))
            lines.append(f"mount --bind {src} /etc/{name}")
        for m in c.get("volumeMounts", []):
            src = self.dir / "volumes" / m["name"]
            dst = os.path.normpath(m["mountPath"])
            self.node.mountpoint(dst)
            lines.append(f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}")
            if m.get("readOnly"):
                lines.append(f"mount -o remount,bind,ro {shlex.quote(dst)}")
        return "\n".join(lines)

    def _start(self, c: Container) -> None:
        try:
            env = self._env(c.spec)
        except Unsupported as err:
            self.failed = err
            return
        except PodError as err:
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(err)}}
            c.next_start = time.monotonic() + 2
            return
        uid, gid, groups = self._identity(c.spec)
        sc = c.spec.get("securityContext", {})
        priv = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
        priv += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
        if sc.get("allowPrivilegeEscalation") is False:
            priv.append("--no-new-privs")
        script = (
            self._mount_script(c.spec) + "\nexec " + " ".join(map(shlex.quote, priv)) + ' -- "$@"'
        )
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
            self.node.cfg.mcpgate,
            *self._args(c.spec, env),
        ]
        self.dir.mkdir(parents=True, exist_ok=True)
        logfile = self.dir / f"{c.spec['name']}.log"
        with open(logfile, "ab") as out:
            logfile.chmod(0o600)
            out.write(START_MARKER + f"{now()}: {shlex.join(argv[9:])}\n".encode())
            out.flush()
            c.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=c.spec.get("workingDir", "/"),
                start_new_session=True,
            )
        (self.dir / f"{c.spec['name']}.pid").write_text(str(c.proc.pid))
        c.started_at, c.started_mono = now(), time.monotonic()
        c.state = {"running": {"startedAt": c.started_at}}
        t0 = time.monotonic()
        c.probes = [
            Probe(
                c.spec[k + "Probe"],
                k,
                ok=(k == "liveness"),
                due=t0 + c.spec[k + "Probe"].get("initialDelaySeconds", 0),
            )
            for k in ("startup", "readiness", "liveness")
            if c.spec.get(k + "Probe")
        ]
        self.node.event(
            self.pod, "Normal", "Started", f"Started container {c.spec['name']} as pid {c.proc.pid}"
        )

    def _supervise(self, c: Container) -> None:
        if c.proc is None:
            if not c.done and time.monotonic() >= c.next_start:
                self._start(c)
            return
        code = c.proc.poll()
        if code is None:
            self._probe(c)
            return
        self._exited(c, code)

    def _exited(self, c: Container, code: int) -> None:
        c.proc = None
        c.last_state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": c.started_at,
                "finishedAt": now(),
            }
        }
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            c.done, c.state = True, c.last_state
            return
        # The kubelet's crash-loop back-off: 10 s doubling to 5 min, reset after 10 min of running.
        c.backoff = (
            10.0
            if time.monotonic() - c.started_mono > 600 or not c.backoff
            else min(c.backoff * 2, 300.0)
        )
        c.next_start = time.monotonic() + c.backoff
        c.restarts += 1
        c.state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {c.backoff:.0f}s restarting container {c.spec['name']}",
            }
        }
        self.node.event(
            self.pod,
            "Warning",
            "BackOff",
            f"Back-off restarting container {c.spec['name']} (exit {code})",
        )

    def _probe(self, c: Container) -> None:
        startup = c.probe("startup")
        for p in c.probes:
            if time.monotonic() < p.due or (
                p.kind != "startup" and startup is not None and not startup.ok
            ):
                continue
            if p.kind == "startup" and p.ok:
                continue
            p.due = time.monotonic() + p.spec.get("periodSeconds", 10)
            passed, why = self._check_probe(c, p.spec)
            if passed:
                p.successes, p.failures = p.successes + 1, 0
                if p.successes >= p.spec.get("successThreshold", 1):
                    p.ok = True
                continue
            p.successes, p.failures = 0, p.failures + 1
            if p.failures < p.spec.get("failureThreshold", 3):
                continue
            p.ok = False
            self.node.event(
                self.pod, "Warning", "Unhealthy", f"{p.kind.capitalize()} probe failed: {why}"
            )
            if p.kind in ("liveness", "startup") and c.proc is not None:
                self.node.event(
                    self.pod,
                    "Normal",
                    "Killing",
                    f"Container {c.spec['name']} failed {p.kind} probe, will be restarted",
                )
                self._kill(c, self._grace())
                return

    def _port(self, c: Obj, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in c.get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no port named {port}")

    def _check_probe(self, c: Container, spec: Obj) -> tuple[bool, str]:
        timeout = spec.get("timeoutSeconds", 1)
        try:
            if "httpGet" in spec:
                h = spec["httpGet"]
                host = h.get("host") or self.ip
                if not ipaddress.ip_address(host).is_loopback:  # the network rule
                    return False, f"refusing a probe of non-loopback {host}"
                port = self._port(c.spec, h["port"])
                conn: http.client.HTTPConnection
                if h.get("scheme", "HTTP") == "HTTPS":
                    conn = http.client.HTTPSConnection(
                        host, port, timeout=timeout, context=UNVERIFIED
                    )
                else:
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                try:
                    conn.request(
                        "GET",
                        h.get("path", "/"),
                        headers={x["name"]: x["value"] for x in h.get("httpHeaders", [])},
                    )
                    status = conn.getresponse().status
                finally:
                    conn.close()
                return 200 <= status < 400, f"HTTP probe failed with statuscode: {status}"
            if "tcpSocket" in spec:
                host = spec["tcpSocket"].get("host") or self.ip
                if not ipaddress.ip_address(host).is_loopback:
                    return False, f"refusing a probe of non-loopback {host}"
                with socket.create_connection(
                    (host, self._port(c.spec, spec["tcpSocket"]["port"])), timeout
                ):
                    return True, ""
            if "exec" in spec:
                assert c.proc is not None
                uid, gid, groups = self._identity(c.spec)
                argv = [
                    "nsenter",
                    f"--target={c.proc.pid}",
                    "--mount",
                    "--",
                    "setpriv",
                    f"--reuid={uid}",
                    f"--regid={gid}",
                    "--clear-groups" if not groups else f"--groups={','.join(map(str, groups))}",
                    "--",
                    *spec["exec"]["command"],
                ]
                r = subprocess.run(
                    argv, capture_output=True, timeout=timeout, env=self._env(c.spec), check=False
                )
                return r.returncode == 0, f"exit {r.returncode}: {r.stdout[-200:]!r}"
            return False, f"probe {sorted(spec)} is not supported by the local node"
        except (
            OSError,
            ValueError,
            http.client.HTTPException,
            subprocess.TimeoutExpired,
            PodError,
        ) as err:
            return False, str(err)

    def _grace(self) -> float:
        md = self.pod["metadata"]
        g = md.get(
            "deletionGracePeriodSeconds", self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        )
        if self.node.stopping.is_set():  # `down`: no one waits for a graceful rollout
            return min(float(g), 10.0)
        return float(g)

    def _kill(self, c: Container, grace: float) -> None:
        """preStop, SIGTERM to the process (by its own pid: it leads its own group), then
        SIGKILL once the grace period is over."""
        proc = c.proc
        if proc is None:
            return
        deadline = time.monotonic() + grace
        pre = c.spec.get("lifecycle", {}).get("preStop", {})
        if "sleep" in pre:
            time.sleep(min(float(pre["sleep"].get("seconds", 0)), grace))
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        self._exited(c, proc.returncode if proc.returncode is not None else 137)

    def _terminate(self, deleting: bool) -> None:
        grace = self._grace()
        threads = [
            threading.Thread(target=self._kill, args=(c, grace))
            for c in self.containers.values()
            if c.proc
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in self.containers.values():
            c.done = True
            c.state = c.last_state or {
                "terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now()}
            }
        self.node.objects.release(self.uid)
        if deleting and not self.gone.is_set():
            self._report()
            try:  # the kubelet's last word: the pod may go now
                self.node.api.request(
                    "DELETE",
                    f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
                    {
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": self.uid},
                    },
                )
            except ApiError as err:
                if err.status not in (404, 409):
                    log.warning("deleting pod %s/%s: %s", self.ns, self.name, err)
        self.node.forget(self)

    # --- status -----------------------------------------------------------------------

    def _waiting_all(self, reason: str, message: str) -> None:
        for c in self.containers.values():
            if c.proc is None:
                c.state = {"waiting": {"reason": reason, "message": message}}

    def _condition(self, kind: str, ok: bool, reason: str | None = None) -> Obj:
        status = "True" if ok else "False"
        old = self.conditions.get(kind)
        if old is None or old["status"] != status:
            old = {
                "type": kind,
                "status": status,
                "lastTransitionTime": now(),
                "lastProbeTime": None,
            }
            if reason:
                old["reason"] = reason
            self.conditions[kind] = old
        return old

    def _report(self) -> None:
        statuses = []
        for c in self.containers.values():
            ready = c.proc is not None and all(p.ok for p in c.probes if p.kind == "readiness")
            if c.proc is not None and not any(p.kind == "readiness" for p in c.probes):
                ready = True
            started = c.proc is not None and all(p.ok for p in c.probes if p.kind == "startup")
            cs: Obj = {
                "name": c.spec["name"],
                "image": c.spec["image"],
                "imageID": "",
                "ready": ready,
                "started": started,
                "restartCount": c.restarts,
                "state": c.state,
                "lastState": c.last_state,
            }
            if c.proc is not None:
                cs["containerID"] = f"local://{c.proc.pid}"
            statuses.append(cs)
        all_ready = all(s["ready"] for s in statuses)
        status: Obj = {
            "hostIP": self.node.cfg.node_ip,
            "hostIPs": [{"ip": self.node.cfg.node_ip}],
            "startTime": self.started,
            "containerStatuses": statuses,
        }
        if self.failed is not None:
            status |= {"phase": "Failed", "reason": self.failed.reason, "message": str(self.failed)}
            for s in statuses:
                s["state"] = {
                    "waiting": {"reason": self.failed.reason, "message": str(self.failed)}
                }
        else:
            status |= {"podIP": self.ip, "podIPs": [{"ip": self.ip}], "phase": self._phase()}
        gen = self.pod["metadata"].get("generation")
        if gen is not None:
            status["observedGeneration"] = gen
        ours = [
            self._condition("PodReadyToStartContainers", self.volumes_ok),
            self._condition("Initialized", True),
            self._condition("ContainersReady", all_ready and self.failed is None),
            self._condition("Ready", all_ready and self.failed is None),
        ]
        kept = [
            x
            for x in self.pod.get("status", {}).get("conditions", [])
            if x["type"] not in self.conditions
        ]
        status["conditions"] = kept + ours
        if status == self.sent:
            return
        try:
            got = self.node.api.patch(
                f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status", {"status": status}
            )
            self.sent = status
            self.pod["status"] = got.get("status", {})
        except ApiError as err:
            if err.status == 404:
                self.gone.set()
            else:
                log.warning("status of pod %s/%s: %s", self.ns, self.name, err)

    def _phase(self) -> str:
        cs = list(self.containers.values())
        if all(c.done for c in cs):
            codes = [c.last_state.get("terminated", {}).get("exitCode", 0) for c in cs]
            return "Succeeded" if all(code == 0 for code in codes) else "Failed"
        if any(c.proc is not None or c.restarts for c in cs):
            return "Running"
        return "Pending"


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) references: defined ones are replaced, $$ escapes."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
        lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]),
        text,
    )


class Node:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.api = Client(cfg.server, cfg.ca, cfg.node_cert, cfg.node_key)
        self.scheduler = Client(cfg.server, cfg.ca, cfg.scheduler_cert, cfg.scheduler_key)
        self.lock = threading.Lock()
        self.pods: dict[str, PodRunner] = {}
        self.changed: set[str] = set()
        self.ips: dict[str, str] = {}
        self.objects = Objects(self.api, self._objects_changed)
        self.stopping = threading.Event()
        self._image_etc()

    def _image_etc(self) -> None:
        """The host's /etc/passwd and /etc/group plus the image's own user, mounted over
        them for each pod's process: programs that look their user up find it there."""
        etc = Path(self.cfg.state, "image")
        etc.mkdir(exist_ok=True)
        for name, line in (("passwd", IMAGE_PASSWD), ("group", IMAGE_GROUP)):
            host = Path("/etc", name).read_text()
            have = any(e.split(":")[2:3] == [str(IMAGE_USER)] for e in host.splitlines())
            (etc / name).write_text(host if have else host + line)
            (etc / name).chmod(0o644)

    # --- bookkeeping ------------------------------------------------------------------

    def _objects_changed(self, uids: set[str]) -> None:
        with self.lock:
            self.changed |= uids
            runners = [self.pods[u] for u in uids if u in self.pods]
        for r in runners:
            r.wake.set()

    def objects_changed(self, runner: PodRunner) -> bool:
        with self.lock:
            if runner.uid in self.changed:
                self.changed.discard(runner.uid)
                return True
            return False

    def _ip(self, uid: str) -> str:
        used = set(self.ips.values())
        for n in range(256, 65535):
            ip = f"{self.cfg.pod_prefix}.{n // 256}.{n % 256}"
            if ip not in used and not ip.endswith((".0", ".255")):
                self.ips[uid] = ip
                return ip
        raise RuntimeError("no pod address left")

    def forget(self, runner: PodRunner) -> None:
        with self.lock:
            self.pods.pop(runner.uid, None)
            self.ips.pop(runner.uid, None)

    def mountpoint(self, path: str) -> None:
        """Make an empty directory to mount on, and note what was made for `down`. Under
        the lock: pods of one Deployment start at once and make the same mount points."""
        with self.lock:
            made = []
            p = Path(path)
            while not p.exists():
                made.append(p)
                p = p.parent
            for d in reversed(made):
                d.mkdir(mode=0o755)
            if made:
                with open(Path(self.cfg.state, "mountpoints"), "a") as f:
                    f.writelines(f"{d}\n" for d in made)

    def event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        md, t = pod["metadata"], now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{md['name']}.{time.time_ns():x}", "namespace": md["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": md["name"],
                "namespace": md["namespace"],
                "uid": md["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": t,
            "lastTimestamp": t,
            "source": {"component": "kubelet", "host": self.cfg.node_name},
        }
        try:
            self.api.request("POST", f"/api/v1/namespaces/{md['namespace']}/events", body)
        except ApiError as err:
            log.debug("event: %s", err)

    # --- the API side -----------------------------------------------------------------

    def register(self) -> None:
        name = self.cfg.node_name
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }
        try:
            self.api.request(
                "POST",
                "/api/v1/nodes",
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}},
            )
        except ApiError as err:
            if err.status != 409:
                raise
        t = now()
        cap = {
            "cpu": str(os.cpu_count() or 2),
            "memory": "16Gi",
            "pods": "110",
            "ephemeral-storage": "20Gi",
        }
        conds = [
            {
                "type": ty,
                "status": st,
                "reason": r,
                "message": r,
                "lastHeartbeatTime": t,
                "lastTransitionTime": t,
            }
            for ty, st, r in (
                ("Ready", "True", "KubeletReady"),
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
            )
        ]
        self.api.patch(
            f"/api/v1/nodes/{name}/status",
            {
                "status": {
                    "capacity": cap,
                    "allocatable": cap,
                    "conditions": conds,
                    "addresses": [
                        {"type": "InternalIP", "address": self.cfg.node_ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": self.cfg.kubelet_port}},
                    "nodeInfo": {
                        "kubeletVersion": "v1.37.2",
                        "containerRuntimeVersion": "local://mcpgate",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "osImage": "local processes",
                        "kernelVersion": os.uname().release,
                        "kubeProxyVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                    },
                }
            },
        )

    def _stream(self, api: Client, path: str, params: dict[str, str], handle: Any) -> None:
        """List, then watch, for ever; list again after any break. Objects that went away
        while no watch ran are handled as DELETED."""
        known: dict[str, Obj] = {}
        while not self.stopping.is_set():
            try:
                listed = api.get(path, **params)
                items = {i["metadata"]["uid"]: i for i in listed.get("items", [])}
                for uid, item in known.items():
                    if uid not in items:
                        handle("DELETED", item)
                known = items
                for item in items.values():
                    handle("ADDED", item)
                rv = listed["metadata"]["resourceVersion"]
                for ev in api.watch(path, {**params, "resourceVersion": rv}):
                    if ev["type"] == "ERROR":
                        break
                    if ev["type"] != "BOOKMARK":
                        obj = ev["object"]
                        if ev["type"] == "DELETED":
                            known.pop(obj["metadata"]["uid"], None)
                        else:
                            known[obj["metadata"]["uid"]] = obj
                        handle(ev["type"], obj)
            except (ApiError, OSError, http.client.HTTPException) as err:
                log.warning("watch %s: %s", path, err)
                time.sleep(1)

    def _bind(self, kind: str, pod: Obj) -> None:
        md = pod["metadata"]
        if kind == "DELETED" or md.get("deletionTimestamp") or pod["spec"].get("nodeName"):
            return
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": md["name"], "uid": md["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.cfg.node_name},
        }
        try:
            self.scheduler.request(
                "POST", f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/binding", body
            )
        except ApiError as err:
            if err.status not in (404, 409):
                log.warning("binding %s/%s: %s", md["namespace"], md["name"], err)

    def _pod(self, kind: str, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            runner = self.pods.get(uid)
            if runner is None and kind != "DELETED":
                terminal = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
                if terminal and not pod["metadata"].get("deletionTimestamp"):
                    return
                runner = PodRunner(self, pod, self._ip(uid))
                self.pods[uid] = runner
                runner.thread.start()
                return
        if runner is None:
            return
        if kind == "DELETED":
            runner.gone.set()
        else:
            runner.pod["metadata"], runner.pod["spec"] = pod["metadata"], pod["spec"]
        runner.wake.set()

    def _log_of(self, ns: str, pod: str, container: str) -> tuple[Path, Any] | None:
        with self.lock:
            runner = next((r for r in self.pods.values() if (r.ns, r.name) == (ns, pod)), None)
        if runner is None or container not in runner.containers:
            return None
        return runner.dir / f"{container}.log", runner.thread.is_alive

    def run(self) -> None:
        cfg = self.cfg
        serve_logs(cfg.node_ip, cfg.kubelet_port, cfg.node_cert, cfg.node_key, cfg.ca, self._log_of)
        self.register()
        sched = threading.Thread(
            target=self._stream,
            daemon=True,
            args=(
                self.scheduler,
                "/api/v1/pods",
                {"fieldSelector": "spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed"},
                self._bind,
            ),
        )
        sched.start()
        self._stream(
            self.api,
            "/api/v1/pods",
            {"fieldSelector": f"spec.nodeName={self.cfg.node_name}"},
            self._pod,
        )

    def stop(self) -> None:
        """Stop every pod's processes (as at a node's shutdown), leaving the API alone."""
        self.stopping.set()
        with self.lock:
            runners = list(self.pods.values())
        for r in runners:
            r.gone.set()
            r.wake.set()
        for r in runners:
            r.thread.join(40)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s: %(message)s"
    )
    cfg = NodeConfig(**json.loads(Path(sys.argv[1]).read_text()))
    node = Node(cfg)

    def on_term(_sig: int, _frame: object) -> None:
        node.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    node.run()


if __name__ == "__main__":
    main()
