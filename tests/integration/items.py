"""Multi-domain judge items built from data bundled in the package (no /work, no network).

Questions and references come from the bundled Multi-subject-RLVR slice (biology, chemistry,
economics, ...; ``rewardbridge/data/sample``) and the bundled HardVerify-Math pairs
(``rewardbridge/data/corpora/hardverify_math``); each question gets a response with its own
reference answer and one with another question's, so the judge sees both verdicts.
"""

from __future__ import annotations

from rewardbridge.data.example import JudgeItem
from rewardbridge.data.labeled_sets import load_hardverify_pairs
from rewardbridge.data.loaders import load_sample_examples


def multi_domain_items(n_questions: int = 30, n_math: int = 10) -> list[JudgeItem]:
    """``2 * n_questions`` subject items (right / wrong final answer) + ``n_math`` math items."""
    examples = load_sample_examples()
    step = max(1, len(examples) // n_questions)
    picked = examples[::step][:n_questions]
    items: list[JudgeItem] = []
    for i, example in enumerate(picked):
        other = picked[(i + 7) % len(picked)]
        for kind, answer in (("right", example.reference), ("wrong", other.reference)):
            items.append(
                JudgeItem(
                    id=f"subject-{example.id}-{kind}",
                    question=example.question,
                    reference=example.reference,
                    response=f"Let me work it out.\n\nTherefore, the answer is {answer}.",
                    label=kind == "right",
                    domain="multi-subject",
                )
            )
    pairs = load_hardverify_pairs()
    math_step = max(1, len(pairs) // max(n_math, 1))
    for item in pairs[::math_step][:n_math]:
        items.append(
            JudgeItem(
                id=f"math-{item.id}",
                question=item.question,
                reference=item.reference,
                response=item.response,
                label=item.label,
                domain="math",
            )
        )
    return items
