"""Experiments built from the library's layers: the quickstart demo (``demo``) and the
distillation demo (``distill_demo``, report in ``distill_report``)."""
