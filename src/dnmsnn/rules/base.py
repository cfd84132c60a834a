"""The learning-rule interface every rule implements, and the task losses it can use.

A rule owns the gradient: ``loss_backward(model, inputs, targets)`` runs the network in its own
mode, fills the parameters' ``.grad`` (accumulating, like ``loss.backward()``) and returns the
detached loss and logits; the trainer owns the optimizer step. ``aux_loss`` (a function of the
logits) lets a cohort add its exchange term without knowing the rule's internals.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_choice
from ..errors import InputError
from ..network import Network

AuxLoss = Callable[[torch.Tensor], torch.Tensor]
LOSSES = ("ce", "mse")


@dataclass(frozen=True)
class PendingBackward:
    """A rule's forward pass over one batch whose backward has not run yet.

    ``prediction`` [B, classes] is detached and in the objective's space (what ``aux_loss`` receives, and
    so what a cohort peer is given) -- or, for a pass asked for the output sequence, the readouts of every
    prefix of the output trace [T, B, classes] (:func:`~dnmsnn.network.prefix_readouts`), which ``aux_loss``
    then receives instead; ``finish(aux_loss)`` adds the optional auxiliary term, runs the backward, fills
    ``.grad`` and returns (loss, logits), both detached.
    """

    prediction: torch.Tensor
    finish: Callable[[AuxLoss | None], tuple[torch.Tensor, torch.Tensor]]


def task_loss(logits: torch.Tensor, targets: torch.Tensor, name: str = "ce") -> torch.Tensor:
    """``ce``: mean softmax cross-entropy (Bondarev eq. 10).

    ``mse``: mean over the batch of 1/2 ||onehot - logits||^2.
    """
    if name == "ce":
        return F.cross_entropy(logits, targets)
    onehot = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    return 0.5 * (onehot - logits).pow(2).sum(-1).mean()


def no_sequence(rule: LearningRule, sequence: bool) -> None:
    """The error of a rule asked for its output sequence (``forward_pass(..., sequence=True)``) that has none."""
    if sequence:
        raise InputError(f"the {rule.name or type(rule).__name__} rule cannot exchange the output sequence (only "
                         "bptt trains on a readout of the whole output trace); use a logit exchange (kl, mse, ce) "
                         "or the bptt rule")


def check_batch(model: Network, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Inputs [T, B, ...] valid for the model; targets int64 [B] in range."""
    model.check_input(inputs)
    if targets.dtype != torch.long or targets.dim() != 1 or targets.shape[0] != inputs.shape[1]:
        raise InputError(f"targets must be int64 class indices of shape [B] = [{inputs.shape[1]}], got "
                         f"{targets.dtype} {tuple(targets.shape)}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= model.num_classes):
        raise InputError(f"targets must lie in 0..{model.num_classes - 1}, "
                         f"got {int(targets.min())}..{int(targets.max())}")


class LearningRule:
    """Strategy that computes parameter gradients for one batch."""

    name: str = ""

    def __init__(self, loss: str = "ce") -> None:
        self.loss = check_choice(loss, "loss", LOSSES)
        self.optimizer: torch.optim.Optimizer | None = None

    def loss_backward(
        self,
        model: Network,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        aux_loss: AuxLoss | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill ``.grad`` for one batch; return (loss, logits [B, classes]), both detached.

        A rule implements this, or :meth:`forward_pass` (then this is its forward followed by its finish).
        """
        pending = self.forward_pass(model, inputs, targets)
        if pending is None:
            raise NotImplementedError(f"{type(self).__name__} implements neither loss_backward nor forward_pass")
        return pending.finish(aux_loss)

    @property
    def steps_optimizer(self) -> bool:
        """True when the rule applies the optimizer itself, within a batch (then the trainer does not step it)."""
        return False

    def bind_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Give the rule its network's optimizer (used only by rules that step it themselves)."""
        self.optimizer = optimizer

    def forward_pass(self, model: Network, inputs: torch.Tensor, targets: torch.Tensor,
                     sequence: bool = False) -> PendingBackward | None:
        """:meth:`loss_backward` split in two: the forward pass now, the backward when the result's ``finish``
        is called. A cohort uses it to hand each member's training prediction to its peers before any
        member's backward, instead of running an extra prediction pass. ``None`` (the default) where the
        rule cannot split, e.g. when it steps through time with a backward at every step.

        ``sequence=True`` asks for the output sequence as the prediction (see :class:`PendingBackward`); a rule
        whose objective is not a readout of the output trace refuses it (:func:`no_sequence`)."""
        no_sequence(self, sequence)
        return None

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
