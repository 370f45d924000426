"""Evaluation: verifier agreement and calibration against labels, robustness audits, and
policy accuracy on a test set (``policy``). Modules import their heavy extras lazily."""
