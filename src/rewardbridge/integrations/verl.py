"""verl adapters: a custom reward function and our advantage estimators in verl's registry.

Reward (verl's ``custom_reward_function.path``/``name``; reward managers ``naive`` and ``batch``):

- ``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)`` scores
  one response; the question comes from ``extra_info["question"]`` (aliases ``prompt``,
  ``problem``; verl's data preprocessing puts dataset fields there). A sample without one is an
  error naming the sample, never a judgment of an empty question.
- ``compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, **kwargs)``
  scores a whole batch in one verifier call (``reward_model.reward_manager=batch``).

Both return verl's dict form ``{"score": float, "judged": 1.0|0.0}``: verl puts
``score`` in the reward tensor (a float: verl's managers accept no ``None``) and the rest in
``reward_extra_info``. An unjudged item scores ``unjudged_score``, by default NaN, flagged by
``judged == 0``: never a made-up 0. Our estimators (``rewardbridge_*``) leave NaN samples out
(advantage 0); verl's own estimators would spread a NaN over its group, so with them set an
explicit ``unjudged_score`` (``+custom_reward_function.reward_kwargs.unjudged_score=0.0``),
knowingly. Extra keyword arguments
(``custom_reward_function.reward_kwargs``) choose the verifier: ``verifier`` (name) and its
options, e.g. ``url`` for ``remote``; by default the environment decides (see
``rewardbridge.integrations.common``).

Estimators: ``register_verl_estimators()`` registers ``rewardbridge_<name>`` for every
estimator of ``rewardbridge.rewards.advantages`` with ``verl.trainer.ppo.core_algos.
register_adv_est`` (select with ``algorithm.adv_estimator=rewardbridge_rloo``). verl calls them
as ``fn(token_level_rewards, response_mask, index, config=..., **kwargs) -> (advantages,
returns)``; the sequence reward is the sum over tokens, samples are grouped by ``index`` (the
prompt uid; all groups must have the same size) and whitening is token-weighted like verl's.
Departure: with ``algorithm.use_kl_in_reward`` verl adds the KL penalty to the token rewards
*before* the estimator, so the z-score (paper Eq. 5) then applies to the KL-shaped reward; the
paper's order (normalise, then Eq. 6) needs ``use_kl_loss`` instead.

Tested against verl 0.9.1 (``tests/integration/test_verl.py``): its ``naive`` and ``batch``
reward managers and its reward loop's ``naive`` manager call these on a real ``DataProto``, and
``compute_advantage`` runs our estimators from ``ADV_ESTIMATOR_REGISTRY`` (GRPO, RLOO and
REINFORCE++-baseline equal verl's own). verl is imported only inside
``register_verl_estimators``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rewardbridge.data.example import JudgeItem
from rewardbridge.integrations.common import shared_verifier
from rewardbridge.verifiers.base import VerifierResult

PREFIX = "rewardbridge_"


QUESTION_KEYS = ("question", "prompt", "problem")


def _question(extra_info: Any, index: int) -> str:
    if isinstance(extra_info, dict):
        for key in QUESTION_KEYS:
            if isinstance(extra_info.get(key), str):
                return str(extra_info[key])
    keys = sorted(extra_info) if isinstance(extra_info, dict) else type(extra_info).__name__
    raise ValueError(
        f"sample {index}: extra_info has no question (one of {', '.join(QUESTION_KEYS)}; it "
        f"has {keys}); put the question in extra_info when preprocessing the dataset"
    )


def _reference(ground_truth: Any) -> str:
    if isinstance(ground_truth, (list, tuple)) and len(ground_truth) == 1:
        ground_truth = ground_truth[0]
    return str(ground_truth)


def _score_dict(result: VerifierResult, unjudged_score: float) -> dict[str, float]:
    return {
        "score": result.score if result.score is not None else unjudged_score,
        "judged": 1.0 if result.judged else 0.0,
    }


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    *,
    verifier: str | None = None,
    unjudged_score: float = math.nan,
    **options: Any,
) -> list[dict[str, float]]:
    """Score a batch with one verifier call; one verl score dict per response (``score`` NaN
    where the verifier did not judge, unless ``unjudged_score`` says otherwise)."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    items = [
        JudgeItem(id=str(i), question=_question(info, i), reference=_reference(gt), response=sol)
        for i, (sol, gt, info) in enumerate(zip(solution_strs, ground_truths, infos, strict=True))
    ]
    results = shared_verifier(verifier, **options).verify(items)
    return [_score_dict(r, float(unjudged_score)) for r in results]


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's per-sample reward function (``custom_reward_function.name=compute_score``)."""
    return compute_score_batch(
        [data_source], [solution_str], [ground_truth], [extra_info], **kwargs
    )[0]


