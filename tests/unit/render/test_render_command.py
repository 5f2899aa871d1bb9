"""`mcpgate render` (API.md "Command line"): the YAML stream of the objects the operator
would create, one stderr line per condition of each McpServer (Available left out) and
HttpApiDataSource, and
the exit code: 0 when every server would be Ready, 1 when some would not, 2 for invalid
input."""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpgate.cli import main
from mcpgate.manifests import load_manifests
from mcpgate.render.refs import Namespace, SecretInfo
from mcpgate.render.server import plan_server
from mcpgate.render.settings import DEFAULT_IMAGE, RenderSettings

from support.paths import EXAMPLE_DIRS, EXAMPLES

Body = dict[str, Any]
LINE = re.compile(
    r"^(?P<kind>McpServer|HttpApiDataSource) (?P<ns>[^/ ]+)/(?P<name>[^: ]+): (?P<type>[A-Za-z]+)="
    r"(?P<status>True|False|Unknown) \((?P<reason>[A-Za-z]+)\)(?P<message> .*)?$"
)
PASSTHROUGH = {"bearer-passthrough", "passthrough-misconfigured"}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def objects(self) -> list[Body]:
        return [d for d in yaml.safe_load_all(self.out) if d is not None]

    @property
    def lines(self) -> list[re.Match[str]]:
        matches = []
        for line in self.err.splitlines():
            match = LINE.match(line)
            assert match, f"not a condition line: {line!r}"
            matches.append(match)
        return matches

    def conditions(
        self, name: str, ns: str = "default", kind: str = "McpServer"
    ) -> dict[str, re.Match[str]]:
        found: dict[str, re.Match[str]] = {}
        for match in self.lines:
            if (match["kind"], match["ns"], match["name"]) == (kind, ns, name):
                assert match["type"] not in found, f"two {match['type']} lines"
                found[match["type"]] = match
        return found

    def kinds(self) -> list[tuple[str, str]]:
        return [(o["kind"], o["metadata"]["name"]) for o in self.objects]


@pytest.fixture
def render(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str | Path) -> Run:
        code = main(["render", *(str(a) for a in args)])
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


EXAMPLE = pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda p: p.name)


def server_name(folder: Path) -> str:
    (server,) = load_manifests([folder]).servers.values()
    return server.metadata.name


def expected_objects(folder: Path, namespace: str, settings: RenderSettings) -> list[Body]:
    """What the operator would plan for the folder's server (no uid is known offline)."""
    manifests = load_manifests([folder], namespace)
    (server,) = manifests.servers.values()
    space = Namespace(
        namespace,
        data_sources={n: d for (_, n), d in manifests.data_sources.items()},
        secrets={n: SecretInfo.from_values(n, s.values) for (_, n), s in manifests.secrets.items()},
        assume_secrets=True,
    )
    objects = plan_server(server, space, settings).objects
    for obj in objects:
        for ref in obj["metadata"]["ownerReferences"]:
            ref.pop("uid")
    return objects


def copy_example(name: str, target: Path, *, drop: tuple[str, ...] = ()) -> Path:
    folder = target / name
    shutil.copytree(EXAMPLES / name, folder)
    for file in drop:
        (folder / file).unlink()
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def secret_values(*folders: Path) -> list[str]:
    return [
        value.decode()
        for folder in folders
        for secret in load_manifests([folder]).secrets.values()
        for value in secret.values.values()
    ]


# --------------------------------------------------------------------------- every example


@EXAMPLE
def test_example_renders_its_objects_and_exits_0(render: Any, folder: Path) -> None:
    result = render("-f", folder)
    assert result.code == 0, result.err
    name = server_name(folder)
    assert result.kinds()[:3] == [
        ("ConfigMap", f"{name}-config"),
        ("Deployment", name),
        ("Service", name),
    ]
    assert result.objects == expected_objects(folder, "default", RenderSettings())
    for obj in result.objects:
        assert obj["metadata"]["namespace"] == "default"
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["kind"] == "McpServer"
        assert owner["name"] == name
        assert owner["controller"] is True
        assert "uid" not in owner, "the API server assigns the uid; none is invented"
    deployment = next(o for o in result.objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_IMAGE
    assert "config.json: |" in result.out, "the configuration is printed as a readable block"


@EXAMPLE
def test_example_prints_one_line_per_condition_without_available(render: Any, folder: Path) -> None:
    result = render("-f", folder)
    name = server_name(folder)
    conditions = result.conditions(name)
    sources = sorted(load_manifests([folder]).data_sources)
    assert len(result.lines) == len(conditions) + 2 * len(sources), (
        "lines only for this example's server and data sources"
    )
    for ns, source in sources:
        lines = result.conditions(source, ns, kind="HttpApiDataSource")
        assert [(t, m["status"], m["reason"]) for t, m in lines.items()] == [
            ("Ready", "True", "Ready"),
            ("ResolvedRefs", "True", "ResolvedRefs"),
        ]
    expected = {"Ready", "Accepted", "ResolvedRefs"}
    if folder.name in PASSTHROUGH:
        expected.add("PassthroughConfigured")
    assert set(conditions) == expected
    assert "Available" not in result.err
    assert result.lines[0]["type"] == "Ready"
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "Ready")
    assert (conditions["Accepted"]["status"], conditions["Accepted"]["reason"]) == (
        "True",
        "Accepted",
    )
    assert conditions["ResolvedRefs"]["status"] == "True"


