"""Shared fixtures: the shared data folder beside the repo (tests skip cleanly when it is absent)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.needs_cpp``: the C++ kernels are built (once, at the first such test, not at import) or the
    test is skipped with the reason."""
    if item.get_closest_marker("needs_cpp"):
        from dnmsnn.functional import cpp

        if cpp.load() is None:
            pytest.skip(f"C++ kernels unavailable: {cpp.status()}")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny tensors: OpenMP threads only add overhead
    yield


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("../shared/data is not beside the repo")
    return SHARED_DATA
