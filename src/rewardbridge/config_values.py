"""A raw config value (YAML, JSON, a CLI string) -> a dataclass field's annotated type.

``convert(value, hint)`` is strict: JSON types only (an int is taken for a float, a path for a
str, a list of strings for ``tuple[str, ...]``). ``lenient=True`` also parses what a recipe or a
``--section.key VALUE`` flag writes as text: ``"true"``/``"off"`` for a bool, ``"3"`` for an
int, ``"a,b"`` for a list, ``"none"``/``"null"`` for an optional field's null. Types: bool, int,
float, str, ``list``, ``tuple[str, ...]``, ``dict``, ``Literal``, ``Any`` and unions of them with
``None``. A value that fits none raises ``ValueError`` whose message is what is wrong (``may not
be null``, ``expected int or null``), for the caller to put behind the field's name; a type this
does not support raises ``TypeError``. Used by ``verifiers/config.py`` (strict) and
``training/config_parse.py`` (lenient).
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

_NO = object()
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def convert(value: Any, hint: Any, *, lenient: bool = False) -> Any:
    """``value`` as ``hint``'s type: the first member of a union that takes it."""
    union = get_origin(hint) in (Union, types.UnionType)
    options = get_args(hint) if union else (hint,)
    optional = type(None) in options
    if value is None or (
        lenient and optional and isinstance(value, str) and value.lower() in ("none", "null")
    ):
        if optional:
            return None
        raise ValueError("may not be null")
    for target in options:
        if target is not type(None):
            converted = _convert(value, target, lenient)
            if converted is not _NO:
                return converted
    raise ValueError(f"expected {describe(hint)}")


def describe(hint: Any) -> str:
    """``int | None`` -> ``int or null``; a Literal -> ``one of a, b``."""
    union = get_origin(hint) in (Union, types.UnionType)
    parts = []
    for t in get_args(hint) if union else (hint,):
        if get_origin(t) is Literal:
            parts.append("one of " + ", ".join(map(str, get_args(t))))
        elif t is type(None):
            parts.append("null")
        elif get_origin(t) is tuple:
            parts.append("a list of strings")
        else:
            parts.append(getattr(t, "__name__", str(t)))
    return " or ".join(parts)


def _convert(value: Any, target: Any, lenient: bool) -> Any:
    """``value`` as one (non-union) type, or ``_NO``."""
    origin = get_origin(target) or target
    if origin is Literal:
        return value if value in get_args(target) else _NO
    if target is Any:
        return value
    if origin is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if lenient and text in _TRUE:
            return True
        return False if lenient and text in _FALSE else _NO
    if origin is int or origin is float:
        if isinstance(value, bool) or not (lenient or isinstance(value, int | float)):
            return _NO
        if origin is int and isinstance(value, float) and not (lenient and value.is_integer()):
            return _NO
        try:
            return origin(value)
        except (TypeError, ValueError):
            return _NO
    if origin is str:
        if isinstance(value, str | os.PathLike):
            return os.fspath(value)
        return str(value) if lenient and not isinstance(value, list | dict) else _NO
    if origin is list or (origin is tuple and get_args(target) == (str, ...)):
        if lenient and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if origin is list:
            return list(value) if isinstance(value, list | tuple) else _NO
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        return tuple(value) if ok and value else _NO
    if origin is dict:
        return dict(value) if isinstance(value, Mapping) else _NO
    raise TypeError(f"config field type {target!r} is not supported")
