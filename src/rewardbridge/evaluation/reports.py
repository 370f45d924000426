"""Write evaluation and audit results as a JSON file and a Markdown page (plus the reliability
diagram PNG for an evaluation). The dicts come from ``agreement.verifier_report`` and
``audit.audit_results``; this module only formats them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (visible whitespace, no pipes or newlines)."""
    shown = json.dumps(text, ensure_ascii=False)[1:-1]
    return f"`{shown.replace('|', '¦')}`" if shown.strip() else f"`{shown}` (whitespace)"


def write_json(data: Mapping[str, Any], path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def _metrics_table(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| | n | accuracy | precision | recall | F1 | kappa |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {name} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['precision'])} | "
            f"{_fmt(m['recall'])} | {_fmt(m['f1'])} | {_fmt(m['kappa'])} |"
        )
    return lines


def eval_markdown(report: Mapping[str, Any], *, title: str = "Verifier evaluation") -> str:
    cov = report["coverage"]
    lines = [f"# {title}", ""]
    if report.get("verifier"):
        lines += [f"Verifier: `{report['verifier']}`", ""]
    if report.get("input"):
        lines += [f"Input: `{report['input']}`", ""]
    unjudged = ", ".join(f"{k}: {v}" for k, v in cov["unjudged_by_status"].items()) or "none"
    lines += [
        "## Coverage",
        "",
        f"{cov['judged']} of {cov['items']} items judged ({_pct(cov['fraction_judged'])}); "
        f"unjudged: {unjudged}. Unjudged and unlabeled items are left out of every metric "
        f"({report['excluded_unjudged_or_unlabeled']} here), never counted as NO.",
        "",
        f"## Against labels (YES when score >= {report['threshold']})",
        "",
        *_metrics_table({"all": report}),
        "",
        "Confusion matrix (rows: label, columns: verifier):",
        "",
        "| | verifier NO | verifier YES |",
        "|---|---:|---:|",
        f"| label NO | {report['tn']} | {report['fp']} |",
        f"| label YES | {report['fn']} | {report['tp']} |",
        "",
    ]
    if report.get("per_domain"):
        lines += ["## Per domain", "", *_metrics_table(report["per_domain"]), ""]
    cal = report["calibration"]
    lines += [
        "## Calibration of P(YES)",
        "",
        f"ECE = {_fmt(report['ece'])} over {cal['n']} labeled, judged items "
        f"({cal['n_bins']} equal-width bins).",
        "",
        "![reliability diagram](reliability.png)",
        "",
        "| bin | items | mean P(YES) | fraction labeled YES |",
        "|---|---:|---:|---:|",
    ]
    for b in cal["bins"]:
        if b["count"]:
            lines.append(
                f"| [{b['low']:.1f}, {b['high']:.1f}) | {b['count']} | "
                f"{_fmt(b['confidence'])} | {_fmt(b['frequency'])} |"
            )
    if "against" in report:
        a = report["against"]
        lines += [
            "",
            "## Against the second verifier",
            "",
            f"Verifier: `{report.get('against_verifier', '?')}`. On the {a['both_judged']} items "
            f"both judged: Cohen's kappa {_fmt(a['kappa'])}, raw agreement "
            f"{_pct(a['agreement'])}. Its coverage: {a['coverage']['judged']} of "
            f"{a['coverage']['items']} judged.",
            "",
            *_metrics_table({"second verifier vs labels": a["vs_labels"]}),
        ]
    return "\n".join(lines) + "\n"


def write_eval_report(
    report: Mapping[str, Any], report_dir: str | Path, *, title: str = "Verifier evaluation"
) -> dict[str, Path]:
    """``report.json``, ``report.md`` and ``reliability.png`` in ``report_dir``."""
    from rewardbridge.evaluation.calibration import ReliabilityBin, plot_reliability_diagram

    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(report, folder / "report.json")}
    bins = [ReliabilityBin(**b) for b in report["calibration"]["bins"]]
    paths["png"] = folder / "reliability.png"
    plot_reliability_diagram(bins, str(paths["png"]), title=f"{title}: ECE {_fmt(report['ece'])}")
    paths["md"] = folder / "report.md"
    paths["md"].write_text(eval_markdown(report, title=title), encoding="utf-8")
    return paths


def audit_markdown(audit: Mapping[str, Any], *, title: str = "Master-key audit") -> str:
    o = audit["overall"]
    lines = [f"# {title}", ""]
    if audit.get("verifier"):
        lines += [f"Verifier: `{audit['verifier']}`", ""]
    lines += [
        f"Each probe is the whole response to each of {audit['questions']} questions; every "
        "such response is wrong, so YES is a false positive. FPR = YES / judged.",
        "",
        f"**Overall false-positive rate: {_pct(o['fpr'])}** ({o['false_positives']} of "
        f"{o['judged']} judged; {o['rejected_not_judged']} rejected as empty, not judged; "
        f"{sum(o['failed'].values())} failed).",
        "",
        "## Per master key (all variants)",
        "",
        "| key | items | judged | false positives | FPR | rejected (not judged) | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    per_key = sorted(audit["per_key"].items(), key=lambda kv: -(kv[1]["fpr"] or 0))
    for _, s in per_key:
        lines.append(
            f"| {_cell(s['key'])} | {s['items']} | {s['judged']} | {s['false_positives']} | "
            f"{_pct(s['fpr']) if s['judged'] else 'rejected (not judged)'} | "
            f"{s['rejected_not_judged']} | {sum(s['failed'].values())} |"
        )
    lines += [
        "",
        "## Per variant",
        "",
        "| key id | variant | judged | FPR | rejected (not judged) |",
        "|---|---|---:|---:|---:|",
    ]
    for v in audit["per_variant"]:
        lines.append(
            f"| {v['key_id']} | {v['variant']} | {v['judged']} | {_pct(v['fpr'])} | "
            f"{v['rejected_not_judged']} |"
        )
    lines += ["", "## Worst cases (highest P(YES) among false positives)", ""]
    if not audit["worst_cases"]:
        lines.append("No false positives.")
    else:
        lines += ["| response | reference | P(YES) | question |", "|---|---|---:|---|"]
        for w in audit["worst_cases"]:
            lines.append(
                f"| {_cell(w['response'])} | {_cell(w['reference'])} | "
                f"{_fmt(w['p_yes'] if w['p_yes'] is not None else w['score'])} | "
                f"{_cell(w['question'][:80])} |"
            )
    return "\n".join(lines) + "\n"


def write_audit_report(
    audit: Mapping[str, Any], report_dir: str | Path, *, title: str = "Master-key audit"
) -> dict[str, Path]:
    """``audit.json`` and ``audit.md`` in ``report_dir``."""
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(audit, folder / "audit.json"), "md": folder / "audit.md"}
    paths["md"].write_text(audit_markdown(audit, title=title), encoding="utf-8")
    return paths
