"""Datasets: offline readers (IDX, CIFAR-10 binary), checksums, the embedded digits set and `load_dataset`."""

from __future__ import annotations

from dnmsnn.data.checksums import KNOWN_MD5, check_file, md5sum, read_md5sums, verify
from dnmsnn.data.cifar import CIFAR10_CLASSES, read_cifar10_bin, read_cifar10_classes
from dnmsnn.data.datasets import (
    DATA_DIR_ENV,
    DATASETS,
    ArrayDataset,
    DatasetInfo,
    PartialDatasetWarning,
    available_datasets,
    load_dataset,
    resolve_data_dir,
    split_validation,
)
from dnmsnn.data.digits import load_digits_split
from dnmsnn.data.idx import parse_idx, read_idx

__all__ = [
    "ArrayDataset",
    "CIFAR10_CLASSES",
    "DATASETS",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "KNOWN_MD5",
    "PartialDatasetWarning",
    "available_datasets",
    "check_file",
    "load_dataset",
    "load_digits_split",
    "md5sum",
    "parse_idx",
    "read_cifar10_bin",
    "read_cifar10_classes",
    "read_idx",
    "read_md5sums",
    "resolve_data_dir",
    "split_validation",
    "verify",
]
