"""Public dataset API: `ArrayDataset`, the `DATASETS` registry, `load_dataset` and `split_validation`."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dnmsnn.data.checksums import check_file
from dnmsnn.data.cifar import CIFAR10_CLASSES, CIFAR_FULL_FOLDERS, CIFAR_PARTIAL_FOLDERS, load_cifar10_split
from dnmsnn.data.digits import DIGITS_CLASSES, load_digits_split
from dnmsnn.data.idx import read_idx
from dnmsnn.data.locate import DATA_DIR_ENV, absolute, file_digests, find_folder, norm, not_found_error
from dnmsnn.errors import DataError, InputError

__all__ = [
    "ArrayDataset",
    "DATASETS",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "PartialDatasetWarning",
    "available_datasets",
    "load_dataset",
    "resolve_data_dir",
    "split_validation",
]

SPLITS = ("train", "test")


class PartialDatasetWarning(UserWarning):
    """The files found hold only a subset of the dataset (e.g. the 4,000/1,000-image CIFAR-10 subset)."""


@dataclass(eq=False, repr=False)
class ArrayDataset(Dataset):
    """An in-memory image classification dataset: float32 images [N,C,H,W] in [0,1], int64 labels [N].

    ``files`` maps each file the set was read from (its absolute path) to its MD5; empty for the embedded
    digits and for sets built in memory. A run records it, so later commands can tell the same files.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (
            not isinstance(self.images, torch.Tensor)
            or self.images.ndim != 4
            or self.images.dtype != torch.float32
        ):
            raise InputError(
                f"ArrayDataset.images must be a float32 tensor [N,C,H,W], got {_describe(self.images)}"
            )
        if (
            not isinstance(self.labels, torch.Tensor)
            or self.labels.ndim != 1
            or self.labels.dtype != torch.int64
        ):
            raise InputError(f"ArrayDataset.labels must be an int64 tensor [N], got {_describe(self.labels)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise InputError(
                f"ArrayDataset: {self.images.shape[0]} images but {self.labels.shape[0]} labels; "
                "they must match"
            )
        self.classes = [str(c) for c in self.classes]
        if self.labels.numel() and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise InputError(
                f"ArrayDataset: labels must lie in 0..{len(self.classes) - 1} (one per class name), "
                f"got range {int(self.labels.min())}..{int(self.labels.max())}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, n={len(self)}, shape={self.shape}, "
            f"classes={len(self.classes)})"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor | slice) -> ArrayDataset:
        """A new dataset holding the samples at `indices` (copied), with the same classes and name."""
        idx = _as_index(indices, len(self))
        return ArrayDataset(self.images[idx], self.labels[idx], list(self.classes), self.name)


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is, where its files live and how to load one split."""

    name: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    folders: tuple[str, ...]
    description: str
    loader: Callable[[str, Path, int | None], ArrayDataset]

    @property
    def needs_files(self) -> bool:
        return bool(self.folders)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# ---------------------------------------------------------------------------------------------- public API


def available_datasets() -> list[str]:
    """Names accepted by `load_dataset` (canonical names; aliases such as "fashion-mnist" also work)."""
    return list(DATASETS)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $DNMSNN_DATA_DIR, else ./data."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else Path("data")


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
) -> ArrayDataset:
    """Load split "train" or "test" of a registered dataset, optionally only its first `limit` samples."""
    info = DATASETS[_canonical_name(name)]
    if split not in SPLITS:
        raise InputError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1
    ):
        raise InputError(f"limit must be a positive integer or None, got {limit!r}")
    return info.loader(split, resolve_data_dir(data_dir), None if limit is None else int(limit))


def split_validation(
    ds: ArrayDataset, fraction: float, seed: int
) -> tuple[ArrayDataset, ArrayDataset | None]:
    """Split off a stratified random validation set of round(fraction * len(ds)) samples.

    Deterministic for a given seed; both parts keep the original sample order. fraction 0 -> (ds, None).
    """
    fraction = _check_fraction(fraction)
    if fraction == 0.0:
        return ds, None
    if len(ds) < 2:
        raise InputError(f"split_validation: dataset {ds.name!r} has {len(ds)} samples; need at least 2")
    n_val = min(max(round(fraction * len(ds)), 1), len(ds) - 1)
    gen = torch.Generator().manual_seed(_check_seed(seed))
    counts = torch.bincount(ds.labels, minlength=ds.num_classes)
    quotas = _largest_remainder(counts.tolist(), n_val)
    val_parts = []
    for cls, quota in enumerate(quotas):
        if quota == 0:
            continue
        members = torch.nonzero(ds.labels == cls).flatten()
        val_parts.append(members[torch.randperm(members.numel(), generator=gen)[:quota]])
    val_idx = torch.sort(torch.cat(val_parts)).values
    is_val = torch.zeros(len(ds), dtype=torch.bool)
    is_val[val_idx] = True
    train_idx = torch.nonzero(~is_val).flatten()
    return ds.subset(train_idx), ds.subset(val_idx)


# ---------------------------------------------------------------------------------------------- loaders


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
def _load_cifar10(split: str, data_dir: Path, limit: int | None) -> ArrayDataset:
    got = load_cifar10_split(split, data_dir, limit, _other_folders("cifar10"))
    if got.partial:
        warnings.warn(
            f"cifar10: only the partial CIFAR-10 subset was found in {absolute(got.folder)} "
            f"({got.in_file:,} {split} images; a 4,000/1,000-image subset): "
            "this is NOT full CIFAR-10, do not report results on it as CIFAR-10 numbers",
            PartialDatasetWarning,
            stacklevel=3,
        )
    return ArrayDataset(_to_float(got.images), torch.from_numpy(got.labels), got.classes,
                        "cifar10-partial" if got.partial else "cifar10", got.files)


def _other_folders(name: str) -> set[str]:
    """The normalised folder names of every dataset but ``name`` (a data dir that is one of them is skipped)."""
    return {norm(f) for key, info in DATASETS.items() if key != name for f in info.folders}


def _load_digits(split: str, data_dir: Path, limit: int | None) -> ArrayDataset:
    images, labels = load_digits_split(split)
    images, labels = images[:limit], labels[:limit]
    return ArrayDataset(torch.from_numpy(images), torch.from_numpy(labels), list(DIGITS_CLASSES), "digits")


def _idx_loader(name: str) -> Callable[[str, Path, int | None], ArrayDataset]:
    def load(split: str, data_dir: Path, limit: int | None) -> ArrayDataset:
        info = DATASETS[name]
        wanted = [(f + ".gz", f) for f in _IDX_FILES[split]]
        _, (img_path, lbl_path) = _locate(name, split, data_dir, info.folders, wanted)
        for path in (img_path, lbl_path):
            check_file(path, known_key=f"{info.folders[0]}/{path.name}")
        images, labels = read_idx(img_path), read_idx(lbl_path)
        _check_idx_arrays(img_path, lbl_path, images, labels, info)
        images, labels = images[:limit], labels[:limit]
        return ArrayDataset(
            _to_float(images[:, None]), torch.from_numpy(labels.astype(np.int64)), list(info.classes), name,
            file_digests([img_path, lbl_path]),
        )

    return load


# ---------------------------------------------------------------------------------------------- helpers


def dataset_info(name: str) -> DatasetInfo:
    """What is known about dataset ``name`` without reading its files: its shape, classes, folders."""
    return DATASETS[_canonical_name(name)]


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        names = ", ".join(available_datasets())
        raise DataError(f"unknown dataset {name!r}; available datasets: {names} (alias: fashion-mnist)")
    return key


def _locate(
    name: str, split: str, data_dir: Path, folders: tuple[str, ...], wanted: list[tuple[str, ...]]
) -> tuple[Path, list[Path]]:
    looked: list[str] = []
    found = find_folder(data_dir, folders, wanted, looked, _other_folders(name))
    if found is None:
        raise not_found_error(name, split, data_dir, looked, f"{folders[0]}/")
    return found


def _check_idx_arrays(
    img_path: Path, lbl_path: Path, images: np.ndarray, labels: np.ndarray, info: DatasetInfo
) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or tuple(images.shape[1:]) != info.shape[1:]:
        raise DataError(
            f"{img_path}: expected uint8 images [N,{info.shape[1]},{info.shape[2]}], got {images.dtype} "
            f"{list(images.shape)}; this is not the {info.name} image file, re-copy it"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{lbl_path}: expected a 1-D uint8 label file, got {labels.dtype} {list(labels.shape)}; "
            "re-copy it"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{lbl_path}: {len(labels)} labels but {img_path.name} holds {len(images)} images; "
            "the files belong to different splits or one is truncated, re-copy both"
        )
    if len(labels) and int(labels.max()) >= info.num_classes:
        raise DataError(
            f"{lbl_path}: label {int(labels.max())} out of range 0..{info.num_classes - 1}; re-copy it"
        )


def _to_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)


def _as_index(indices: Sequence[int] | np.ndarray | torch.Tensor | slice, n: int) -> torch.Tensor:
    if isinstance(indices, slice):
        return torch.arange(n)[indices]
    try:
        idx = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(np.asarray(indices))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"subset: indices must be a 1-D sequence of integers ({exc})") from None
    if idx.ndim != 1:
        raise InputError(f"subset: indices must be 1-D, got shape {list(idx.shape)}")
    if idx.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if idx.dtype == torch.bool or idx.dtype.is_floating_point or idx.dtype.is_complex:
        raise InputError(
            f"subset: indices must be integers (not a {idx.dtype} mask or values), got {idx.dtype}"
        )
    idx = idx.long()
    if int(idx.min()) < -n or int(idx.max()) >= n:
        raise InputError(f"subset: indices must lie in [-{n}, {n - 1}] for a dataset of {n} samples")
    return idx


def _check_fraction(fraction: float) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating, np.integer)):
        raise InputError(f"validation fraction must be a number in [0, 1), got {fraction!r}")
    value = float(fraction)
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise InputError(f"validation fraction must be in [0, 1), got {fraction!r}")
    return value


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise InputError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _largest_remainder(counts: list[int], total: int) -> list[int]:
    """Split `total` over classes proportionally to `counts` (Hamilton's method; ties to the lower class)."""
    n = sum(counts)
    exact = [total * c / n for c in counts]
    quotas = [math.floor(e) for e in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in order[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {list(value.shape)}"
    return type(value).__name__


_MNIST_CLASSES = tuple(str(d) for d in range(10))
_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        (1, 8, 8),
        DIGITS_CLASSES,
        (),
        "scikit-learn 8x8 digits, 1,797 images, embedded (no files needed)",
        _load_digits,
    ),
    "mnist": DatasetInfo(
        "mnist",
        (1, 28, 28),
        _MNIST_CLASSES,
        ("mnist", "MNIST"),
        "MNIST handwritten digits, gzip IDX files in mnist/",
        _idx_loader("mnist"),
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        (1, 28, 28),
        _FASHION_CLASSES,
        ("fashion-mnist", "fashion_mnist", "FashionMNIST"),
        "Fashion-MNIST, gzip IDX files in fashion-mnist/",
        _idx_loader("fashion_mnist"),
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        (3, 32, 32),
        CIFAR10_CLASSES,
        (*CIFAR_FULL_FOLDERS, *CIFAR_PARTIAL_FOLDERS),
        "CIFAR-10 binary batches in cifar-10-batches-bin/ (falls back to cifar10-partial/)",
        _load_cifar10,
    ),
}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist", "cifar-10": "cifar10"}
