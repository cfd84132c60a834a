"""This process's part of a global batch, in data-parallel training.

``dnmsnn.train.distributed`` runs a global batch split over processes; whatever depends on the whole batch
(Dropout's masks, the ASF rule's batch-shared slope) consults :func:`batch_shard` so that the result does not
depend on how many processes share the batch.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable
from typing import NamedTuple

import torch

from ._context import setting


class BatchShard(NamedTuple):
    """This process runs rows ``start:stop`` of a global batch of ``total`` samples (distributed training).

    ``all_sum`` sums a tensor over the processes that share the global batch; ``live`` is False for a
    stand-in row run by a process whose part of the batch is empty (it then adds nothing to the sums).
    """

    start: int
    stop: int
    total: int
    all_sum: Callable[[torch.Tensor], torch.Tensor]
    live: bool = True


BATCH_SHARD: contextvars.ContextVar[BatchShard | None] = contextvars.ContextVar("dnmsnn_batch_shard", default=None)


def batch_shard(shard: BatchShard) -> contextlib.AbstractContextManager[None]:
    """Within the block this process's batch is one shard of a global batch (``dnmsnn.train.distributed``
    sets it); whatever depends on the whole batch consults it, so the result does not depend on how many
    processes share the batch: Dropout draws the global batch's masks and keeps its rows, and batch-wide
    sums use :func:`shard_sum`."""
    return setting(BATCH_SHARD, shard)


def shard_sum(t: torch.Tensor) -> torch.Tensor:
    """A batch-wide sum: ``t`` (this process's partial sum) added over every process sharing the global batch.

    Just ``t`` outside :func:`batch_shard`, i.e. in one process.
    """
    shard = BATCH_SHARD.get()
    if shard is None:
        return t
    return shard.all_sum(t if shard.live else torch.zeros_like(t))
