"""Seconds per RL step on this machine, split into generation, verification and update, for
the embedded generative judge with and without prefix sharing (and the Jaccard rule reward as
the no-judge baseline, the quickstart's), each at each ``--dtypes`` entry: the policy (and the
judge) loaded in float32 or bfloat16 (``model.dtype``; LoRA adapters stay float32). Results are
named ``"<configuration>@<dtype>"``.

Each configuration trains the embedded SmolLM2-135M policy (LoRA, RLOO) for a few steps with
the same seed and sizes; the first step is a warm-up and is not counted (median of the others;
with --quick, 2 steps and both are counted). Times come from the run's metrics.jsonl:
generation = TRL's rollout (sampling, reference log-probs) minus the reward call,
verification = the reward call, update = the optimizer step's remaining time.

    python benchmarks/train_step.py [--quick] [--steps N] [--dtypes float32,bfloat16] [--json OUT]

Every run trains in a Python process of its own. ``--repeats N`` runs every configuration N
times, the dtypes interleaved (bf16, fp32, bf16, fp32...) so that a slow spell of a shared
machine falls on both; the summary gives each configuration's median over the repeats and, with
both dtypes, the float32 / bfloat16 ratio.

``--recipe recipes/quickstart-cpu.yaml`` times that recipe's own step instead (its verifier,
sizes, micro-batches and LoRA; only the dtype, the step count, the threads and the output folder
are overridden): the configuration is named ``"recipe <file>@<dtype>"``. With
``--trl-baseline`` the same recipe also runs with sampling and the loss forward as TRL and
transformers do them (``generation.shared_prefill``, ``generation.merge_adapter``,
``generation.inverse_cdf_sampling``, ``training.shared_prompt_forward`` and
``training.float32_grad_attention`` off), the baseline of those speed-ups, in the same run:
``"recipe <file>, TRL's loop@<dtype>"``. ``--ablate`` adds, at bfloat16 only, one run per
speed-up with just that one turned off (``"recipe <file>, without <flag>@bfloat16"``): what
each is worth on its own.

A step's time follows the sampled lengths, and those differ between runs (another dtype or
sampler draws other tokens, and the policy drifts differently): ``--fixed-length`` holds back the
end of sequence until the maximum length (``generation.min_completion_length``), so that every
run does the same work and the ratios compare speed alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TRL_LOOP = [
    "--generation.shared_prefill=false",
    "--generation.merge_adapter=false",
    "--generation.inverse_cdf_sampling=false",
    "--training.shared_prompt_forward=false",
    "--training.float32_grad_attention=false",
]

CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "rule (jaccard)": ("jaccard", {}),
    "generative, no prefix sharing": ("generative", {"prefix_sharing": False, "reward": "soft"}),
    "generative, prefix sharing": ("generative", {"prefix_sharing": True, "reward": "soft"}),
}


def measure(
    name: str, verifier: str, options: dict[str, Any], *, steps: int, prompts: int, tokens: int,
    threads: int, out: Path, dtype: str, recipe: Path | None = None,
    overrides: tuple[str, ...] = (), fixed_length: bool = False,
) -> dict[str, Any]:  # fmt: skip
    from rewardbridge.training.config import config_from_dict, load_config
    from rewardbridge.training.metrics import read_metrics
    from rewardbridge.training.rl import train

    judge_options = options | ({"dtype": dtype} if verifier == "generative" else {})
    if recipe is not None:
        args = [f"--model.dtype={dtype}", f"--training.max_steps={steps}",
                f"--training.output_dir={out}", f"--training.torch_threads={threads}",
                "--training.save_steps=10000", *overrides]  # fmt: skip
        config = load_config(recipe, args)
        if fixed_length:
            floor = config.generation.max_completion_length
            config = load_config(recipe, [*args, f"--generation.min_completion_length={floor}"])
    else:
        config = config_from_dict(
            {
                "model": {"dtype": dtype},
                "verifier": {"name": verifier, "options": judge_options},
                "algorithm": {"estimator": "rloo"},
                "generation": {
                    "num_generations": 4, "max_completion_length": tokens,
                    "min_completion_length": tokens if fixed_length else 0,
                },
                "training": {
                    "output_dir": str(out), "prompts_per_step": prompts, "max_steps": steps,
                    "save_steps": 10_000, "torch_threads": threads, "learning_rate": 5e-5,
                },
                "logging": {"report_to": []},
            }
        )  # fmt: skip
    start, cpu = time.perf_counter(), time.process_time()
    train(config)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = read_metrics(out / "metrics.jsonl")
    counted = rows[1:] if len(rows) > 2 else rows

    def med(key: str) -> float:
        return statistics.median(r[key] for r in counted)

    step = med("time_step_s")
    parts = {k: med(f"time_{k}_s") for k in ("generation", "verification", "update")}
    return {
        "config": f"{name}@{dtype}", "dtype": dtype, "steps_counted": len(counted),
        "seconds_per_step": step, "cpu_s_total": cpu,
        **{f"{k}_s": v for k, v in parts.items()},
        **{f"{k}_share": v / step for k, v in parts.items()},
        "unjudged_per_step": statistics.mean(r.get("unjudged", 0.0) for r in counted),
        # sampled lengths differ between runs (another dtype or sampler draws other tokens),
        # and a step's time follows them
        "mean_completion_tokens": statistics.mean(r["response_length"] for r in counted),
        "wall_s": wall, "completions_per_step": config.completions_per_step,
        "max_completion_length": config.generation.max_completion_length,
    }  # fmt: skip


def in_own_process(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a fresh (spawned) Python process: a run inherits no
    allocator or thread-pool state from the runs before it (run one after another in one
    process, the quickstart's fp32 step measured ~10% slower than in a process of its own)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply(fn, args, kwargs)
        pool.close()  # let the child exit on its own: terminating it leaks its semaphores
        pool.join()
    return result


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per configuration: the median seconds per step of each dtype over the repeats, and the
    float32 / bfloat16 ratio of those medians where both were run."""
    by_name: dict[str, dict[str, list[float]]] = {}
    for r in results:
        name = r["config"].rsplit("@", 1)[0]
        by_name.setdefault(name, {}).setdefault(r["dtype"], []).append(r["seconds_per_step"])
    summary: dict[str, dict[str, Any]] = {}
    for name, per_dtype in by_name.items():
        medians = {d: statistics.median(v) for d, v in per_dtype.items()}
        row: dict[str, Any] = {
            "median_s_per_step": medians,
            "runs": len(next(iter(per_dtype.values()))),
        }
        if "float32" in medians and "bfloat16" in medians:
            row["float32_over_bfloat16"] = medians["float32"] / medians["bfloat16"]
        summary[name] = row
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 steps of 2 prompts x 4 x 16 tokens")
    parser.add_argument("--steps", type=int, default=4, help="steps per configuration")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step (x 4 samples)")
    parser.add_argument("--tokens", type=int, default=32, help="max completion tokens")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), help="run only these")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--recipe", type=Path, default=None, help="time this recipe's step")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration")
    parser.add_argument(
        "--trl-baseline", action="store_true",
        help="with --recipe: also run it with TRL's own sampling and loss forward",
    )  # fmt: skip
    parser.add_argument(
        "--fixed-length", action="store_true",
        help="every completion exactly the maximum length: the same work in every run",
    )  # fmt: skip
    parser.add_argument(
        "--ablate", action="store_true",
        help="with --recipe: also run it at bfloat16 with each speed-up off in turn",
    )  # fmt: skip
    args = parser.parse_args(argv)
    steps, tokens = (2, 16) if args.quick else (args.steps, args.tokens)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        names: dict[str, tuple[str, ...]] = {n: () for n in args.only or list(CONFIGS)}
        if args.recipe:
            names = {f"recipe {args.recipe.name}": ()}
            if args.trl_baseline:
                names[f"recipe {args.recipe.name}, TRL's loop"] = tuple(TRL_LOOP)
        dtypes = args.dtypes.split(",")
        runs = [(r, n, d) for r in range(args.repeats) for n in names for d in dtypes]
        if args.recipe and args.ablate:
            for flag in TRL_LOOP:
                name = f"recipe {args.recipe.name}, without {flag[2:].split('=')[0]}"
                names[name] = (flag,)
                runs += [(r, name, "bfloat16") for r in range(args.repeats)]
            runs.sort(key=lambda run: run[0])  # repeats interleaved, as above
        for i, (repeat, name, dtype) in enumerate(runs):
            verifier, options = CONFIGS.get(name, ("", {}))
            result = in_own_process(
                measure, name, verifier, options, steps=steps, prompts=args.prompts,
                tokens=tokens, threads=args.threads, out=Path(tmp) / str(i), dtype=dtype,
                recipe=args.recipe, overrides=names[name], fixed_length=args.fixed_length,
            )  # fmt: skip
            results.append(result | {"repeat": repeat})
    print(
        f"{'configuration':70s} {'s/step':>7s} {'generation':>11s} {'verifier':>9s} {'update':>7s}"
        f" {'tokens':>7s}"
    )
    for r in results:
        print(
            f"{r['config']:70s} {r['seconds_per_step']:7.1f} {100 * r['generation_share']:10.0f}% "
            f"{100 * r['verification_share']:8.0f}% {100 * r['update_share']:6.0f}%"
            f" {r['mean_completion_tokens']:7.1f}"
        )
    summary = summarize(results)
    for name, row in summary.items():
        ratio = row.get("float32_over_bfloat16")
        print(
            f"{name}: median s/step "
            + ", ".join(f"{d} {v:.1f}" for d, v in row["median_s_per_step"].items())
            + (f"; float32 / bfloat16 = {ratio:.2f}x" if ratio else "")
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "quick": args.quick, "steps": steps, "tokens": tokens, "repeats": args.repeats,
            "fixed_length": args.fixed_length,
            "results": results, "summary": summary,
        }  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
