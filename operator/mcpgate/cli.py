"""The `mcpgate` command."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcpgate.gateway.config import GatewayConfig
    from mcpgate.gateway.server import PortUnavailable

__all__ = ["main"]


def _crds(args: argparse.Namespace) -> int:
    from mcpgate.api.crd import KINDS, crd_yaml, crds_yaml

    if args.output_dir is None:
        sys.stdout.write(crds_yaml())
        return 0
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        (out / f"{kind.plural}.yaml").write_text(crd_yaml(kind))
    return 0


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"mcpgate: {message}\n")
    return code


def _gateway(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mcpgate.gateway.config import load_config
    from mcpgate.gateway.server import PortUnavailable, serve

    try:
        config = load_config(args.config)
    except (OSError, ValidationError) as err:
        return _fail(f"cannot load {args.config}: {err}")
    if args.credentials_dir:
        config = config.model_copy(update={"credentials_dir": args.credentials_dir})
    if args.api_keys_dir:
        inbound = config.authorization.model_copy(update={"api_keys_dir": args.api_keys_dir})
        config = config.model_copy(update={"authorization": inbound})
    try:
        serve(
            _with_limits(config, args),
            host=args.host,
            port=args.port,
            metrics_port=args.metrics_port,
            log_level=args.log_level,
            audit_log=args.audit_log == "on",
        )
    except PortUnavailable as err:
        return _port_problem(err, args.host)
    return 0


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def _port_problem(err: PortUnavailable, host: str) -> int:
    flag = "--port" if err.role == "mcp" else "--metrics-port"
    return _fail(f"cannot listen on {host}:{err.port} ({err.reason}): pick another with {flag}", 1)


def _up(args: argparse.Namespace) -> int:
    from mcpgate.gateway import signals
    from mcpgate.gateway.app import GatewayApp
    from mcpgate.gateway.observability import Metrics
    from mcpgate.gateway.server import (
        PortUnavailable,
        build_app,
        is_loopback,
        serve_app,
        serving_line,
    )
    from mcpgate.local import CredentialsFolder, NotReady, Reloader, load_local, tool_lines
    from mcpgate.manifests import ManifestError, parse_upstream
    from mcpgate.render.settings import RenderSettings

    settings = RenderSettings(allow_ambient_aws_credentials=args.allow_ambient_aws_credentials)
    metrics = Metrics()
    folder = CredentialsFolder()
    signals.at_forced_exit(folder.remove)
    served: list[GatewayConfig] = []

    def build() -> GatewayApp:
        """Check the files, then the app serving them (raises ManifestError otherwise)."""
        upstreams = dict(parse_upstream(text) for text in args.upstream)
        local, manifests = load_local(args.filename, args.server, settings, upstreams=upstreams)
        for line in (*manifests.redirected, *local.lines):
            _say(line)
        if not local.ready:
            reason = local.checked.ready.reason
            raise NotReady(f"McpServer {local.name} would not be Ready ({reason}): see above")
        config = _with_limits(folder.config(local, manifests), args)
        app, _ = build_app(config, loopback_only=is_loopback(args.host), metrics=metrics)
        served.append(config)
        return app

    try:
        try:
            app = build()
        except NotReady as err:
            return _fail(str(err), 1)
        except ManifestError as err:
            return _fail(str(err))
        reloader = Reloader(app, build, args.filename, say=_say)
        serve_app(
            reloader,
            metrics,
            host=args.host,
            port=args.port,
            metrics_port=args.metrics_port,
            known_secrets=reloader.known_secrets,
            log_level=args.log_level,
            audit_log=args.audit_log == "on",
            on_listening=lambda: _say(
                "\n".join(
                    [
                        serving_line(served[0], args.host, args.port, args.metrics_port),
                        *tool_lines(served[0]),
                        "mcpgate up: watching the files; an edit is served once it is valid",
                    ]
                )
            ),
        )
    except PortUnavailable as err:
        return _port_problem(err, args.host)
    finally:
        folder.remove()
    return 0


def _render(args: argparse.Namespace) -> int:
    from mcpgate.manifests import ManifestError
    from mcpgate.offline import render_files
    from mcpgate.render.settings import RenderSettings

    settings = RenderSettings(allow_ambient_aws_credentials=args.allow_ambient_aws_credentials)
    if args.image:
        settings = dataclasses.replace(settings, image=args.image)
    try:
        result = render_files(
            args.filename,
            namespace=args.namespace,
            settings=settings,
            require_secrets=args.require_secrets,
        )
    except ManifestError as err:
        return _fail(str(err))
    sys.stdout.write(result.yaml())
    for line in result.lines:
        _say(line)
    return 0 if result.all_ready else 1


def _demo_api(args: argparse.Namespace) -> int:
    from mcpgate.demo import serve_demo
    from mcpgate.gateway.server import PortUnavailable

    try:
        serve_demo(args.host, args.port)
    except PortUnavailable as err:
        return _port_problem(err, args.host)
    return 0


def _operator(args: argparse.Namespace) -> int:
    import logging

    from kubernetes.config import ConfigException

    from mcpgate.controller.handlers import ControllerSettings
    from mcpgate.controller.main import kube_configuration, run_operator
    from mcpgate.render.settings import RenderSettings

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every API request at INFO: one line per patch drowns the operator's own.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    render = RenderSettings(
        image=args.image,
        image_pull_policy=args.image_pull_policy,
        cluster_domain=args.cluster_domain,
        allow_ambient_aws_credentials=args.allow_ambient_aws_credentials,
        allow_loopback_destinations=args.allow_loopback_destinations,
        log_level=args.gateway_log_level,
    )
    from mcpgate.gateway import signals

    namespaces = [n for item in args.namespace for n in item.split(",") if n]
    try:
        configuration = kube_configuration(args.kubeconfig)
    except (ConfigException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return _fail(
            f"no cluster to talk to: not in a pod, and no usable kubeconfig ({first});"
            " set KUBECONFIG or --kubeconfig"
        )
    if signals.take():  # stopped before it started (kopf takes the signals from here)
        return 0
    run_operator(
        ControllerSettings(render=render, peering=args.peering),
        configuration,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _with_limits(config: GatewayConfig, args: argparse.Namespace) -> GatewayConfig:
    """The size limits given on the command line, over the configuration's."""
    changes = {
        name: getattr(args, name)
        for name in ("max_request_bytes", "max_response_bytes")
        if getattr(args, name) is not None
    }
    if not changes:
        return config
    limits = type(config.limits).model_validate({**config.limits.model_dump(), **changes})
    return config.model_copy(update={"limits": limits})


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def _serving_flags(parser: argparse.ArgumentParser, host: str) -> None:
    parser.add_argument("--host", default=host, help=f"address to listen on (default {host})")
    parser.add_argument("--port", type=_port, default=8080, help="MCP port (default 8080)")
    parser.add_argument(
        "--metrics-port", type=_port, default=9090, help="Prometheus metrics port (default 9090)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--audit-log",
        default="on",
        choices=["on", "off"],
        help="one JSON line per tool call on the mcpgate.audit logger (default on)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        metavar="N",
        help="largest MCP request body; larger ones get 413 (default 1 MiB)",
    )
    parser.add_argument(
        "--max-response-bytes",
        type=int,
        metavar="N",
        help="largest downstream response; larger ones are a tool error (default 10 MiB)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpgate", description="HTTP APIs as MCP servers on Kubernetes."
    )
    from mcpgate import __version__

    parser.add_argument("--version", action="version", version=f"mcpgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions")
    crds.add_argument("-o", "--output-dir", help="write one file per CRD into this folder instead")
    crds.set_defaults(run=_crds)

    up = commands.add_parser("up", help="run one McpServer's gateway locally from manifest files")
    up.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="a manifest file or folder (repeatable): McpServer, HttpApiDataSource, Secret",
    )
    up.add_argument("--server", help="the McpServer to run when the files hold several")
    up.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="ORIGIN=URL",
        help="send what goes to ORIGIN (a baseUrl's or tokenUrl's scheme://host[:port]) to URL"
        " instead, path kept (repeatable): try manifests against a local API",
    )
    up.add_argument(
        "--allow-ambient-aws-credentials",
        action="store_true",
        help="allow AwsSigV4 data sources without key Secrets (this machine's AWS identity)",
    )
    _serving_flags(up, "127.0.0.1")
    up.set_defaults(run=_up)

    render = commands.add_parser(
        "render", help="print the objects the operator would create for manifest files"
    )
    render.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="a manifest file or folder (repeatable)",
    )
    render.add_argument(
        "-n", "--namespace", default="default", help="namespace of objects naming none"
    )
    render.add_argument("--image", help="the gateway image (default: this version's)")
    render.add_argument(
        "--require-secrets",
        action="store_true",
        help="treat Secrets absent from the files as missing (default: assume present)",
    )
    render.add_argument(
        "--allow-ambient-aws-credentials",
        action="store_true",
        help="allow AwsSigV4 data sources without key Secrets (the pod's AWS identity)",
    )
    render.set_defaults(run=_render)

    demo = commands.add_parser(
        "demo-api", help="serve a small demo HTTP API to try mcpgate with (no Internet needed)"
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    demo.add_argument("--port", type=_port, default=8081, help="port (default 8081)")
    demo.set_defaults(run=_demo_api)

    from mcpgate.render.settings import DEFAULT_IMAGE

    op = commands.add_parser("operator", help="run the operator against the current cluster")
    op.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[_env("MCPGATE_NAMESPACES", "")],
        help="a namespace to watch (repeatable or comma-separated; default: all)"
        " [MCPGATE_NAMESPACES]",
    )
    op.add_argument(
        "--image",
        default=_env("MCPGATE_GATEWAY_IMAGE", DEFAULT_IMAGE),
        help="the gateway image [MCPGATE_GATEWAY_IMAGE]",
    )
    op.add_argument(
        "--image-pull-policy", default=_env("MCPGATE_GATEWAY_IMAGE_PULL_POLICY", "IfNotPresent")
    )
    op.add_argument(
        "--cluster-domain",
        default=_env("MCPGATE_CLUSTER_DOMAIN", "cluster.local"),
        help="the cluster's DNS domain, for status.url [MCPGATE_CLUSTER_DOMAIN]",
    )
    op.add_argument(
        "--allow-ambient-aws-credentials",
        action="store_true",
        default=_env("MCPGATE_ALLOW_AMBIENT_AWS_CREDENTIALS", "") == "true",
        help="allow AwsSigV4 data sources without key Secrets (the gateway pod's AWS identity)",
    )
    op.add_argument(
        "--allow-loopback-destinations",
        action="store_true",
        default=_env("MCPGATE_ALLOW_LOOPBACK_DESTINATIONS", "") == "true",
        help="let gateways reach upstreams on loopback addresses: for a local cluster"
        " (scripts/cluster) only [MCPGATE_ALLOW_LOOPBACK_DESTINATIONS]",
    )
    op.add_argument(
        "--peering",
        default=_env("MCPGATE_PEERING", "") or None,
        help="a KopfPeering name, to run more than one replica [MCPGATE_PEERING]",
    )
    op.add_argument(
        "--liveness",
        default=_env("MCPGATE_LIVENESS", "http://0.0.0.0:8081/healthz"),
        help="kopf's liveness endpoint",
    )
    op.add_argument("--kubeconfig", default=None, help="default: in-cluster, else KUBECONFIG")
    op.add_argument(
        "--log-level",
        default=_env("MCPGATE_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning"],
    )
    op.add_argument("--gateway-log-level", default="info", choices=["debug", "info", "warning"])
    op.set_defaults(run=_operator)

    gateway = commands.add_parser(
        "gateway", help="run the gateway from its rendered configuration (as in a pod)"
    )
    gateway.add_argument("--config", required=True, help="the gateway configuration file")
    gateway.add_argument(
        "--credentials-dir", help="where Secret keys are mounted (default: from the config)"
    )
    gateway.add_argument(
        "--api-keys-dir", help="where the key Secret is mounted (default: from the config)"
    )
    _serving_flags(gateway, "0.0.0.0")  # noqa: S104 - a pod listens on its own address
    gateway.set_defaults(run=_gateway)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from mcpgate.gateway import signals

    command_line = argv is None  # the command itself, not a caller in the same process
    if command_line:
        signals.install()
    try:
        args = _parser().parse_args(argv)
        code: int = args.run(args)
    except KeyboardInterrupt:  # a caller's own Ctrl-C (tests), or one Python raised itself
        code = 130
    # A signal that no server took over: the command was interrupted, whatever it did.
    if code == 130 or (command_line and signals.received()):
        sys.stderr.write("mcpgate: interrupted\n")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
