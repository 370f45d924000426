"""Verifiers by name. Entries are imported lazily so the core stays light.

``build_verifier(name, **options)`` passes options to the verifier's constructor; an option the
verifier does not take is an error that names it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from rewardbridge.verifiers.base import Verifier

# name -> (module, class, one-line description)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "contains": (
        "rewardbridge.verifiers.rules",
        "ContainsVerifier",
        "paper's rule-based binary reward: the reference occurs in the final step",
    ),
    "jaccard": (
        "rewardbridge.verifiers.rules",
        "JaccardVerifier",
        "paper's rule-based soft reward: token Jaccard similarity of final step and reference",
    ),
    "exact": (
        "rewardbridge.verifiers.rules",
        "ExactVerifier",
        "normalised exact match of the final answer and the reference",
    ),
    "math": (
        "rewardbridge.verifiers.math",
        "MathVerifier",
        "math-verify equivalence in a process pool with a wall-clock timeout per item",
    ),
    "generative": (
        "rewardbridge.verifiers.generative",
        "GenerativeVerifier",
        "the paper's LLM judge (local model or OpenAI-compatible server)",
    ),
    "cascade": (
        "rewardbridge.verifiers.cascade",
        "CascadeVerifier",
        "a rule verifier first, the generative judge only where the rule says no (TinyV)",
    ),
    "remote": (
        "rewardbridge.verifiers.remote",
        "RemoteVerifier",
        "a running 'rewardbridge serve' reward server",
    ),
}


def available_verifiers() -> dict[str, str]:
    """Names and one-line descriptions."""
    return {name: desc for name, (_, _, desc) in _REGISTRY.items()}


def verifier_class(name: str) -> type[Any]:
    try:
        module_name, class_name, _ = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown verifier {name!r}; choose one of: {', '.join(_REGISTRY)}"
        ) from None
    return getattr(importlib.import_module(module_name), class_name)


def build_verifier(name: str, **options: Any) -> Verifier:
    """Instantiate a verifier by name; ``None``-valued options are dropped."""
    cls = verifier_class(name)
    options = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            accepted = ", ".join(p for p in params if p != "self") or "none"
            raise ValueError(
                f"verifier {name!r} does not take option(s) {', '.join(unknown)} "
                f"(it takes: {accepted})"
            )
    verifier: Verifier = cls(**options)
    return verifier
