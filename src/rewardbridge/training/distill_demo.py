"""A CPU-sized distillation experiment (``rewardbridge distill demo``, ``make distill-demo``).

The paper distills a 72B teacher into a 7B student (§7). Here the "teacher" is gold labels
(no big model on a CPU) and the student is the embedded SmolLM2-135M-Instruct, whose zero-shot
judgments are at chance. Steps:

1. A labeled pool from the bundled corpora (``rewardbridge/data/corpora``): HardVerify-Math pairs,
   GSM8K model solutions with their correctness labels, Qwen2.5-Math samples with rule labels;
   plus synthetic items for the bundled Multi-subject questions ("Therefore, the answer is" +
   the reference = YES, + another question's reference = NO) and master keys as NO for half of
   the keys (the other half stays unseen, to tell learning from memorising in the audit).
2. A split by question (a hash of the question text) into train / dev / test: no test
   question is seen in training, under any response.
3. A class-balanced training set, per source, of judge prompts short enough for the CPU.
4. Zero-shot judgments of the test set and a master-key audit with the base model; SFT on the
   judgment token (``train_verifier``); the same evaluation and audit with the student.
5. ``summary.json`` / ``summary.md``: accuracy, F1, Cohen's kappa before and after, and the
   false-positive rate on seen and unseen master keys before and after.

Everything is written incrementally under the output folder; a rerun resumes (judgments) or
reuses (the trained model, when ``model/`` is complete).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rewardbridge.data.example import Example, JudgeItem
from rewardbridge.training.distill import (
    DistillRecord,
    DistillTrainConfig,
    collect,
    read_records,
    train_verifier,
)

log = logging.getLogger(__name__)

ANSWER_MARKER = "Therefore, the answer is"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults fit about 30 minutes on 2 CPU cores."""

    datasets_dir: str | None = None
    """a copy of the corpora folder (default: the one bundled in the package)"""
    train_size: int = 160
    """training records (class-balanced) besides the master-key NOs (train_size / 64 per seen
    key); steps = records / batch_size * epochs"""
    test_size: int = 160
    """test records (class-balanced per source)"""
    dev_size: int = 32
    audit_questions: int = 6
    """test questions each master-key probe is tried on"""
    max_prompt_tokens: int = 320
    """judge prompts longer than this are left out (CPU time)"""
    learning_rate: float = 2e-4
    """LoRA learning rate (use ~5e-5 with ``lora=False``)"""
    batch_size: int = 4
    epochs: float = 1.0
    lora: bool = True
    """LoRA adapters (r=16, all linear layers), merged into the saved model: about a third
    less compute per step than full fine-tuning on a CPU"""
    seed: int = 0
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    base_model: str | None = None
    """the student (default: the embedded SmolLM2-135M-Instruct)"""
    judge_batch_size: int = 16

    def __post_init__(self) -> None:
        if abs(sum(self.split) - 1.0) > 1e-9 or min(self.split) < 0:
            raise ValueError(f"DemoConfig.split must be three fractions summing to 1: {self.split}")
        for name in ("train_size", "test_size", "audit_questions", "max_prompt_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"DemoConfig.{name} must be >= 1")


# the fields that decide the data files (a change samples them again)
_DATA_FIELDS = (
    "datasets_dir",
    "train_size",
    "test_size",
    "dev_size",
    "max_prompt_tokens",
    "seed",
    "split",
)

QUICK = DemoConfig(train_size=16, test_size=16, dev_size=8, audit_questions=2)


# --- the labeled pool -----------------------------------------------------------------------


def load_demo_pool(datasets_dir: str | Path | None = None, *, seed: int = 0) -> list[JudgeItem]:
    """Labeled (question, reference, response) items from the benchmark datasets and
    synthetic items for the bundled Multi-subject questions; ``domain`` names the source."""
    from rewardbridge.data.labeled_sets import LABELED_SETS
    from rewardbridge.data.loaders import load_sample_examples

    if datasets_dir is not None and not Path(datasets_dir).is_dir():
        raise FileNotFoundError(f"{datasets_dir}: not a folder (a copy of the bundled corpora)")
    items = [item for load in LABELED_SETS.values() for item in load(datasets_dir)]
    items += synthetic_items(load_sample_examples(), seed=seed)
    return items


def synthetic_items(examples: Sequence[Example], *, seed: int = 0) -> list[JudgeItem]:
    """Per question: the reference after the answer marker (YES) and another question's
    reference after it (NO)."""
    rng = random.Random(seed)
    references = [ex.reference for ex in examples]
    out = []
    for ex in examples:
        wrong = ex.reference
        while wrong.strip().casefold() == ex.reference.strip().casefold():
            wrong = rng.choice(references)
        for tag, answer, label in (("right", ex.reference, True), ("wrong", wrong, False)):
            out.append(
                JudgeItem(
                    id=f"multi-subject-{ex.id}-{tag}",
                    question=ex.question,
                    reference=ex.reference,
                    response=f"{ANSWER_MARKER} {answer}",
                    label=label,
                    domain="multi_subject_synthetic",
                )
            )
    return out


def master_key_items(
    examples: Sequence[JudgeItem], key_texts: Sequence[str], *, per_key: int, seed: int = 0
) -> list[JudgeItem]:
    """Master keys as wrong responses (label NO) to ``per_key`` questions each."""
    rng = random.Random(seed)
    out = []
    for k, text in enumerate(key_texts):
        for ex in rng.sample(list(examples), min(per_key, len(examples))):
            out.append(
                replace(
                    ex,
                    id=f"{ex.id}-masterkey-{k}",
                    response=text,
                    label=False,
                    domain="master_key",
                    metadata={},
                )
            )
    return out


def split_of(question: str, fractions: tuple[float, float, float], seed: int = 0) -> str:
    """'train', 'dev' or 'test' from a hash of the question text (stable across runs)."""
    digest = hashlib.sha256(f"{seed}:{question}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "dev" if u < fractions[0] + fractions[1] else "test"


def balanced_sample(items: Sequence[JudgeItem], size: int, *, seed: int = 0) -> list[JudgeItem]:
    """Up to ``size`` items, equal YES and NO, spread evenly over the sources (domains)."""
    rng = random.Random(seed)
    groups: dict[tuple[str, bool], list[JudgeItem]] = {}
    for item in items:
        groups.setdefault((item.domain or "", bool(item.label)), []).append(item)
    for group in groups.values():
        rng.shuffle(group)
    domains = sorted({d for d, _ in groups})
    picked: list[JudgeItem] = []
    # round-robin over (domain, label) cells, one pair (YES, NO) per domain per round
    while len(picked) < size:
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


# --- the experiment -------------------------------------------------------------------------


def _write_records(path: Path, items: Sequence[JudgeItem]) -> list[DistillRecord]:
    """The items as distillation records (teacher = gold labels), via ``collect``."""
    if not path.exists():
        collect(items, "labels", path)
    return read_records(path)


def _items_from_records(records: Sequence[DistillRecord]) -> list[JudgeItem]:
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


@dataclass(frozen=True)
class DemoData:
    train: list[DistillRecord]
    dev: list[DistillRecord]
    test: list[DistillRecord]
    audit_examples: list[Example]
    seen_key_ids: frozenset[str]
    unseen_key_ids: frozenset[str]


def prepare_demo_data(data_dir: str | Path, config: DemoConfig, tokenizer: Any) -> DemoData:
    """Pool, split by question, length filter, class-balanced samples; written to ``data_dir``
    as distillation records (train.jsonl, dev.jsonl, test.jsonl) and reused on a rerun."""
    from rewardbridge.evaluation.audit import load_master_keys
    from rewardbridge.training.sft_data import default_render, judge_prompt_ids

    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "config.json"
    data_config = {k: v for k, v in asdict(config).items() if k in _DATA_FIELDS}
    if stamp.exists() and json.loads(stamp.read_text()) != json.loads(json.dumps(data_config)):
        for name in ("train", "dev", "test"):  # other sizes or seed: sample again
            (folder / f"{name}.jsonl").unlink(missing_ok=True)
    stamp.write_text(json.dumps(data_config, indent=2))
    render = default_render()
    pool = load_demo_pool(config.datasets_dir, seed=config.seed)
    keys = [k for k in load_master_keys() if k.text.strip()]  # " " is never judged
    seen_keys = [k for i, k in enumerate(keys) if i % 2 == 1]
    unseen_keys = [k for i, k in enumerate(keys) if i % 2 == 0]
    splits: dict[str, list[JudgeItem]] = {"train": [], "dev": [], "test": []}
    for item in pool:
        splits[split_of(item.question, config.split, config.seed)].append(item)
    rng = random.Random(config.seed)
    for name in splits:
        rng.shuffle(splits[name])

    def short(items: Sequence[JudgeItem], needed: int) -> list[JudgeItem]:
        kept = []
        for item in items:
            messages = render(item.question, item.reference, item.response)
            if len(judge_prompt_ids(tokenizer, messages)) < config.max_prompt_tokens:
                kept.append(item)
                if len(kept) >= needed:
                    break
        return kept

    # enough candidates per split for a balanced sample after the length filter
    sizes = {"train": config.train_size, "dev": config.dev_size, "test": config.test_size}
    candidates = {name: short(items, 12 * sizes[name]) for name, items in splits.items()}
    train_items = balanced_sample(candidates["train"], config.train_size, seed=config.seed)
    mk_train = master_key_items(
        [i for i in candidates["train"] if i.domain == "multi_subject_synthetic"],
        [k.text for k in seen_keys],
        per_key=max(1, config.train_size // 64),
        seed=config.seed,
    )
    train = _write_records(folder / "train.jsonl", [*train_items, *mk_train])
    dev = _write_records(
        folder / "dev.jsonl", balanced_sample(candidates["dev"], config.dev_size, seed=config.seed)
    )
    test = _write_records(
        folder / "test.jsonl",
        balanced_sample(candidates["test"], config.test_size, seed=config.seed),
    )
    audit_examples = {
        r.prompt_id: Example(id=r.prompt_id, question=r.question, reference=r.reference)
        for r in test
        if r.domain == "multi_subject_synthetic"
    }
    return DemoData(
        train=train,
        dev=dev,
        test=test,
        audit_examples=list(audit_examples.values())[: config.audit_questions],
        seen_key_ids=frozenset(k.id for k in seen_keys),
        unseen_key_ids=frozenset(k.id for k in unseen_keys),
    )


def run_demo(
    output_dir: str | Path,
    config: DemoConfig = DemoConfig(),
    *,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) the whole experiment; returns the summary written to summary.json."""
    from transformers import AutoTokenizer

    from rewardbridge.evaluation.agreement import verifier_report
    from rewardbridge.evaluation.audit import (
        audit_results,
        build_probes,
        load_master_keys,
        probe_items,
    )
    from rewardbridge.evaluation.reports import write_audit_report, write_eval_report
    from rewardbridge.judging import judge_items as judge_to_file
    from rewardbridge.models import resolve_model
    from rewardbridge.verifiers.generative import GenerativeVerifier

    out = Path(output_dir)
    base = resolve_model(config.base_model)
    progress("building the labeled pool and the split by question")
    data = prepare_demo_data(out / "data", config, AutoTokenizer.from_pretrained(base))
    train_records, dev_records, test_records = data.train, data.dev, data.test
    test_items = _items_from_records(test_records)
    audit_items = probe_items(build_probes(load_master_keys()), data.audit_examples)

    def evaluate(tag: str, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
        verifier = GenerativeVerifier(
            model=model, prefix_sharing=True, batch_size=config.judge_batch_size
        )
        try:
            progress(f"{tag}: judging {len(test_items)} test items")
            results = judge_to_file(
                verifier, test_items, out / tag / "judgments.jsonl", meta={"model": model}
            )
            report = verifier_report(test_items, results)
            report["verifier"] = f"generative --model {model}"
            write_eval_report(report, out / tag, title=f"Test questions, {tag}")
            progress(f"{tag}: master-key audit, {len(audit_items)} probes")
            audit_res = judge_to_file(
                verifier, audit_items, out / tag / "audit_judgments.jsonl", meta={"model": model}
            )
            audit = audit_results(audit_items, audit_res, load_master_keys())
            audit["verifier"] = f"generative --model {model}"
            write_audit_report(audit, out / tag, title=f"Master-key audit, {tag}")
        finally:
            verifier.close()
        return report, audit

    zero_report, zero_audit = evaluate("zero-shot", base)

    model_dir = out / "model"
    if not (model_dir / "distill.json").exists():
        progress(
            f"training on {len(train_records)} records "
            f"(~{len(train_records) // config.batch_size} steps of {config.batch_size})"
        )
        summary = train_verifier(
            train_records,
            base,
            model_dir,
            DistillTrainConfig(
                epochs=config.epochs,
                learning_rate=config.learning_rate,
                batch_size=config.batch_size,
                max_length=config.max_prompt_tokens + 1,
                lora=config.lora,
                seed=config.seed,
            ),
            eval_records=dev_records,
        )
        train_info = summary.to_dict()
    else:
        train_info = json.loads((model_dir / "distill.json").read_text())["summary"]
    dist_report, dist_audit = evaluate("distilled", str(model_dir))

    def key_fpr(audit: dict[str, Any], ids: frozenset[str]) -> float | None:
        fp = sum(s["false_positives"] for k, s in audit["per_key"].items() if k in ids)
        judged = sum(s["judged"] for k, s in audit["per_key"].items() if k in ids)
        return fp / judged if judged else None

    def row(report: dict[str, Any], audit: dict[str, Any]) -> dict[str, Any]:
        return {
            "accuracy": report["accuracy"],
            "f1": report["f1"],
            "kappa": report["kappa"],
            "ece": report["ece"],
            "judged": report["coverage"]["judged"],
            "per_domain": {
                d: {"accuracy": m["accuracy"], "kappa": m["kappa"], "n": m["n"]}
                for d, m in report["per_domain"].items()
            },
            "master_key_fpr": audit["overall"]["fpr"],
            "master_key_fpr_seen_keys": key_fpr(audit, data.seen_key_ids),
            "master_key_fpr_unseen_keys": key_fpr(audit, data.unseen_key_ids),
        }

    zero, distilled = row(zero_report, zero_audit), row(dist_report, dist_audit)
    summary_data: dict[str, Any] = {
        "config": asdict(config),
        "base_model": base,
        "data": {
            "train": len(train_records),
            "train_by_source": dict(Counter(r.domain for r in train_records)),
            "train_yes": sum(r.judgment == "YES" for r in train_records),
            "dev": len(dev_records),
            "test": len(test_records),
            "test_by_source": dict(Counter(r.domain for r in test_records)),
            "test_questions": len({r.question for r in test_records}),
            "audit_questions": len(data.audit_examples),
            "audit_probes": len(audit_items),
            "seen_key_ids": sorted(data.seen_key_ids),
            "unseen_key_ids": sorted(data.unseen_key_ids),
        },
        "training": train_info,
        "zero_shot": zero,
        "distilled": distilled,
        "distilled_beats_zero_shot_on_kappa": (distilled["kappa"] or 0) > (zero["kappa"] or 0),
    }
    (out / "summary.json").write_text(json.dumps(summary_data, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary_data))
    return summary_data


def summary_markdown(s: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    z, d = s["zero_shot"], s["distilled"]
    lines = [
        "# Distillation demo",
        "",
        f"Student: `{s['base_model']}`; {s['data']['train']} training records "
        f"({s['data']['train_yes']} YES), {s['data']['test']} test records on "
        f"{s['data']['test_questions']} held-out questions.",
        "",
        "| verifier | accuracy | F1 | Cohen's kappa | ECE | master-key FPR: all / seen / unseen |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in (("zero-shot", z), ("distilled", d)):
        lines.append(
            f"| {name} | {f(r['accuracy'])} | {f(r['f1'])} | {f(r['kappa'])} | {f(r['ece'])} | "
            f"{pct(r['master_key_fpr'])} / {pct(r['master_key_fpr_seen_keys'])} / "
            f"{pct(r['master_key_fpr_unseen_keys'])} |"
        )
    lines += ["", "Per source (accuracy / kappa, zero-shot -> distilled):", ""]
    for domain, m in d["per_domain"].items():
        zm = z["per_domain"].get(domain, {})
        lines.append(
            f"- {domain} (n={m['n']}): {f(zm.get('accuracy'))} / {f(zm.get('kappa'))} -> "
            f"{f(m['accuracy'])} / {f(m['kappa'])}"
        )
    t = s["training"]
    lines += [
        "",
        f"Training: {t['steps']} steps, {t['seconds']} s, train loss {f(t['train_loss'])}, "
        f"dev loss {f(t['eval_loss'])}.",
        "",
        f"Distilled beats zero-shot on kappa: **{s['distilled_beats_zero_shot_on_kappa']}**.",
    ]
    return "\n".join(lines) + "\n"
