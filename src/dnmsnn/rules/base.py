"""The learning-rule interface every rule implements, and the task losses it can use.

A rule owns the gradient: ``loss_backward(model, inputs, targets)`` runs the network in its own
mode, fills the parameters' ``.grad`` (accumulating, like ``loss.backward()``) and returns the
detached loss and logits; the trainer owns the optimizer step. ``aux_loss`` (a function of the
logits) lets a cohort add its exchange term without knowing the rule's internals.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._checks import check_choice
from ..errors import InputError
from ..network import Network

AuxLoss = Callable[[torch.Tensor], torch.Tensor]
LOSSES = ("ce", "mse")


def task_loss(logits: torch.Tensor, targets: torch.Tensor, name: str = "ce") -> torch.Tensor:
    """``ce``: mean softmax cross-entropy (Bondarev eq. 10).

    ``mse``: mean over the batch of 1/2 ||onehot - logits||^2.
    """
    if name == "ce":
        return F.cross_entropy(logits, targets)
    onehot = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    return 0.5 * (onehot - logits).pow(2).sum(-1).mean()


def check_batch(model: Network, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Inputs [T, B, ...] valid for the model; targets int64 [B] in range."""
    model.check_input(inputs)
    if targets.dtype != torch.long or targets.dim() != 1 or targets.shape[0] != inputs.shape[1]:
        raise InputError(f"targets must be int64 class indices of shape [B] = [{inputs.shape[1]}], got "
                         f"{targets.dtype} {tuple(targets.shape)}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= model.num_classes):
        raise InputError(f"targets must lie in 0..{model.num_classes - 1}, "
                         f"got {int(targets.min())}..{int(targets.max())}")


class LearningRule(ABC):
    """Strategy that computes parameter gradients for one batch."""

    name: str = ""

    def __init__(self, loss: str = "ce") -> None:
        self.loss = check_choice(loss, "loss", LOSSES)

    @abstractmethod
    def loss_backward(
        self,
        model: Network,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        aux_loss: AuxLoss | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill ``.grad`` for one batch; return (loss, logits [B, classes]), both detached."""

    @torch.no_grad()
    def predict(self, model: Network, inputs: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] without gradients (every rule infers the same way)."""
        return model.classify(inputs)

    @torch.no_grad()
    def objective_logits(self, model: Network, inputs: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] on the scale the objective (and ``aux_loss``) sees, without gradients.

        ``predict`` for rules that use the readout as it is; a rule that rescales it overrides this.
        """
        return self.predict(model, inputs)

    def objective(self, logits: torch.Tensor, targets: torch.Tensor, aux_loss: AuxLoss | None) -> torch.Tensor:
        """Task loss plus the optional auxiliary (exchange) term."""
        loss = task_loss(logits, targets, self.loss)
        return loss if aux_loss is None else loss + aux_loss(logits)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(loss={self.loss!r})"
