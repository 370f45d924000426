"""Rewards from the judge's first generated token (paper Eq. 3 and Eq. 4), as pure functions.

Let c be the token at the first generated position and p the softmax over the whole vocabulary
there (a ``FirstToken``):

- ``binary_reward`` (Eq. 3): 1 if c is YES, 0 if c is NO. The backend decides c: greedy by
  default (deterministic), sampled when asked (the paper samples).
- ``soft_reward`` (Eq. 4): p(c) if c is YES, 1 - p(c) if c is NO.
- ``soft_normalized_reward`` (the authors' later code): p(yes) / (p(yes) + p(no)), each summed
  over every case and whitespace variant present ("YES", "Yes", "yes", " YES", ...).

Constrained judgment (default in ``GenerativeVerifier``): c is restricted to the judgment words,
as a server's guided choice ``["YES", "NO"]`` would do: when the emitted token is not a variant
of either word, c is the likeliest visible variant (``constrain_to_judgment``). A judge that
follows the instruction (the paper's 7B verifier) is unaffected; a small zero-shot judge whose
top token is "The" still gives a verdict, and the result's ``reason`` records the emitted token.
``constrained=False`` is the paper's literal reading.

Departure from the paper: where c (unconstrained) is neither YES nor NO, Eq. 3 and Eq. 4 give 0;
here the item is NOT judged (``Status.NO_JUDGMENT``, score ``None``), so training skips it
instead of punishing a response for the judge's failure. ``soft_normalized_reward`` needs no c:
it is unjudged only when no variant of either word is visible (a remote top-k without them).

Which tokens are variants (one rule for every backend, ``resolve_first_pieces``): each
judgment word's case and leading-space variants (``judgment_variants``: "YES", "Yes", "yes",
" YES", ...) are tokenised by the judge's own tokenizer, and the FIRST token of each counts for
its word: the probability of starting the word at the first position (SmolLM2 splits "YES" into
"Y" + "ES", so "Y" counts as YES). A first token shared by a variant of each word is left out
(an error when it is the template's own words). The in-process backend tokenises locally; the
OpenAI backend asks the server's ``/tokenize`` and ``/detokenize`` once (docs/backends.md). The
backend hands the result over as ``FirstToken.judgment_tokens`` (token text -> side); only
where it has none (a server without ``/tokenize``) does a text count when, whitespace stripped,
it equals the word case-insensitively. The judgment words come from the template (YES/NO for the
paper, Yes/No for general-verifier); results always say "YES"/"NO".

``p_yes`` / ``p_no`` on a result are the summed variant probabilities (as in the normalised
reward), whichever reward is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from rewardbridge.verifiers.backends.base import FirstToken
from rewardbridge.verifiers.base import Status, VerifierResult

YES, NO = "YES", "NO"
REWARDS: tuple[str, ...] = ("binary", "soft", "soft-normalized")


@dataclass(frozen=True, slots=True)
class JudgmentWords:
    """The words a template tells the judge to emit; matched case-insensitively."""

    yes: str = YES
    no: str = NO


PAPER_WORDS = JudgmentWords()

TokenT = TypeVar("TokenT", bound=Hashable)


def judgment_variants(word: str) -> list[str]:
    """Case and leading-space variants of a judgment word, the word itself first."""
    forms = [word, word.upper(), word.capitalize(), word.lower()]
    out: list[str] = []
    for form in forms + [" " + f for f in forms]:
        if form not in out:
            out.append(form)
    return out


def all_judgment_variants(words: JudgmentWords = PAPER_WORDS) -> list[str]:
    """The variants of both words (what a backend must tokenise), YES's first."""
    return judgment_variants(words.yes) + [
        v for v in judgment_variants(words.no) if v not in judgment_variants(words.yes)
    ]


def resolve_first_pieces(
    first_piece: Mapping[str, TokenT],
    words: JudgmentWords = PAPER_WORDS,
    describe: Callable[[TokenT], str] = repr,
) -> dict[TokenT, str]:
    """Token -> "YES"/"NO": the first token of every variant of the two judgment words.

    ``first_piece``: variant text -> the first token the judge's tokenizer makes of it (an id,
    or its text; a variant missing from it is skipped). A token that starts a variant of each
    word is left out; raises ``ValueError`` when that hits the template's own words as written,
    whose first-position probabilities could then not be told apart (``describe`` names the
    token in the message).
    """
    sides: dict[str, dict[TokenT, str]] = {YES: {}, NO: {}}
    for side, word in ((YES, words.yes), (NO, words.no)):
        for variant in judgment_variants(word):
            if variant in first_piece:
                sides[side].setdefault(first_piece[variant], variant)
    shared = set(sides[YES]) & set(sides[NO])
    for side, word in ((YES, words.yes), (NO, words.no)):
        own = first_piece.get(word)
        if own is not None and own in shared:
            other = NO if side == YES else YES
            raise ValueError(
                f"the tokenizer starts {word!r} and {sides[other][own]!r} with the same token "
                f"{describe(own)}: their first-position probabilities cannot be told apart; use a "
                "template with other judgment words"
            )
    return {token: side for side in (YES, NO) for token in sides[side] if token not in shared}


