"""A CPU-sized distillation experiment (``rewardbridge distill demo``, ``make distill-demo``).

The paper distills a 72B teacher into a 7B student (§7). Here the "teacher" is gold labels
(no big model on a CPU) and the student is the embedded SmolLM2-135M-Instruct. Steps:

1. The multi-domain judgment set (``rewardbridge.data.multidomain``: MedQA, Multi-subject-RLVR,
   TheoremQA, GSM8K solutions, HardVerify-Math; split by question; law and physics held out
   entirely). Class-balanced samples (equal YES/NO per domain) of judge prompts under
   ``max_prompt_tokens`` from train, dev, test and the held-out domains, written to
   ``data/*.jsonl`` as distillation records (teacher = labels) and reused on a rerun.
2. Zero-shot judgments of test and held-out items and a master-key audit with the base model.
3. Judgment-token SFT (``train_verifier``, the prefix-shared trainer, bf16 autocast where the
   CPU has it), with a learning curve: kappa on a fixed subset of test and held-out items after
   each ``curve`` number of training examples.
4. The same judgments and audit with the student (``model/``), then ``summary.json`` /
   ``summary.md`` (``distill_report.py``): kappa with bootstrap intervals, per domain, ECE and
   reliability diagrams, master-key FPR, the learning curve.

Judgments are appended as made (a rerun resumes), data files are reused while their settings
are unchanged, and a complete ``model/`` is not trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults are meant for about 30 minutes on an idle 2-core CPU
    with native bf16 (see docs/distill_demo.md for measured times)."""

    train_size: int = 1024
    """training records (class-balanced per domain; include the seen master keys)"""
    dev_size: int = 128
    test_size: int = 240
    """test records (domains seen in training, questions not)"""
    heldout_size: int = 240
    """records from the held-out domains (law, physics)"""
    audit_questions: int = 3
    """test questions each master-key probe is tried on"""
    max_prompt_tokens: int = 320
    """judge prompts longer than this are left out (CPU time)"""
    learning_rate: float = 5e-5
    batch_size: int = 8
    """8 per step: the measured run learned after 30-60 steps (240-480 examples)"""
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    lora: bool = False
    """full fine-tuning by default: measured against LoRA in docs/distill_demo.md"""
    curve: tuple[int, ...] = (128, 256, 384, 512, 768)
    """training examples after which the curve subset is scored (0 and the end are added)"""
    curve_items: int = 80
    """items each of test and held-out in the learning-curve subset"""
    seed: int = 0
    base_model: str | None = None
    """the student (default: the embedded SmolLM2-135M-Instruct)"""
    judge_batch_size: int = 16
    dtype: str = "auto"
    torch_threads: int | None = 1
    """torch's CPU threads (None: torch's default, all cores). 1: on a busy 2-core CPU two
    threads were many times slower (OpenMP threads waiting on each other), on an idle one
    two would be somewhat faster"""

    def __post_init__(self) -> None:
        for name in ("train_size", "test_size", "heldout_size", "audit_questions"):
            if getattr(self, name) < 1:
                raise ValueError(f"DemoConfig.{name} must be >= 1")


# the fields that decide the data files (a change samples them again)
_DATA_FIELDS = ("train_size", "dev_size", "test_size", "heldout_size", "max_prompt_tokens", "seed")

QUICK = DemoConfig(
    train_size=32,
    dev_size=8,
    test_size=24,
    heldout_size=24,
    audit_questions=1,
    batch_size=8,
    curve=(16,),
    curve_items=12,
)


