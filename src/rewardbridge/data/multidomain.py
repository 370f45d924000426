"""A multi-domain labeled judgment set, generated (seeded) from real questions and references.

Sources (bundled with their LICENSE and PROVENANCE.md): MedQA (USMLE) questions with the right
option as the reference and the three wrong options as hard negatives; Multi-subject-RLVR (the
paper's exam QA) with the references of similar questions of the same subject as negatives;
TheoremQA (math, physics, EE/CS, finance; typed answers); GSM8K model solutions with their
correctness labels; HardVerify-Math pairs. Every item is (question, reference, response, label,
domain); ``metadata`` names the ``source``, the ``kind`` of response and the ``prompt_id``.

Responses are written as a policy's final step, in several phrasings ("Therefore, the answer is
...", "Answer: ...", a bare answer, bold, boxed), with format variations of the answer (case,
punctuation, quotes, articles, units, number formats) for the positives. Negatives: wrong
options, other references of the same subject (the most similar question's), near misses
(a changed number, "not X"), truncated reasoning without a final answer, hedges ("either X or
Y"), and master keys (only the odd-indexed keys in ``train``; every key elsewhere).

Split by question (a hash of the question text) into train / dev / test; the domains in
``held_out`` (default: law and physics) go entirely to ``heldout`` for a cross-domain test.
Multi-subject-RLVR has no subject field: its domain is assigned by keywords (``subject_of``),
approximate by construction. Each (split, domain) cell is balanced YES/NO.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rewardbridge.data.answer_forms import (
    MATH_PHRASINGS,
    PHRASINGS,
    TRUNCATED,
    clean_answer,
    format_variants,
    near_misses,
    norm_answer,
    subject_of,
)
from rewardbridge.data.example import JudgeItem

SPLITS = ("train", "dev", "test", "heldout")
HELD_OUT_DOMAINS = ("law", "physics")


@dataclass(frozen=True)
class MultiDomainConfig:
    """How the set is generated; the same config always gives the same items."""

    seed: int = 0
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    held_out: tuple[str, ...] = HELD_OUT_DOMAINS
    positives: int = 2
    """format-varied correct responses per question"""
    negatives: int = 2
    """wrong responses per question (kinds drawn per source)"""
    medqa_questions: int = 600
    """MedQA questions used (of 1,273; all of them would make medicine half the set)"""
    gsm8k_questions: int = 400
    """GSM8K questions used (one correct and one wrong model solution each, where both exist)"""
    master_key_share: float = 0.04
    """master-key negatives, as a share of the questions of each split"""

    def __post_init__(self) -> None:
        if abs(sum(self.split) - 1.0) > 1e-9 or min(self.split) < 0:
            raise ValueError(f"split must be three fractions summing to 1: {self.split}")
        if self.positives < 1 or self.negatives < 1:
            raise ValueError("positives and negatives must be >= 1")


@dataclass(frozen=True)
class _Question:
    source: str
    qid: str
    question: str
    reference: str
    domain: str
    wrong_options: tuple[str, ...] = ()


def split_of(question: str, fractions: tuple[float, float, float], seed: int = 0) -> str:
    """'train', 'dev' or 'test' from a hash of the question text (stable across runs)."""
    digest = hashlib.sha256(f"{seed}:{question}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "dev" if u < fractions[0] + fractions[1] else "test"


def _phrase(answer: str, rng: random.Random, math: bool) -> str:
    return rng.choice(MATH_PHRASINGS if math else PHRASINGS).format(a=answer)


def _load_questions(config: MultiDomainConfig) -> tuple[list[_Question], list[JudgeItem]]:
    """The free-form questions (responses generated here) and the real labeled responses."""
    from rewardbridge.data.labeled_sets import (
        GSM8K_MODELS,
        gsm8k_reference,
        load_hardverify_pairs,
        read_corpus,
    )
    from rewardbridge.data.loaders import load_sample_examples

    questions: list[_Question] = []
    medqa = read_corpus("medqa_us_test", "test.jsonl")
    keep = set(random.Random(config.seed).sample(range(len(medqa)), config.medqa_questions))
    for r in (r for i, r in enumerate(medqa) if i in keep):
        wrong = tuple(v for k, v in sorted(r["options"].items()) if k != r["answer_idx"])
        questions.append(
            _Question("medqa", str(r["realidx"]), r["question"], r["answer"], "medicine", wrong)
        )
    for ex in load_sample_examples():
        questions.append(
            _Question(
                "multi_subject_rlvr", ex.id, ex.question, ex.reference, subject_of(ex.question)
            )
        )
    fields = {"Math": "math", "Physics": "physics", "EECS": "engineering", "Finance": "economics"}
    for r in read_corpus("theoremqa", "theoremqa_test.jsonl"):
        if r.get("Picture"):
            continue  # needs an image
        answer = json.dumps(r["Answer"]) if isinstance(r["Answer"], list) else str(r["Answer"])
        questions.append(_Question("theoremqa", r["id"], r["Question"], answer, fields[r["field"]]))

    labeled: list[JudgeItem] = []
    rng = random.Random(config.seed)
    gsm = read_corpus("gsm8k_model_solutions_labeled", "example_model_solutions.jsonl")
    for i in sorted(rng.sample(range(len(gsm)), min(config.gsm8k_questions, len(gsm)))):
        r = gsm[i]
        by_label: dict[bool, list[str]] = defaultdict(list)
        for model in GSM8K_MODELS:
            by_label[bool(r[model]["is_correct"])].append(r[model]["solution"])
        if not (by_label[True] and by_label[False]):
            continue
        for label in (True, False):
            labeled.append(
                JudgeItem(
                    id=f"gsm8k-{i}-{'right' if label else 'wrong'}",
                    question=r["question"],
                    reference=gsm8k_reference(r["ground_truth"]),
                    response=rng.choice(by_label[label]),
                    label=label,
                    domain="math",
                    metadata={"source": "gsm8k", "kind": "model_solution"},
                )
            )
    for item in load_hardverify_pairs():
        labeled.append(
            JudgeItem(
                id=item.id,
                question=item.question,
                reference=item.reference,
                response=item.response,
                label=item.label,
                domain="math",
                metadata={
                    "source": "hardverify_math",
                    "kind": "equivalent" if item.label else "wrong_answer",
                },
            )
        )
    return questions, labeled


def _similar_reference(
    q: _Question, pool: Sequence[_Question], rng: random.Random, k: int = 40
) -> str | None:
    """The reference of the most similar of ``k`` random questions of the same domain (word
    overlap of the questions), different from ``q``'s reference."""
    words = set(re.findall(r"\w+", q.question.lower()))
    best, best_score = None, -1.0
    for other in rng.sample(list(pool), min(k, len(pool))):
        theirs = norm_answer(other.reference)
        if other.qid == q.qid or not theirs or norm_answer(q.reference) in theirs:
            continue  # the same answer, or one that contains it
        other_words = set(re.findall(r"\w+", other.question.lower()))
        score = len(words & other_words) / (len(words | other_words) or 1)
        if score > best_score:
            best, best_score = other.reference, score
    return best


