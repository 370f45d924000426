"""Policy training and generation: RL on TRL's GRPOTrainer with our verifier and estimators
(``rl``), its configuration (``config``), and plain sampling from a policy (``generation``).
Heavy libraries are imported inside functions."""
