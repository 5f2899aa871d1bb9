"""The user docs keep their promises: what they show parses, validates and runs.

Every page under docs/ except the generated api.md is checked:

- every ```yaml block parses; every McpServer and HttpApiDataSource in it validates
  with the models and against the CRD schema and its CEL rules, as the API server
  would check it;
- a block that shows only part of a spec is marked `<!-- fragment -->` right above
  its fence, and is only parsed;
- the complete objects of one page section (a `##` heading and everything under it)
  form a set: when the set holds an McpServer, `mcpgate render --require-secrets`
  of it must find every server Ready, so the set holds its data sources and Secrets
  too. `<!-- expect: NAME Type=Status (Reason) -->` in the section asserts one
  condition line of that render;
- a block marked `<!-- file: examples/... -->` is byte for byte that file;
- Secrets in the docs hold obviously fake values;
- every `mcpgate ...` command in a ```sh/```console block parses with the real CLI
  parser, and every `kubectl ...` command names a real kubectl subcommand;
- every ```python block compiles and every ```json block parses;
- every referenced examples/ path exists, every relative link resolves (anchors
  included), and docs/README.md links to every page.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpgate.api import HttpApiDataSource, McpServer
from mcpgate.api.crd import KINDS, crd
from mcpgate.cli import _parser
from mcpgate.offline import render_files
from mcpgate.render.settings import RenderSettings

from support.kube_schema import CrdValidator
from support.paths import DOCS, ROOT

VALIDATORS = {kind.kind: CrdValidator(crd(kind)) for kind in KINDS}
MODELS: dict[str, Any] = {"McpServer": McpServer, "HttpApiDataSource": HttpApiDataSource}
GENERATED = {DOCS / "api.md"}
# Pages that the index links to and that are written separately: while one is missing,
# links to it are not followed (test_pages_written_elsewhere_exist says so).
WRITTEN_ELSEWHERE = {"install.md", "performance.md", "reliability.md"}

# `kubectl --help` (1.32): the top-level subcommands.
KUBECTL_SUBCOMMANDS = frozenset(
    {
        *("create", "expose", "run", "set", "explain", "get", "edit", "delete", "rollout"),
        *("scale", "autoscale", "certificate", "cluster-info", "top", "cordon", "uncordon"),
        *("drain", "taint", "describe", "logs", "attach", "exec", "port-forward", "proxy"),
        *("cp", "auth", "debug", "events", "diff", "apply", "patch", "replace", "wait"),
        *("kustomize", "label", "annotate", "completion", "api-resources", "api-versions"),
        *("config", "plugin", "version"),
    }
)
# `kubectl options`: global flags that take their value as the next word.
KUBECTL_VALUE_FLAGS = frozenset(
    {
        *("-n", "--namespace", "--context", "--cluster", "--user", "--kubeconfig", "-s"),
        *("--server", "--token", "--as", "--as-group", "--as-uid", "--cache-dir"),
        *("--request-timeout", "--certificate-authority", "--client-certificate"),
        *("--client-key", "--tls-server-name", "-v", "--v", "--vmodule", "--profile"),
    }
)
# Shell words that may start a segment before the command itself.
SHELL_KEYWORDS = frozenset({"do", "then", "else", "time", "!", "{", "(", "exec"})
SHELL_LANGS = {"sh", "bash", "shell", "console"}
YAML_LANGS = {"yaml", "yml"}
MARKERS = {"fragment", "file", "expect"}
FAKE_WORDS = ("fake", "example", "change-me", "not-a-real")

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
MARKER = re.compile(r"^<!--\s*(?P<name>[a-z-]+)(?::\s*(?P<arg>.*?))?\s*-->$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXAMPLE_PATH = re.compile(r"(?<![\w-])examples/[A-Za-z0-9_./-]*")
HEREDOC = re.compile(r"<<-?\s*['\"]?(?P<word>\w+)['\"]?")


@dataclass
class Block:
    """One fenced code block and what the page says about it."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    section: str  # the `##` heading above it ("" before the first one)
    markers: list[tuple[str, str]]  # (name, argument) of the marker comments right above

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def marked(self, name: str) -> list[str]:
        return [arg for marker, arg in self.markers if marker == name]


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)
    prose: list[tuple[int, str]] = field(default_factory=list)  # lines outside code blocks
    expects: dict[str, list[str]] = field(default_factory=dict)  # section -> expect markers

    @property
    def name(self) -> str:
        return str(self.path.relative_to(DOCS))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def parse_page(path: Path) -> Page:
    page = Page(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    section = ""
    pending: list[tuple[str, str]] = []
    seen_slugs: dict[str, int] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            indent = len(fence["indent"])
            end = index + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            assert end < len(lines), f"{path.name}:{index + 1}: unclosed code fence"
            body = [
                text[indent:] if text[:indent].strip() == "" else text
                for text in lines[index + 1 : end]
            ]
            page.blocks.append(
                Block(path, index + 1, fence["lang"], "\n".join(body) + "\n", section, pending)
            )
            pending = []
            index = end + 1
            continue
        page.prose.append((index + 1, line))
        stripped = line.strip()
        heading = HEADING.match(line)
        marker = MARKER.match(stripped)
        if heading:
            base = slug(heading["text"])
            count = seen_slugs.get(base, 0)
            seen_slugs[base] = count + 1
            page.anchors.add(base if count == 0 else f"{base}-{count}")
            if len(heading["level"]) <= 2:
                section = heading["text"]
            pending = []
        elif marker and marker["name"] in MARKERS:
            name, arg = marker["name"], marker["arg"] or ""
            if name == "expect":
                page.expects.setdefault(section, []).append(arg)
            else:
                pending = [*pending, (name, arg)]
        elif stripped:
            pending = []
        index += 1
    return page


PAGES = [parse_page(p) for p in sorted(DOCS.rglob("*.md")) if p not in GENERATED]
PAGE_IDS = [p.name for p in PAGES]


def blocks(*langs: str) -> list[Block]:
    return [b for page in PAGES for b in page.blocks if b.lang in langs]


def block_ids(found: list[Block]) -> list[str]:
    return [b.where for b in found]


def yaml_documents(block: Block) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(block.text) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{block.where}: a YAML document that is not a mapping"
    return docs


def collected(block: Block) -> list[dict[str, Any]]:
    """The documents of a block, for collecting test cases: a block that does not parse
    adds none (test_yaml_blocks_parse reports it) instead of breaking collection."""
    try:
        return yaml_documents(block)
    except (yaml.YAMLError, AssertionError):
        return []


# --- the pages themselves ------------------------------------------------------------------


def test_the_docs_folder_has_the_pages_of_the_index() -> None:
    names = {p.name for p in PAGES}
    assert {
        "README.md",
        "quickstart.md",
        "auth-outbound.md",
        "auth-inbound.md",
        "bearer-passthrough.md",
        "clients.md",
        "metrics.md",
        "troubleshooting.md",
        "upgrading.md",
    } <= names


def test_the_index_links_every_page() -> None:
    index = next(p for p in PAGES if p.name == "README.md")
    linked = {m["target"].split("#")[0] for _, line in index.prose for m in LINK.finditer(line)}
    pages = {p.name for p in PAGES if p.name != "README.md"} | {"api.md"} | WRITTEN_ELSEWHERE
    assert pages - linked == set(), "docs/README.md does not link these pages"


@pytest.mark.parametrize("name", sorted(WRITTEN_ELSEWHERE))
def test_pages_written_elsewhere_exist(name: str) -> None:
    if not (DOCS / name).exists():
        pytest.skip(f"docs/{name} is written separately and is not there yet")


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_code_fences_are_closed_and_markers_belong_to_blocks(page: Page) -> None:
    for block in page.blocks:
        for name, arg in block.markers:
            if name == "fragment":
                assert block.lang in YAML_LANGS, f"{block.where}: only YAML can be a fragment"
                assert not arg, f"{block.where}: <!-- fragment --> takes no argument"
            if name == "file":
                assert arg.startswith("examples/"), f"{block.where}: file markers name examples/"


# --- YAML ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", blocks(*YAML_LANGS), ids=block_ids(blocks(*YAML_LANGS)))
def test_yaml_blocks_parse(block: Block) -> None:
    yaml_documents(block)


COMPLETE_YAML = [b for b in blocks(*YAML_LANGS) if not b.marked("fragment")]
RESOURCES = [
    (block, doc) for block in COMPLETE_YAML for doc in collected(block) if doc.get("kind") in MODELS
]


@pytest.mark.parametrize(
    ("block", "doc"),
    RESOURCES,
    ids=[f"{b.where}:{d['kind']}/{d.get('metadata', {}).get('name')}" for b, d in RESOURCES],
)
def test_resources_validate_with_the_models_and_the_crd(block: Block, doc: dict[str, Any]) -> None:
    assert doc.get("apiVersion") == "mcpgate.io/v1alpha1", block.where
    MODELS[doc["kind"]].model_validate(doc)
    assert VALIDATORS[doc["kind"]].errors(doc) == [], block.where


@pytest.mark.parametrize("block", blocks(*YAML_LANGS), ids=block_ids(blocks(*YAML_LANGS)))
def test_fragments_are_partial(block: Block) -> None:
    """A fragment holds no whole mcpgate object: those must be validated."""
    if block.marked("fragment"):
        kinds = {doc.get("kind") for doc in yaml_documents(block)}
        assert not kinds & set(MODELS), f"{block.where}: a whole object marked as a fragment"


SECRETS = [
    (block, doc)
    for block in COMPLETE_YAML
    for doc in collected(block)
    if doc.get("kind") == "Secret"
]


@pytest.mark.parametrize(
    ("block", "doc"), SECRETS, ids=[f"{b.where}:{d['metadata']['name']}" for b, d in SECRETS]
)
def test_secrets_hold_obviously_fake_values(block: Block, doc: dict[str, Any]) -> None:
    values = {k: str(v) for k, v in (doc.get("stringData") or {}).items()}
    for key, encoded in (doc.get("data") or {}).items():
        values[key] = base64.b64decode(encoded).decode()
    assert values, f"{block.where}: a Secret without values"
    for key, value in values.items():
        assert any(word in value.lower() for word in FAKE_WORDS), (
            f"{block.where}: Secret {doc['metadata']['name']} key {key} should look fake"
        )


FILE_BLOCKS = [b for b in COMPLETE_YAML if b.marked("file")]


@pytest.mark.parametrize("block", FILE_BLOCKS, ids=block_ids(FILE_BLOCKS))
def test_blocks_that_show_an_example_file_are_that_file(block: Block) -> None:
    (path,) = block.marked("file")
    assert block.text == (ROOT / path).read_text(encoding="utf-8"), (
        f"{block.where}: differs from {path}"
    )


# --- sets: one section's objects, rendered as `mcpgate render --require-secrets` would ------


@dataclass
class Set:
    page: Page
    section: str
    docs: list[dict[str, Any]]

    @property
    def id(self) -> str:
        return f"{self.page.name}#{slug(self.section)}"

    @property
    def ambient_aws(self) -> bool:
        for doc in self.docs:
            if doc.get("kind") != "HttpApiDataSource":
                continue
            auth = doc["spec"].get("auth") or {}
            aws = auth.get("awsSigV4") or {}
            if auth.get("type") == "AwsSigV4" and "accessKeyIdSecretRef" not in aws:
                return True
        return False


def _sets() -> Iterator[Set]:
    for page in PAGES:
        sections: dict[str, list[dict[str, Any]]] = {}
        for block in page.blocks:
            if block.lang in YAML_LANGS and not block.marked("fragment"):
                sections.setdefault(block.section, []).extend(collected(block))
        for section, docs in sections.items():
            if any(d.get("kind") == "McpServer" for d in docs):
                yield Set(page, section, docs)


SETS = list(_sets())


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_expect_markers_sit_in_sections_with_a_server(page: Page) -> None:
    rendered = {s.section for s in SETS if s.page is page}
    for section in page.expects:
        assert section in rendered, f"{page.name} {section!r}: an expect marker, no McpServer"


def _render(found: Set, tmp_path: Path, *, ambient: bool) -> Any:
    manifest = tmp_path / "set.yaml"
    manifest.write_text(yaml.safe_dump_all(found.docs, sort_keys=False), encoding="utf-8")
    settings = RenderSettings(allow_ambient_aws_credentials=ambient)
    return render_files([manifest], settings=settings, require_secrets=True)


@pytest.mark.parametrize("found", SETS, ids=[s.id for s in SETS])
def test_sets_render_with_every_server_ready(found: Set, tmp_path: Path) -> None:
    result = _render(found, tmp_path, ambient=found.ambient_aws)
    assert result.all_ready, "\n".join([found.id, *result.lines])
    for expect in found.page.expects.get(found.section, []):
        name, condition = expect.split(" ", 1)
        wanted = f"McpServer default/{name}: {condition}"
        assert any(line.startswith(wanted) for line in result.lines), (
            f"{found.id}: expected {wanted!r} in\n" + "\n".join(result.lines)
        )


AMBIENT_SETS = [s for s in SETS if s.ambient_aws]


@pytest.mark.parametrize("found", AMBIENT_SETS, ids=[s.id for s in AMBIENT_SETS])
def test_ambient_aws_sets_need_the_operator_flag(found: Set, tmp_path: Path) -> None:
    """What the docs say: without --allow-ambient-aws-credentials such a server is not
    Ready."""
    result = _render(found, tmp_path, ambient=False)
    assert not result.all_ready
    assert any("(InvalidSpec)" in line for line in result.lines), result.lines


def test_the_docs_hold_complete_sets() -> None:
    assert len(SETS) >= 10


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    where: str
    text: str

    def segments(self) -> list[list[str]]:
        """The simple commands of the line: split at pipes and lists, redirections,
        comments and leading variable assignments dropped."""
        lexer = shlex.shlex(self.text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        out: list[list[str]] = [[]]
        skip = False
        for token in tokens:
            if skip:
                skip = False
            elif token in ("|", "||", "&&", ";", "&"):
                out.append([])
            elif token in (">", ">>", "<", "<<", "<<-"):
                skip = True
            elif not out[-1] and (
                token in SHELL_KEYWORDS or re.fullmatch(r"[A-Za-z_]\w*=.*", token)
            ):
                continue
            else:
                out[-1].append(token)
        return [seg for seg in out if seg]


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    lines = block.text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        start = index
        if block.lang == "console":
            if not line.startswith("$ "):
                index += 1
                continue
            line = line[2:]
        text = line
        while text.endswith("\\") and index + 1 < len(lines):
            index += 1
            text = text[:-1] + " " + lines[index]
        index += 1
        heredoc = HEREDOC.search(text)
        if heredoc:  # its body is data, not commands
            while index < len(lines) and lines[index].strip() != heredoc["word"]:
                index += 1
            index += 1
        if text.strip() and not text.lstrip().startswith("#"):
            found.append(Command(f"{block.where}+{start + 1}", text))
    return found


SHELL_COMMANDS = [c for b in blocks(*SHELL_LANGS) for c in commands(b)]


def _named(program: str) -> list[tuple[Command, list[str]]]:
    return [(c, seg) for c in SHELL_COMMANDS for seg in c.segments() if seg[0] == program]


MCPGATE = _named("mcpgate")
KUBECTL = _named("kubectl")


@pytest.mark.parametrize(("command", "argv"), MCPGATE, ids=[c.where for c, _ in MCPGATE])
def test_mcpgate_commands_parse_with_the_real_cli(command: Command, argv: list[str]) -> None:
    try:
        _parser().parse_args(argv[1:])
    except SystemExit as exit_:
        pytest.fail(f"{command.where}: `{command.text}` does not parse (exit {exit_.code})")


def kubectl_subcommand(argv: list[str]) -> str | None:
    """The first word after kubectl's global flags (`kubectl -n ns get ...` -> get)."""
    words = iter(argv[1:])
    for word in words:
        if word in KUBECTL_VALUE_FLAGS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


@pytest.mark.parametrize(("command", "argv"), KUBECTL, ids=[c.where for c, _ in KUBECTL])
def test_kubectl_commands_name_a_real_subcommand(command: Command, argv: list[str]) -> None:
    subcommand = kubectl_subcommand(argv)
    assert subcommand in KUBECTL_SUBCOMMANDS, (
        f"{command.where}: `kubectl {subcommand}` is not a kubectl subcommand"
    )


def test_the_docs_show_commands() -> None:
    assert len(MCPGATE) >= 10
    assert len(KUBECTL) >= 30


# --- Python and JSON -----------------------------------------------------------------------


@pytest.mark.parametrize("block", blocks("python"), ids=block_ids(blocks("python")))
def test_python_blocks_compile(block: Block) -> None:
    compile(block.text, block.where, "exec")


@pytest.mark.parametrize("block", blocks("json"), ids=block_ids(blocks("json")))
def test_json_blocks_parse(block: Block) -> None:
    json.loads(block.text)


# --- paths and links -----------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_referenced_example_paths_exist(page: Page) -> None:
    text = page.path.read_text(encoding="utf-8")
    for match in EXAMPLE_PATH.finditer(text):
        path = match.group(0).rstrip(".,:;")
        assert (ROOT / path).exists(), f"{page.name}: {path} does not exist"


ANCHORS = {p.path.resolve(): p.anchors for p in PAGES}
ANCHORS.update({p.resolve(): parse_page(p).anchors for p in GENERATED})


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_relative_links_resolve(page: Page) -> None:
    for number, line in page.prose:
        for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = match["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.path.parent / path).resolve() if path else page.path.resolve()
            where = f"{page.name}:{number}: {target}"
            if not resolved.exists():
                if resolved.parent == DOCS.resolve() and resolved.name in WRITTEN_ELSEWHERE:
                    assert not anchor, f"{where}: no anchors into a page not written yet"
                    continue
                pytest.fail(f"{where} does not resolve")
            if anchor:
                assert resolved.suffix == ".md", f"{where}: an anchor into a non-page"
                anchors = ANCHORS.get(resolved)
                if anchors is None:
                    anchors = parse_page(resolved).anchors
                assert anchor in anchors, f"{where}: no such heading"