@EXAMPLE
def test_example_output_holds_no_secret_value(render: Any, folder: Path) -> None:
    result = render("-f", folder, "--require-secrets")
    assert result.code == 0, result.err
    for value in secret_values(folder):
        assert value not in result.out
        assert value not in result.err


@EXAMPLE
def test_namespace_option(render: Any, folder: Path) -> None:
    result = render("-f", folder, "-n", "team-a")
    assert result.code == 0
    name = server_name(folder)
    assert result.objects == expected_objects(folder, "team-a", RenderSettings())
    assert {o["metadata"]["namespace"] for o in result.objects} == {"team-a"}
    config_map = next(o for o in result.objects if o["kind"] == "ConfigMap")
    assert yaml.safe_load(config_map["data"]["config.json"])["namespace"] == "team-a"
    assert set(result.conditions(name, "team-a")) >= {"Ready", "Accepted", "ResolvedRefs"}
    assert result.conditions(name, "default") == {}


@EXAMPLE
def test_image_option(render: Any, folder: Path) -> None:
    image = "registry.example.com/mcpgate:pr-42"
    result = render("--image", image, "-f", folder)
    assert result.code == 0
    assert result.objects == expected_objects(folder, "default", RenderSettings(image=image))
    deployment = next(o for o in result.objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image


@EXAMPLE
def test_missing_secrets_only_count_when_required(
    render: Any, folder: Path, tmp_path: Path
) -> None:
    secret_files = [
        p.name
        for p in folder.iterdir()
        if p.suffix == ".yaml" and "kind: Secret" in p.read_text(encoding="utf-8")
    ]
    copy = copy_example(folder.name, tmp_path, drop=tuple(secret_files))
    name = server_name(folder)
    assumed = render("-f", copy)
    assert assumed.code == 0, assumed.err
    assert assumed.objects == expected_objects(folder, "default", RenderSettings())

    required = render("-f", copy, "--require-secrets")
    if not secret_files:  # quickstart reads no Secret
        assert required.code == 0
        return
    assert required.code == 1
    conditions = required.conditions(name)
    assert (conditions["ResolvedRefs"]["status"], conditions["ResolvedRefs"]["reason"]) == (
        "False",
        "SecretNotFound",
    )
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (
        "False",
        "SecretNotFound",
    )
    for secret in load_manifests([folder]).secrets.values():
        assert f"Secret {secret.name}" in conditions["ResolvedRefs"]["message"]
    assert required.objects == [], "nothing is created while ResolvedRefs is False"


# --------------------------------------------------------------------------- specific cases


def test_passthrough_misconfigured_is_a_warning_and_exits_0(render: Any) -> None:
    result = render("-f", EXAMPLES / "passthrough-misconfigured")
    assert result.code == 0
    conditions = result.conditions("wiki-mcp")
    flag = conditions["PassthroughConfigured"]
    assert (flag["status"], flag["reason"]) == ("False", "DataSourceHasAuth")
    assert "wiki-api" in flag["message"]
    assert conditions["Ready"]["status"] == "True"
    assert result.objects


def test_bearer_passthrough_without_its_key_secret(render: Any, tmp_path: Path) -> None:
    folder = copy_example("bearer-passthrough", tmp_path, drop=("secret.yaml",))
    result = render("-f", folder, "--require-secrets")
    assert result.code == 1
    conditions = result.conditions("docs-mcp")
    assert conditions["ResolvedRefs"]["reason"] == "SecretNotFound"
    assert "docs-mcp-keys" in conditions["ResolvedRefs"]["message"]
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (
        "False",
        "SecretNotFound",
    )
    assert "Available" not in conditions
    assert result.objects == []
    assert result.out.strip() == ""


def test_key_secret_without_a_value_is_api_keys_missing(render: Any, tmp_path: Path) -> None:
    folder = copy_example("bearer-passthrough", tmp_path, drop=("secret.yaml",))
    write(
        folder / "secret.yaml",
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: docs-mcp-keys}
        stringData: {ide-plugin: ""}
        data: {other: Cg==}
        """,
    )
    result = render("-f", folder)  # present in the files: checked even without the flag
    assert result.code == 1
    conditions = result.conditions("docs-mcp")
    for kind in ("Ready", "ResolvedRefs", "PassthroughConfigured"):
        assert (conditions[kind]["status"], conditions[kind]["reason"]) == (
            "False",
            "ApiKeysMissing",
        )
    assert result.objects == []


def test_secret_key_missing_in_a_present_secret(render: Any, tmp_path: Path) -> None:
    folder = copy_example("outbound-bearer", tmp_path, drop=("secret.yaml",))
    write(
        folder / "secret.yaml",
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: tickets-api-token}
        stringData: {tok: CANARY-wrong-key-value}
        """,
    )
    result = render("-f", folder)
    assert result.code == 1
    refs = result.conditions("tickets-mcp")["ResolvedRefs"]
    assert refs["reason"] == "SecretKeyNotFound"
    assert "tickets-api-token" in refs["message"]
    assert "token" in refs["message"]
    assert "CANARY" not in result.err
    assert "CANARY" not in result.out


