"""The policy being trained or evaluated: sampling responses from a local causal LM.

Below both ``training/`` and ``evaluation/``, so either may sample from a policy without
importing the other.
"""
