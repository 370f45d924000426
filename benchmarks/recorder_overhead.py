"""The cost of recording judgments (``judging/recorder.py``) per judgment.

Judgments are synthetic but shaped like RL rollouts: a 300-character question, a short
reference, a 1,500-character response of several lines, a generative verdict with p_yes/p_no.
``calls`` verifier calls of ``batch`` judgments each (16 = one step of the quickstart recipe,
64 = a server batch), all distinct, then a second pass of the same judgments (all duplicates).

Reported per judgment:

- ``hot_us``: wall time of ``record()`` on the caller's thread (what a training step or the
  server's batcher pays), measured against an empty loop in the same run;
- ``writer_us``: wall time from the first ``record`` to ``flush()`` returning, divided by the
  judgments (the background writer's throughput: building, hashing, JSON, append, one fsync
  per call), for new and for duplicate judgments;
- ``cpu_us``: process CPU time (all threads) per judgment, recording minus the empty loop;
- the file size per record and the dedup set's memory per key (tracemalloc).

    python benchmarks/recorder_overhead.py [--calls 200] [--batch 16] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from rewardbridge.data.example import JudgeItem
from rewardbridge.judging.recorder import JudgmentRecorder
from rewardbridge.verifiers.base import VerifierResult


def make_calls(calls: int, batch: int) -> list[tuple[list[JudgeItem], list[VerifierResult]]]:
    out = []
    for c in range(calls):
        items = [
            JudgeItem(
                id=f"p{c}#{k}",
                question=f"Question {c}: " + "context " * 36,
                reference=str(c * 7 + 3),
                response="\n".join(f"Step {s}: some reasoning " * 4 for s in range(12))
                + f"\nTherefore, the answer is {c * 7 + k}",
                metadata={"prompt_id": f"p{c}"},
            )
            for k in range(batch)
        ]
        results = [
            VerifierResult.ok(float(k % 2), judgment="YES" if k % 2 else "NO", p_yes=0.7, p_no=0.2)
            for k in range(batch)
        ]
        out.append((items, results))
    return out


def run(calls: int, batch: int) -> dict[str, float]:
    data = make_calls(calls, batch)
    n = calls * batch
    start, cpu = time.perf_counter(), time.process_time()
    for items, results in data:  # the empty loop: what the caller does anyway
        _ = (items, results)
    empty_s, empty_cpu = time.perf_counter() - start, time.process_time() - cpu

    out: dict[str, float] = {"calls": calls, "batch": batch, "judgments": n}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "judgments.jsonl"
        recorder = JudgmentRecorder(path)
        for label in ("new", "duplicate"):
            hot = 0.0
            start, cpu = time.perf_counter(), time.process_time()
            for step, (items, results) in enumerate(data):
                t0 = time.perf_counter()
                recorder.record(items, results, verifier="generative", step=step)
                hot += time.perf_counter() - t0
            recorder.flush()
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            out[f"hot_us_{label}"] = (hot - empty_s) / n * 1e6
            out[f"writer_us_{label}"] = wall / n * 1e6
            out[f"cpu_us_{label}"] = (used - empty_cpu) / n * 1e6
        recorder.close()
        assert recorder.stats.written == n and recorder.stats.duplicates == n
        out["bytes_per_record"] = path.stat().st_size / n

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keys = {hash((i, "k")) & (2**64 - 1) | 2**63 for i in range(100_000)}  # 64-bit ints
    out["dedup_bytes_per_key"] = (tracemalloc.get_traced_memory()[0] - before) / len(keys)
    tracemalloc.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rows = [run(args.calls, b) for b in args.batch]
    for r in rows:
        print(
            f"batch {r['batch']:>3}: record() {r['hot_us_new']:.1f} us/judgment on the caller "
            f"(duplicates {r['hot_us_duplicate']:.1f}); writer {r['writer_us_new']:.0f} us/new, "
            f"{r['writer_us_duplicate']:.0f} us/duplicate judgment (wall, fsync per call); "
            f"CPU {r['cpu_us_new']:.0f} us/new; {r['bytes_per_record']:.0f} B/record; "
            f"dedup {r['dedup_bytes_per_key']:.0f} B/key"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