def _items_for(
    q: _Question, pool: Sequence[_Question], config: MultiDomainConfig, rng: random.Random
) -> list[JudgeItem]:
    math = q.domain in ("math", "physics") or q.source == "theoremqa"
    base = f"{q.source}-{q.qid}"
    meta = {"source": q.source, "prompt_id": base}

    def item(kind: str, k: int, response: str, label: bool) -> JudgeItem:
        return JudgeItem(
            id=f"{base}-{kind}-{k}",
            question=q.question,
            reference=q.reference,
            response=response,
            label=label,
            domain=q.domain,
            metadata={**meta, "kind": kind},
        )

    variants = format_variants(q.reference)
    out = [
        item("paraphrase", k, _phrase(v, rng, math), True)
        for k, v in enumerate(rng.sample(variants, min(config.positives, len(variants))))
    ]
    candidates: list[tuple[str, str]] = []
    for option in q.wrong_options:
        candidates += [("wrong_option", rng.choice(format_variants(option)))] * 2
    other = _similar_reference(q, pool, rng)
    if other is not None:
        candidates += [("other_reference", rng.choice(format_variants(other)))] * 2
    misses = near_misses(q.reference, rng)
    if misses:
        candidates.append(("near_miss", rng.choice(misses)))
    candidates.append(("truncated", ""))
    if other is not None:
        candidates.append(("hedge", other))
    picked = rng.sample(candidates, min(config.negatives, len(candidates)))
    for k, (kind, answer) in enumerate(picked):
        if kind == "truncated":
            response = rng.choice(TRUNCATED)
        elif kind == "hedge":
            a, b = clean_answer(q.reference), clean_answer(answer)
            response = (
                f"The answer is either {a} or {b}."
                if rng.random() < 0.5
                else (f"The answer is either {b} or {a}.")
            )
        else:
            response = _phrase(answer, rng, math)
        out.append(item(kind, k, response, False))
    return out


