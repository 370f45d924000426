"""Throughput of the math verifier: the process pool (all cores) against one process.

Four runs of one batch: in the calling process (``workers=0``), a pool of one worker (the cost
of shipping items to a process), and a pool of all cores twice: with one round trip per item
(``process_pool.MAX_CHUNK = 1``, the pool before chunking) and with items sent in chunks (the
default). The parent's CPU time per item in the pool runs is the round-trip cost.

The batch: math-verify's 268 regression pairs, the 800 (reference, response) pairs of
corpora/qwen25_math_rm_samples (whole Qwen2.5-Math chain-of-thought responses) and the 500
HardVerify-Math pairs, each judged once (no repeats: math-verify caches parses). All runs judge
the same batch with the same verifier settings; the pool's start-up (worker processes importing
math-verify) is timed separately and not counted in items/s; every run first judges one item
untimed, so first-call set-up (regexes, the LaTeX parser) is not counted either. The verdicts
of the in-process run and the full pool must be identical (a pool that changes verdicts is a bug:
exit 1); agreement with the Qwen rule labels is reported.

    python benchmarks/math_verifier_throughput.py [--quick] [--workers N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers import process_pool
from rewardbridge.verifiers.base import Status, VerifierResult
from rewardbridge.verifiers.math import MathVerifier

REPO = Path(__file__).resolve().parents[1]
CORPORA = "src/rewardbridge/data/corpora"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_pairs() -> list[JudgeItem]:
    """Every (reference, response) pair of the three sources, in a fixed order."""
    items: list[JudgeItem] = []
    cases = _jsonl(REPO / "tests/data/math_equivalence_cases/math_verify_test_cases.jsonl")
    for k, row in enumerate(cases):
        items.append(JudgeItem(f"mv-{k}", "", row["gold"], row["pred"], bool(row["expected"])))
    for row in _jsonl(REPO / CORPORA / "qwen25_math_rm_samples/math_cot_100.jsonl"):
        for j, (response, score) in enumerate(zip(row["response"], row["score"], strict=True)):
            items.append(
                JudgeItem(
                    f"qwen-{row['idx']}-{j}",
                    row["question"],
                    row["gt"],
                    response,
                    bool(score),
                    domain="qwen",
                )
            )
    for k, row in enumerate(_jsonl(REPO / CORPORA / "hardverify_math/HardVerify-Math_pairs.jsonl")):
        items.append(
            JudgeItem(
                f"hv-{k}", row["question"], row["ground_truth"], row["response"], bool(row["label"])
            )
        )
    return items


def _spread(items: list[JudgeItem], n: int) -> list[JudgeItem]:
    """n items taken evenly across the sources (for --quick)."""
    step = max(1, len(items) // n)
    return items[::step][:n]


def timed_run(verifier: MathVerifier, items: list[JudgeItem]) -> tuple[list[VerifierResult], float]:
    start = time.perf_counter()
    results = verifier.verify(items)
    return results, time.perf_counter() - start


def pool_run(workers: int, timeout: float, items: list[JudgeItem], chunk: int) -> dict[str, Any]:
    """A pool of ``workers`` with at most ``chunk`` items per task (1: a round trip per item)."""
    saved, process_pool.MAX_CHUNK = process_pool.MAX_CHUNK, chunk
    try:
        with MathVerifier(workers=workers, timeout=timeout) as pool:
            startup_s = timed_run(pool, items[:1])[1]  # starts the workers
            cpu = time.process_time()
            results, seconds = timed_run(pool, items)
            cpu = time.process_time() - cpu
    finally:
        process_pool.MAX_CHUNK = saved
    return {"results": results, "s": seconds, "startup_s": startup_s, "parent_cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 items instead of all")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="pool processes (default: all cores, %(default)s here)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per item")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    items = load_pairs()
    if args.quick:
        items = _spread(items, 120)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    with MathVerifier(workers=0, timeout=args.timeout) as single:
        timed_run(single, items[:1])  # math-verify's first call builds its parsers
        cpu_start = time.process_time()
        single_results, single_s = timed_run(single, items)
        single_cpu_s = time.process_time() - cpu_start
    one_worker_s = pool_run(1, args.timeout, items, process_pool.MAX_CHUNK)["s"]
    unchunked = pool_run(args.workers, args.timeout, items, 1)
    chunked = pool_run(args.workers, args.timeout, items, process_pool.MAX_CHUNK)
    pool_results, pool_s, startup_s = chunked["results"], chunked["s"], chunked["startup_s"]

    same = sum(a.score == b.score for a, b in zip(single_results, pool_results, strict=True))
    qwen = [(i, r) for i, r in zip(items, pool_results, strict=True) if i.domain == "qwen"]
    qwen_agree = sum(r.score == float(bool(i.label)) for i, r in qwen)
    timeouts = sum(r.status is Status.TIMEOUT for r in pool_results)
    report = {
        "items": len(items),
        "cpu_count": os.cpu_count(),
        "workers": args.workers,
        "load_avg_1m_before": round(load, 2),
        "single_process_s": round(single_s, 3),
        "single_process_items_per_s": round(len(items) / single_s, 1),
        "single_process_cpu_ms_per_item": round(1000 * single_cpu_s / len(items), 2),
        "one_worker_pool_items_per_s": round(len(items) / one_worker_s, 1),
        "pool_startup_s": round(startup_s, 3),
        "pool_s": round(pool_s, 3),
        "pool_items_per_s": round(len(items) / pool_s, 1),
        "speedup": round(single_s / pool_s, 2),
        "max_chunk": process_pool.MAX_CHUNK,
        "pool_parent_cpu_ms_per_item": round(1000 * chunked["parent_cpu_s"] / len(items), 2),
        "unchunked_pool_items_per_s": round(len(items) / unchunked["s"], 1),
        "unchunked_speedup": round(single_s / unchunked["s"], 2),
        "unchunked_parent_cpu_ms_per_item": round(1000 * unchunked["parent_cpu_s"] / len(items), 2),
        "verdicts_identical": same == len(items),
        "pool_timeouts": timeouts,
        "qwen_label_agreement": round(qwen_agree / len(qwen), 3) if qwen else None,
        "quick": args.quick,
    }
    print(
        f"{len(items)} items; in-process: {report['single_process_items_per_s']} items/s; "
        f"pool of 1: {report['one_worker_pool_items_per_s']} items/s; "
        f"pool of {args.workers}: {report['pool_items_per_s']} items/s "
        f"(x{report['speedup']} vs in-process; start-up {report['pool_startup_s']} s); "
        f"unchunked pool: {report['unchunked_pool_items_per_s']} items/s "
        f"(x{report['unchunked_speedup']}); parent CPU ms/item chunked "
        f"{report['pool_parent_cpu_ms_per_item']} vs {report['unchunked_parent_cpu_ms_per_item']}; "
        f"identical verdicts: {report['verdicts_identical']}; load {load:.2f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["verdicts_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
