"""The distillation demo's measurements and report: the learning curve scored during training,
kappa with bootstrap intervals, per-domain metrics, ECE and reliability diagrams, master-key
false-positive rates, the goals of issue 13, ``summary.json`` and ``summary.md``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem

KINDS = (
    "paraphrase",
    "wrong_option",
    "other_reference",
    "near_miss",
    "truncated",
    "hedge",
    "master_key",
)

GOALS = {"test_kappa": 0.5, "heldout_kappa": 0.4, "master_key_fpr": 0.05, "heldout_gain": 0.2}


def _curve_records(data: Any, n: int) -> dict[str, list[Any]]:
    return {"test": list(data.test[:n]), "heldout": list(data.heldout[:n])}


def learning_curve(
    data: Any,
    config: Any,
    tokenizer: Any,
    base_model: str,
    *,
    progress: Callable[[str], None] = print,
    path: Path | None = None,
) -> tuple[list[dict[str, Any]], Callable[[int, Any], None]]:
    """(the list the points are appended to, the ``on_examples(n, model)`` hook that scores the
    curve subset, the first ``curve_items`` test and held-out records, at each ``config.curve``
    size); P(YES) as the constrained judge reads it, kappa at 0.5; each point is also written to
    ``path`` as it is measured."""
    import torch

    from rewardbridge.evaluation.agreement import binary_metrics
    from rewardbridge.models import resolve_dtype
    from rewardbridge.training.distill.prefix_sft import p_yes_scores, shared_prefix_length
    from rewardbridge.training.sft_data import default_render, judge_prompt_ids, judgment_token_ids

    render = default_render()
    targets = judgment_token_ids(tokenizer)
    subsets = _curve_records(data, config.curve_items)
    prompts = {
        name: [
            judge_prompt_ids(tokenizer, render(r.question, r.reference, r.final_step))
            for r in records
        ]
        for name, records in subsets.items()
    }
    every = [[*p, targets["YES"]] for ps in prompts.values() for p in ps]
    prefix_ids = every[0][: shared_prefix_length(every)]
    bf16 = resolve_dtype(config.dtype, "cpu") is torch.bfloat16
    pending = sorted(n for n in config.curve if 0 < n < len(data.train))
    points: list[dict[str, Any]] = []

    def on_examples(n: int, model: Any) -> None:
        if not pending or n < pending[0]:
            return
        while pending and n >= pending[0]:
            pending.pop(0)
        device = next(model.parameters()).device
        prefix = torch.tensor([prefix_ids], device=device)
        point: dict[str, Any] = {"examples": n}
        for name, records in subsets.items():
            scores = p_yes_scores(
                model,
                prefix,
                prompts[name],
                int(tokenizer.pad_token_id),
                targets["YES"],
                targets["NO"],
                bf16=bf16,
            )
            m = binary_metrics([bool(r.label) for r in records], [s >= 0.5 for s in scores])
            point[f"{name}_kappa"], point[f"{name}_accuracy"] = m.kappa, m.accuracy
        points.append(point)
        if path is not None:
            path.write_text(json.dumps(points, indent=2) + "\n")
        progress(f"learning curve: {point}")

    return points, on_examples


def _judged(
    items: Sequence[JudgeItem], results: Sequence[Any]
) -> tuple[list[bool], list[bool], list[float]]:
    from rewardbridge.evaluation.agreement import predicted_yes
    from rewardbridge.judging.records import soft_p_yes

    labels, preds, scores = [], [], []
    for item, result in zip(items, results, strict=True):
        pred = predicted_yes(result)
        score = soft_p_yes(result)
        if pred is None or item.label is None:
            continue
        labels.append(bool(item.label))
        preds.append(pred)
        scores.append(float(score) if score is not None else float(pred))
    return labels, preds, scores


def _set_row(items: Sequence[JudgeItem], results: Sequence[Any], folder: Path, title: str) -> Any:
    from rewardbridge.evaluation.agreement import verifier_report
    from rewardbridge.evaluation.bootstrap import bootstrap_kappa
    from rewardbridge.evaluation.reports import write_eval_report

    report = verifier_report(items, results)
    write_eval_report(report, folder, title=title)
    labels, preds, _ = _judged(items, results)
    ci = bootstrap_kappa(labels, preds)
    keys = [
        pred
        for item, (pred, _) in zip(items, _pairs(items, results), strict=True)
        if "master_key" in item.id and pred is not None
    ]
    return {
        "n": report["evaluated"],
        "judged": report["coverage"]["judged"],
        "accuracy": report["accuracy"],
        "f1": report["f1"],
        "kappa": report["kappa"],
        "kappa_ci95": [ci.low, ci.high],
        "ece": report["ece"],
        "yes_rate": (sum(preds) / len(preds)) if preds else None,
        "master_key_items": len(keys),
        "master_key_fpr_in_set": (sum(bool(k) for k in keys) / len(keys)) if keys else None,
        "per_domain": {
            d: {"n": m["n"], "accuracy": m["accuracy"], "kappa": m["kappa"]}
            for d, m in report["per_domain"].items()
        },
        "per_kind": per_kind(items, results),
    }


def kind_of(item_id: str) -> str:
    """The kind of response of a multi-domain item, from its id."""
    if item_id.startswith("hv-"):
        return "hardverify_math"
    if item_id.startswith("gsm8k-"):
        return "gsm8k_solution"
    return next((k for k in KINDS if f"-{k}-" in item_id), "other")


def per_kind(items: Sequence[JudgeItem], results: Sequence[Any]) -> dict[str, dict[str, int]]:
    """Correct and judged counts per kind of response."""
    out: dict[str, dict[str, int]] = {}
    for item, (pred, label) in zip(items, _pairs(items, results), strict=True):
        if pred is None or label is None:
            continue
        cell = out.setdefault(kind_of(item.id), {"correct": 0, "judged": 0})
        cell["correct"] += int(pred == bool(label))
        cell["judged"] += 1
    return dict(sorted(out.items()))


def _pairs(items: Sequence[JudgeItem], results: Sequence[Any]) -> list[tuple[Any, Any]]:
    from rewardbridge.evaluation.agreement import predicted_yes

    return [(predicted_yes(r), item.label) for item, r in zip(items, results, strict=True)]


def _audit_row(items: Sequence[JudgeItem], results: Sequence[Any], folder: Path) -> Any:
    from rewardbridge.data.master_keys import load_master_keys
    from rewardbridge.evaluation.audit import audit_results
    from rewardbridge.evaluation.reports import write_audit_report

    keys = load_master_keys()
    audit = audit_results(items, results, keys)
    write_audit_report(audit, folder, title="Master-key audit")
    nonblank = [k for k in keys if k.text.strip()]
    seen = {k.id for i, k in enumerate(nonblank) if i % 2 == 1}  # as in the training split

    def fpr(ids: set[str] | None) -> float | None:
        stats = [s for k, s in audit["per_key"].items() if ids is None or k in ids]
        judged = sum(s["judged"] for s in stats)
        return sum(s["false_positives"] for s in stats) / judged if judged else None

    unseen = {k for k in audit["per_key"] if k not in seen}
    return {"fpr": fpr(None), "fpr_seen_keys": fpr(seen), "fpr_unseen_keys": fpr(unseen)}


def _plots(out: Path, sets: Mapping[str, Sequence[JudgeItem]], runs: Mapping[str, Any]) -> None:
    from rewardbridge.evaluation.calibration import plot_reliability_diagram, reliability_bins

    for tag, results in runs.items():
        labels, scores = [], []
        for name in ("test", "heldout"):
            lab, _, sc = _judged(sets[name], results[name])
            labels += lab
            scores += sc
        plot_reliability_diagram(
            reliability_bins(labels, scores, 10),
            str(out / tag / "reliability.png"),
            title=f"P(YES), {tag}, test + held-out",
        )


def _plot_curve(curve: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in ("test", "heldout"):
        xs = [p["examples"] for p in curve if p.get(f"{name}_kappa") is not None]
        ys = [p[f"{name}_kappa"] for p in curve if p.get(f"{name}_kappa") is not None]
        ax.plot(xs, ys, marker="o", label=f"{name} subset")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("training examples")
    ax.set_ylabel("Cohen's kappa")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(
    out: Path,
    *,
    config: Mapping[str, Any],
    base_model: str,
    data: Mapping[str, Any],
    sets: Mapping[str, Sequence[JudgeItem]],
    zero: Mapping[str, Any],
    distilled: Mapping[str, Any],
    training: Mapping[str, Any],
    curve: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Every number of the demo into ``summary.json`` and ``summary.md``."""
    from rewardbridge.evaluation.agreement import binary_metrics

    rows: dict[str, Any] = {}
    for tag, results in (("zero_shot", zero), ("distilled", distilled)):
        folder = out / tag.replace("_", "-")
        rows[tag] = {
            name: _set_row(sets[name], results[name], folder / name, f"{name}, {tag}")
            for name in ("test", "heldout")
        }
        rows[tag]["audit"] = _audit_row(sets["audit"], results["audit"], folder / "audit")
    _plots(out, sets, {"zero-shot": zero, "distilled": distilled})

    # the learning curve: 0 = zero-shot, the end = the saved model, on the same subset
    n = int(config["curve_items"])
    ends = []
    for examples, results in ((0, zero), (int(data["train"]), distilled)):
        point: dict[str, Any] = {"examples": examples}
        for name in ("test", "heldout"):
            labels, preds, _ = _judged(sets[name][:n], results[name][:n])
            m = binary_metrics(labels, preds)
            point[f"{name}_kappa"], point[f"{name}_accuracy"] = m.kappa, m.accuracy
        ends.append(point)
    full_curve = [ends[0], *curve, ends[1]]
    if len(full_curve) > 1:
        _plot_curve(full_curve, out / "learning_curve.png")

    z, d = rows["zero_shot"], rows["distilled"]
    gain = (d["heldout"]["kappa"] or 0) - (z["heldout"]["kappa"] or 0)
    goals = {
        "test_kappa>=0.5": (d["test"]["kappa"] or 0) >= GOALS["test_kappa"],
        "heldout_kappa>=0.4": (d["heldout"]["kappa"] or 0) >= GOALS["heldout_kappa"],
        "master_key_fpr<5%": (d["audit"]["fpr"] if d["audit"]["fpr"] is not None else 1)
        < GOALS["master_key_fpr"],
        "heldout_gain>=0.2": gain >= GOALS["heldout_gain"],
    }
    summary = {
        "config": dict(config),
        "base_model": base_model,
        "data": dict(data),
        "training": dict(training),
        "zero_shot": z,
        "distilled": d,
        "heldout_kappa_gain": gain,
        "learning_curve": full_curve,
        "goals": goals,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(s: Mapping[str, Any]) -> str:
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    z, d, data = s["zero_shot"], s["distilled"], s["data"]
    lines = [
        "# Distillation demo",
        "",
        f"Student `{s['base_model']}`; {data['train']} training records ({data['train_yes']} "
        f"YES); test: {data['test']} records on {data['test_questions']} unseen questions; "
        f"held-out domains {', '.join(data['heldout_domains'])}: {data['heldout']} records.",
        "",
        "| verifier | set | judged | accuracy | F1 | kappa [95% CI] | ECE | YES rate |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, row in (("zero-shot", z), ("distilled", d)):
        for part in ("test", "heldout"):
            r = row[part]
            lo, hi = r["kappa_ci95"]
            lines.append(
                f"| {name} | {part} | {r['judged']} | {f(r['accuracy'])} | {f(r['f1'])} | "
                f"{f(r['kappa'])} [{f(lo)}, {f(hi)}] | {f(r['ece'])} | {f(r['yes_rate'])} |"
            )
    lines += ["", "Master-key audit FPR (all / seen in training / unseen keys):", ""]
    for name, row in (("zero-shot", z), ("distilled", d)):
        a = row["audit"]
        lines.append(
            f"- {name}: {pct(a['fpr'])} / {pct(a['fpr_seen_keys'])} / {pct(a['fpr_unseen_keys'])}"
        )
    lines += ["", "Per domain, kappa (accuracy), zero-shot -> distilled:", ""]
    for part in ("test", "heldout"):
        for domain, m in d[part]["per_domain"].items():
            zm = z[part]["per_domain"].get(domain, {})
            lines.append(
                f"- {part} / {domain} (n={m['n']}): {f(zm.get('kappa'))} ({f(zm.get('accuracy'))})"
                f" -> {f(m['kappa'])} ({f(m['accuracy'])})"
            )
    lines += ["", "Per kind of response, correct / judged, zero-shot -> distilled:", ""]
    for part in ("test", "heldout"):
        for kind, c in d[part]["per_kind"].items():
            zc = z[part]["per_kind"].get(kind, {})
            lines.append(
                f"- {part} / {kind}: {zc.get('correct')}/{zc.get('judged')} -> "
                f"{c['correct']}/{c['judged']}"
            )
    lines += ["", "Learning curve (kappa on the curve subset: test / held-out):", ""]
    for p in s["learning_curve"]:
        lines.append(f"- {p['examples']} examples: {f(p['test_kappa'])} / {f(p['heldout_kappa'])}")
    t = s["training"]
    lines += [
        "",
        f"Training: {t['steps']} steps, {t['seconds']} s, train loss {f(t['train_loss'])}, "
        f"dev loss {f(t['eval_loss'])}.",
        "",
        "Goals (issue 13): "
        + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in s["goals"].items())
        + f"; held-out kappa gain {f(s['heldout_kappa_gain'])}.",
    ]
    return "\n".join(lines) + "\n"
