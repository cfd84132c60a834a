"""TensorBoard logging of metrics rows (optional extra: ``pip install 'dnmsnn[tensorboard]'``).

:class:`TensorBoardLogger` takes one metrics row (a dict as written to ``metrics.jsonl``) at a time
and writes its numbers as scalars, step = the row's ``epoch`` (the trainer's ``train.tensorboard``);
:func:`dnmsnn.analysis.tensorboard.metrics_to_tensorboard` converts a finished run directory. Tags group the
curves the way TensorBoard shows them best:
``train_loss`` -> ``loss/train``, ``test_acc`` -> ``accuracy/test``, other numbers under
``metrics/<key>``; cohort members (a ``members`` list or dict of rows) under ``member/<name>/...``,
mix strategies (a ``mix`` dict) under ``mix/<name>``. Non-numeric values are skipped.

The tensorboard package is imported only when a logger is created, so dnmsnn itself never needs it.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import DnmsnnError

_GROUPS = {"_loss": "loss", "_acc": "accuracy"}


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises ImportError when the tensorboard package is missing
        raise DnmsnnError("TensorBoard logging needs the tensorboard package: pip install 'dnmsnn[tensorboard]' "
                          f"({exc})") from None
    return SummaryWriter


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _tag(key: str, prefix: str = "") -> str:
    for suffix, group in _GROUPS.items():
        if key.endswith(suffix) and len(key) > len(suffix):
            return f"{prefix}{group}/{key[: -len(suffix)]}"
    return f"{prefix}metrics/{key}" if not prefix else f"{prefix}{key}"


def scalars(row: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """(tag, value) of every number in a metrics row (see the module docstring for the tags)."""
    for key, value in row.items():
        if key == "epoch":
            continue
        if _is_number(value):
            yield _tag(key), float(value)
        elif key == "members" and isinstance(value, (list, tuple, Mapping)):
            items = value.items() if isinstance(value, Mapping) else (
                ((m.get("name") or m.get("member") or i) if isinstance(m, Mapping) else i, m)
                for i, m in enumerate(value))
            for name, member in items:
                if isinstance(member, Mapping):
                    for k, v in member.items():
                        if _is_number(v) and k not in ("epoch", "member"):
                            yield _tag(k, f"member/{name}/"), float(v)
                elif _is_number(member):
                    yield f"member/{name}/accuracy/test", float(member)
        elif isinstance(value, Mapping):  # e.g. mix: {strategy: acc or {acc: ...}}
            for k, v in value.items():
                if _is_number(v):
                    yield f"{key}/{k}", float(v)
                elif isinstance(v, Mapping):
                    for kk, vv in v.items():
                        if _is_number(vv):
                            yield f"{key}/{k}/{kk}", float(vv)


class TensorBoardLogger:
    """Write metrics rows as TensorBoard scalars into ``logdir``.

    ``log(row)`` uses ``row["epoch"]`` as the step (or ``step=``, or a running count). Use as a
    context manager or call ``close()``. Raises DnmsnnError when tensorboard is not installed.
    """

    def __init__(self, logdir: str | Path, **writer_kwargs: Any) -> None:
        self.logdir = Path(logdir)
        self._writer = _summary_writer()(log_dir=str(self.logdir), **writer_kwargs)
        self._count = 0

    def log(self, row: Mapping[str, Any], step: int | None = None) -> int:
        """Write every number of ``row``; returns the number of scalars written."""
        self._count += 1
        if step is None:
            step = int(row["epoch"]) if _is_number(row.get("epoch")) else self._count
        n = 0
        for tag, value in scalars(row):
            self._writer.add_scalar(tag, value, global_step=step)
            n += 1
        return n

    def log_scalar(self, tag: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag, float(value), global_step=step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
