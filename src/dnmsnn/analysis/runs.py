"""Reading run directories: metrics.jsonl, results.json, and mean +- std over seeds."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DnmsnnError


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DnmsnnError(f"{path} not found; is {run_dir} a run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise DnmsnnError(f"{path} not found; has the run in {run_dir} finished?")
    return json.loads(path.read_text())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, sd


def summarize(run_dirs: Sequence[str | Path], key: str = "test_acc") -> tuple[float, float, int]:
    """(mean, std, n) of a results.json key over runs (e.g. seeds)."""
    vals = [float(load_results(d)[key]) for d in run_dirs]
    m, sd = mean_std(vals)
    return m, sd, len(vals)