def balanced_sample(items: Sequence[JudgeItem], size: int, *, seed: int = 0) -> list[JudgeItem]:
    """Up to ``size`` items, equal YES and NO, spread evenly over the domains."""
    rng = random.Random(seed)
    groups: dict[tuple[str, bool], list[JudgeItem]] = {}
    for item in items:
        groups.setdefault((item.domain or "", bool(item.label)), []).append(item)
    for group in groups.values():
        rng.shuffle(group)
    domains = sorted({d for d, _ in groups})
    picked: list[JudgeItem] = []
    while len(picked) + 2 <= size:  # round-robin: one (YES, NO) pair per domain per round
        added = False
        for domain in domains:
            yes, no = groups.get((domain, True), []), groups.get((domain, False), [])
            if yes and no and len(picked) + 2 <= size:
                picked += [yes.pop(), no.pop()]
                added = True
        if not added:
            break
    rng.shuffle(picked)
    return picked


@dataclass(frozen=True)
class DemoData:
    train: list[Any]
    dev: list[Any]
    test: list[Any]
    heldout: list[Any]
    audit_examples: list[Example]


def _items(records: Sequence[Any]) -> list[JudgeItem]:
    return [
        JudgeItem(
            id=r.id,
            question=r.question,
            reference=r.reference,
            response=r.final_step,
            label=r.label,
            domain=r.domain,
        )
        for r in records
    ]


def prepare_demo_data(data_dir: str | Path, config: DemoConfig, tokenizer: Any) -> DemoData:
    """Length-filtered, class-balanced samples of each split as distillation records."""
    from rewardbridge.data.multidomain import MultiDomainConfig, build_multidomain
    from rewardbridge.training.distill import collect, read_records
    from rewardbridge.training.sft_data import default_render, judge_prompt_ids
    from rewardbridge.verifiers.text import final_step

    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "config.json"
    data_config = {k: v for k, v in asdict(config).items() if k in _DATA_FIELDS}
    if stamp.exists() and json.loads(stamp.read_text()) != json.loads(json.dumps(data_config)):
        for name in ("train", "dev", "test", "heldout"):  # other sizes or seed: sample again
            for path in folder.glob(f"{name}.*"):
                path.unlink()
    stamp.write_text(json.dumps(data_config, indent=2))
    render = default_render()
    splits = build_multidomain(MultiDomainConfig(seed=config.seed))
    sizes = {
        "train": config.train_size,
        "dev": config.dev_size,
        "test": config.test_size,
        "heldout": config.heldout_size,
    }
    records: dict[str, list[Any]] = {}
    for name, size in sizes.items():
        path = folder / f"{name}.jsonl"
        if not path.exists():
            pool = list(splits[name])
            random.Random(config.seed).shuffle(pool)
            kept = []
            for item in pool:  # the length filter on enough candidates for a balanced sample
                messages = render(item.question, item.reference, final_step(item.response))
                if len(judge_prompt_ids(tokenizer, messages)) < config.max_prompt_tokens:
                    kept.append(item)
                    if len(kept) >= 6 * size:
                        break
            collect(balanced_sample(kept, size, seed=config.seed), "labels", path)
        records[name] = read_records(path)
    audit = {
        r.prompt_id: Example(id=r.prompt_id, question=r.question, reference=r.reference)
        for r in records["test"]
        if "master_key" not in r.id
    }
    return DemoData(
        train=records["train"],
        dev=records["dev"],
        test=records["test"],
        heldout=records["heldout"],
        audit_examples=list(audit.values())[: config.audit_questions],
    )