def _master_key_items(
    questions: Sequence[_Question], split: str, config: MultiDomainConfig, rng: random.Random
) -> list[JudgeItem]:
    from rewardbridge.data.master_keys import load_master_keys

    keys = [k for k in load_master_keys() if k.text.strip()]  # " " is never judged
    if split == "train":
        keys = [k for i, k in enumerate(keys) if i % 2 == 1]  # the rest stays unseen
    n = max(len(keys), round(config.master_key_share * len(questions)))
    out = []
    for j, q in enumerate(rng.sample(list(questions), min(n, len(questions)))):
        key = keys[j % len(keys)]
        out.append(
            JudgeItem(
                id=f"{q.source}-{q.qid}-master_key-{key.id}",
                question=q.question,
                reference=q.reference,
                response=key.text,
                label=False,
                domain=q.domain,
                metadata={
                    "source": q.source,
                    "prompt_id": f"{q.source}-{q.qid}",
                    "kind": "master_key",
                    "key_id": key.id,
                },
            )
        )
    return out


def _balance(items: Iterable[JudgeItem], rng: random.Random) -> list[JudgeItem]:
    """Equal YES and NO per domain (the majority down-sampled), shuffled."""
    cells: dict[tuple[str, bool], list[JudgeItem]] = defaultdict(list)
    for it in items:
        cells[(it.domain or "", bool(it.label))].append(it)
    out: list[JudgeItem] = []
    for domain in sorted({d for d, _ in cells}):
        yes, no = cells[(domain, True)], cells[(domain, False)]
        n = min(len(yes), len(no))
        # keep every master key (they are the point of the audit); trim other negatives first
        keys = [i for i in no if i.metadata.get("kind") == "master_key"]
        rest = [i for i in no if i.metadata.get("kind") != "master_key"]
        no_kept = keys[:n] + rng.sample(rest, max(0, n - len(keys)))
        out += rng.sample(yes, n) + no_kept
    rng.shuffle(out)
    return out


def build_multidomain(config: MultiDomainConfig | None = None) -> dict[str, list[JudgeItem]]:
    """The set, split: {"train", "dev", "test", "heldout"} -> items (seeded, deterministic)."""
    return {s: list(items) for s, items in _build(config or MultiDomainConfig()).items()}


@functools.lru_cache(maxsize=2)
def _build(config: MultiDomainConfig) -> dict[str, tuple[JudgeItem, ...]]:
    rng = random.Random(config.seed)
    questions, labeled = _load_questions(config)
    by_domain: dict[str, list[_Question]] = defaultdict(list)
    for q in questions:
        by_domain[q.domain].append(q)

    def split_for(question: str, domain: str) -> str:
        if domain in config.held_out:
            return "heldout"
        return split_of(question, config.split, config.seed)

    raw: dict[str, list[JudgeItem]] = {s: [] for s in SPLITS}
    split_questions: dict[str, list[_Question]] = {s: [] for s in SPLITS}
    for q in questions:
        s = split_for(q.question, q.domain)
        split_questions[s].append(q)
        raw[s] += _items_for(q, by_domain[q.domain], config, rng)
    for it in labeled:
        raw[split_for(it.question, it.domain or "")].append(it)
    for s in SPLITS:
        raw[s] += _master_key_items(split_questions[s], s, config, rng)
    return {s: tuple(_balance(raw[s], random.Random(f"{config.seed}:{s}"))) for s in SPLITS}


def load_multidomain(
    split: str = "test", config: MultiDomainConfig | None = None
) -> list[JudgeItem]:
    """One split of the set (see ``build_multidomain``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return build_multidomain(config)[split]


def item_row(item: JudgeItem) -> dict[str, Any]:
    """A JSONL row that ``rewardbridge eval-verifier --input`` reads."""
    return {
        "id": item.id,
        "question": item.question,
        "reference": item.reference,
        "response": item.response,
        "label": item.label,
        "domain": item.domain,
        **{k: v for k, v in item.metadata.items() if k in ("source", "kind")},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rewardbridge.data.multidomain --out DIR``: one JSONL per split."""
    import argparse
    from pathlib import Path

    p = argparse.ArgumentParser(description="Export the multi-domain judgment set as JSONL.")
    p.add_argument("--out", required=True, help="folder for train/dev/test/heldout.jsonl")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, items in build_multidomain(MultiDomainConfig(seed=args.seed)).items():
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item_row(item), ensure_ascii=False) + "\n")
        print(f"{out / split}.jsonl: {len(items)} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
