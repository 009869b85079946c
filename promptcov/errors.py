"""Exceptions that carry the CLI's exit codes.

The contract: exit 0 success, 1 a failure of the job, 2 bad usage or bad input. Library code
raises these; only :mod:`promptcov.cli` turns them into exit codes.
"""

from __future__ import annotations

__all__ = ["PromptcovError", "InputError", "JobError", "NotFittedError", "ManifestMismatchError",
           "DamagedStoreError"]


class PromptcovError(Exception):
    """Base class of every error promptcov raises on purpose."""

    exit_code = 1


class InputError(PromptcovError, ValueError):
    """Bad usage or bad input: one clear line saying what is wrong, where, and what to do."""

    exit_code = 2


class ManifestMismatchError(InputError):
    """A persisted artefact does not match what the caller asked for (model, dimension, ...)."""


class JobError(PromptcovError, RuntimeError):
    """The job itself failed (exit 1)."""


class DamagedStoreError(JobError):
    """A store file (the FAISS index, a vector shard) is missing, truncated or fails its checksum (exit 1).

    The message says which file and what repairs it (``promptcov embed`` or ``promptcov verify --repair``).
    """


class NotFittedError(PromptcovError, RuntimeError):
    """A method needs a fitted estimator; the message says what to run first."""
