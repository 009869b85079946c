"""How a job tells its caller what is happening, without printing: the :class:`Progress` protocol.

Every job is ``run_<job>(store, config, progress) -> Summary``. It reports long work through
``progress.update(stage, done, total)`` and each finished sub-step of a composite job (``run``,
``demo``) through ``progress.finished(summary)``. The command line implements the protocol with
progress bars and summary lines; a library caller passes nothing (:class:`NullProgress`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Progress", "Summary", "NullProgress", "ensure_progress"]


@runtime_checkable
class Summary(Protocol):
    """What a job returns: counts and timings, with a one-line human form."""

    def line(self) -> str: ...


@runtime_checkable
class Progress(Protocol):
    """Receives a job's progress and the summaries of its finished steps."""

    def update(self, stage: str, done: int, total: int | None = None) -> None: ...

    def finished(self, summary: Summary) -> None: ...


class NullProgress:
    """Ignores everything: the default for library callers and tests."""

    def update(self, stage: str, done: int, total: int | None = None) -> None:
        return None

    def finished(self, summary: Summary) -> None:
        return None


def ensure_progress(progress: Progress | None) -> Progress:
    """``progress``, or a :class:`NullProgress` when ``None``."""
    return NullProgress() if progress is None else progress
