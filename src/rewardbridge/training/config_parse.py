"""Recipe values -> typed dataclass fields, with errors that name the field.

``parse_section(cls, "algorithm", {"beta": "0.0"})`` coerces each value to the field's type
(bool/int/float/str/list/dict, optionals, unions), rejecting unknown keys with the keys the
section takes; ``apply_overrides`` turns ``--section.key VALUE`` flags into nested updates
(each VALUE read as YAML). Used by ``training/config.py``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, Union, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """An invalid recipe or override; the message names the field."""


def fail(name: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"{name}={value!r}: {what}")


def _convert(value: Any, target: Any) -> Any:
    origin = get_origin(target) or target
    if origin is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if origin is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    if origin is float:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    if origin is str:
        if isinstance(value, (list, dict)):
            raise ValueError
        return str(value)
    if origin is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueError
    if origin is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise ValueError
    raise ValueError


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """YAML/CLI value -> the field's type, failing with the field's name."""
    union = get_origin(hint) in (Union, types.UnionType)
    options = get_args(hint) if union else (hint,)
    optional = type(None) in options
    targets = [t for t in options if t is not type(None)]
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise fail(name, value, "may not be null")
    # A list value goes to a list type first; anything else to the first type that takes it.
    targets.sort(key=lambda t: (get_origin(t) or t) is not list if isinstance(value, list) else 0)
    for target in targets:
        try:
            return _convert(value, target)
        except (TypeError, ValueError):
            continue
    expected = " or ".join(getattr(t, "__name__", str(t)) for t in targets)
    raise fail(name, value, f"expected {expected}{' or null' if optional else ''}")


def parse_section(cls: type[Any], name: str, raw: Mapping[str, Any]) -> Any:
    if not isinstance(raw, Mapping):
        raise fail(name, raw, "must be a mapping of options")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{name}.{unknown[0]}: unknown option; {name} takes: {', '.join(sorted(known))}"
        )
    return cls(**{k: _coerce(f"{name}.{k}", v, hints[k]) for k, v in raw.items()})


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["--training.max_steps", "2", "--verifier.options.model", "x"]`` -> nested updates."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    items = list(overrides)
    i = 0
    while i < len(items):
        key = items[i]
        if not key.startswith("--") or "." not in key:
            raise ConfigError(f"{key}: overrides look like --section.key VALUE")
        key = key[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(items):
            value, i = items[i + 1], i + 2
        else:
            raise ConfigError(f"--{key}: missing value")
        import yaml

        parsed = yaml.safe_load(value) if value != "" else ""
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--{key}: {part} is not a section")
        node[parts[-1]] = parsed
    return out