QUICKSTART_SOURCE = """
apiVersion: mcpgate.io/v1alpha1
kind: HttpApiDataSource
metadata: {name: posts}
spec:
  baseUrl: https://posts.example.com
"""


def test_undeclared_path_parameter_is_unknown_parameter(render: Any, tmp_path: Path) -> None:
    write(tmp_path / "source.yaml", QUICKSTART_SOURCE)
    write(
        tmp_path / "server.yaml",
        """
        apiVersion: mcpgate.io/v1alpha1
        kind: McpServer
        metadata: {name: typo-mcp}
        spec:
          tools:
            - name: get_post
              dataSource: posts
              parameters: [{name: id, type: Integer, required: true}]
              request: {path: /posts/:post_id}
        """,
    )
    result = render("-f", tmp_path, "-f", EXAMPLES / "quickstart")
    assert result.code == 1
    conditions = result.conditions("typo-mcp")
    assert (conditions["Accepted"]["status"], conditions["Accepted"]["reason"]) == (
        "False",
        "UnknownParameter",
    )
    assert ":post_id" in conditions["Accepted"]["message"]
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (
        "False",
        "UnknownParameter",
    )
    assert "Available" not in conditions
    # The other server is still rendered; the invalid one creates nothing.
    assert all(o["metadata"]["name"].startswith("quickstart") for o in result.objects)
    assert result.objects
    assert result.conditions("quickstart")["Ready"]["status"] == "True"


