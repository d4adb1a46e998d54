"""Errors about bad input: reported in one line that names the culprit (key, file or field)."""


class PolypruneError(RuntimeError):
    pass


class ConfigError(PolypruneError):
    """A configuration problem; the message names the key."""


class DataError(PolypruneError):
    """A missing, malformed, corrupted or truncated data file; the message names it."""


class CheckpointError(PolypruneError):
    """An unreadable, truncated or mismatched checkpoint; the message names it."""
