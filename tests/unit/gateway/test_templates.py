"""The `:name` parameter mapping of API.md, rule by rule, with concrete calls: where each
(checked) argument lands in the path, query, headers and body. The checks themselves are
test_arguments.py's."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from mcpgate.gateway.arguments import ToolArguments
from mcpgate.gateway.config import DataSourceConfig, ParameterConfig, RequestConfig, ToolConfig
from mcpgate.gateway.errors import ToolInputError
from mcpgate.gateway.templates import CompiledTool, PreparedRequest

BASE = "https://api.example.com/v1"


def param(name: str, type_: str = "String", **fields: Any) -> ParameterConfig:
    return ParameterConfig(name=name, type=type_, **fields)


def tool(
    path: str = "/x",
    *params: ParameterConfig,
    method: str = "GET",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    base_url: str = BASE,
    source_headers: dict[str, str] | None = None,
) -> CompiledTool:
    config = ToolConfig(
        name="t",
        data_source="src",
        parameters=params,
        request=RequestConfig(
            method=method,
            path=path,
            query=query or {},
            headers=headers or {},
            body=body,
        ),
    )
    source = DataSourceConfig(name="src", base_url=base_url, headers=source_headers or {})
    return CompiledTool(config, source)


def call(compiled: CompiledTool, **arguments: Any) -> PreparedRequest:
    """The request for these arguments, checked first as the runner checks them."""
    return compiled.prepare(ToolArguments(compiled.tool).check(arguments))


def path_of(request: PreparedRequest) -> str:
    return urlsplit(request.url).path


def query_of(request: PreparedRequest) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(request.url).query, keep_blank_values=True)


def body_of(request: PreparedRequest) -> Any:
    assert request.body is not None
    return json.loads(request.body)


# --- path -------------------------------------------------------------------------------


def path_tool(base_url: str = BASE) -> CompiledTool:
    return tool("/files/:name/meta", param("name", required=True), base_url=base_url)


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("report.pdf", "report.pdf"),
        ("../admin", "..%2Fadmin"),
        ("%2e%2e/", "%252e%252e%2F"),
        ("http://other-host/", "http%3A%2F%2Fother-host%2F"),
        ("?x=1#", "%3Fx%3D1%23"),
        ("a b+c", "a%20b%2Bc"),
        ("café ü", "caf%C3%A9%20%C3%BC"),
        ("...", "..."),
        ("~a-b_c.d", "~a-b_c.d"),
        ("\\..\\", "%5C..%5C"),
        ("//evil.example.com", "%2F%2Fevil.example.com"),
        ("a;b,c:d@e", "a%3Bb%2Cc%3Ad%40e"),
    ],
)
def test_path_value_is_one_encoded_segment(value: str, segment: str) -> None:
    request = call(path_tool(), name=value)
    assert request.url == f"https://api.example.com/v1/files/{segment}/meta"
    parts = urlsplit(request.url)
    assert (parts.scheme, parts.netloc) == ("https", "api.example.com")
    assert parts.path.split("/") == ["", "v1", "files", segment, "meta"]
    assert parts.query == parts.fragment == ""


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_value_empty_or_dots_is_refused(value: str) -> None:
    with pytest.raises(ToolInputError, match="argument 'name'"):
        call(path_tool(), name=value)


@pytest.mark.parametrize(
    ("type_", "value", "segment"),
    [
        ("Integer", 42, "42"),
        ("Integer", 42.0, "42"),
        ("Number", 2.5, "2.5"),
        ("Boolean", True, "true"),
        ("Boolean", False, "false"),
        ("Array", ["a", "b/c"], "%5B%22a%22%2C%22b%2Fc%22%5D"),
        ("Object", {"k": 1}, "%7B%22k%22%3A1%7D"),
    ],
)
def test_path_text_form(type_: str, value: Any, segment: str) -> None:
    items = {"items_type": "String"} if type_ == "Array" else {}
    compiled = tool("/v/:p", param("p", type_, required=True, **items))
    assert path_of(call(compiled, p=value)) == f"/v1/v/{segment}"


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://h.example.com", "https://h.example.com/files/a/meta"),
        ("https://h.example.com/", "https://h.example.com/files/a/meta"),
        ("https://h.example.com/api", "https://h.example.com/api/files/a/meta"),
        ("https://h.example.com/api/", "https://h.example.com/api/files/a/meta"),
        ("http://10.0.0.7:8080/a/b", "http://10.0.0.7:8080/a/b/files/a/meta"),
    ],
)
def test_path_is_appended_to_the_base_path(base_url: str, url: str) -> None:
    assert call(path_tool(base_url), name="a").url == url


def test_path_literal_colon_words_are_text() -> None:
    compiled = tool("/items:batchGet", param("id"))
    assert call(compiled).url == f"{BASE}/items:batchGet"
    compiled = tool("/items/:id:batchGet", param("id", required=True))
    assert call(compiled, id="a/b").url == f"{BASE}/items/a%2Fb:batchGet"


def test_placeholder_is_a_whole_identifier() -> None:
    compiled = tool(
        "/a/:id/:idx/:id_2",
        param("id", required=True),
        param("idx", required=True),
        param("id_2", required=True),
    )
    assert path_of(call(compiled, id="1", idx="2", id_2="3")) == "/v1/a/1/2/3"
    only_id = tool("/a/:id-:idx", param("id", required=True))
    assert path_of(call(only_id, id="1")) == "/v1/a/1-:idx"


def test_path_placeholder_inside_a_segment() -> None:
    compiled = tool("/files/:name.json", param("name", required=True))
    assert path_of(call(compiled, name="a/b")) == "/v1/files/a%2Fb.json"
    with pytest.raises(ToolInputError):
        call(compiled, name="..")


def test_path_literal_text_is_kept() -> None:
    compiled = tool("/a%20b/x:y@z/$1,2;3/:id", param("id", required=True))
    assert path_of(call(compiled, id="i")) == "/v1/a%20b/x:y@z/$1,2;3/i"
    assert path_of(call(tool("/café"))) == "/v1/caf%C3%A9"


def test_absent_path_value_is_refused() -> None:
    compiled = tool("/a/:id", param("id"))  # the operator requires path parameters
    with pytest.raises(ToolInputError, match=r"^argument 'id' is required$"):
        call(compiled)


def test_path_default_is_used() -> None:
    compiled = tool("/v/:version/x", param("version", required=True, default="v2"))
    assert path_of(call(compiled)) == "/v1/v/v2/x"


def test_unknown_whole_path_segment_fails_at_startup() -> None:
    with pytest.raises(ValueError, match=":idd"):
        tool("/a/:idd", param("id", required=True))


# --- query ------------------------------------------------------------------------------


def test_query_substitution_and_text_form() -> None:
    compiled = tool(
        "/x",
        param("s"),
        param("n", "Number"),
        param("i", "Integer"),
        param("b", "Boolean"),
        param("o", "Object"),
        query={"s": ":s", "n": ":n", "i": ":i", "b": ":b", "o": ":o", "fixed": "yes"},
    )
    request = call(compiled, s="x y", n=2.5, i=3.0, b=False, o={"a": [1]})
    assert query_of(request) == [
        ("s", "x y"),
        ("n", "2.5"),
        ("i", "3"),
        ("b", "false"),
        ("o", '{"a":[1]}'),
        ("fixed", "yes"),
    ]
    assert urlsplit(request.url).query == (
        "s=x%20y&n=2.5&i=3&b=false&o=%7B%22a%22%3A%5B1%5D%7D&fixed=yes"
    )


@pytest.mark.parametrize(
    "value", ["a&admin=true", "a=b", "x#frag", "1+1", "50%", "a b", "é", "\r\n", "?q"]
)
def test_query_value_cannot_inject(value: str) -> None:
    compiled = tool("/x", param("q"), query={"q": ":q", "after": "1"})
    request = call(compiled, q=value)
    parts = urlsplit(request.url)
    assert parts.fragment == ""
    assert parts.path == "/v1/x"
    assert query_of(request) == [("q", value), ("after", "1")]


def test_query_keys_are_encoded() -> None:
    compiled = tool("/x", param("q"), query={"a b&c=": ":q", "filter[name]": "x"})
    request = call(compiled, q="1")
    assert urlsplit(request.url).query == "a%20b%26c%3D=1&filter%5Bname%5D=x"
    assert query_of(request) == [("a b&c=", "1"), ("filter[name]", "x")]


def test_query_array_repeats_the_key() -> None:
    compiled = tool(
        "/x", param("tags", "Array", items_type="String"), query={"tags": ":tags", "x": "1"}
    )
    assert call(compiled, tags=["a", "b&c"]).url == f"{BASE}/x?tags=a&tags=b%26c&x=1"
    assert call(compiled, tags=[]).url == f"{BASE}/x?x=1"
    assert call(compiled).url == f"{BASE}/x?x=1"


def test_query_array_of_numbers_and_objects() -> None:
    numbers = tool("/x", param("n", "Array", items_type="Integer"), query={"n": ":n"})
    assert query_of(call(numbers, n=[1, 2.0])) == [("n", "1"), ("n", "2")]
    objects = tool("/x", param("o", "Array", items_type="Object"), query={"o": ":o"})
    assert query_of(call(objects, o=[{"a": 1}])) == [("o", '{"a":1}')]


def test_query_array_inside_a_longer_value_is_json_text() -> None:
    compiled = tool("/x", param("tags", "Array", items_type="String"), query={"f": "in::tags"})
    assert query_of(call(compiled, tags=["a", "b"])) == [("f", 'in:["a","b"]')]


def test_query_absent_optional() -> None:
    compiled = tool(
        "/x", param("q"), param("t"), query={"q": ":q", "type": "type:invoice-:t", "n": "1"}
    )
    assert query_of(call(compiled)) == [("type", "type:invoice-"), ("n", "1")]
    assert query_of(call(compiled, q="", t="7")) == [
        ("q", ""),
        ("type", "type:invoice-7"),
        ("n", "1"),
    ]


def test_query_default_is_used() -> None:
    compiled = tool("/x", param("limit", "Integer", default=20), query={"limit": ":limit"})
    assert call(compiled).url == f"{BASE}/x?limit=20"
    assert call(compiled, limit=5).url == f"{BASE}/x?limit=5"


def test_query_literal_colon_word_and_partial_name() -> None:
    compiled = tool("/x", param("id"), query={"a": ":idx", "b": ":id:idx"})
    assert query_of(call(compiled, id="7")) == [("a", ":idx"), ("b", "7:idx")]


def test_no_query_no_question_mark() -> None:
    compiled = tool("/x", param("q"), query={"q": ":q"})
    assert call(compiled).url == f"{BASE}/x"


# --- headers ----------------------------------------------------------------------------


def test_headers_source_first_then_tool() -> None:
    compiled = tool(
        "/x",
        param("id"),
        headers={"X-Trace": "inv-:id", "accept": "text/csv"},
        source_headers={"Accept": "application/json", "X-Team": "billing"},
    )
    assert call(compiled, id="7").headers == [
        ("X-Team", "billing"),
        ("X-Trace", "inv-7"),
        ("accept", "text/csv"),
    ]


def test_header_text_form_and_unicode() -> None:
    compiled = tool(
        "/x",
        param("n", "Integer"),
        param("b", "Boolean"),
        param("o", "Object"),
        param("s"),
        headers={"X-N": ":n", "X-B": ":b", "X-O": ":o", "X-S": "v=:s"},
    )
    assert call(compiled, n=1.0, b=True, o={"k": "v"}, s="é").headers == [
        ("X-N", "1"),
        ("X-B", "true"),
        ("X-O", '{"k":"v"}'),
        ("X-S", "v=é"),
    ]


def test_header_absent_optional() -> None:
    compiled = tool(
        "/x",
        param("id"),
        param("accept"),
        headers={"X-Id": ":id", "X-Trace": "inv-:id", "Accept": ":accept"},
        source_headers={"Accept": "application/json"},
    )
    # The whole-placeholder header is left out, and the data source's header then stays.
    assert call(compiled).headers == [("Accept", "application/json"), ("X-Trace", "inv-")]


@pytest.mark.parametrize(
    "value", ["a\r\nX-Admin: true", "a\nb", "a\rb", "a\0b", "\x7f", "\x1b[0m", "\ud800"]
)
def test_header_control_characters_are_refused(value: str) -> None:
    compiled = tool("/x", param("trace"), headers={"X-Trace": "t-:trace"})
    with pytest.raises(ToolInputError) as caught:
        call(compiled, trace=value)
    message = str(caught.value)
    assert "X-Trace" in message
    assert "'trace'" in message
    assert value not in message
    assert "X-Admin" not in message


def test_header_tab_is_allowed() -> None:
    compiled = tool("/x", param("v"), headers={"X-V": ":v"})
    assert call(compiled, v="a\tb").headers == [("X-V", "a\tb")]


def test_content_type_with_a_body() -> None:
    compiled = tool("/x", param("n"), method="POST", body={"n": ":n"})
    assert call(compiled, n="1").headers == [("Content-Type", "application/json")]
    assert call(compiled).headers == [("Content-Type", "application/json")]  # body {}
    own = tool(
        "/x", method="POST", headers={"content-type": "application/merge-patch+json"}, body={}
    )
    assert call(own).headers == [("content-type", "application/merge-patch+json")]
    source = tool("/x", method="PUT", body=[], source_headers={"Content-Type": "text/plain"})
    assert call(source).headers == [("Content-Type", "text/plain")]
    assert call(tool("/x", method="POST")).headers == []


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_no_body_no_content_type(method: str) -> None:
    """Not the default, nor one the data source or the tool sets: there is no content."""
    assert call(tool("/x", method=method)).headers == []
    source = tool("/x", method=method, source_headers={"Content-Type": "application/json"})
    assert call(source).headers == []
    own = tool("/x", method=method, headers={"content-type": "text/plain", "X-A": "1"})
    assert call(own).headers == [("X-A", "1")]
    absent = tool(
        "/x", param("b", "Object"), method=method, body=":b", headers=own.tool.request.headers
    )
    assert call(absent).headers == [("X-A", "1")]  # a body placeholder without a value


# --- body -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("String", "7", "7"),
        ("String", "", ""),
        ("Number", 2.5, 2.5),
        ("Number", 3, 3),
        ("Integer", 3.0, 3),
        ("Integer", 2**70, 2**70),
        ("Boolean", False, False),
        ("Array", ["a", "b"], ["a", "b"]),
        ("Object", {"k": [1, {"z": None}]}, {"k": [1, {"z": None}]}),
    ],
)
def test_body_typed_substitution(type_: str, value: Any, expected: Any) -> None:
    items = {"items_type": "String"} if type_ == "Array" else {}
    compiled = tool("/x", param("v", type_, **items), method="POST", body={"v": ":v", "l": [":v"]})
    request = call(compiled, v=value)
    assert body_of(request) == {"v": expected, "l": [expected]}
    assert type(body_of(request)["v"]) is type(expected)


def test_body_is_compact_json() -> None:
    compiled = tool("/x", param("o", "Object"), method="PATCH", body={"a": {"b": ":o"}})
    assert call(compiled, o={"k": "é"}).body == '{"a":{"b":{"k":"é"}}}'.encode()


def test_body_interpolation_in_longer_strings() -> None:
    compiled = tool(
        "/x",
        param("id"),
        param("n", "Number"),
        param("o", "Object"),
        method="POST",
        body={"note": "invoice :id (:n) :o", "type": "type:invoice", "id:x": ":idx"},
    )
    assert body_of(call(compiled, id="7", n=2.5, o={"a": True})) == {
        "note": 'invoice 7 (2.5) {"a":true}',
        "type": "type:invoice",
        "id:x": ":idx",
    }
    assert body_of(call(compiled))["note"] == "invoice  () "


def test_body_absent_optional_is_left_out() -> None:
    compiled = tool(
        "/x",
        param("a"),
        param("b", "Integer"),
        method="PUT",
        body={"a": ":a", "nested": {"b": ":b", "keep": None}, "list": [":a", 1, ":b"], "s": "x:a"},
    )
    assert body_of(call(compiled)) == {"nested": {"keep": None}, "list": [1], "s": "x"}
    assert body_of(call(compiled, a="A")) == {
        "a": "A",
        "nested": {"keep": None},
        "list": ["A", 1],
        "s": "xA",
    }


def test_body_default_is_used() -> None:
    compiled = tool("/x", param("n", "Integer", default=1), method="POST", body={"n": ":n"})
    assert body_of(call(compiled)) == {"n": 1}


def test_body_keys_are_not_templated() -> None:
    compiled = tool("/x", param("id"), method="POST", body={":id": ":id"})
    assert body_of(call(compiled, id="7")) == {":id": "7"}


def test_whole_body_placeholder() -> None:
    compiled = tool("/x", param("payload", "Object"), method="POST", body=":payload")
    request = call(compiled, payload={"a": 1})
    assert request.body == b'{"a":1}'
    absent = call(compiled)
    assert absent.body is None
    assert absent.headers == []


def test_literal_body_and_json_value_body() -> None:
    compiled = tool("/x", method="POST", body={"a": [1, "b", None, True]})
    assert body_of(call(compiled)) == {"a": [1, "b", None, True]}
    assert body_of(call(tool("/x", method="POST", body="plain"))) == "plain"
    assert body_of(call(tool("/x", method="POST", body=0))) == 0


def test_no_body_without_a_body_method() -> None:
    request = call(tool("/x", param("a"), method="DELETE", body={"a": ":a"}), a="1")
    assert request.method == "DELETE"
    assert request.body is None
    assert request.headers == []


def test_lone_surrogate_is_a_tool_error() -> None:
    for compiled in (
        tool("/x/:s", param("s", required=True)),
        tool("/x", param("s"), query={"s": ":s"}),
        tool("/x", param("s"), method="POST", body={"s": ":s"}),
    ):
        with pytest.raises(ToolInputError, match="not valid Unicode"):
            call(compiled, s="a\ud800")


# --- the whole request ------------------------------------------------------------------


def test_full_request() -> None:
    compiled = tool(
        "/invoices/:id/lines",
        param("id", required=True),
        param("expand", "Boolean"),
        param("note"),
        method="POST",
        query={"expand": ":expand"},
        headers={"X-Trace": "inv-:id"},
        body={"note": ":note", "invoice": ":id"},
        base_url="https://billing.example.com/api",
        source_headers={"Accept": "application/json"},
    )
    assert call(compiled, id="INV-1", expand=True, note="hi") == PreparedRequest(
        method="POST",
        url="https://billing.example.com/api/invoices/INV-1/lines?expand=true",
        headers=[
            ("Accept", "application/json"),
            ("X-Trace", "inv-INV-1"),
            ("Content-Type", "application/json"),
        ],
        body=b'{"note":"hi","invoice":"INV-1"}',
    )


def test_prepared_request_is_frozen() -> None:
    request = call(tool("/x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.url = "https://elsewhere.example.com/"  # type: ignore[misc]
