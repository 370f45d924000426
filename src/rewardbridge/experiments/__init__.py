"""Experiments built from the library's layers: the quickstart demo (``demo``)."""
