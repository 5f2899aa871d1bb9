"""The layering of DESIGN.md ("Who may import whom"), checked on the source: who may
import whom (relative imports and imports inside functions included), no import cycles,
and the gateway process never loading kopf or the kubernetes client."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT

PACKAGE = ROOT / "operator" / "mcpgate"

# package -> the packages of ours it may import (besides itself); openapi/ is to come
ALLOWED = {
    "api": set(),
    "gateway": set(),
    "openapi": {"api"},
    "render": {"api", "openapi", "gateway.config"},
    "controller": {"api", "render"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    return _imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_of(source: str, name: str, is_package: bool) -> set[str]:
    """The modules of ours that module `name` imports, anywhere in it (in functions too),
    relative imports resolved: `from mcpgate.api import common` names mcpgate.api and
    mcpgate.api.common."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


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


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles = []
    for start in sorted(graph):
        seen: set[str] = set()
        todo = [(start, [start])]
        while todo:
            node, trail = todo.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, [*trail, nxt]))
    return cycles


def test_no_import_cycles() -> None:
    """No module of ours reaches itself through imports (a package's __init__ that imports
    its modules counts as a module like them)."""
    assert _cycles({name: _imports(path) for name, path in MODULES.items()}) == []


def test_the_checks_see_relative_imports_and_cycles() -> None:
    """What the rules above rest on: a relative import is no way around them, and a cycle
    is found."""
    source = "from . import config\nfrom ..api import common\nimport mcpgate.gateway.config\n"
    assert _imports_of(source, "mcpgate.render.objects", is_package=False) == {
        "mcpgate.render",
        "mcpgate.render.config",
        "mcpgate.api",
        "mcpgate.api.common",
        "mcpgate.gateway.config",
    }
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        "a -> b -> c -> a",
        "b -> c -> a -> b",
        "c -> a -> b -> c",
    ]
