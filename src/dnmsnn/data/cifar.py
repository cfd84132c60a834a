"""Reader for the CIFAR-10 binary record format (1 label byte + 3x32x32 RGB plane bytes per record)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnmsnn.data.checksums import check_file
from dnmsnn.data.locate import candidate_folders, file_digests, find_folder, not_found_error
from dnmsnn.errors import DataError, InputError

__all__ = [
    "CIFAR10_CLASSES", "RECORD_BYTES", "CifarSplit", "load_cifar10_split", "read_cifar10_bin", "read_cifar10_classes",
]

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


# ---------------------------------------------------------------------------------------------- the files
CIFAR_FULL = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
CIFAR_PARTIAL = {"train": ("data_batch_1_first4000.bin",), "test": ("test_batch_first1000.bin",)}
CIFAR_PARTIAL_LABELS = "train_labels_all50000.bin"
CIFAR_META = "batches.meta.txt"
CIFAR_FULL_FOLDERS = ("cifar-10-batches-bin", "cifar10")
CIFAR_PARTIAL_FOLDERS = ("cifar10-partial",)


@dataclass(frozen=True)
class CifarSplit:
    """One split as read: uint8 images [N, 3, 32, 32], int64 labels, class names, the folder, the files read
    (each with its MD5), whether it is the partial subset and how many images its first file holds."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    folder: Path
    files: dict[str, str]
    partial: bool
    in_file: int


def load_cifar10_split(split: str, data_dir: Path, limit: int | None, others: set[str]) -> CifarSplit:
    """The full official batches if present, else the 4,000 / 1,000-image subset; checksums verified, the
    subset's labels cross-checked against its label file. ``others``: the other datasets' folder names."""
    folder, paths, partial = _locate_cifar10(split, data_dir, others)
    meta = folder / CIFAR_META
    files = [*paths, *([meta] if meta.is_file() else [])]
    for path in files:
        check_file(path)
    images, labels = _read_cifar_files(paths, limit)
    if partial and split == "train":
        _cross_check_partial_labels(folder, paths[0], labels)
    classes = read_cifar10_classes(meta) if meta.is_file() else list(CIFAR10_CLASSES)
    return CifarSplit(images, labels, classes, folder, file_digests(files), partial,
                      paths[0].stat().st_size // RECORD_BYTES)


def _locate_cifar10(split: str, data_dir: Path, others: set[str]) -> tuple[Path, list[Path], bool]:
    """The full official batches if present, else the partial files; an incomplete full copy is an error."""
    looked: list[str] = []
    full = [(f,) for f in CIFAR_FULL[split]]
    found = find_folder(data_dir, CIFAR_FULL_FOLDERS, full, looked, others)
    if found is not None:
        return found[0], found[1], False
    hint = "cifar-10-batches-bin/ (or cifar10-partial/)"
    candidates = candidate_folders(data_dir, CIFAR_FULL_FOLDERS, [], others)
    if any(d.is_dir() and any((d / f).is_file() for f in CIFAR_FULL[split]) for d in candidates):
        raise not_found_error("cifar10", split, data_dir, looked, hint)  # an incomplete full copy
    found = find_folder(data_dir, CIFAR_PARTIAL_FOLDERS, [(f,) for f in CIFAR_PARTIAL[split]], looked, others)
    if found is None:
        raise not_found_error("cifar10", split, data_dir, looked, hint)
    return found[0], found[1], True


def _read_cifar_files(paths: list[Path], limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    images, labels, remaining = [], [], limit
    for path in paths:
        if remaining is not None and remaining <= 0:
            break
        x, y = read_cifar10_bin(path, max_records=remaining)
        images.append(x)
        labels.append(y)
        if remaining is not None:
            remaining -= len(y)
    return np.concatenate(images), np.concatenate(labels)


def _cross_check_partial_labels(folder: Path, batch: Path, labels: np.ndarray) -> None:
    label_file = folder / CIFAR_PARTIAL_LABELS
    if not label_file.is_file():
        return
    check_file(label_file)
    all_labels = np.fromfile(label_file, dtype=np.uint8, count=len(labels)).astype(np.int64)
    if len(all_labels) != len(labels) or not np.array_equal(all_labels, labels):
        raise DataError(
            f"{batch}: its labels disagree with {label_file}; one of the two files is corrupt, re-copy both"
        )
