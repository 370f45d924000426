"""How far bfloat16 sampling with the LoRA adapter merged (``generation.merge_adapter``) is
from the policy the RL loss scores, against the rounding the bfloat16 training path has anyway.

The quickstart policy (the embedded SmolLM2-135M in bfloat16 with a trained LoRA adapter, e.g.
``runs/demo/final`` after ``make demo``) samples 24 completions of 32 tokens for 6 training
prompts; their tokens are then scored, per token, under

- ``training``: the loss's path, a bfloat16 base and the float32 adapter under bf16 autocast;
- ``merged``: the adapter merged into bfloat16 copies of the weights (what sampling now runs);
- ``float32``: base and adapter in float32, the reference;
- ``no_adapter``: the bfloat16 base alone (how much the adapter moves the policy at all).

Each adapter is also tried with its B matrices scaled down (``--scales``), as early in training,
where more of the merged deltas fall below half a bfloat16 step of their weight. Reported: the
mean and largest absolute per-token log-probability difference of each pair, and the share of
weight deltas the bfloat16 merge rounds away entirely.

    python benchmarks/sampling_precision.py [--adapter runs/demo/final] [--scales 1,0.1,0.02]

Without ``--adapter`` it uses ``runs/demo/final`` and, where no demo has been run, says so and
skips (``make bench`` runs every benchmark); ``--quick`` measures the adapter as trained only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

DEMO_ADAPTER = Path("runs/demo/final")


def measure(adapter: Path, scale: float, recipe: Path) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from peft.helpers import disable_input_dtype_casting

    from rewardbridge.models import load_causal_lm
    from rewardbridge.training.config import load_config
    from rewardbridge.training.merged_adapter import mergeable_layers, merged_adapter
    from rewardbridge.training.rl import load_training_examples

    torch.manual_seed(0)
    config = load_config(recipe, [])
    examples, _ = load_training_examples(config)

    def policy(dtype: Any) -> tuple[Any, Any]:
        model, tokenizer = load_causal_lm(config.model.policy, device="cpu", dtype=dtype)
        model = PeftModel.from_pretrained(model, str(adapter), autocast_adapter_dtype=True)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.data.mul_(scale)
        return model.eval(), tokenizer

    bf16, tokenizer = policy(torch.bfloat16)
    fp32, _ = policy(torch.float32)

    def autocast() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        stack.enter_context(disable_input_dtype_casting(bf16))
        return stack

    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": e.question}], tokenize=False, add_generation_prompt=True
        )
        for e in examples[:6]
    ]
    tokenizer.padding_side = "left"
    batch = tokenizer([p for p in prompts for _ in range(4)], return_tensors="pt", padding=True)
    with torch.no_grad(), autocast():
        out = bf16.generate(
            **batch, do_sample=True, max_new_tokens=32, temperature=1.0, top_k=0, top_p=1.0,
            pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
    start = batch.input_ids.shape[1]
    mask = torch.cat([batch.attention_mask, torch.ones_like(out[:, start:])], 1)
    scored = out[:, start:] != tokenizer.pad_token_id

    def logps(model: Any, ctx: contextlib.AbstractContextManager[Any]) -> Any:
        with torch.no_grad(), ctx:
            logits = model(input_ids=out, attention_mask=mask).logits[:, start - 1 : -1].float()
        return torch.log_softmax(logits, -1).gather(-1, out[:, start:, None])[..., 0][scored]

    training = logps(bf16, autocast())
    with autocast() as stack:
        stack.enter_context(merged_adapter(bf16))
        merged = logps(bf16, contextlib.nullcontext())
    reference = logps(fp32, contextlib.nullcontext())
    with bf16.disable_adapter():
        no_adapter = logps(bf16, autocast())
    lost = total = 0
    for layer in mergeable_layers(bf16) or []:
        if "default" in layer.lora_A:
            weight = layer.get_base_layer().weight.data
            delta = layer.get_delta_weight("default").float()
            rounded = (weight.float() + delta).to(weight.dtype)
            lost += int(((rounded == weight) & (delta != 0)).sum())
            total += int((delta != 0).sum())

    def gap(a: Any, b: Any) -> dict[str, float]:
        diff = (a - b).abs()
        return {"mean": float(diff.mean()), "max": float(diff.max())}

    return {
        "adapter": str(adapter), "b_scale": scale, "tokens": int(scored.sum()),
        "training_vs_float32": gap(training, reference),
        "merged_vs_float32": gap(merged, reference),
        "merged_vs_training": gap(merged, training),
        "no_adapter_vs_float32": gap(no_adapter, reference),
        "deltas_rounded_away": lost / max(total, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, default=None, help="a trained LoRA adapter folder")
    parser.add_argument("--scales", default="1,0.1,0.02", help="factors on B, comma-separated")
    parser.add_argument("--quick", action="store_true", help="the adapter as trained only")
    parser.add_argument("--recipe", type=Path, default=Path("recipes/quickstart-cpu.yaml"))
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    adapter = args.adapter or DEMO_ADAPTER
    if not (adapter / "adapter_config.json").is_file():
        if args.adapter is None:
            print(f"skipped: no trained adapter in {DEMO_ADAPTER} (run `make demo`, or --adapter)")
            return 0
        parser.error(f"--adapter {adapter}: no adapter_config.json in that folder")
    scales = ["1"] if args.quick else args.scales.split(",")
    rows = [measure(adapter, float(s), args.recipe) for s in scales]
    heads = ("training", "merged", "merged-tr", "no LoRA")
    print(f"{'B x':>5s} " + " ".join(f"{h:>9s}" for h in heads) + f" {'lost':>6s}")
    for r in rows:
        print(
            f"{r['b_scale']:5g} {r['training_vs_float32']['mean']:9.4f} "
            f"{r['merged_vs_float32']['mean']:9.4f} {r['merged_vs_training']['mean']:9.4f} "
            f"{r['no_adapter_vs_float32']['mean']:9.4f} {r['deltas_rounded_away']:6.1%}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
