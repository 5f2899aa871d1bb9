"""Property tests of the parameter mapping: whatever the arguments, the request goes to the
data source's host under its base path, keeps the template's shape, carries no header
injection and has a JSON body; a value that cannot go where it is put is a ToolInputError,
never anything else."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.gateway.arguments import ToolArguments
from mcpgate.gateway.config import DataSourceConfig, ParameterConfig, RequestConfig, ToolConfig
from mcpgate.gateway.errors import ToolInputError
from mcpgate.gateway.templates import CompiledTool

SETTINGS = settings(max_examples=200, deadline=None)

BASE_URLS = [
    "https://h.example.com",
    "https://h.example.com/",
    "https://h.example.com/api",
    "https://h.example.com/api/",
    "http://10.1.2.3:8443/a/b/",
]

PARAMETERS = (
    ParameterConfig(name="s", type="String", required=True),
    ParameterConfig(name="n", type="Number", required=True),
    ParameterConfig(name="i", type="Integer", required=True),
    ParameterConfig(name="b", type="Boolean", required=True),
    ParameterConfig(name="a", type="Array", items_type="String", required=True),
    ParameterConfig(name="o", type="Object", required=True),
    ParameterConfig(name="os", type="String"),
    ParameterConfig(name="on", type="Number"),
    ParameterConfig(name="oa", type="Array", items_type="Integer"),
    ParameterConfig(name="oo", type="Object"),
    ParameterConfig(name="d", type="Integer", default=7),
)
REQUIRED = ("s", "n", "i", "b", "a", "o")

PATH = "/p/:s/n-:n/:i/:b.x/:a/:o/items:batchGet"
QUERY = {
    "s": ":s",
    "n": ":n",
    "i": ":i",
    "b": ":b",
    "a": ":a",
    "o": ":o",
    "os": ":os",
    "oa": ":oa",
    "d": ":d",
    "mix": "x=:s&:n#:o;:a?:os",
    "fixed": "type:invoice",
}
HEADERS = {"X-S": ":s", "X-Mix": "[:s|:n|:i|:b|:a|:o|:os]", "X-Opt": ":os", "X-Oo": ":oo"}
BODY = {
    "s": ":s",
    "n": ":n",
    "i": ":i",
    "b": ":b",
    "a": ":a",
    "o": ":o",
    "mix": ":s-:n-:o-:os",
    "list": [":os", ":oo", ":s", 1],
    "nested": {"on": ":on", "d": ":d", ":s": "key"},
}


TOOL = ToolConfig(
    name="t",
    data_source="src",
    parameters=PARAMETERS,
    request=RequestConfig(method="POST", path=PATH, query=QUERY, headers=HEADERS, body=BODY),
)
ARGUMENTS = ToolArguments(TOOL)


def compiled_tool(base_url: str) -> CompiledTool:
    source = DataSourceConfig(name="src", base_url=base_url, headers={"Accept": "application/json"})
    return CompiledTool(TOOL, source)


TOOLS = {url: compiled_tool(url) for url in BASE_URLS}

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_floats | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=5), json_values, max_size=3)
integers = st.integers() | st.integers(-(2**53), 2**53).map(float)
numbers = st.integers() | finite_floats


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


arguments_strategy = st.fixed_dictionaries(
    {
        "s": st.text(),
        "n": numbers,
        "i": integers,
        "b": st.booleans(),
        "a": st.lists(st.text(max_size=6), max_size=4),
        "o": json_objects,
    },
    optional={
        "os": optional(st.text()),
        "on": optional(numbers),
        "oa": optional(st.lists(integers, max_size=4)),
        "oo": optional(json_objects),
        "d": optional(integers),
    },
)


def text_form(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(template: str, values: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return "" if values[name] is None else text_form(values[name])

    return re.sub(r":([A-Za-z0-9_]+)", one, template)


HEADER_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
URL_CHARS = set(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


@SETTINGS
@given(base_url=st.sampled_from(BASE_URLS), arguments=arguments_strategy)
def test_request_shape(base_url: str, arguments: dict[str, Any]) -> None:
    tool = TOOLS[base_url]
    checked = ARGUMENTS.check(arguments)
    values = {p.name: checked.get(p.name) for p in PARAMETERS}
    assert values["d"] is not None  # the default applies
    for name in ("i", "d"):
        assert type(values[name]) is int
    path_texts = [text_form(values[name]) for name in REQUIRED]
    header_texts = [text_form(values[n]) for n in (*REQUIRED, "os", "oo") if values[n] is not None]

    if any(text in ("", ".", "..") for text in path_texts) or any(
        HEADER_FORBIDDEN.search(text) for text in header_texts
    ):
        with pytest.raises(ToolInputError):
            tool.prepare(checked)
        return
    request = tool.prepare(checked)

    # The URL: the data source's origin, its base path, the template's segments, and
    # written as httpx would write it (the gateway sends it byte for byte).
    assert set(request.url) <= URL_CHARS
    assert str(httpx.URL(request.url)) == request.url
    base = urlsplit(base_url)
    url = urlsplit(request.url)
    assert (url.scheme, url.netloc) == (base.scheme, base.netloc)
    assert url.fragment == ""
    base_path = base.path.rstrip("/")
    assert url.path.startswith(base_path + "/p/")
    segments = url.path[len(base_path) :].split("/")
    assert len(segments) == len(PATH.split("/"))
    decoded = [unquote(segment, errors="strict") for segment in segments]
    assert decoded == [
        *PATH.split("/")[:2],
        path_texts[0],
        "n-" + path_texts[1],
        path_texts[2],
        path_texts[3] + ".x",
        path_texts[4],
        path_texts[5],
        "items:batchGet",
    ]

    # The query: exactly the template's entries, each value whole.
    expected: list[tuple[str, str]] = []
    for key, template in QUERY.items():
        name = template[1:]
        if template == f":{name}" and name in values:
            value = values[name]
            if value is None:
                continue
            if isinstance(value, list):
                expected.extend((key, text_form(item)) for item in value)
                continue
        expected.append((key, render(template, values)))
    assert parse_qsl(url.query, keep_blank_values=True, strict_parsing=False) == expected

    # The headers: never a line break or NUL.
    for name, value in request.headers:
        assert not re.search(r"[\r\n\0]", name + value)
    header_names = [name for name, _ in request.headers]
    assert header_names[:3] == ["Accept", "X-S", "X-Mix"]
    assert header_names[-1] == "Content-Type"

    # The body: JSON with typed values.
    assert request.body is not None
    body = json.loads(request.body)
    for name in REQUIRED:
        assert body[name] == values[name]
    assert body["nested"]["d"] == values["d"]
    assert ("on" in body["nested"]) == (values["on"] is not None)
    assert len(body["list"]) == 2 + (values["os"] is not None) + (values["oo"] is not None)
    assert body["mix"] == render(":s-:n-:o-:os", values)


@SETTINGS
@given(
    base_url=st.sampled_from(BASE_URLS),
    value=st.text(alphabet=st.sampled_from("./\\%2e?#&=+: \r\n\0aé"), max_size=8),
)
def test_path_values_never_escape(base_url: str, value: str) -> None:
    arguments = {"s": value, "n": 1, "i": 1, "b": True, "a": [], "o": {}}
    tool = TOOLS[base_url]
    checked = ARGUMENTS.check(arguments)
    if value in ("", ".", "..") or HEADER_FORBIDDEN.search(value):
        with pytest.raises(ToolInputError):
            tool.prepare(checked)
        return
    url = urlsplit(tool.prepare(checked).url)
    base = urlsplit(base_url)
    assert (url.scheme, url.netloc, url.fragment) == (base.scheme, base.netloc, "")
    segments = url.path[len(base.path.rstrip("/")) :].split("/")
    assert len(segments) == len(PATH.split("/"))
    assert unquote(segments[2]) == value
    assert segments[2] not in ("", ".", "..")


@pytest.mark.parametrize(
    ("base_url", "sent"),
    [
        ("https://API.Example.COM/v1/", "https://api.example.com/v1"),
        ("https://api.example.com:443/v1", "https://api.example.com/v1"),
        ("http://api.example.com:80", "http://api.example.com"),
        ("http://api.example.com:8080/", "http://api.example.com:8080"),
        ("https://bücher.example/katalog", "https://xn--bcher-kva.example/katalog"),
        ("https://api.example.com/äpi/v%C3%A4", "https://api.example.com/%C3%A4pi/v%C3%A4"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
    ],
)
def test_a_base_url_is_sent_as_httpx_would_send_it(base_url: str, sent: str) -> None:
    request = compiled_tool(base_url).prepare(
        ARGUMENTS.check({"s": "x", "n": 1, "i": 2, "b": True, "a": ["y"], "o": {}})
    )
    assert request.url.startswith(sent + "/p/x/")
    assert str(httpx.URL(request.url)) == request.url