# --- advantage estimators ------------------------------------------------------------------


def make_verl_estimator(estimator: str) -> Callable[..., tuple[Any, Any]]:
    """verl's estimator signature around ``compute_advantages(..., estimator)``."""
    from rewardbridge.rewards.advantages import compute_advantages, get_estimator

    get_estimator(estimator)  # fail now on an unknown name

    def advantage_fn(
        token_level_rewards: Any,
        response_mask: Any,
        index: Sequence[Any] | None = None,
        epsilon: float = 1e-6,
        config: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        import torch

        if index is None:
            raise ValueError(f"{PREFIX}{estimator} needs the prompt uid ('index') to group samples")
        groups: dict[Any, list[int]] = {}
        for i, uid in enumerate(index):
            groups.setdefault(uid, []).append(i)
        sizes = {len(g) for g in groups.values()}
        if len(sizes) != 1:
            raise ValueError(
                f"{PREFIX}{estimator}: every prompt needs the same number of samples "
                f"(actor_rollout_ref.rollout.n); got group sizes {sorted(sizes)}"
            )
        order = torch.tensor([i for g in groups.values() for i in g], dtype=torch.long)
        scores = token_level_rewards.sum(dim=-1)
        token_counts = response_mask.sum(dim=-1)
        normalize = config.get("rewardbridge_normalize", None) if config is not None else None
        with torch.no_grad():
            adv_grouped = compute_advantages(
                scores[order],
                group_size=sizes.pop(),
                estimator=estimator,
                normalize=normalize,
                token_counts=token_counts[order],
            )
            adv = torch.empty_like(adv_grouped)
            adv[order] = adv_grouped
            advantages = adv.unsqueeze(-1) * response_mask
        return advantages, advantages

    advantage_fn.__name__ = f"{PREFIX}{estimator}"
    advantage_fn.__qualname__ = advantage_fn.__name__
    return advantage_fn


_REGISTERED: dict[str, Callable[..., tuple[Any, Any]]] = {}


def _verl_register_adv_est() -> Callable[[str], Callable[[Any], Any]]:
    try:
        from verl.trainer.ppo.core_algos import register_adv_est
    except ImportError as exc:
        raise ImportError(
            "register_verl_estimators needs verl (pip install verl); "
            "it registers into verl.trainer.ppo.core_algos"
        ) from exc
    return register_adv_est


def register_verl_estimators(
    register_adv_est: Callable[[str], Callable[[Any], Any]] | None = None,
) -> list[str]:
    """Register ``rewardbridge_<estimator>`` in verl's advantage-estimator registry.

    ``register_adv_est`` defaults to ``verl.trainer.ppo.core_algos.register_adv_est`` (imported
    here, so this module imports without verl). Idempotent: verl refuses a second, different
    function under one name, so the same function object is registered each time.
    Returns the registered names.
    """
    register = register_adv_est if register_adv_est is not None else _verl_register_adv_est()
    from rewardbridge.rewards.advantages import estimator_names

    names = []
    for estimator in estimator_names():
        name = f"{PREFIX}{estimator}"
        fn = _REGISTERED.setdefault(name, make_verl_estimator(estimator))
        register(name)(fn)
        names.append(name)
    return names
