"""The `mcpgate` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mcpgate import __version__

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
    from mcpgate.gateway.server import serve

    try:
        config = load_config(args.config)
    except (OSError, ValidationError) as err:
        return _fail(f"cannot load {args.config}: {err}")
    if args.credentials_dir:
        config = config.model_copy(update={"credentials_dir": args.credentials_dir})
    serve(
        config,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        log_level=args.log_level,
    )
    return 0


def _up(args: argparse.Namespace) -> int:
    from mcpgate.gateway.server import is_loopback, serve
    from mcpgate.local import local_credentials, pick_server, prepare
    from mcpgate.manifests import ManifestError, load_manifests

    try:
        manifests = load_manifests(args.filename)
        local = pick_server(manifests, args.server)
        with local_credentials(local, manifests) as folder:
            serve(
                prepare(local, folder),
                host=args.host,
                port=args.port,
                metrics_port=args.metrics_port,
                loopback_only=is_loopback(args.host),
                log_level=args.log_level,
            )
    except ManifestError as err:
        return _fail(str(err))
    return 0


def _serving_flags(parser: argparse.ArgumentParser, host: str) -> None:
    parser.add_argument("--host", default=host, help=f"address to listen on (default {host})")
    parser.add_argument("--port", type=int, default=8080, help="MCP port (default 8080)")
    parser.add_argument(
        "--metrics-port", type=int, default=9090, help="Prometheus metrics port (default 9090)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpgate", description="HTTP APIs as MCP servers on Kubernetes."
    )
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
    _serving_flags(up, "127.0.0.1")
    up.set_defaults(run=_up)

    gateway = commands.add_parser(
        "gateway", help="run the gateway from its rendered configuration (as in a pod)"
    )
    gateway.add_argument("--config", required=True, help="the gateway configuration file")
    gateway.add_argument(
        "--credentials-dir", help="where Secret keys are mounted (default: from the config)"
    )
    _serving_flags(gateway, "0.0.0.0")  # noqa: S104 - a pod listens on its own address
    gateway.set_defaults(run=_gateway)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
