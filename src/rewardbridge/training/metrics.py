"""Per-step training metrics: which TRL/our keys go to ``OUTPUT_DIR/metrics.jsonl`` and the
console line. One JSON object per optimizer step, with a ``step`` field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# our name -> key in the trainer's logs
LOGGED_KEYS: dict[str, str] = {
    "reward_mean": "rb/reward_mean",
    "reward_std": "rb/reward_std",
    "reward_norm_mean": "rb/reward_norm_mean",
    "reward_norm_std": "rb/reward_norm_std",
    "frac_groups_std0": "rb/frac_groups_std0",
    "unjudged": "rb/unjudged",
    "advantage_abs_mean": "rb/advantage_abs_mean",
    "kl": "kl",
    "kl_reward": "rb/kl_reward",
    "response_length": "completions/mean_length",
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
    "time_generation_s": "rb/time_generation_s",
    "time_verification_s": "rb/time_verification_s",
    "time_step_s": "step_time",
    "canary_fpr": "rb/canary_fpr",  # live master-key probes judged YES / judged (canaries)
    "canary_probes": "rb/canary_probes",
}


def metrics_row(step: int, logs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The metrics.jsonl row for a trainer log, or None for logs that are not training steps."""
    if "rb/reward_mean" not in logs:
        return None
    row: dict[str, Any] = {"step": step}
    for name, key in LOGGED_KEYS.items():
        value = logs.get(key)
        if value is not None:
            row[name] = float(value)
    parts = ("time_step_s", "time_generation_s", "time_verification_s")
    if all(k in row for k in parts):
        row["time_update_s"] = max(
            0.0, row["time_step_s"] - row["time_generation_s"] - row["time_verification_s"]
        )
    return row


def console_line(row: Mapping[str, Any], max_steps: int | None = None) -> str:
    def f(key: str, fmt: str = ".3f") -> str:
        return "-" if row.get(key) is None else format(row[key], fmt)

    total = f"/{max_steps}" if max_steps else ""
    return (
        f"step {row['step']}{total} reward {f('reward_mean')}±{f('reward_std')} "
        f"std0 {f('frac_groups_std0', '.2f')} unjudged {f('unjudged', '.0f')} kl {f('kl', '.4f')} "
        f"len {f('response_length', '.1f')} | gen {f('time_generation_s', '.1f')}s "
        f"verify {f('time_verification_s', '.1f')}s update {f('time_update_s', '.1f')}s"
        + (f" | canary fpr {f('canary_fpr', '.2f')}" if "canary_probes" in row else "")
    )


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl (a torn last line is ignored)."""
    rows: list[dict[str, Any]] = []
    p = Path(path)
    if not p.exists():
        return rows
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def truncate_metrics(path: str | Path, last_step: int) -> None:
    """Drop rows after ``last_step`` (a resumed run rewrites them)."""
    p = Path(path)
    if p.exists():
        keep = [r for r in read_metrics(p) if r["step"] <= last_step]
        p.write_text("".join(json.dumps(r) + "\n" for r in keep))
