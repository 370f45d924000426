"""``rewardbridge distill collect|train|demo``: verifier distillation (paper §7)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardbridge.cli import CLIError
from rewardbridge.cli.verifier_args import add_verifier_arguments, verifier_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="distill a compact verifier from a teacher's judgments (collect, train, demo)",
        description="Verifier distillation: collect teacher judgments, then fine-tune a student.",
    )
    steps = p.add_subparsers(dest="distill_command", metavar="STEP")

    c = steps.add_parser(
        "collect",
        help="judge n responses per prompt with a teacher; append records (resumable)",
        description=(
            "Sample N responses per prompt from --policy (or read --rollouts), judge each with the "
            "teacher verifier (--teacher-verifier ..., or --teacher labels for gold labels), and "
            "append one record per judged response to OUTPUT. Items the teacher did not judge "
            "are skipped and counted, never recorded as NO. The prompt ids used are written to "
            "OUTPUT's stem + .prompt_ids.txt so policy training can exclude them."
        ),
    )
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", help="policy model to sample from (folder, or 'default')")
    source.add_argument("--rollouts", help="existing (question, reference, response) records")
    c.add_argument("--prompts", help="prompts with references (needed with --policy)")
    c.add_argument("--fields", help="source field names, e.g. question=prompt,reference=answer")
    c.add_argument("--n", type=int, default=4, help="responses per prompt (default: 4)")
    c.add_argument("--limit", type=int, help="use only the first N prompts / rollout records")
    c.add_argument("--max-new-tokens", type=int, default=256, help="policy sampling length")
    c.add_argument("--temperature", type=float, default=1.0, help="policy sampling temperature")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--batch-size", type=int, default=32, help="items per teacher call / write")
    c.add_argument(
        "--teacher",
        choices=["verifier", "labels"],
        default="verifier",
        help="'labels': the dataset's gold labels are the teacher (default: the teacher verifier)",
    )
    c.add_argument("-o", "--output", required=True, help="JSONL records (appended; resumed)")
    c.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip and count bad lines of --output instead of stopping at the first",
    )
    add_verifier_arguments(c, prefix="teacher-", default="generative")
    c.set_defaults(func=_collect)

    t = steps.add_parser(
        "train",
        help="fine-tune a compact verifier on collected records (judgment-token loss)",
        description=(
            "SFT of a student verifier with the exact judge prompt; the loss is on the judgment "
            "token only. Saves a plain Hugging Face folder that --model DIR loads."
        ),
    )
    t.add_argument(
        "--data",
        required=True,
        help="judged records with texts: 'distill collect', 'judge --with-text', or recorded "
        "during training",
    )
    t.add_argument("--eval-data", help="records for a held-out loss at the end")
    t.add_argument("--base-model", default=None, help="student to start from (default: embedded)")
    t.add_argument("--output-dir", required=True, help="where the trained verifier goes")
    t.add_argument("--lora", action="store_true", help="LoRA adapters, merged before saving")
    t.add_argument("--lora-r", type=int, default=16)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--lr", type=float, default=1e-5, help="peak learning rate (default: 1e-5)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--gradient-accumulation-steps", type=int, default=1)
    t.add_argument("--max-length", type=int, default=1024, help="longer records are skipped")
    t.add_argument("--max-steps", type=int, default=-1, help="stop after N steps (-1: epochs)")
    t.add_argument("--balance", action="store_true", help="down-sample the majority judgment")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--skip-invalid", action="store_true", help="skip and count bad lines of --data")
    t.set_defaults(func=_train)

    d = steps.add_parser(
        "demo",
        help="the CPU experiment: distill the embedded 135M judge from labels (~30 min)",
        description=(
            "Distill the embedded SmolLM2-135M judge on the multi-domain judgment set (split by "
            "question, two domains held out) and report zero-shot vs distilled Cohen's kappa on "
            "test questions and held-out domains, a learning curve, calibration and the "
            "master-key false-positive rate before and after."
        ),
    )
    d.add_argument("--output-dir", default="runs/distill-demo")
    d.add_argument("--quick", action="store_true", help="a tiny run to check the pipeline")
    d.add_argument("--train-size", type=int, help="training records (default: 1024)")
    d.add_argument("--test-size", type=int, help="test records (default: 240)")
    d.add_argument("--heldout-size", type=int, help="held-out-domain records (default: 240)")
    d.add_argument("--lr", type=float, help="learning rate (default: 5e-5, full fine-tuning)")
    d.add_argument("--batch-size", type=int, help="training sequences per step (default: 8)")
    d.add_argument("--audit-questions", type=int, help="questions per master key (default: 3)")
    d.add_argument("--lora", action="store_true", help="LoRA adapters instead of all weights")
    d.set_defaults(func=_demo)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _progress_bar(total: int | None, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item")


def _collect(args: argparse.Namespace) -> int:
    from rewardbridge.data.loaders import FieldMap, load_examples, load_judge_items
    from rewardbridge.training.distill import (
        LABELS_TEACHER,
        collect,
        done_ids,
        prompt_ids_path,
        sample_items,
    )

    if args.n < 1:
        raise CLIError("--n must be >= 1")
    fields = FieldMap.parse(args.fields)
    if args.policy is not None:
        if not args.prompts:
            raise CLIError("--policy needs --prompts (questions with references)")
        if args.teacher == "labels":
            raise CLIError(
                "--teacher labels needs --rollouts with labels; sampled responses have none"
            )
        examples = load_examples(args.prompts, fields=fields, limit=args.limit)
        items = sample_items(
            args.policy,
            examples,
            n=args.n,
            skip_ids=done_ids(args.output),
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            seed=args.seed,
        )
        total = len(examples) * args.n
    else:
        loaded = load_judge_items(args.rollouts, fields=fields, limit=args.limit)
        items = iter(loaded)
        total = len(loaded)

    teacher = (
        LABELS_TEACHER if args.teacher == "labels" else verifier_from_args(args, prefix="teacher-")
    )
    bar = _progress_bar(total, "collect")
    try:
        stats = collect(
            items,
            teacher,
            args.output,
            batch_size=args.batch_size,
            skip_invalid=args.skip_invalid,
            progress=bar.update,
        )
    finally:
        bar.close()
        if not isinstance(teacher, str):
            teacher.close()
    unjudged = ", ".join(f"{k}: {v}" for k, v in sorted(stats.unjudged.items())) or "none"
    print(
        f"wrote {stats.written} records to {args.output} ({stats.already_done} already there); "
        f"skipped unjudged: {stats.unjudged_total} ({unjudged}); "
        f"{len(stats.prompt_ids)} prompt ids in {prompt_ids_path(args.output)}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from rewardbridge.training.distill import DistillTrainConfig, read_records, train_verifier

    config = DistillTrainConfig(
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        max_length=args.max_length,
        max_steps=args.max_steps,
        lora=args.lora,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        balance=args.balance,
        seed=args.seed,
    )
    unjudged: dict[str, int] = {}
    records = read_records(args.data, skip_invalid=args.skip_invalid, skipped=unjudged)
    eval_records = (
        read_records(args.eval_data, skip_invalid=args.skip_invalid) if args.eval_data else None
    )
    if unjudged:
        print(f"left out {sum(unjudged.values())} records the teacher did not judge: {unjudged}")
    summary = train_verifier(
        records, args.base_model, args.output_dir, config, eval_records=eval_records
    )
    print(json.dumps(summary.to_dict(), indent=2))
    print(f"load it with: rewardbridge judge ... --verifier generative --model {args.output_dir}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rewardbridge.experiments.distill_demo import QUICK, DemoConfig, run_demo

    config = QUICK if args.quick else DemoConfig()
    overrides = {
        "train_size": args.train_size,
        "test_size": args.test_size,
        "heldout_size": args.heldout_size,
        "learning_rate": args.lr,
        "batch_size": args.batch_size,
        "audit_questions": args.audit_questions,
        "lora": True if args.lora else None,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    summary = run_demo(args.output_dir, config)
    z, d = summary["zero_shot"], summary["distilled"]
    print(
        f"kappa test {z['test']['kappa']} -> {d['test']['kappa']}; held-out domains "
        f"{z['heldout']['kappa']} -> {d['heldout']['kappa']}; "
        f"master-key FPR {z['audit']['fpr']} -> {d['audit']['fpr']}"
    )
    print(f"report: {args.output_dir}/summary.md; model: {args.output_dir}/model")
    return 0