def run_demo(
    output_dir: str | Path,
    config: DemoConfig = DemoConfig(),
    *,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) the whole experiment; returns the summary written to summary.json."""
    from transformers import AutoTokenizer

    from rewardbridge.data.master_keys import build_probes, load_master_keys
    from rewardbridge.evaluation.audit import probe_items
    from rewardbridge.experiments.distill_report import learning_curve, write_summary
    from rewardbridge.judging import judge_items
    from rewardbridge.models import resolve_model
    from rewardbridge.training.distill import DistillTrainConfig, train_verifier
    from rewardbridge.verifiers.generative import GenerativeVerifier

    if config.torch_threads:
        import torch

        torch.set_num_threads(config.torch_threads)
    out = Path(output_dir)
    base = resolve_model(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    progress("building the multi-domain set and the class-balanced samples")
    data = prepare_demo_data(out / "data", config, tokenizer)
    sets = {"test": _items(data.test), "heldout": _items(data.heldout)}
    audit_items = probe_items(build_probes(load_master_keys()), data.audit_examples)
    progress(
        f"{len(data.train)} training, {len(data.dev)} dev, {len(data.test)} test, "
        f"{len(data.heldout)} held-out records; {len(audit_items)} audit probes"
    )

    def judge(tag: str, model: str, trained: str = "") -> dict[str, Any]:
        verifier = GenerativeVerifier(
            model=model, prefix_sharing=True, batch_size=config.judge_batch_size
        )
        results: dict[str, Any] = {}
        try:
            for name, items in [*sets.items(), ("audit", audit_items)]:
                progress(f"{tag}: judging {len(items)} {name} items")
                results[name] = judge_items(
                    verifier,
                    items,
                    out / tag / f"{name}_judgments.jsonl",
                    meta={"model": model, **({"trained": trained} if trained else {})},
                )
        finally:
            verifier.close()
        return results

    zero = judge("zero-shot", base)
    curve_path = out / "curve.json"
    model_dir = out / "model"
    stamp = {k: v for k, v in asdict(config).items() if k not in ("judge_batch_size",)}
    stamp_path = out / "model.config.json"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) != json.loads(json.dumps(stamp)):
        progress("the settings changed since model/ was trained: training again")
        (model_dir / "distill.json").unlink(missing_ok=True)
    if not (model_dir / "distill.json").exists():
        curve_points, on_examples = learning_curve(
            data, config, tokenizer, base, progress=progress, path=out / "curve.partial.json"
        )
        progress(
            f"training on {len(data.train)} records "
            f"(~{len(data.train) // config.batch_size} steps of {config.batch_size})"
        )
        summary = train_verifier(
            data.train,
            base,
            model_dir,
            DistillTrainConfig(
                epochs=config.epochs,
                learning_rate=config.learning_rate,
                batch_size=config.batch_size,
                max_length=config.max_prompt_tokens + 1,
                lora=config.lora,
                warmup_ratio=config.warmup_ratio,
                seed=config.seed,
                dtype=config.dtype,
            ),
            eval_records=data.dev,
            progress=progress,
            on_examples=on_examples,
        )
        train_info = summary.to_dict()
        curve_path.write_text(json.dumps(curve_points, indent=2) + "\n")
        stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    else:
        train_info = json.loads((model_dir / "distill.json").read_text())["summary"]
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else []
    # judgments of an earlier model/ are never resumed: a retrained model is judged afresh
    trained = "untracked"
    if stamp_path.exists():
        trained = hashlib.sha256(stamp_path.read_bytes()).hexdigest()[:16]
    if (out / "distilled").exists() and not (out / "distilled" / f"{trained}.stamp").exists():
        shutil.rmtree(out / "distilled")
    (out / "distilled").mkdir(parents=True, exist_ok=True)
    (out / "distilled" / f"{trained}.stamp").touch()
    distilled = judge("distilled", str(model_dir), trained)
    summary_data = write_summary(
        out,
        config=asdict(config),
        base_model=base,
        data={
            "train": len(data.train),
            "train_by_domain": dict(Counter(r.domain for r in data.train)),
            "train_yes": sum(r.judgment == "YES" for r in data.train),
            "dev": len(data.dev),
            "test": len(data.test),
            "test_questions": len({r.question for r in data.test}),
            "heldout": len(data.heldout),
            "heldout_questions": len({r.question for r in data.heldout}),
            "heldout_domains": sorted({r.domain or "" for r in data.heldout}),
            "audit_questions": len(data.audit_examples),
            "audit_probes": len(audit_items),
        },
        sets={**sets, "audit": audit_items},
        zero=zero,
        distilled=distilled,
        training=train_info,
        curve=curve,
    )
    return summary_data
