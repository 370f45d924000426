"""Rule first, LLM judge second: the cascade of TinyV (Xu et al. 2025, arXiv 2505.14625).

A rule verifier (``math`` by default) judges every item. Where it says 1 (judged, score 1) that
is the result; rules rarely say yes wrongly. Where it says 0, or could not judge (unparsable
reference, timeout), the paper's generative judge decides (``GenerativeVerifier``, Su et al.
2025, §2 and Eq. 3/4): rules say no wrongly to answers written differently ("f(x)=2x" for
"$f(x)=2 x$", "1/2" for "0.5 of them"). The judge only sees the items the rule rejects, so on a
policy that is mostly right it costs a fraction of judging everything.

Each result's ``stage`` names the verifier that decided: the rule's name (e.g. "math") or
"generative". The rule's reason is kept in the reason of an item the judge decided.

Not in the paper, which uses one verifier at a time. Choices made here:

- The generative verifier is built on first need, so a batch the rule accepts entirely never
  loads a model or opens a connection.
- When the judge cannot judge an item the rule rejected (timeout, backend error, no YES/NO
  token), the item is not judged: the judge's failed status, ``stage`` "generative", and a reason
  that says what both stages said. The rule's 0 is not a verdict on such an item (rules say no
  wrongly, which is why the judge was asked), and a dead judge must not train on rule zeros
  while reporting nothing unjudged. ``on_judge_failure="rule"`` keeps the rule's verdict
  instead (the judge's failure stays in the reason); an item neither stage judged is unjudged
  either way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, get_args

from rewardbridge.data.example import JudgeItem
from rewardbridge.verifiers.base import BaseVerifier, Verifier, VerifierResult
from rewardbridge.verifiers.config import GenerativeConfig, OnJudgeFailure
from rewardbridge.verifiers.registry import build_from_config, build_verifier


def accepted_by_rule(result: VerifierResult) -> bool:
    """The rule's "yes": judged with score 1 (a soft rule only at its maximum)."""
    return result.judged and result.score is not None and result.score >= 1.0


class CascadeVerifier(BaseVerifier):
    """``rule`` (a verifier name or instance) first; ``GenerativeVerifier`` where it says no.

    Every other keyword (``model``, ``base_url``, ``reward``, ``template``, ...: the fields of
    ``GenerativeConfig``) goes to the generative verifier, validated now, built on first need;
    ``workers`` and ``rule_timeout`` go to the rule verifier (``math``: processes and seconds
    per item). ``judge`` replaces the generative verifier with any verifier (tests, a remote
    server). ``on_judge_failure``: "unjudged" (default) or "rule" (see the module docstring).
    """

    name = "cascade"

    def __init__(
        self,
        rule: str | Verifier = "math",
        *,
        on_judge_failure: OnJudgeFailure = "unjudged",
        workers: int | None = None,
        rule_timeout: float | None = None,
        judge: Verifier | None = None,
        **judge_options: Any,
    ) -> None:
        if on_judge_failure not in get_args(OnJudgeFailure):
            raise ValueError(
                f"on_judge_failure must be one of {', '.join(get_args(OnJudgeFailure))}; "
                f"got {on_judge_failure!r}"
            )
        self.on_judge_failure: OnJudgeFailure = on_judge_failure
        self.judge_config = GenerativeConfig.from_options(judge_options)
        if isinstance(rule, str):
            if rule in ("cascade", "generative"):
                raise ValueError(
                    f"rule must be a rule verifier (e.g. math, contains), not {rule!r}"
                )
            self.rule: Verifier = build_verifier(rule, workers=workers, timeout=rule_timeout)
        else:
            self.rule = rule
        self._judge = judge
        self._judge_lock = threading.Lock()

    @property
    def judge_options(self) -> dict[str, Any]:
        """The options the generative verifier gets (those that differ from its defaults)."""
        return self.judge_config.changed()

    @property
    def judge(self) -> Verifier:
        """The generative verifier, built on first use."""
        with self._judge_lock:
            if self._judge is None:
                self._judge = build_from_config(self.judge_config)
            return self._judge

    def _verify(self, items: Sequence[JudgeItem]) -> list[VerifierResult]:
        rule_results = self.rule.verify(items)
        rule_name = getattr(self.rule, "name", "rule")
        results = [r.with_(stage=r.stage or rule_name) for r in rule_results]
        escalate = [i for i, r in enumerate(rule_results) if not accepted_by_rule(r)]
        if not escalate:
            return results
        judged = self.judge.verify([items[i] for i in escalate])
        for i, judge_result in zip(escalate, judged, strict=True):
            results[i] = merge(results[i], judge_result, self.on_judge_failure)
        return results

    def close(self) -> None:
        self.rule.close()
        with self._judge_lock:
            if self._judge is not None:
                self._judge.close()


def merge(
    rule_result: VerifierResult,
    judge_result: VerifierResult,
    on_judge_failure: OnJudgeFailure = "unjudged",
) -> VerifierResult:
    """The result for an item the rule did not accept (see the module docstring)."""
    rule_said = f"{rule_result.stage}: {_describe(rule_result)}"
    latency_s = rule_result.latency_s + judge_result.latency_s
    if judge_result.judged:
        return judge_result.with_(
            stage=judge_result.stage or "generative",
            reason=f"{rule_said}; generative: {_describe(judge_result)}",
            latency_s=latency_s,
        )
    judge_said = f"generative could not judge ({_describe(judge_result)})"
    if on_judge_failure == "rule" and rule_result.judged:
        return rule_result.with_(reason=f"{rule_said}; {judge_said}", latency_s=latency_s)
    return judge_result.with_(
        stage=judge_result.stage or "generative",
        reason=f"{rule_said}; {judge_said}",
        latency_s=latency_s,
    )


def _describe(result: VerifierResult) -> str:
    if result.judged:
        text = f"score {result.score:g}"
        if result.judgment:
            text = f"{result.judgment}, {text}"
        return f"{text} ({result.reason})" if result.reason else text
    return f"{result.status.value}" + (f" ({result.reason})" if result.reason else "")
