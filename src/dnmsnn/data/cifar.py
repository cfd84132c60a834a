"""Reader for the CIFAR-10 binary record format (1 label byte + 3x32x32 RGB plane bytes per record)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dnmsnn.errors import DataError, InputError

__all__ = ["CIFAR10_CLASSES", "RECORD_BYTES", "read_cifar10_bin", "read_cifar10_classes"]

RECORD_BYTES = 1 + 3 * 32 * 32
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_REFETCH = "re-copy the file from the official cifar-10-binary.tar.gz"


def read_cifar10_bin(
    path: str | os.PathLike, max_records: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 binary records: images uint8 [N,3,32,32] and labels int64 [N] (first `max_records`)."""
    path = Path(path)
    n_total = _record_count(path)
    n = n_total if max_records is None else min(n_total, _check_max_records(max_records))
    try:
        with path.open("rb") as fh:
            raw = fh.read(n * RECORD_BYTES)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read file ({exc.strerror or exc}); check the path and permissions"
        ) from None
    if len(raw) != n * RECORD_BYTES:
        raise DataError(
            f"{path}: file shrank while reading ({len(raw)} of {n * RECORD_BYTES} bytes); {_REFETCH}"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(n, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{path}: record {i} has label {int(labels[i])}, expected 0..9 ({bad.size} bad records): "
            f"the file is corrupt or not CIFAR-10 binary (CIFAR-100 uses another layout); {_REFETCH}"
        )
    images = records[:, 1:].reshape(n, 3, 32, 32).copy()
    return images, labels


def read_cifar10_classes(meta_path: str | os.PathLike | None) -> list[str]:
    """Class names from `batches.meta.txt` (one per line) if it exists, else the standard 10 names."""
    if meta_path is None or not Path(meta_path).is_file():
        return list(CIFAR10_CLASSES)
    path = Path(meta_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot read class names ({exc}); re-copy it or delete it to use the defaults"
        ) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != 10:
        raise DataError(
            f"{path}: expected 10 class names (one per line), found {len(names)}; "
            "re-copy it or delete it to use the standard CIFAR-10 names"
        )
    return names


def _record_count(path: Path) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path or pass --data-dir") from None
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read file ({exc.strerror or exc}); check the path and permissions"
        ) from None
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; point at a CIFAR-10 .bin batch file")
    if size == 0 or size % RECORD_BYTES:
        raise DataError(
            f"{path}: size {size} bytes is not a positive multiple of the {RECORD_BYTES}-byte "
            "CIFAR-10 record "
            f"(truncated or not a CIFAR-10 binary batch); {_REFETCH}"
        )
    return size // RECORD_BYTES


def _check_max_records(max_records: int) -> int:
    if isinstance(max_records, bool) or not isinstance(max_records, (int, np.integer)) or max_records < 1:
        raise InputError(f"max_records must be a positive integer or None, got {max_records!r}")
    return int(max_records)
