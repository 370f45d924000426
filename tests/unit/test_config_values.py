"""The one config value converter (config_values.py): strict for verifier options, lenient for
recipes and CLI overrides; the same inputs through both."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from rewardbridge.config_values import convert, describe

NO = "error"  # the expected outcome is a ValueError


@pytest.mark.parametrize(
    ("value", "hint", "strict", "lenient"),
    [
        (True, bool, True, True),
        ("true", bool, NO, True),
        ("Off", bool, NO, False),
        (1, bool, NO, True),
        ("maybe", bool, NO, NO),
        (3, int, 3, 3),
        ("3", int, NO, 3),
        (3.0, int, NO, 3),
        (3.5, int, NO, NO),
        (True, int, NO, NO),
        ("many", int, NO, NO),
        (2, float, 2.0, 2.0),
        ("5e-7", float, NO, 5e-7),
        (False, float, NO, NO),
        ("x", str, "x", "x"),
        (Path("a/b"), str, "a/b", "a/b"),
        (3, str, NO, "3"),
        (["x"], str, NO, NO),
        ("a, b,", list[str], NO, ["a", "b"]),
        (("a", "b"), list[str], ["a", "b"], ["a", "b"]),
        (["a", "b"], tuple[str, ...], ("a", "b"), ("a", "b")),
        ("a,b", tuple[str, ...], NO, ("a", "b")),
        ([], tuple[str, ...], NO, NO),
        ([1], tuple[str, ...], NO, NO),
        ({"k": 1}, dict[str, Any], {"k": 1}, {"k": 1}),
        ("k", dict[str, Any], NO, NO),
        ("soft", Literal["binary", "soft"], "soft", "soft"),
        ("hard", Literal["binary", "soft"], NO, NO),
        ([1], Any, [1], [1]),
        (None, int | None, None, None),
        ("null", int | None, NO, None),
        ("None", str | None, "None", None),
        ("none", str, "none", "none"),  # not optional: the word itself
        (None, int, NO, NO),
        (["a"], str | list[str], ["a"], ["a"]),
        ("a,b", str | list[str], "a,b", "a,b"),  # the first type that takes it
        (["u", "v"], str | tuple[str, ...] | None, ("u", "v"), ("u", "v")),
    ],
)
def test_strict_and_lenient_on_the_same_inputs(
    value: Any, hint: Any, strict: Any, lenient: Any
) -> None:
    for is_lenient, expected in ((False, strict), (True, lenient)):
        if expected == NO:
            with pytest.raises(ValueError):
                convert(value, hint, lenient=is_lenient)
        else:
            got = convert(value, hint, lenient=is_lenient)
            assert got == expected and type(got) is type(expected), (is_lenient, got)


def test_the_error_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^may not be null$"):
        convert(None, int)
    with pytest.raises(ValueError, match=r"^expected int or null$"):
        convert("many", int | None, lenient=True)
    with pytest.raises(ValueError, match=r"^expected one of binary, soft$"):
        convert("hard", Literal["binary", "soft"])


def test_describe() -> None:
    assert describe(bool) == "bool"
    assert describe(str | list[str]) == "str or list"
    assert describe(str | tuple[str, ...] | None) == "str or a list of strings or null"
    assert describe(Literal["a", "b"] | None) == "one of a, b or null"


@pytest.mark.parametrize("hint", [set[str], tuple[int, int], complex])
def test_an_unsupported_type_is_a_programming_error(hint: Any) -> None:
    with pytest.raises(TypeError, match="not supported"):
        convert("x", hint, lenient=True)
