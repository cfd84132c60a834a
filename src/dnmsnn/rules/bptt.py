"""Backpropagation through time with surrogate gradients.

The network runs multi-step (layer by layer over all T), the loss is taken on the readout and
``loss.backward()`` propagates through every step's graph: through time (V[k-1] -> H[k]) and
space (layer m -> m-1), with the spike's derivative replaced by the neuron's surrogate.
"""
from __future__ import annotations

import torch

from ..network import Network, prefix_readouts
from .base import AuxLoss, LearningRule, PendingBackward, check_batch
from .registry import register_rule


@register_rule("bptt")
class BPTT(LearningRule):
    """Full backpropagation through time; memory grows linearly with T."""

    def forward_pass(self, model: Network, inputs: torch.Tensor, targets: torch.Tensor,
                     sequence: bool = False) -> PendingBackward:
        """The forward now, the backward at ``finish``; with ``sequence`` the prediction (and what ``aux_loss``
        receives) is the readout of every prefix of the output trace, ``prefix_readouts(model(x))`` [T, B, C],
        whose last step is the logits the task loss sees."""
        check_batch(model, inputs, targets)
        if sequence:
            outputs = prefix_readouts(model.run(inputs).output, model.readout)
            logits = outputs[-1]
        else:
            outputs = logits = model.run(inputs, "logits").output

        def finish(aux_loss: AuxLoss | None) -> tuple[torch.Tensor, torch.Tensor]:
            loss = self.objective(logits, targets, None)
            if aux_loss is not None:
                loss = loss + aux_loss(outputs)
            loss.backward()
            return loss.detach(), logits.detach()

        return PendingBackward(outputs.detach(), finish)
