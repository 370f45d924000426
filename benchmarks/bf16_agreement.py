"""Do bfloat16 and float32 judges agree? The embedded SmolLM2-135M generative verifier (paper
template, final step, constrained YES/NO) on the labeled sets, once per dtype, same items.

Reports per set: the share of identical binary judgments; the largest difference of p(YES) and
of the soft reward (Eq. 4: p_yes when the judgment is YES, else 1 - p_no; it jumps where a
near-tie flips the judgment, so its largest difference is also given over the items whose
judgment agrees); and each dtype's judging rate (items/s, wall time of ``verify``
in this process; the two dtypes alternate per set so machine load hits both alike).

    python benchmarks/bf16_agreement.py [--per-set N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rewardbridge.data.labeled_sets import LABELED_SETS
from rewardbridge.verifiers.generative import GenerativeVerifier

DTYPES = ("float32", "bfloat16")


def spread(items: list[Any], n: int) -> list[Any]:
    """n items spread evenly over the set (every k-th), so each subset covers all its sources."""
    if n <= 0 or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-set", type=int, default=800, help="items per set (0: all)")
    parser.add_argument("--sets", default=",".join(LABELED_SETS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    judges = {d: GenerativeVerifier(reward="soft", device="cpu", dtype=d) for d in DTYPES}
    report: dict[str, Any] = {"sets": {}}
    totals = {"items": 0, "same": 0, "seconds": dict.fromkeys(DTYPES, 0.0)}
    worst: dict[str, float] = {}
    for k, name in enumerate(args.sets.split(",")):
        items = spread(LABELED_SETS[name](None), args.per_set)
        results, seconds = {}, {}
        for d in DTYPES if k % 2 == 0 else DTYPES[::-1]:
            start = time.perf_counter()
            results[d] = judges[d].verify(items)
            seconds[d] = time.perf_counter() - start
            totals["seconds"][d] += seconds[d]  # type: ignore[index]
        pairs = list(zip(results["float32"], results["bfloat16"], strict=True))
        judged = [(a, b) for a, b in pairs if a.judged and b.judged]
        same = sum(a.judgment == b.judgment for a, b in judged)
        diffs = [abs((a.score or 0.0) - (b.score or 0.0)) for a, b in judged]
        agreeing = [d for d, (a, b) in zip(diffs, judged, strict=True) if a.judgment == b.judgment]
        p_yes_diffs = [abs((a.p_yes or 0.0) - (b.p_yes or 0.0)) for a, b in judged]
        row = {
            "items": len(items),
            "judged_both": len(judged),
            "same_judgment": same / max(len(judged), 1),
            "max_p_yes_diff": max(p_yes_diffs, default=0.0),
            "max_soft_diff": max(diffs, default=0.0),
            "max_soft_diff_same_judgment": max(agreeing, default=0.0),
            "mean_soft_diff": sum(diffs) / max(len(diffs), 1),
            **{f"items_per_s@{d}": len(items) / seconds[d] for d in DTYPES},
        }
        report["sets"][name] = row
        totals["items"] += len(judged)  # type: ignore[operator]
        totals["same"] += same  # type: ignore[operator]
        for key in ("max_p_yes_diff", "max_soft_diff", "max_soft_diff_same_judgment"):
            worst[key] = max(worst.get(key, 0.0), row[key])
        print(
            f"{name:16s} {len(items):5d} items  same judgment {100 * row['same_judgment']:.2f}%  "
            f"max |p_yes diff| {row['max_p_yes_diff']:.4f}  fp32 {row['items_per_s@float32']:.1f}"
            f"/s  bf16 {row['items_per_s@bfloat16']:.1f}/s",
            flush=True,
        )
    secs = totals["seconds"]
    report["overall"] = {
        "judged_both": totals["items"],
        "same_judgment": totals["same"] / max(totals["items"], 1),  # type: ignore[operator]
        **worst,
        "bf16_speedup": secs["float32"] / secs["bfloat16"],  # type: ignore[index]
    }
    print(json.dumps(report["overall"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
