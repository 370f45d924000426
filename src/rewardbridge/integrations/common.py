"""A verifier built once per process from options, shared by the file-based integrations
(verl's ``compute_score``, OpenRLHF's ``reward_func``), whose frameworks call plain functions.

Defaults come from the environment so a framework config needs no code: ``REWARDBRIDGE_VERIFIER``
(default ``remote``) and ``REWARDBRIDGE_URL`` (default ``http://127.0.0.1:8000``, the address of
``rewardbridge serve``); ``REWARDBRIDGE_AUTH_TOKEN`` is sent as the remote verifier's token.
``REWARDBRIDGE_RECORD=FILE`` records every judgment there (``judging.recorder``, distillation).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from rewardbridge.judging.recorder import RECORD_ENV, JudgmentRecorder, RecordingVerifier
from rewardbridge.verifiers.base import Verifier
from rewardbridge.verifiers.registry import build_verifier

DEFAULT_URL = "http://127.0.0.1:8000"

_lock = threading.Lock()
_cache: dict[str, Verifier] = {}


def default_options() -> tuple[str, dict[str, Any]]:
    """(verifier name, options) from the environment."""
    name = os.environ.get("REWARDBRIDGE_VERIFIER", "remote")
    options: dict[str, Any] = {}
    if name == "remote":
        options["url"] = os.environ.get("REWARDBRIDGE_URL", DEFAULT_URL)
        if token := os.environ.get("REWARDBRIDGE_AUTH_TOKEN"):
            options["api_key"] = token
    return name, options


def shared_verifier(name: str | None = None, **options: Any) -> Verifier:
    """The process-wide verifier for (name, options), built on first use.

    ``name=None`` takes the name and options from the environment (explicit options win).
    """
    if name is None:
        name, env_options = default_options()
        options = {**env_options, **options}
    key = json.dumps([name, options], sort_keys=True, default=str)
    with _lock:
        if key not in _cache:
            verifier = build_verifier(name, **options)
            if record := os.environ.get(RECORD_ENV):
                verifier = RecordingVerifier(verifier, JudgmentRecorder(record))
            _cache[key] = verifier
        return _cache[key]


def close_shared_verifiers() -> None:
    with _lock:
        for verifier in _cache.values():
            verifier.close()
        _cache.clear()
