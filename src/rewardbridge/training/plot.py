"""Training curves from ``metrics.jsonl`` as one PNG (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardbridge.training.metrics import read_metrics

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reward (raw, mean ± std over judged samples)", ("reward_mean",)),
    ("fraction of groups with std 0", ("frac_groups_std0",)),
    ("KL to the initial policy", ("kl", "kl_reward")),
    ("response length (tokens)", ("response_length",)),
    ("seconds per step", ("time_generation_s", "time_verification_s", "time_update_s")),
    ("unjudged samples", ("unjudged",)),
)


def _smooth(values: Sequence[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_metrics(
    rows: Sequence[Mapping[str, Any]],
    out: str | Path,
    *,
    title: str = "",
    window: int = 5,
    extra_lines: Mapping[str, float] | None = None,
) -> Path:
    """Draw the panels that have data; ``extra_lines`` adds labelled horizontal lines to the
    reward panel (e.g. held-out accuracy before/after)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no metrics rows to plot (is metrics.jsonl empty?)")
    panels = [(t, [k for k in keys if any(k in r for r in rows)]) for t, keys in PANELS]
    panels = [(t, keys) for t, keys in panels if keys]
    cols = 2
    nrows = (len(panels) + 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(11, 3.2 * nrows), squeeze=False)
    for ax, (panel_title, keys) in zip(axes.flat, panels, strict=False):
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            steps, values = [p[0] for p in pts], [p[1] for p in pts]
            if key == "reward_mean":
                std = [r.get("reward_std") or 0.0 for r in rows if r.get(key) is not None]
                lo = [v - s for v, s in zip(values, std, strict=True)]
                hi = [v + s for v, s in zip(values, std, strict=True)]
                ax.fill_between(steps, lo, hi, alpha=0.15)
                ax.plot(steps, values, alpha=0.4, label="per step")
                ax.plot(steps, _smooth(values, window), label=f"mean of {window}")
                for label, y in (extra_lines or {}).items():
                    ax.axhline(y, linestyle="--", linewidth=1)
                    ax.annotate(label, (steps[0], y), fontsize=7, va="bottom")
            else:
                ax.plot(steps, values, label=key)
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_run(run_dir: str | Path, out: str | Path | None = None, **kw: Any) -> Path:
    """``RUN_DIR/metrics.jsonl`` -> ``RUN_DIR/curves.png`` (or ``out``)."""
    run = Path(run_dir)
    rows = read_metrics(run / "metrics.jsonl")
    return plot_metrics(rows, out or run / "curves.png", title=kw.pop("title", run.name), **kw)
