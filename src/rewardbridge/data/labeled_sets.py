"""Readers for the labeled verifier sets shipped in the package (``rewardbridge/data/corpora/``:
HardVerify-Math pairs, GSM8K model solutions, Qwen2.5-Math samples; the multi-domain judgment
set generated from MedQA, TheoremQA and the others; see each folder's PROVENANCE.md and LICENSE).

Each returns ``JudgeItem``s with the gold verdict in ``label`` and the set's name in ``domain``
(the multi-domain set: the subject area). The files are read through ``importlib.resources``,
so an installed wheel has them; ``root`` reads a copy of the corpora folder elsewhere instead.
Used by the verifier-accuracy benchmark and the distillation demo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardbridge.data.example import JudgeItem

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

GSM8K_MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")

Root = str | Path | None


def corpora_root() -> Traversable:
    """The bundled corpora folder (a directory in the installed package)."""
    return files("rewardbridge.data").joinpath("corpora")


def corpus_path(corpus: str, filename: str) -> Path:
    """A bundled corpus file as a filesystem path (the package is installed as files, the
    setuptools default); for command lines, benchmarks and tests."""
    path = Path(str(corpora_root().joinpath(corpus, filename)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed package's corpora")
    return path


def _file(root: Root, corpus: str, filename: str) -> Traversable | Path:
    base: Traversable | Path = corpora_root() if root is None else Path(root)
    return base.joinpath(corpus, filename)


def _rows(root: Root, corpus: str, filename: str) -> list[dict[str, Any]]:
    with _file(root, corpus, filename).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_corpus(corpus: str, filename: str, root: Root = None) -> list[dict[str, Any]]:
    """The rows of a bundled JSONL corpus file (``root``: a copy of the corpora folder)."""
    return _rows(root, corpus, filename)


def gsm8k_reference(ground_truth: str) -> str:
    """The answer after the last 'A:' of a GSM8K ground-truth solution ('... A: 18' -> '18')."""
    match = re.search(r"A:\s*(.+?)\s*$", ground_truth.strip())
    if match is None:
        raise ValueError(f"no 'A:' line in GSM8K ground truth: {ground_truth[-80:]!r}")
    return match.group(1)


def load_hardverify_pairs(root: Root = None) -> list[JudgeItem]:
    """500 items: per question an equivalent-but-rewritten answer (YES) and a wrong one (NO)."""
    rows = _rows(root, "hardverify_math", "HardVerify-Math_pairs.jsonl")
    return [
        JudgeItem(
            id=f"hv-{r['id']}-{r['response_field']}",
            question=r["question"],
            reference=r["ground_truth"],
            response=r["response"],
            label=bool(r["label"]),
            domain="hardverify_math",
        )
        for r in rows
    ]


def load_gsm8k_solutions(root: Root = None) -> list[JudgeItem]:
    """5,276 items: four model solutions per GSM8K test question, labeled ``is_correct``."""
    rows = _rows(root, "gsm8k_model_solutions_labeled", "example_model_solutions.jsonl")
    items = []
    for i, r in enumerate(rows):
        reference = gsm8k_reference(r["ground_truth"])
        items += [
            JudgeItem(
                id=f"gsm8k-{i}-{model}",
                question=r["question"],
                reference=reference,
                response=r[model]["solution"],
                label=bool(r[model]["is_correct"]),
                domain="gsm8k",
            )
            for model in GSM8K_MODELS
        ]
    return items


def load_qwen_math_samples(root: Root = None) -> list[JudgeItem]:
    """800 items: eight Qwen2.5-Math responses per MATH question with rule labels."""
    items = []
    for r in _rows(root, "qwen25_math_rm_samples", "math_cot_100.jsonl"):
        items += [
            JudgeItem(
                id=f"qwen-{r['idx']}-{k}",
                question=r["question"],
                reference=str(r["gt"]),
                response=response,
                label=bool(score),
                domain="qwen25_math",
            )
            for k, (response, score) in enumerate(zip(r["response"], r["score"], strict=True))
        ]
    return items


def load_multidomain_test(root: Root = None) -> list[JudgeItem]:
    """The multi-domain judgment set's test split (domains seen in training; generated, see
    ``rewardbridge.data.multidomain``; ``root`` is not used: the sources are bundled)."""
    from rewardbridge.data.multidomain import load_multidomain

    return load_multidomain("test")


def load_multidomain_heldout(root: Root = None) -> list[JudgeItem]:
    """The multi-domain judgment set's held-out domains (law, physics), never in training."""
    from rewardbridge.data.multidomain import load_multidomain

    return load_multidomain("heldout")


LABELED_SETS: dict[str, Callable[[Root], list[JudgeItem]]] = {
    "hardverify_math": load_hardverify_pairs,
    "gsm8k": load_gsm8k_solutions,
    "qwen25_math": load_qwen_math_samples,
    "multidomain_test": load_multidomain_test,
    "multidomain_heldout": load_multidomain_heldout,
}
