"""Small file readers shared by the dataset loaders, each turning any failure into a
`DatasetFormatError` that names the file (numpy's own messages often do not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from molam_ros.data.errors import DatasetFormatError


def require_file(path: Path, what: str) -> Path:
    """The path if it is a file, else an error saying which part of the layout is missing."""
    if not path.is_file():
        raise DatasetFormatError(path, f"missing {what}")
    return path


def load_npy(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    """Load a .npy array; truncated or non-numeric files raise DatasetFormatError."""
    require_file(path, what)
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError/UnpicklingError variously
        raise DatasetFormatError(path, f"cannot read {what} as .npy ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise DatasetFormatError(path, f"{what} is not a numeric array")
    return arr


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty stripped lines of a UTF-8 text file."""
    require_file(path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(path, f"cannot read {what} as UTF-8 text ({exc})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_split(path: Path) -> list[str]:
    """Ids of a split file, one per line, in file order, duplicates removed.

    Ids are file stems: a line with a path separator or an extension is a layout mix-up.
    """
    ids: list[str] = []
    seen: set[str] = set()
    for i, line in enumerate(read_lines(path, "split file"), start=1):
        if "/" in line or "\\" in line or " " in line:
            raise DatasetFormatError(path, f"line {i}: {line!r} is not a clip id")
        if line not in seen:
            seen.add(line)
            ids.append(line)
    return ids


def check_finite(arr: np.ndarray, path: Path, what: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise DatasetFormatError(path, f"{what} contains NaN or infinite values")


def floor_offset(positions: np.ndarray) -> float:
    """Height of the lowest joint over the whole clip (all people), the HumanML3D/InterGen
    convention for putting a clip on the floor: subtract it so the lowest joint touches y=0."""
    return float(np.min(positions[..., 1]))
