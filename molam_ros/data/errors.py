"""Errors raised by the dataset loaders.

A loader that meets a file it cannot trust raises `DatasetFormatError`, naming the file and what is
wrong with it, instead of returning a clip with silently wrong numbers: a corrupt download or a
mixed-up layout should stop a data pipeline at the first bad file, with a message that says which.
"""

from __future__ import annotations

from pathlib import Path


class DatasetFormatError(ValueError):
    """A dataset file is missing, truncated or not in the published layout.

    `path` is the offending file (also named in the message) so callers can log or skip it.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BodyModelNotFoundError(FileNotFoundError):
    """A licensed body model (SMPL-X) that the user must download themselves is not where expected."""
