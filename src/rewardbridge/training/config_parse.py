"""Recipe values -> typed dataclass fields, with errors that name the field.

``parse_section(cls, "algorithm", {"beta": "0.0"})`` coerces each value to the field's type
(``config_values.convert``, lenient: "true", "3", "a,b" are parsed), rejecting unknown keys
with the keys the section takes; ``apply_overrides`` turns ``--section.key VALUE`` flags into
nested updates (each VALUE read as YAML). Used by ``training/config.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, get_type_hints

from rewardbridge.config_values import convert


class ConfigError(ValueError):
    """An invalid recipe or override; the message names the field."""


def fail(name: str, value: Any, what: str) -> ConfigError:
    return ConfigError(f"{name}={value!r}: {what}")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """YAML/CLI value -> the field's type (CLI strings parsed), failing with the field's name."""
    try:
        return convert(value, hint, lenient=True)
    except ValueError as exc:
        raise fail(name, value, str(exc)) from None


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
