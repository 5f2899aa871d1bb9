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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpgate", description="HTTP APIs as MCP servers on Kubernetes."
    )
    parser.add_argument("--version", action="version", version=f"mcpgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions")
    crds.add_argument("-o", "--output-dir", help="write one file per CRD into this folder instead")
    crds.set_defaults(run=_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