def test_duplicate_tool(render: Any, tmp_path: Path) -> None:
    write(tmp_path / "source.yaml", QUICKSTART_SOURCE)
    write(
        tmp_path / "server.yaml",
        """
        apiVersion: mcpgate.io/v1alpha1
        kind: McpServer
        metadata: {name: dup-mcp}
        spec:
          tools:
            - {name: list, dataSource: posts, request: {path: /posts}}
            - {name: list, dataSource: posts, request: {path: /posts/all}}
        """,
    )
    result = render("-f", tmp_path)
    assert result.code == 1
    accepted = result.conditions("dup-mcp")["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "DuplicateTool")
    assert result.objects == []


def test_missing_data_source(render: Any, tmp_path: Path) -> None:
    folder = copy_example("quickstart", tmp_path, drop=("datasource.yaml",))
    result = render("-f", folder)
    assert result.code == 1
    refs = result.conditions("quickstart")["ResolvedRefs"]
    assert (refs["status"], refs["reason"]) == ("False", "DataSourceNotFound")
    assert "HttpApiDataSource blog not found" in refs["message"]
    assert result.objects == []


def test_invalid_data_source_makes_its_server_invalid(render: Any, tmp_path: Path) -> None:
    folder = copy_example("quickstart", tmp_path, drop=("datasource.yaml",))
    write(
        folder / "datasource.yaml",
        """
        apiVersion: mcpgate.io/v1alpha1
        kind: HttpApiDataSource
        metadata: {name: blog}
        spec:
          baseUrl: http://demo-api:8081
          headers: {Authorization: nope}
        """,
    )
    result = render("-f", folder)
    assert result.code == 1
    accepted = result.conditions("quickstart")["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "InvalidSpec")
    assert "HttpApiDataSource blog is invalid" in accepted["message"]
    ready = result.conditions("blog", kind="HttpApiDataSource")["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "headers" in ready["message"]
    assert result.objects == []


AMBIENT = """
apiVersion: mcpgate.io/v1alpha1
kind: HttpApiDataSource
metadata: {name: s3}
spec:
  baseUrl: https://s3.eu-west-1.amazonaws.com
  auth:
    type: AwsSigV4
    awsSigV4: {region: eu-west-1, service: s3}
---
apiVersion: mcpgate.io/v1alpha1
kind: McpServer
metadata: {name: s3-mcp}
spec:
  serviceAccountName: s3-reader
  tools:
    - {name: list_buckets, dataSource: s3, request: {path: /}}
"""


def test_ambient_aws_credentials_need_the_flag(render: Any, tmp_path: Path) -> None:
    file = write(tmp_path / "s3.yaml", AMBIENT)
    refused = render("-f", file)
    assert refused.code == 1
    accepted = refused.conditions("s3-mcp")["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "InvalidSpec")
    assert "--allow-ambient-aws-credentials" in accepted["message"]
    allowed = render("-f", file, "--allow-ambient-aws-credentials")
    assert allowed.code == 0
    deployment = next(o for o in allowed.objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "s3-reader"
    assert pod["automountServiceAccountToken"] is False


def test_objects_keep_their_own_namespace(render: Any, tmp_path: Path) -> None:
    write(
        tmp_path / "all.yml",
        """
        apiVersion: mcpgate.io/v1alpha1
        kind: HttpApiDataSource
        metadata: {name: posts, namespace: shop}
        spec:
          baseUrl: https://posts.example.com
          auth: {type: Bearer, bearer: {tokenSecretRef: {name: posts-token, key: token}}}
        ---
        apiVersion: mcpgate.io/v1alpha1
        kind: McpServer
        metadata: {name: shop-mcp, namespace: shop}
        spec:
          tools: [{name: list, dataSource: posts, request: {path: /posts}}]
        ---
        # The right Secret, in the wrong namespace (the one -n names).
        apiVersion: v1
        kind: Secret
        metadata: {name: posts-token}
        stringData: {token: CANARY-token}
        """,
    )
    result = render("-f", tmp_path, "-n", "team-a")
    assert result.code == 0
    assert {o["metadata"]["namespace"] for o in result.objects} == {"shop"}
    assert "McpServer shop/shop-mcp: Ready=True" in result.err
    required = render("-f", tmp_path, "-n", "team-a", "--require-secrets")
    assert required.code == 1
    assert required.conditions("shop-mcp", "shop")["ResolvedRefs"]["reason"] == "SecretNotFound"
    assert "CANARY" not in required.err + required.out + result.out + result.err


def test_several_folders_and_servers(render: Any) -> None:
    result = render("-f", EXAMPLES / "quickstart", "-f", EXAMPLES / "inbound-apikey")
    assert result.code == 0
    names = [o["metadata"]["name"] for o in result.objects if o["kind"] == "Deployment"]
    assert names == sorted(["quickstart", "status-mcp"])
    servers = {m["name"] for m in result.lines if m["kind"] == "McpServer"}
    assert servers == {"quickstart", "status-mcp"}
    # inbound-apikey wants two replicas: a PodDisruptionBudget.
    assert ("PodDisruptionBudget", "status-mcp") in result.kinds()
    assert ("PodDisruptionBudget", "quickstart") not in result.kinds()


def test_one_server_not_ready_makes_the_exit_code_1(render: Any, tmp_path: Path) -> None:
    broken = copy_example("outbound-basic", tmp_path, drop=("secret.yaml",))
    result = render("-f", EXAMPLES / "quickstart", "-f", broken, "--require-secrets")
    assert result.code == 1
    assert result.conditions("quickstart")["Ready"]["status"] == "True"
    assert result.conditions("inventory-mcp")["Ready"]["status"] == "False"
    assert {o["metadata"]["name"] for o in result.objects} == {"quickstart", "quickstart-config"}


def test_no_server_at_all(render: Any, tmp_path: Path) -> None:
    """A data source alone is judged too; exit 0, since no server would fail to be Ready."""
    write(tmp_path / "only.yaml", QUICKSTART_SOURCE)
    result = render("-f", tmp_path)
    assert result.code == 0
    assert result.objects == []
    assert [(m["kind"], m["type"], m["status"]) for m in result.lines] == [
        ("HttpApiDataSource", "Ready", "True"),
        ("HttpApiDataSource", "ResolvedRefs", "True"),
    ]


@pytest.mark.parametrize(
    "files",
    [{}, {"sub/mcpserver.yaml": "kind: McpServer"}, {"cm.yaml": "kind: ConfigMap\napiVersion: v1"}],
    ids=["empty-folder", "folder-of-folders", "no-mcpgate-kind"],
)
def test_nothing_to_render_is_invalid_input(
    render: Any, tmp_path: Path, files: dict[str, str]
) -> None:
    """Exit 0 on a folder with nothing in it would be a false pass in CI."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    result = render("-f", tmp_path)
    assert_invalid_input(result, "no McpServer or HttpApiDataSource", ".yaml and .yml")


def test_folders_read_only_yaml_files(render: Any, tmp_path: Path) -> None:
    folder = copy_example("quickstart", tmp_path)
    (folder / "notes.txt").write_text("kind: nonsense: [", encoding="utf-8")
    (folder / "extra.json").write_text("{", encoding="utf-8")
    result = render("-f", folder)
    assert result.code == 0
    assert result.objects == expected_objects(EXAMPLES / "quickstart", "default", RenderSettings())


def test_a_list_document(render: Any, tmp_path: Path) -> None:
    docs = [
        doc
        for p in sorted((EXAMPLES / "quickstart").glob("*.yaml"))
        for doc in yaml.safe_load_all(p.read_text())
    ]
    (tmp_path / "list.yaml").write_text(
        yaml.safe_dump({"kind": "List", "items": docs}, sort_keys=False)
    )
    result = render("-f", tmp_path / "list.yaml")
    assert result.code == 0
    assert result.objects == expected_objects(EXAMPLES / "quickstart", "default", RenderSettings())


# --------------------------------------------------------------------------- invalid input: 2


def assert_invalid_input(result: Run, *mentions: str) -> None:
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("mcpgate: ")
    for mention in mentions:
        assert mention in result.err


def test_missing_file(render: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert_invalid_input(render("-f", missing), str(missing))


def test_missing_file_among_good_ones(render: Any, tmp_path: Path) -> None:
    assert_invalid_input(render("-f", EXAMPLES / "quickstart", "-f", tmp_path / "gone"))


def test_unreadable_yaml(render: Any, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "kind: McpServer\nspec: [unclosed\n")
    assert_invalid_input(render("-f", bad), "bad.yaml", "YAML")


def test_document_that_is_not_a_mapping(render: Any, tmp_path: Path) -> None:
    bad = write(tmp_path / "list.yaml", "- a\n- b\n")
    assert_invalid_input(render("-f", bad), "list.yaml")


def test_object_defined_twice(render: Any, tmp_path: Path) -> None:
    folder = copy_example("quickstart", tmp_path)
    shutil.copy(folder / "mcpserver.yaml", folder / "mcpserver-again.yaml")
    assert_invalid_input(render("-f", folder), "quickstart", "twice")


def test_wrong_api_version(render: Any, tmp_path: Path) -> None:
    bad = write(
        tmp_path / "v.yaml",
        """
        apiVersion: mcpgate.io/v1
        kind: McpServer
        metadata: {name: x}
        spec: {}
        """,
    )
    assert_invalid_input(render("-f", bad), "mcpgate.io/v1alpha1")


def test_secret_with_bad_base64_is_not_echoed(render: Any, tmp_path: Path) -> None:
    bad = write(
        tmp_path / "s.yaml",
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: s}
        data: {token: "CANARY!!not-base64"}
        """,
    )
    result = render("-f", bad)
    assert_invalid_input(result, "Secret s", "data.token")
    assert "CANARY" not in result.err


def test_no_filename_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["render"])
    assert caught.value.code == 2
    assert "-f" in capsys.readouterr().err


def test_file_that_is_not_utf8(render: Any, tmp_path: Path) -> None:
    bad = tmp_path / "binary.yaml"
    bad.write_bytes(b"\xff\xfe\x00kind: Secret\n")
    assert_invalid_input(render("-f", bad), "binary.yaml")


@pytest.mark.parametrize(
    "body",
    [
        "metadata: {name: s}\ndata: [a, b]\n",
        "metadata: {name: s}\nstringData: just-text\n",
        "metadata: [s]\n",
    ],
    ids=["data-list", "stringData-text", "metadata-list"],
)
def test_malformed_secret(render: Any, tmp_path: Path, body: str) -> None:
    bad = write(tmp_path / "s.yaml", "apiVersion: v1\nkind: Secret\n" + body)
    assert_invalid_input(render("-f", bad), "s.yaml")
