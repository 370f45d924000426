"""The package's layers import only downward, and no two packages import each other.

Layers, bottom first (docs/architecture.md):

    0  data, rewards, models      examples, loaders, corpora, pure math, model loading
       config_values              a config value -> a field's type (strict or lenient)
    1  verifiers                  result type, rules, judge, backends, typed configs
    2  judging, policy            the one record/store, recorder, canaries; policy sampling
    3  serving, evaluation, training
    4  integrations               TRL, verl, OpenRLHF adapters
    5  experiments                the demos
    6  cli                        parses, calls the library, returns an exit code

Every import counts, including those inside functions and module names written as strings
(lazy registries), so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rewardbridge

PACKAGE_ROOT = Path(rewardbridge.__file__).parent

LAYERS: dict[str, int] = {
    "data": 0,
    "rewards": 0,
    "models": 0,
    "config_values": 0,
    "verifiers": 1,
    "judging": 2,
    "policy": 2,
    "serving": 3,
    "evaluation": 3,
    "training": 3,
    "integrations": 4,
    "experiments": 5,
    "cli": 6,
}


def _unit(module: str) -> str | None:
    """'rewardbridge.verifiers.base' -> 'verifiers'; None for the package root itself."""
    parts = module.split(".")
    if parts[0] != "rewardbridge" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("rewardbridge.")
            and " " not in node.value
        ):
            found.add(node.value)
    return {name for name in found if name.startswith("rewardbridge.")}


def _edges() -> dict[tuple[str, str], list[str]]:
    """(from unit, to unit) -> the files that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        rel = path.relative_to(PACKAGE_ROOT)
        if len(rel.parts) == 1 and rel.stem == "__init__":
            continue  # the package root re-exports a few core names
        source = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for module in _imports(path):
            target = _unit(module)
            if target is not None and target != source:
                edges.setdefault((source, target), []).append(str(rel))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {
        p.parts[0] if len(p.parts) > 1 else p.stem
        for p in (f.relative_to(PACKAGE_ROOT) for f in PACKAGE_ROOT.rglob("*.py"))
    } - {"__init__"}
    assert units <= set(LAYERS), (
        f"give these a layer in docs/architecture.md: {units - set(LAYERS)}"
    )


def test_imports_only_go_down_or_sideways() -> None:
    upward = [
        f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]}) in {files}"
        for (source, target), files in _edges().items()
        if source in LAYERS and target in LAYERS and LAYERS[target] > LAYERS[source]
    ]
    assert not upward, "\n".join(upward)


def test_no_two_way_ties() -> None:
    edges = _edges()
    ties = sorted(
        f"{a} <-> {b}: {edges[(a, b)]} / {edges[(b, a)]}"
        for (a, b) in edges
        if a < b and (b, a) in edges
    )
    assert not ties, "\n".join(ties)


@pytest.mark.parametrize("path", sorted(PACKAGE_ROOT.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_over_400_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"{path.relative_to(PACKAGE_ROOT)} has {lines} lines: split it by topic"
