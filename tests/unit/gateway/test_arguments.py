"""Argument checking (API.md "Parameter mapping"): the tool's `inputSchema`, and every
call's arguments checked against it before anything is sent, with defaults applied."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpgate.gateway.arguments import ToolArguments
from mcpgate.gateway.config import ParameterConfig, RequestConfig, ToolConfig
from mcpgate.gateway.errors import ToolInputError


def param(name: str, type_: str = "String", **fields: Any) -> ParameterConfig:
    return ParameterConfig(name=name, type=type_, **fields)


def checker_of(*params: ParameterConfig) -> ToolArguments:
    return ToolArguments(
        ToolConfig(name="t", data_source="src", parameters=params, request=RequestConfig(path="/x"))
    )


# --- inputSchema ------------------------------------------------------------------------


def test_input_schema_maps_every_type() -> None:
    checker = checker_of(
        param("s", "String", required=True, description="A text."),
        param("n", "Number"),
        param("i", "Integer", default=3),
        param("b", "Boolean"),
        param("a", "Array", items_type="Integer"),
        param("o", "Object"),
        param("e", "String", enum=("open", "paid"), default="open"),
    )
    assert checker.input_schema == {
        "type": "object",
        "properties": {
            "s": {"type": "string", "description": "A text."},
            "n": {"type": "number"},
            "i": {"type": "integer", "default": 3},
            "b": {"type": "boolean"},
            "a": {"type": "array", "items": {"type": "integer"}},
            "o": {"type": "object"},
            "e": {"type": "string", "enum": ["open", "paid"], "default": "open"},
        },
        "required": ["s"],
        "additionalProperties": False,
    }
    json.dumps(checker.input_schema)  # plain JSON, ready for tools/list


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ("String", "string"),
        ("Number", "number"),
        ("Integer", "integer"),
        ("Boolean", "boolean"),
        ("Object", "object"),
    ],
)
def test_input_schema_array_items(items: str, expected: str) -> None:
    schema = checker_of(param("a", "Array", items_type=items)).input_schema
    assert schema["properties"]["a"] == {"type": "array", "items": {"type": expected}}


def test_input_schema_without_parameters() -> None:
    assert checker_of().input_schema == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_empty_enum_is_no_restriction() -> None:
    checker = checker_of(param("s", enum=()))
    assert "enum" not in checker.input_schema["properties"]["s"]
    assert checker.check({"s": "anything"}) == {"s": "anything"}


def test_invalid_default_fails_at_startup() -> None:
    with pytest.raises(ValueError, match="'n'"):
        checker_of(param("n", "Integer", default="three"))
    with pytest.raises(ValueError, match="'e'"):
        checker_of(param("e", enum=("a", "b"), default="c"))


# --- check -----------------------------------------------------------------------


def test_arguments_none_means_empty_object() -> None:
    checker = checker_of(param("q"), param("n", "Integer", default=5))
    assert checker.check(None) == {"n": 5}
    assert checker.check({}) == {"n": 5}


@pytest.mark.parametrize("arguments", [[], "id=1", 3, True, [{"id": "1"}]])
def test_arguments_must_be_an_object(arguments: Any) -> None:
    with pytest.raises(ToolInputError, match=r"^arguments must be an object$"):
        checker_of(param("id")).check(arguments)


def test_unknown_argument() -> None:
    with pytest.raises(ToolInputError, match=r"^unknown argument 'x'$"):
        checker_of(param("id")).check({"x": 1})


def test_unknown_argument_name_is_cut_short() -> None:
    with pytest.raises(ToolInputError) as caught:
        checker_of().check({"y" * 5000: 1})
    assert len(str(caught.value)) < 120


def test_missing_required_argument() -> None:
    checker = checker_of(param("id", required=True))
    with pytest.raises(ToolInputError, match=r"^argument 'id' is required$"):
        checker.check({})
    with pytest.raises(ToolInputError, match=r"^argument 'id' is required$"):
        checker.check({"id": None})


def test_required_argument_with_default_takes_the_default() -> None:
    checker = checker_of(param("version", required=True, default="2"))
    assert checker.check({}) == {"version": "2"}


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("String", 3, "argument 'p' must be a string"),
        ("String", ["a"], "argument 'p' must be a string"),
        ("Number", "3", "argument 'p' must be a number"),
        ("Number", True, "argument 'p' must be a number"),
        ("Number", float("inf"), "argument 'p' must be a number"),
        ("Number", float("nan"), "argument 'p' must be a number"),
        ("Integer", 2.5, "argument 'p' must be an integer"),
        ("Integer", True, "argument 'p' must be an integer"),
        ("Integer", "3", "argument 'p' must be an integer"),
        ("Integer", float("inf"), "argument 'p' must be an integer"),
        ("Boolean", 1, "argument 'p' must be a boolean"),
        ("Boolean", "true", "argument 'p' must be a boolean"),
        ("Array", "a,b", "argument 'p' must be an array"),
        ("Array", {"a": 1}, "argument 'p' must be an array"),
        ("Object", ["a"], "argument 'p' must be an object"),
        ("Object", "{}", "argument 'p' must be an object"),
    ],
)
def test_wrong_type(type_: str, value: Any, message: str) -> None:
    items = {"items_type": "String"} if type_ == "Array" else {}
    with pytest.raises(ToolInputError, match=f"^{message}$"):
        checker_of(param("p", type_, **items)).check({"p": value})


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("String", ""),
        ("String", "héllo"),
        ("Number", 3),
        ("Number", 2.5),
        ("Number", -0.0),
        ("Integer", -7),
        ("Integer", 2**70),
        ("Boolean", False),
        ("Object", {"a": [1, None]}),
    ],
)
def test_right_type_is_kept(type_: str, value: Any) -> None:
    checked = checker_of(param("p", type_)).check({"p": value})
    assert checked == {"p": value}
    assert type(checked["p"]) is type(value)


def test_integral_float_is_an_integer() -> None:
    checked = checker_of(param("n", "Integer")).check({"n": 3.0})
    assert checked == {"n": 3}
    assert type(checked["n"]) is int


def test_array_elements_are_checked() -> None:
    checker = checker_of(param("a", "Array", items_type="Integer"))
    assert checker.check({"a": [1, 2.0, -3]}) == {"a": [1, 2, -3]}
    assert checker.check({"a": []}) == {"a": []}
    with pytest.raises(ToolInputError, match=r"^argument 'a' item 1 must be an integer$"):
        checker.check({"a": [1, "2"]})
    with pytest.raises(ToolInputError, match=r"^argument 'a' item 0 must be an integer$"):
        checker.check({"a": [True]})
    objects = checker_of(param("a", "Array", items_type="Object"))
    with pytest.raises(ToolInputError, match=r"^argument 'a' item 0 must be an object$"):
        objects.check({"a": [[]]})


def test_enum() -> None:
    checker = checker_of(param("status", enum=("open", "paid")))
    assert checker.check({"status": "paid"}) == {"status": "paid"}
    with pytest.raises(ToolInputError, match=r"^argument 'status' must be one of \["):
        checker.check({"status": "void"})


def test_enum_compares_as_json() -> None:
    numbers = checker_of(param("n", "Number", enum=(1, 2.5)))
    assert numbers.check({"n": 1.0}) == {"n": 1.0}
    with pytest.raises(ToolInputError, match="must be one of"):
        numbers.check({"n": 2})
    objects = checker_of(param("o", "Object", enum=({"a": 1},)))
    assert objects.check({"o": {"a": 1}}) == {"o": {"a": 1}}
    with pytest.raises(ToolInputError, match="must be one of"):
        objects.check({"o": {"a": True}})  # true is not 1 in JSON


def test_defaults_for_absent_and_null() -> None:
    checker = checker_of(param("q", default="all"), param("n", "Integer", default=10), param("z"))
    assert checker.check({}) == {"q": "all", "n": 10}
    assert checker.check({"q": None, "n": None, "z": None}) == {"q": "all", "n": 10}
    assert checker.check({"q": "some"}) == {"q": "some", "n": 10}


# --- properties -------------------------------------------------------------------------

PARAMETERS = (
    param("s", required=True),
    param("n", "Number", required=True),
    param("i", "Integer", required=True),
    param("b", "Boolean", required=True),
    param("a", "Array", items_type="String", required=True),
    param("o", "Object", required=True),
    param("os"),
    param("on", "Number"),
    param("oa", "Array", items_type="Integer"),
    param("oo", "Object"),
    param("d", "Integer", default=7),
)
REQUIRED = ("s", "n", "i", "b", "a", "o")
CHECKER = checker_of(*PARAMETERS)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
ARGUMENT_NAMES = st.sampled_from([p.name for p in PARAMETERS]) | st.text(max_size=4)


@settings(max_examples=200, deadline=None)
@given(given_arguments=st.none() | json_values | st.dictionaries(ARGUMENT_NAMES, json_values))
def test_check_accepts_or_refuses(given_arguments: Any) -> None:
    """Whatever a caller sends is checked arguments or a ToolInputError, never anything
    else; checked arguments have their parameters' types and every required one."""
    try:
        checked = CHECKER.check(given_arguments)
    except ToolInputError as err:
        refusal = str(err)
    else:
        refusal = ""
    if refusal:
        assert refusal.startswith(("argument", "unknown argument"))
        return
    by_name = {p.name: p for p in PARAMETERS}
    assert set(REQUIRED) <= set(checked) <= set(by_name)
    for name, value in checked.items():
        kind = by_name[name].type
        assert value is not None
        if kind in ("Integer", "Number"):
            assert isinstance(value, int | float)
            assert not isinstance(value, bool)
        if kind == "Integer":
            assert type(value) is int
        if kind == "Array" and by_name[name].items_type == "Integer":
            assert all(type(item) is int for item in value)
    json.dumps(checked)
