"""Evaluation: accuracy of one or more networks on a dataset at a given T, with a fixed-seed input stream."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from .. import rules
from ..data import ArrayDataset
from ..encoders import Encoder, create_encoder
from ..network import Network
from ..rules.base import LearningRule, task_loss

if TYPE_CHECKING:
    from .config import RunConfig


def batches(ds: ArrayDataset, batch_size: int, order: torch.Tensor | None = None) -> Iterator[tuple]:
    """(images, labels) mini-batches of an in-memory dataset, in ``order`` or as stored."""
    for start in range(0, len(ds), batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        yield ds.images[idx], ds.labels[idx]


@torch.no_grad()
def collect_outputs(
    models: Sequence[Network],
    rules: Sequence[LearningRule],
    encoder: Encoder,
    dataset: ArrayDataset,
    T: int,
    batch_size: int = 500,
    seed: int = 12345,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every model's logits [N, classes] (``rule.predict``, eval mode) and the labels [N].

    Each batch is encoded once, from a fixed-seed stream, and given to every model, so all models see
    the same input spikes; the encoder's training stream is left untouched.
    """
    modes, old_T = [m.training for m in models], encoder.T
    for m in models:
        m.eval()
    outputs: list[list[torch.Tensor]] = [[] for _ in models]
    labels = []
    try:
        with encoder.eval_stream(seed):
            encoder.with_T(T)
            for images, y in batches(dataset, batch_size):
                x = encoder(images)
                for out, model, rule in zip(outputs, models, rules, strict=True):
                    out.append(rule.predict(model, x))
                labels.append(y)
    finally:
        encoder.with_T(old_T)
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)
    return [torch.cat(o) for o in outputs], torch.cat(labels)


def run_outputs(cfg: RunConfig, models: Sequence[Network], dataset: ArrayDataset, T: int
                ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every model's logits of ``dataset`` at T, evaluated as a run of ``cfg`` tests it: one instance of the run's
    rule per model, the run's encoder, evaluation batch size and fixed evaluation stream (``encoder.eval_seed``)."""
    member_rules = [rules.create(cfg.rule.name, loss=cfg.rule.loss, **cfg.rule.args) for _ in models]
    encoder = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=cfg.train.seed)
    return collect_outputs(models, member_rules, encoder, dataset, T, cfg.train.eval_batch_size,
                           cfg.encoder.eval_seed)


def metrics(logits: torch.Tensor, labels: torch.Tensor, loss: str, batch_size: int = 500) -> dict[str, float]:
    """Accuracy and mean task loss of collected logits (the loss taken per batch of ``batch_size``, then averaged)."""
    correct, loss_sum = int((logits.argmax(-1) == labels).sum()), 0.0
    for start in range(0, len(labels), batch_size):
        y = labels[start:start + batch_size]
        loss_sum += float(task_loss(logits[start:start + batch_size], y, loss)) * y.shape[0]
    total = len(labels)
    return {"acc": correct / max(total, 1), "loss": loss_sum / max(total, 1), "n": total}


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
    (logits,), labels = collect_outputs([model], [rule], encoder, dataset, T, batch_size, seed)
    return metrics(logits, labels, rule.loss, batch_size)
