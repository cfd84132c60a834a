"""The totals mode: a spiking network read as the equivalent network on accumulated spike flows (Wu et al.).

Phase 1 (:func:`recording_totals`): a normal forward, without a graph, during which every neuron
accumulates ``FI = sum_t I(t)`` (its total input current) and ``FO = sum_t s(t)`` (its spike count).
Phase 2 (``module.totals(x, T)``): the same synapses applied to the totals, ``FI^n = W^n FO^{n-1}``
(eq. 6; a bias b contributes ``T b``), and each spiking layer replaced by the straight-through op
``FO^n`` forward / ``S^n * grad`` backward, ``S^n ~= dFO^n / dFI^n``. Only layers that are linear in
their input over time (Linear, Conv2d, AvgPool2d, Flatten, Dropout with its recorded mask) have a
totals form; others raise an error naming the layer.
"""
from __future__ import annotations

import contextlib
import contextvars

import torch

from ._context import setting

_RECORDING = contextvars.ContextVar("dnmsnn_recording_totals", default=False)


def recording_totals() -> contextlib.AbstractContextManager[None]:
    """Within the block, neurons accumulate their FI / FO totals (reset them first with :func:`reset_totals`)."""
    return setting(_RECORDING, True)


def is_recording() -> bool:
    return _RECORDING.get()


def reset_totals(model: torch.nn.Module) -> None:
    """Forget the totals of every neuron in ``model``."""
    for m in model.modules():
        if hasattr(m, "fi_total"):
            m.fi_total = m.fo_total = None


class StraightThroughTotals(torch.autograd.Function):
    """Forward: the recorded spike counts FO. Backward: ``S * grad`` (the ratio stands in for dFO/dFI)."""

    @staticmethod
    def forward(ctx, fi: torch.Tensor, fo: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(slope)
        return fo.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None
