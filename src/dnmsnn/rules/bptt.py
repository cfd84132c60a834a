"""Backpropagation through time with surrogate gradients.

The network runs multi-step (layer by layer over all T), the loss is taken on the readout and
``loss.backward()`` propagates through every step's graph: through time (V[k-1] -> H[k]) and
space (layer m -> m-1), with the spike's derivative replaced by the neuron's surrogate.
"""
from __future__ import annotations

import torch

from ..network import Network
from .base import AuxLoss, LearningRule, PendingBackward, check_batch
from .registry import register_rule


@register_rule("bptt")
class BPTT(LearningRule):
    """Full backpropagation through time; memory grows linearly with T."""

    def forward_pass(self, model: Network, inputs: torch.Tensor, targets: torch.Tensor) -> PendingBackward:
        check_batch(model, inputs, targets)
        logits = model.classify(inputs)

        def finish(aux_loss: AuxLoss | None) -> tuple[torch.Tensor, torch.Tensor]:
            loss = self.objective(logits, targets, aux_loss)
            loss.backward()
            return loss.detach(), logits.detach()

        return PendingBackward(logits.detach(), finish)
