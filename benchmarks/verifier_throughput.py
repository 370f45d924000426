"""Generative verifier throughput on the embedded SmolLM2-135M judge: judgments per second.

64 items (16 questions x 4 one-line responses) with the paper's template: a ~200-token
instruction block (system message and template head), a 60-token question (a bundled sample
question cut to 60 tokens), a one-line response and reference. Methods, all on the same items:

- ``one_at_a_time``: one prompt per forward (no batching);
- ``batched``: left-padded batches of 16, last-position logits only (``prefix_sharing=False``);
- ``prefix_shared``: the same, with the KV cache of shared prompt prefixes computed once;
- ``generate_parse``: what frameworks often do: ``model.generate`` a few tokens (greedy, batches
  of 16) and parse YES/NO from the text.

Achieved GFLOP/s = FLOPs / time with FLOPs = 2 x (non-embedding parameters) per prompt token
actually computed (padding and tokens reused from a shared prefix not counted) + 2 x (vocab x
hidden) per position whose logits are computed; it is compared with the fp32 matmul peak measured
in the same run (``torch.matmul`` of two 2048 x 2048 matrices). The prefix-shared probabilities
are checked against the batched ones (max abs difference reported).

    python benchmarks/verifier_throughput.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rewardbridge.data.loaders import load_sample_examples
from rewardbridge.verifiers.backends.transformers_backend import TransformersBackend
from rewardbridge.verifiers.prompts import render_judge_messages

QUESTION_TOKENS = 60
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def make_conversations(tokenizer: Any, n_questions: int) -> list[list[dict[str, str]]]:
    """n_questions x 4 judge conversations; questions are sample questions cut to 60 tokens."""
    examples = [
        e
        for e in load_sample_examples(limit=2000)
        if len(tokenizer.encode(e.question, add_special_tokens=False)) >= QUESTION_TOKENS
    ][:n_questions]
    if len(examples) < n_questions:
        raise SystemExit(f"only {len(examples)} sample questions have {QUESTION_TOKENS} tokens")
    conversations = []
    for i, ex in enumerate(examples):
        ids = tokenizer.encode(ex.question, add_special_tokens=False)[:QUESTION_TOKENS]
        question = tokenizer.decode(ids)
        wrong = examples[(i + 1) % len(examples)].reference
        for response in (
            f"Therefore, the answer is {ex.reference}.",
            f"Therefore, the answer is {wrong}.",
            f"The answer is {ex.reference}",
            "I am not sure about this one.",
        ):
            conversations.append(render_judge_messages(question, ex.reference, response))
    return conversations


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = run()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 questions x 4 responses")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=3, help="generate_parse: tokens")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--methods",
        default="one_at_a_time,batched,prefix_shared,generate_parse",
        help="comma-separated subset to run (batched is always run: the baseline)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = set(args.methods.split(",")) | {"batched"}

    backend = TransformersBackend(device="cpu", batch_size=args.batch_size)
    model, tokenizer = backend.model, backend.tokenizer
    config = model.config
    head_flops = 2 * config.vocab_size * config.hidden_size  # per position read out
    body_params = (
        sum(p.numel() for p in model.parameters()) - config.vocab_size * config.hidden_size
    )
    conversations = make_conversations(tokenizer, 4 if args.quick else 16)
    prompts = [backend.encode(c) for c in conversations]
    n = len(prompts)
    print(
        f"{n} items; prompt tokens: mean {sum(map(len, prompts)) / n:.0f}, "
        f"non-embedding params {body_params / 1e6:.1f}M; torch threads {torch.get_num_threads()}"
    )
    backend.last_logprobs(prompts[:2], prefix_sharing=False)  # warm-up

    methods: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float, tokens: int, readouts: int) -> None:
        flops = 2 * body_params * tokens + head_flops * readouts
        methods[name] = {"judgments_per_s": n / seconds, "gflops": flops / seconds / 1e9}
        print(
            f"{name:15s} {n / seconds:7.2f} judgments/s  {flops / seconds / 1e9:7.1f} GFLOP/s "
            f"({seconds:.1f} s, {tokens} tokens computed)",
            flush=True,
        )

    def plain_one_by_one() -> None:
        for p in prompts:
            backend.last_logprobs([p], prefix_sharing=False)

    for name, run, share in (
        ("one_at_a_time", plain_one_by_one, False),
        ("batched", lambda: backend.last_logprobs(prompts, prefix_sharing=False), False),
        ("prefix_shared", lambda: backend.last_logprobs(prompts, prefix_sharing=True), True),
    ):
        if name not in wanted:
            continue
        backend.tokens_computed = 0
        out, seconds = timed(run)
        record(name, seconds, backend.tokens_computed, n)
        if name == "batched":
            batched = out
        if share:
            diff = (out.exp() - batched.exp()).abs().max().item()
            print(f"  prefix_shared vs batched: max |p difference| = {diff:.2e}")

    def generate_parse() -> tuple[int, int, int]:
        parsed = tokens = readouts = 0
        for start in range(0, n, args.batch_size):
            chunk = prompts[start : start + args.batch_size]
            ids, mask = backend._pad_left(chunk)
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=args.new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, ids.shape[1] :]
            steps = new.shape[1]
            tokens += int(mask.sum()) + len(chunk) * (steps - 1)
            readouts += len(chunk) * steps
            for text in tokenizer.batch_decode(new, skip_special_tokens=True):
                parsed += bool(_VERDICT.search(text))
        return parsed, tokens, readouts

    if "generate_parse" in wanted:
        (parsed, tokens, readouts), seconds = timed(generate_parse)
        record("generate_parse", seconds, tokens, readouts)
        print(f"  generate_parse found YES/NO in {parsed}/{n} generations")

    peak = matmul_peak_gflops()
    print(f"matmul peak     {peak:7.1f} GFLOP/s (fp32 2048x2048)")
    for name, result in methods.items():
        ratio = result["judgments_per_s"] / methods["batched"]["judgments_per_s"]
        print(f"{name} / batched = {ratio:.2f}x judgments/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"methods": methods, "matmul_peak_gflops": peak}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
