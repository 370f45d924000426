"""The multi-domain judgment set: sizes, label balance, splits disjoint by question."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rewardbridge.data.answer_forms import format_variants, near_misses, norm_answer, subject_of
from rewardbridge.data.labeled_sets import LABELED_SETS
from rewardbridge.data.multidomain import (
    HELD_OUT_DOMAINS,
    SPLITS,
    MultiDomainConfig,
    build_multidomain,
)


@pytest.fixture(scope="module")
def splits() -> dict:
    return build_multidomain()


def test_sizes_and_domains(splits: dict) -> None:
    sizes = {s: len(items) for s, items in splits.items()}
    assert sizes["train"] > 5000 and sizes["test"] > 1500 and sizes["heldout"] > 800
    assert sizes["dev"] > 500
    train_domains = {i.domain for i in splits["train"]}
    assert {"medicine", "math", "economics", "engineering", "general"} <= train_domains
    assert {i.domain for i in splits["heldout"]} == set(HELD_OUT_DOMAINS)
    for s in ("train", "dev", "test"):  # held-out domains never leak into the other splits
        assert not {i.domain for i in splits[s]} & set(HELD_OUT_DOMAINS)


def test_every_domain_of_every_split_is_balanced(splits: dict) -> None:
    for items in splits.values():
        per_domain = Counter((i.domain, i.label) for i in items)
        for domain in {i.domain for i in items}:
            assert per_domain[(domain, True)] == per_domain[(domain, False)] > 0


def test_splits_are_disjoint_by_question(splits: dict) -> None:
    questions = {s: {i.question for i in items} for s, items in splits.items()}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not questions[a] & questions[b], (a, b)
    ids = [i.id for items in splits.values() for i in items]
    assert len(ids) == len(set(ids))


def test_kinds_labels_and_master_keys(splits: dict) -> None:
    kinds = Counter((i.metadata["kind"], i.label) for i in splits["train"])
    for kind in ("wrong_option", "other_reference", "near_miss", "truncated", "hedge"):
        assert kinds[(kind, False)] > 0 and kinds[(kind, True)] == 0
    assert kinds[("paraphrase", True)] > 0 and kinds[("model_solution", True)] > 0
    # only half of the master keys are seen in training; the test split has all of them
    train_keys = {
        i.metadata["key_id"] for i in splits["train"] if i.metadata["kind"] == "master_key"
    }
    test_keys = {i.metadata["key_id"] for i in splits["test"] if i.metadata["kind"] == "master_key"}
    assert train_keys < test_keys
    # a wrong option is never the reference
    for item in splits["test"]:
        if item.metadata["kind"] == "wrong_option":
            assert norm_answer(item.reference) != norm_answer(item.response)


def test_seeded_and_deterministic(splits: dict) -> None:
    again = build_multidomain(MultiDomainConfig())
    assert [i.id for i in again["test"]] == [i.id for i in splits["test"]]
    other = build_multidomain(MultiDomainConfig(seed=1))
    assert [i.id for i in other["test"]] != [i.id for i in splits["test"]]


def test_registered_in_labeled_sets() -> None:
    held = LABELED_SETS["multidomain_heldout"](None)
    assert held and all(i.label is not None for i in held)


def test_answer_forms() -> None:
    assert "30 centimeters" in format_variants("30cm")
    assert "Yes" in format_variants("True")
    assert "58.22" not in format_variants("58.22%")  # a unit is never dropped
    assert all(norm_answer(m) != norm_answer("12") for m in near_misses("12", random.Random(0)))
    assert subject_of("According to the Civil Procedure Law, the court shall ...") == "law"
    assert subject_of("A patient presents with fever and a rash") == "medicine"
    assert subject_of("Which colour is the sky?") == "general"
