"""The layering of DESIGN.md, checked on the source: who may import whom, and the
gateway process never loading kopf or the kubernetes client."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT

PACKAGE = ROOT / "operator" / "mcpgate"

# package -> the packages of ours it may import (besides itself)
ALLOWED = {
    "api": set(),
    "gateway": set(),
    "render": {"api", "gateway.config"},
    "controller": {"api", "render"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "mcpgate" or m.startswith("mcpgate.")}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    wrong = []
    for path in (PACKAGE / package).rglob("*.py"):
        for module in _imports(path):
            inner = module.removeprefix("mcpgate.").removeprefix("mcpgate")
            if inner in ("", package) or inner.startswith(f"{package}."):
                continue  # the root package holds only __version__
            if not any(inner == a or inner.startswith(f"{a}.") for a in ALLOWED[package]):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_nothing_imports_controller_or_cli() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in PACKAGE.rglob("*.py")
        if "controller" not in path.parts and path.name != "cli.py"
        for module in _imports(path)
        if module.startswith(("mcpgate.controller", "mcpgate.cli"))
    ]
    assert wrong == []


def test_the_gateway_process_never_loads_kopf_or_kubernetes() -> None:
    code = (
        "import sys, mcpgate.cli, mcpgate.gateway.server, mcpgate.local, mcpgate.manifests;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
