"""RL-shaped judge inputs from the embedded policy: 8 questions x 8 samples, written once.

The quickstart's prompts (the bundled Multi-subject-RLVR slice, the paper's policy system
prompt) sampled from the embedded SmolLM2-135M-Instruct at temperature 1.0, as RL rollouts are:
``--max-new-tokens 32`` is the quickstart's completion length, 256 a realistic one. The file
feeds the RL workload of ``verifier_throughput.py`` and the dedup measurement there.

    python benchmarks/policy_samples.py --max-new-tokens 256 \\
        --out benchmarks/data/rl_policy_samples_256.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rewardbridge.data.loaders import load_sample_examples
from rewardbridge.policy.generation import generate_responses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    examples = load_sample_examples(limit=args.questions)
    start = time.perf_counter()
    responses = generate_responses(
        None, examples, n=args.samples, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    print(f"{args.questions} x {args.samples} samples in {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as fh:
        for ex, samples in zip(examples, responses, strict=True):
            row = {"id": ex.id, "question": ex.question, "reference": ex.reference}
            fh.write(json.dumps(row | {"responses": samples}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
