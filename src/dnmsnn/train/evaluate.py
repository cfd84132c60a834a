"""Evaluation: accuracy of a network on a dataset at a given T, with a fixed-seed input stream."""
from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data import ArrayDataset
from ..encoders import Encoder
from ..network import Network
from ..rules.base import LearningRule, task_loss


def batches(ds: ArrayDataset, batch_size: int, order: torch.Tensor | None = None) -> Iterator[tuple]:
    """(images, labels) mini-batches of an in-memory dataset, in ``order`` or as stored."""
    for start in range(0, len(ds), batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        yield ds.images[idx], ds.labels[idx]


@torch.no_grad()
def evaluate(
    model: Network,
    rule: LearningRule,
    encoder: Encoder,
    dataset: ArrayDataset,
    T: int,
    batch_size: int = 500,
    seed: int = 12345,
) -> dict[str, float]:
    """Accuracy and mean loss at sequence length T; the encoder's training stream is left untouched."""
    was_training, old_T = model.training, encoder.T
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    try:
        with encoder.eval_stream(seed):
            encoder.with_T(T)
            for images, labels in batches(dataset, batch_size):
                logits = rule.predict(model, encoder(images))
                loss_sum += float(task_loss(logits, labels, rule.loss)) * labels.shape[0]
                correct += int((logits.argmax(-1) == labels).sum())
                total += labels.shape[0]
    finally:
        encoder.with_T(old_T)
        model.train(was_training)
    return {"acc": correct / max(total, 1), "loss": loss_sum / max(total, 1), "n": total}
