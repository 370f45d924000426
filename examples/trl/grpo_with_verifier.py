"""GRPO with TRL, rewarded by a rewardbridge verifier (the TRL integration end to end).

    python examples/trl/grpo_with_verifier.py --steps 2                        # rule verifier
    python examples/trl/grpo_with_verifier.py --verifier generative --steps 2  # the paper's judge
    python examples/trl/grpo_with_verifier.py --url http://127.0.0.1:8000      # a reward server

The dataset has a conversational ``prompt`` and a ``reference`` column; TRL passes every
column to the reward function, which reads ``reference`` by name and returns ``None`` for
completions the verifier could not judge (TRL leaves those out). With ``--url`` the async
reward function is used, so TRL overlaps the HTTP round trips with its other work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="policy model folder (default: embedded SmolLM2-135M)")
    parser.add_argument("--verifier", default="contains", help="verifier name (default: contains)")
    parser.add_argument("--url", help="use a running 'rewardbridge serve' at this URL instead")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=48)
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args(argv)

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardbridge.data.loaders import load_sample_examples
    from rewardbridge.integrations.trl import AsyncVerifierReward, VerifierReward
    from rewardbridge.models import prepare_default_model
    from rewardbridge.verifiers.registry import build_verifier

    examples = load_sample_examples(limit=args.examples)
    dataset = Dataset.from_list(
        [{"prompt": ex.messages(), "reference": ex.reference} for ex in examples]
    )
    if args.url:
        reward = AsyncVerifierReward(build_verifier("remote", url=args.url), name="verifier")
    else:
        reward = VerifierReward(build_verifier(args.verifier), name="verifier")

    config = GRPOConfig(
        output_dir=args.output_dir or tempfile.mkdtemp(prefix="rewardbridge-trl-"),
        max_steps=args.steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=args.max_completion_length,
        learning_rate=1e-6,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=str(args.model or prepare_default_model()),
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
    )
    trainer.train()
    for record in trainer.state.log_history:
        if "rewards/verifier/mean" in record:
            print(
                f"step {record.get('step')}: reward {record['rewards/verifier/mean']:.3f} "
                f"unjudged {record.get('verifier/unjudged', 0.0):.3f}"
            )
    reward.verifier.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
