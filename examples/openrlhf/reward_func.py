"""OpenRLHF reward-function file: pass its path as ``--reward.remote_url``.

    REWARDBRIDGE_URL=http://127.0.0.1:8000 python -m openrlhf.cli.train_ppo_ray ... \
        --reward.remote_url examples/openrlhf/reward_func.py --data.label_key reference

OpenRLHF imports this file and calls ``reward_func(queries, prompts, labels, **kwargs)``. The
verifier is chosen by REWARDBRIDGE_VERIFIER (default ``remote``: a ``rewardbridge serve`` at
REWARDBRIDGE_URL); set REWARDBRIDGE_VERIFIER=generative to judge inside the OpenRLHF worker.
"""

from rewardbridge.integrations.openrlhf import reward_func

__all__ = ["reward_func"]
