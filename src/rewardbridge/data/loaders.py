"""Loaders (placeholder until the data loaders land)."""


class DataError(ValueError):
    """Bad input data; the message names the file, line and field."""
