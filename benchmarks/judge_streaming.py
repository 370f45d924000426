"""Streaming loaders and the ``judge`` driver: memory and per-record overhead.

1. Memory: peak RSS of reading a generated JSONL of N judge items with ``iter_judge_items``
   (streamed) against the baseline ``load_judge_items`` (a list), each in a fresh process; the
   growth over the interpreter's RSS after imports is reported. Streaming must stay flat.
2. Driver overhead: ``judge_file`` (parse, verify, write + fsync per batch, resume bookkeeping)
   against the baseline of calling the same verifier on the same items already in memory, with a
   constant test verifier (so only the driver is timed) and with the paper's ``contains`` rule.

    python benchmarks/judge_streaming.py [--quick] [--rows N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.loaders import iter_judge_items, load_judge_items
from rewardbridge.judging import judge_file
from rewardbridge.verifiers.base import BaseVerifier, Verifier, VerifierResult
from rewardbridge.verifiers.registry import build_verifier


class ConstantVerifier(BaseVerifier):
    """Reward 1 for everything: times the driver, not a verifier."""

    name = "constant"

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        return [VerifierResult.ok(1.0) for _ in items]


def write_input(path: Path, n: int) -> None:
    row = (
        '{"id": "q%d", "question": "What is %d mod 97? Give the final answer.", "reference": "%d", '
        '"response": "Some work.\\nTherefore, the answer is %d", "label": true}\n'
    )
    with path.open("w") as f:
        f.writelines(row % (i, i, i % 97, i % 97) for i in range(n))


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_case(mode: str, path: Path) -> dict[str, Any]:
    """Run in a child process: RSS after imports, then peak RSS while reading."""
    base = max_rss_mb()
    start = time.perf_counter()
    n = sum(1 for _ in iter_judge_items(path)) if mode == "stream" else len(load_judge_items(path))
    seconds = time.perf_counter() - start
    return {"rows": n, "seconds": seconds, "rss_growth_mb": max_rss_mb() - base}


def run_memory_case(mode: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-case", mode, "--file", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def driver_case(path: Path, n: int, verifier: Verifier, batch_size: int) -> dict[str, Any]:
    items = load_judge_items(path, limit=n)
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        verifier.verify(items[i : i + batch_size])
    direct = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = judge_file(
            path, Path(tmp) / "out.jsonl", verifier, batch_size=batch_size, limit=n, progress=False
        )
        driven = time.perf_counter() - start
    assert summary.total == n == summary.by_status.get("judged"), summary
    return {
        "verifier": verifier.name,
        "rows": n,
        "batch_size": batch_size,
        "direct_items_per_s": n / direct,
        "judge_file_items_per_s": n / driven,
        "overhead_us_per_item": (driven - direct) / n * 1e6,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="50k rows, 20k judged")
    p.add_argument("--rows", type=int, help="rows in the generated file (default 1,000,000)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--memory-case", choices=["stream", "list"], help=argparse.SUPPRESS)
    p.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_case:
        print(json.dumps(memory_case(args.memory_case, args.file)))
        return 0

    rows = args.rows or (50_000 if args.quick else 1_000_000)
    judged = min(rows, 20_000 if args.quick else 200_000)
    results: dict[str, Any] = {"rows": rows, "judged_rows": judged}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        write_input(path, rows)
        results["file_mb"] = path.stat().st_size / 1e6
        results["memory"] = {mode: run_memory_case(mode, path) for mode in ("list", "stream")}
        results["driver"] = [
            driver_case(path, judged, ConstantVerifier(), 64),
            driver_case(path, judged, ConstantVerifier(), 1024),
            driver_case(path, judged, build_verifier("contains"), 64),
        ]

    mem = results["memory"]
    print(f"{rows:,} rows, {results['file_mb']:.0f} MB of JSONL")
    print(f"{'read':<28}{'rows/s':>10}{'RSS growth MB':>15}")
    for mode, label in (
        ("list", "load_judge_items (list)"),
        ("stream", "iter_judge_items (stream)"),
    ):
        r = mem[mode]
        print(f"{label:<28}{r['rows'] / r['seconds']:>10,.0f}{r['rss_growth_mb']:>15.1f}")
    print(f"\n{judged:,} rows judged")
    print(f"{'verifier':<10}{'batch':>6}{'direct/s':>11}{'judge_file/s':>14}{'overhead us':>13}")
    for d in results["driver"]:
        print(
            f"{d['verifier']:<10}{d['batch_size']:>6}{d['direct_items_per_s']:>11,.0f}"
            f"{d['judge_file_items_per_s']:>14,.0f}{d['overhead_us_per_item']:>13.1f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    flat = mem["stream"]["rss_growth_mb"] < 50
    print(f"\nstreaming memory flat (< 50 MB growth): {'yes' if flat else 'NO'}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
