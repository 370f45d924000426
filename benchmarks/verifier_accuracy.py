"""Accuracy of each verifier against labeled (question, reference, response) sets.

Verifiers: the rule baselines (``contains``, ``jaccard`` thresholded at 0.5, ``exact``, ``math``),
the generative judge (paper §2, binary reward Eq. 3; by default the embedded SmolLM2-135M-Instruct
zero-shot, or any OpenAI-compatible server with ``--base-url``) and the cascade (``math`` first,
the judge where it says no; composed from the two runs above by ``CascadeVerifier`` itself, so
the judge is not run twice).

Labeled sets (bundled in ``rewardbridge/data/corpora/``, see each PROVENANCE.md):

- ``hardverify_math``: HardVerify-Math pairs (TinyV), 500 items, an equivalent-but-rewritten
  correct answer and a wrong one per question;
- ``gsm8k``: GSM8K test x 4 model solutions with ``is_correct`` labels (OpenAI), 5,276 triples,
  ``--gsm8k-sample`` of them (seeded); response = the solution, reference = the number after
  "A:" in the ground truth;
- ``qwen25_math``: 100 MATH questions x 8 Qwen2.5-Math responses, label = Qwen's rule grader.

Metrics from scikit-learn (``rewardbridge.evaluation.agreement``) on the judged items only; an
unjudged item (empty response, unparsable reference, timeout) is counted and shown as coverage,
and ``acc_all`` counts it as wrong. A judged score >= 0.5 is a YES.

    python benchmarks/verifier_accuracy.py --json runs/bench/verifier_accuracy.json
    python benchmarks/verifier_accuracy.py --quick
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.labeled_sets import LABELED_SETS
from rewardbridge.evaluation.agreement import binary_metrics
from rewardbridge.verifiers.base import BaseVerifier, Verifier, VerifierResult
from rewardbridge.verifiers.cascade import CascadeVerifier, accepted_by_rule
from rewardbridge.verifiers.registry import build_verifier

RULES = ("contains", "jaccard", "exact", "math")
ALL_VERIFIERS = (*RULES, "generative", "cascade")


def subsample(items: list[JudgeItem], n: int | None, seed: int) -> list[JudgeItem]:
    if n is None or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


class Replay(BaseVerifier):
    """Results computed earlier, looked up by item id (to compose the cascade without rerunning)."""

    def __init__(self, name: str, results: dict[str, VerifierResult]) -> None:
        self.name = name
        self.results = results

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [self.results[item.id] for item in items]


def normalized_from_probabilities(result: VerifierResult) -> VerifierResult:
    """p_yes / (p_yes + p_no) from a result's summed variant probabilities (the normalised soft
    reward of ``judgment.py``), so one forward gives both the binary and the normalised row."""
    p_yes, p_no = result.p_yes, result.p_no
    if p_yes is None or p_no is None or p_yes + p_no <= 0.0:
        return result
    return VerifierResult.ok(
        p_yes / (p_yes + p_no),
        judgment=result.judgment,
        p_yes=p_yes,
        p_no=p_no,
        stage=result.stage,
        latency_s=result.latency_s,
    )


def run_verifier(
    verifier: Verifier, items: list[JudgeItem], chunk: int, label: str
) -> tuple[list[VerifierResult], float]:
    from tqdm import tqdm

    results: list[VerifierResult] = []
    start = time.perf_counter()
    with tqdm(total=len(items), desc=label, unit="item", leave=False, file=sys.stderr) as bar:
        for lo in range(0, len(items), chunk):
            batch = items[lo : lo + chunk]
            results += verifier.verify(batch)
            bar.update(len(batch))
    return results, time.perf_counter() - start


def score_row(
    dataset: str,
    scope: str,
    name: str,
    items: list[JudgeItem],
    results: list[VerifierResult],
    seconds: float,
) -> dict[str, Any]:
    judged = [
        (it.label, r.score >= 0.5)
        for it, r in zip(items, results, strict=True)
        if r.score is not None
    ]
    metrics = binary_metrics([bool(t) for t, _ in judged], [p for _, p in judged])
    correct_all = sum(1 for t, p in judged if t == p)
    return {
        "dataset": dataset,
        "scope": scope,
        "verifier": name,
        "n": len(items),
        "judged": len(judged),
        "coverage": len(judged) / len(items) if items else None,
        "accuracy": metrics.accuracy,
        "f1": metrics.f1,
        "kappa": metrics.kappa,
        "precision": metrics.precision,
        "recall": metrics.recall,
        "acc_all": correct_all / len(items) if items else None,
        "confusion": {"tn": metrics.tn, "fp": metrics.fp, "fn": metrics.fn, "tp": metrics.tp},
        "seconds": round(seconds, 3),
        "items_per_s": len(items) / seconds if seconds > 0 else None,
    }


def build(name: str, args: argparse.Namespace) -> Verifier:
    if name == "math":
        return build_verifier("math", workers=args.math_workers, timeout=args.math_timeout)
    if name == "generative":
        options: dict[str, Any] = {
            "model": args.model,
            "base_url": args.base_url,
            "served_model": args.served_model,
            "reward": "binary",
            "template": args.template,
            "batch_size": args.batch_size,
        }
        return build_verifier("generative", **options)
    return build_verifier(name)


def evaluate_dataset(
    dataset: str, items: list[JudgeItem], verifiers: Sequence[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Rules on every item; the judge (and the cascade) on a seeded sample, with every verifier
    also scored on that sample so the rows compare like with like."""
    rows: list[dict[str, Any]] = []
    runs: dict[str, tuple[dict[str, VerifierResult], float]] = {}
    wants_judge = "generative" in verifiers or "cascade" in verifiers
    sample = subsample(items, args.generative_limit, args.seed + 1) if wants_judge else []
    for name in verifiers:
        if name == "cascade" or (name == "generative" and not sample):
            continue
        todo = sample if name == "generative" else items
        verifier = build(name, args)
        try:
            results, seconds = run_verifier(verifier, todo, args.chunk, f"{dataset}/{name}")
        finally:
            verifier.close()
        runs[name] = ({it.id: r for it, r in zip(todo, results, strict=True)}, seconds / len(todo))
        print(f"  {dataset:16s} {name:10s} {len(todo)} items in {seconds:.1f} s", file=sys.stderr)
        if name != "generative":
            rows.append(score_row(dataset, "all", name, items, results, seconds))
        else:  # the same forward read with the normalised soft reward, thresholded at 0.5
            runs["generative p(yes)>p(no)"] = (
                {i: normalized_from_probabilities(r) for i, r in runs[name][0].items()},
                runs[name][1],
            )
    if not sample:
        return rows
    scope = "judge sample"
    for name, (by_id, per_item) in runs.items():
        results = [by_id[it.id] for it in sample]
        rows.append(score_row(dataset, scope, name, sample, results, per_item * len(sample)))
    if "cascade" in verifiers and {"math", "generative"} <= runs.keys():
        (math_by_id, math_per), (gen_by_id, gen_per) = runs["math"], runs["generative"]
        cascade = CascadeVerifier(Replay("math", math_by_id), judge=Replay("generative", gen_by_id))
        results = cascade.verify(sample)
        escalated = sum(1 for it in sample if not accepted_by_rule(math_by_id[it.id]))
        # the rule on every item plus the judge on the items it did not accept
        seconds = math_per * len(sample) + gen_per * escalated
        row = score_row(dataset, scope, "cascade", sample, results, seconds)
        row["escalated"] = escalated
        rows.append(row)
    return rows


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | items | verifier | n | judged | coverage | accuracy | F1 | kappa "
        "| acc (unjudged=wrong) | items/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['scope']} | {r['verifier']} | {r['n']} | {r['judged']} "
            f"| {fmt(r['coverage'])} "
            f"| {fmt(r['accuracy'])} | {fmt(r['f1'])} | {fmt(r['kappa'])} | {fmt(r['acc_all'])} "
            f"| {fmt(r['items_per_s'], 1)} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write all rows and the configuration here")
    p.add_argument("--quick", action="store_true", help="40 items per dataset (a fast check)")
    p.add_argument("--limit", type=int, help="at most this many items per dataset (seeded sample)")
    p.add_argument(
        "--gsm8k-sample",
        type=int,
        default=400,
        help="GSM8K triples to sample of 5,276 (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--datasets",
        nargs="+",
        choices=list(LABELED_SETS),
        default=["hardverify_math", "gsm8k", "qwen25_math"],
    )
    p.add_argument("--verifiers", nargs="+", choices=ALL_VERIFIERS, default=list(ALL_VERIFIERS))
    p.add_argument("--model", help="generative judge: model folder (default: embedded 135M)")
    p.add_argument("--base-url", action="append", help="generative judge: OpenAI-compatible server")
    p.add_argument("--served-model", help="generative judge: model name on the server")
    p.add_argument("--template", default="paper", help="judge template (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="generative: items per model batch")
    p.add_argument(
        "--generative-limit",
        type=int,
        default=60,
        help="items per dataset the judge sees (seeded sample; CPU time; "
        "default: %(default)s; 0 = all)",
    )
    p.add_argument("--chunk", type=int, default=64, help="items per verify() call")
    p.add_argument("--math-workers", type=int, default=2)
    p.add_argument("--math-timeout", type=float, default=5.0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    limit = 40 if args.quick else args.limit
    if args.quick:
        args.generative_limit = min(args.generative_limit or 8, 8)
    if args.generative_limit == 0:
        args.generative_limit = None
    rows: list[dict[str, Any]] = []
    sizes: dict[str, int] = {}
    started = time.perf_counter()
    for dataset in args.datasets:
        items = LABELED_SETS[dataset](None)
        if dataset == "gsm8k":
            items = subsample(items, args.gsm8k_sample, args.seed)
        items = subsample(items, limit, args.seed)
        sizes[dataset] = len(items)
        print(
            f"{dataset}: {len(items)} items, {sum(bool(i.label) for i in items)} labeled YES",
            file=sys.stderr,
        )
        rows += evaluate_dataset(dataset, items, args.verifiers, args)
    table = markdown_table(rows)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        payload = {
            "config": config,
            "sizes": sizes,
            "rows": rows,
            "wall_s": round(time.perf_counter() - started, 1),
            "table": table,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
