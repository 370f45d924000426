"""verl custom reward file, with our estimators registered on import.

    python -m verl.trainer.main_ppo ... \
        custom_reward_function.path=examples/verl/reward_fn.py \
        custom_reward_function.name=compute_score \
        +custom_reward_function.reward_kwargs.url=http://127.0.0.1:8000

For ``reward_model.reward_manager=batch`` use ``custom_reward_function.name=compute_score_batch``.
The question is read from each sample's ``extra_info["question"]``. Importing this file also
registers ``rewardbridge_<estimator>`` in verl's advantage-estimator registry when verl is
installed (``algorithm.adv_estimator=rewardbridge_rloo``); in verl's trainer process import
``rewardbridge.integrations.verl`` and call ``register_verl_estimators()`` yourself if the reward
file is only loaded in reward workers.
"""

from rewardbridge.integrations.verl import compute_score, compute_score_batch

try:  # registering needs verl; scoring does not
    from rewardbridge.integrations.verl import register_verl_estimators

    register_verl_estimators()
except ImportError:
    pass

__all__ = ["compute_score", "compute_score_batch"]
