"""Errors a user can act on. The CLI prints their message (no traceback) and exits with code 2."""
from __future__ import annotations


class DnmsnnError(Exception):
    """Base class: a problem with the user's input, data, config or checkpoint, with a fix in its message."""


class InputError(DnmsnnError, ValueError):
    """A tensor or hyper-parameter given to a public function is invalid (shape, dtype, NaN, range)."""


class ConfigError(DnmsnnError, ValueError):
    """A configuration file or `--set` override is invalid (unknown key, wrong type, bad value)."""


class DataError(DnmsnnError):
    """A dataset file is missing, truncated, corrupt, or fails its checksum."""


class CheckpointError(DnmsnnError):
    """A checkpoint is missing, corrupt, or belongs to another model or version."""


class Interrupted(Exception):
    """The user stopped a command (Ctrl-C); the message says what was kept. The CLI exits with code 130."""
