"""Running the operator: cluster access, kopf's settings and scope.

`run_operator` is what `mcpgate operator` runs; tests call `operator(...)` in
their own event loop against the test API server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import kopf

from mcpgate.controller.handlers import ControllerMemo, ControllerSettings, make_registry
from mcpgate.controller.kube import KubeClient, authorization_header

__all__ = ["kube_configuration", "operator", "run_operator"]


def kube_configuration(kubeconfig: str | None = None) -> Any:
    """The cluster's connection: in-cluster when running in a pod, else KUBECONFIG."""
    from kubernetes import client, config  # only the operator command needs the library

    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return configuration
        except config.ConfigException:
            pass
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    return configuration


def _login_handler(registry: kopf.OperatorRegistry, configuration: Any) -> None:
    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        header = authorization_header(configuration) or ""
        scheme, _sep, value = header.partition(" ")
        return kopf.ConnectionInfo(
            server=configuration.host,
            ca_path=configuration.ssl_ca_cert or None,
            insecure=not configuration.verify_ssl,
            scheme=scheme or None,
            token=value or None,
            certificate_path=configuration.cert_file or None,
            private_key_path=configuration.key_file or None,
        )


async def operator(
    settings: ControllerSettings,
    configuration: Any,
    *,
    namespaces: Sequence[str] = (),
    liveness_endpoint: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """The operator until `stop_flag` is set (or it is cancelled). No namespaces: all."""
    kube = KubeClient(configuration)
    registry = make_registry()
    _login_handler(registry, configuration)
    try:
        await kopf.operator(
            registry=registry,
            memo=ControllerMemo(settings, kube),
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=settings.peering is None,
            peering_name=settings.peering,
            liveness_endpoint=liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        with contextlib.suppress(Exception):
            await kube.aclose()


def run_operator(
    settings: ControllerSettings,
    configuration: Any,
    *,
    namespaces: Sequence[str],
    liveness_endpoint: str | None,
) -> None:
    """The operator until SIGTERM or SIGINT, with a configuration from kube_configuration."""
    asyncio.run(
        operator(
            settings, configuration, namespaces=namespaces, liveness_endpoint=liveness_endpoint
        )
    )
