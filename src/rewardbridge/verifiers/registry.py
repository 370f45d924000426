"""Verifiers by name: the class (imported lazily, so the core stays light) and its typed config.

``build_verifier(name, **options)`` validates the options through the verifier's config
(``verifiers/config.py``: an unknown option or a wrong value is an error that names it) and
passes the ones that differ from the defaults to the constructor. A new verifier is one line
here and one config class there; the CLI flags and recipe options follow from the config.
"""

from __future__ import annotations

import importlib
from typing import Any

from rewardbridge.verifiers.base import Verifier
from rewardbridge.verifiers.config import (
    CascadeConfig,
    ContainsConfig,
    ExactConfig,
    GenerativeConfig,
    JaccardConfig,
    MathConfig,
    RemoteConfig,
    VerifierOptions,
)

# name -> (module, class, config); the config's docstring is the one-line description
_REGISTRY: dict[str, tuple[str, str, type[VerifierOptions]]] = {
    "contains": ("rewardbridge.verifiers.rules", "ContainsVerifier", ContainsConfig),
    "jaccard": ("rewardbridge.verifiers.rules", "JaccardVerifier", JaccardConfig),
    "exact": ("rewardbridge.verifiers.rules", "ExactVerifier", ExactConfig),
    "math": ("rewardbridge.verifiers.math", "MathVerifier", MathConfig),
    "generative": ("rewardbridge.verifiers.generative", "GenerativeVerifier", GenerativeConfig),
    "cascade": ("rewardbridge.verifiers.cascade", "CascadeVerifier", CascadeConfig),
    "remote": ("rewardbridge.verifiers.remote", "RemoteVerifier", RemoteConfig),
}


def _entry(name: str) -> tuple[str, str, type[VerifierOptions]]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown verifier {name!r}; choose one of: {', '.join(_REGISTRY)}"
        ) from None


def available_verifiers() -> dict[str, str]:
    """Names and one-line descriptions."""
    return {name: (cfg.__doc__ or "").strip() for name, (_, _, cfg) in _REGISTRY.items()}


def verifier_config(name: str) -> type[VerifierOptions]:
    """The config class of a verifier."""
    return _entry(name)[2]


def verifier_configs() -> dict[str, type[VerifierOptions]]:
    return {name: cfg for name, (_, _, cfg) in _REGISTRY.items()}


def verifier_class(name: str) -> type[Any]:
    module_name, class_name, _ = _entry(name)
    return getattr(importlib.import_module(module_name), class_name)


def build_verifier(name: str, **options: Any) -> Verifier:
    """Instantiate a verifier by name; ``None``-valued options are not given."""
    return build_from_config(verifier_config(name).from_options(options))


def build_from_config(config: VerifierOptions) -> Verifier:
    """The verifier a ready config describes (``GenerativeConfig(reward="soft")``...)."""
    verifier: Verifier = verifier_class(config.verifier)(**config.changed())
    return verifier
