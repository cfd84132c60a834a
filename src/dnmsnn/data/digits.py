"""The embedded dataset: scikit-learn's 8x8 handwritten digits (1,797 images), no files needed."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["DIGITS_CLASSES", "TEST_FRACTION", "SPLIT_SEED", "load_digits_split"]

DIGITS_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 [N,1,8,8] in [0,1] and labels int64 [N] of the fixed stratified train/test split."""
    train_x, test_x, train_y, test_y = _split()
    if split == "train":
        return train_x.copy(), train_y.copy()
    if split == "test":
        return test_x.copy(), test_y.copy()
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


@lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    for arr in (train_x, test_x, train_y, test_y):
        arr.setflags(write=False)
    return train_x, test_x, train_y, test_y