def classify_token(token: str, first: FirstToken, words: JudgmentWords = PAPER_WORDS) -> str | None:
    """ "YES", "NO", or None for a token text of this first position."""
    resolved = first.judgment_tokens.get(token)
    if resolved is not None:
        return resolved
    text = token.strip().casefold()
    if text == words.yes.casefold():
        return YES
    if text == words.no.casefold():
        return NO
    return None


def judgment_probabilities(
    first: FirstToken, words: JudgmentWords = PAPER_WORDS
) -> tuple[float, float]:
    """(p_yes, p_no): probabilities summed over every variant present in ``first.logprobs``."""
    p_yes = p_no = 0.0
    for token, logprob in first.logprobs.items():
        side = classify_token(token, first, words)
        if side == YES:
            p_yes += math.exp(logprob)
        elif side == NO:
            p_no += math.exp(logprob)
    return min(p_yes, 1.0), min(p_no, 1.0)


def chosen_judgment(first: FirstToken, words: JudgmentWords = PAPER_WORDS) -> str | None:
    """The judgment of the emitted token c: "YES", "NO" or None."""
    return classify_token(first.chosen, first, words)


def constrain_to_judgment(first: FirstToken, words: JudgmentWords = PAPER_WORDS) -> FirstToken:
    """``first`` with c restricted to the judgment words: unchanged when the emitted token is a
    variant of YES or NO, else the likeliest visible variant (unchanged if none is visible)."""
    if classify_token(first.chosen, first, words) is not None:
        return first
    variants = [
        (logprob, token)
        for token, logprob in first.logprobs.items()
        if classify_token(token, first, words) is not None
    ]
    if not variants:
        return first
    return replace(first, chosen=max(variants)[1])


def binary_reward(first: FirstToken, words: JudgmentWords = PAPER_WORDS) -> float | None:
    """Eq. 3: 1.0 if c is YES, 0.0 if c is NO, None (not judged) otherwise."""
    judgment = chosen_judgment(first, words)
    if judgment is None:
        return None
    return 1.0 if judgment == YES else 0.0


def soft_reward(first: FirstToken, words: JudgmentWords = PAPER_WORDS) -> float | None:
    """Eq. 4: p(c) if c is YES, 1 - p(c) if c is NO, None otherwise (or if p(c) is not given)."""
    judgment = chosen_judgment(first, words)
    logprob = first.logprobs.get(first.chosen)
    if judgment is None or logprob is None:
        return None
    p = min(math.exp(logprob), 1.0)
    return p if judgment == YES else 1.0 - p


def soft_normalized_reward(first: FirstToken, words: JudgmentWords = PAPER_WORDS) -> float | None:
    """p(yes) / (p(yes) + p(no)) over all variants; None when no variant is visible."""
    p_yes, p_no = judgment_probabilities(first, words)
    if p_yes + p_no <= 0.0:
        return None
    return p_yes / (p_yes + p_no)


RewardFunction = Callable[[FirstToken, JudgmentWords], "float | None"]
REWARD_FUNCTIONS: dict[str, RewardFunction] = {
    "binary": binary_reward,
    "soft": soft_reward,
    "soft-normalized": soft_normalized_reward,
}


def check_reward(reward: str) -> str:
    """Accept ``soft_normalized`` for ``soft-normalized``; raise naming the choices otherwise."""
    name = reward.replace("_", "-")
    if name not in REWARD_FUNCTIONS:
        raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
    return name


def first_token_result(
    first: FirstToken,
    reward: str = "binary",
    words: JudgmentWords = PAPER_WORDS,
    constrained: bool = False,
) -> VerifierResult:
    """A ``VerifierResult`` (score, judgment, p_yes, p_no) from one first-token distribution.

    ``judgment`` is the emitted token's for binary/soft; for soft-normalized it is the emitted
    token's when that is a judgment word, else the likelier of the two words. ``constrained``:
    c restricted to the judgment words first (``constrain_to_judgment``).
    """
    name = check_reward(reward)
    emitted = first.chosen
    if constrained:
        first = constrain_to_judgment(first, words)
    score = REWARD_FUNCTIONS[name](first, words)
    p_yes, p_no = judgment_probabilities(first, words)
    judgment = chosen_judgment(first, words)
    if score is None:
        if judgment is None:
            reason = f"first token {first.chosen!r} is neither {words.yes!r} nor {words.no!r}"
        elif name == "soft":
            reason = f"backend gave no log-probability for the chosen token {first.chosen!r}"
        else:
            reason = "no variant of the judgment words among the visible tokens"
        return VerifierResult.failed(
            Status.NO_JUDGMENT, reason, judgment=judgment, p_yes=p_yes, p_no=p_no
        )
    # soft-normalized scores without a judgment token: the likelier word is the judgment
    verdict = judgment if judgment is not None else (YES if p_yes >= p_no else NO)
    note = None if first.chosen == emitted else f"constrained: the judge emitted {emitted!r}"
    return VerifierResult.ok(score, judgment=verdict, p_yes=p_yes, p_no=p_no, reason=note)
