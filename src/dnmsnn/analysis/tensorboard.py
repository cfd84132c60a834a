"""A finished run's metrics as TensorBoard event files (``dnmsnn plot --tensorboard``; the logger itself is
:class:`dnmsnn.train.tensorboard.TensorBoardLogger`, which the trainer also uses while training)."""
from __future__ import annotations

from pathlib import Path

from ..train.tensorboard import TensorBoardLogger, _is_number, scalars
from .runs import load_metrics, load_results

__all__ = ["TensorBoardLogger", "metrics_to_tensorboard", "scalars"]


def metrics_to_tensorboard(run_dir: str | Path, logdir: str | Path) -> Path:
    """Convert a run's ``metrics.jsonl`` (and, when present, ``results.json``'s ``test_acc_by_T`` as
    ``results/test_acc_by_T`` with step T) into TensorBoard event files in ``logdir``."""
    run = Path(run_dir)
    rows = load_metrics(run)
    with TensorBoardLogger(logdir) as tb:
        for i, row in enumerate(rows):
            tb.log(row, step=int(row["epoch"]) if _is_number(row.get("epoch")) else i + 1)
        if (run / "results.json").is_file():
            for T, acc in (load_results(run).get("test_acc_by_T") or {}).items():
                if _is_number(acc):
                    tb.log_scalar("results/test_acc_by_T", acc, int(T))
    return Path(logdir)
