"""Our operator, running for real in a thread of its own against the API emulator.

kopf cancels every task of its event loop that it did not see at startup when it
stops (its docs say so), which would include a test's own tasks; in a thread
with its own loop, as in its own process, it owns everything it cancels.

    with operator_in_thread(kube_env, settings) as run:
        ...  # the test polls the emulator; run.reconciles counts reconciles
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import kopf
from kopf._cogs.structs.credentials import Vault  # kopf.operator(vault=...) takes one

from mcpgate.controller.handlers import ControllerMemo, ControllerSettings, make_registry
from mcpgate.controller.kube import KubeClient
from mcpgate.controller.main import kube_configuration

from support.kube import KubeEnv

__all__ = ["OperatorThread", "operator_in_thread"]


@dataclass
class OperatorThread:
    thread: threading.Thread
    stop: threading.Event
    errors: list[BaseException]


@contextlib.contextmanager
def operator_in_thread(
    env: KubeEnv,
    settings: ControllerSettings,
    *,
    namespaces: Sequence[str] = (),
    startup_timeout: float = 20.0,
) -> Iterator[OperatorThread]:
    ready, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        kube = KubeClient(kube_configuration(str(env.kubeconfig)))
        kopf_settings = kopf.OperatorSettings()
        kopf_settings.process.ultimate_exiting_timeout = None  # never SIGKILL pytest
        kopf_settings.watching.reconnect_backoff = 0.1
        try:
            await kopf.operator(
                registry=make_registry(),
                memo=ControllerMemo(settings, kube),
                settings=kopf_settings,
                standalone=True,
                clusterwide=not namespaces,
                namespaces=list(namespaces),
                ready_flag=ready,
                stop_flag=stop,
                vault=Vault({"emulator": kopf.ConnectionInfo(server=env.api.server)}),
            )
        finally:
            await kube.aclose()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as err:
            errors.append(err)
            ready.set()

    thread = threading.Thread(target=run, name="mcpgate-operator", daemon=True)
    thread.start()
    if not ready.wait(startup_timeout):
        stop.set()
        raise TimeoutError(f"the operator was not ready within {startup_timeout} s")
    if errors:
        raise errors[0]
    try:
        yield OperatorThread(thread, stop, errors)
    finally:
        stop.set()
        thread.join(timeout=20)
        if thread.is_alive():
            raise TimeoutError("the operator did not stop within 20 s")
