"""The multi-step functions of a spiking layer: the recurrence over all T steps (and with the pooling or Linear
layer after it), through the fused node where :mod:`dnmsnn.settings` allows it, else the step-by-step loop of
:mod:`dnmsnn.functional.neuron`'s equations.

Imports go one way: ``neuron`` (the equations) <- ``fused`` (the fused nodes) <- ``sequence`` (this module).
"""
from __future__ import annotations

import torch

from .. import settings
from .fused import fused_neuron_linear, fused_neuron_pool, fused_neuron_sequence, neuron_pool_fusable
from .neuron import NeuronParameters, initial_state, neuron_step
from .spike_matmul import linear


def neuron_sequence(
    x: torch.Tensor, p: NeuronParameters, record: bool = False, temporal_grad: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the recurrence over x [T, B, ...] from rest: returns (spikes [T, B, ...], H trace or None).

    Uses the fused autograd node (:mod:`dnmsnn.functional.fused`, same values, learnable thresholds
    included) unless :func:`reference_path` is active. ``temporal_grad=False``: gradients within each step
    only (see :func:`~dnmsnn.functional.neuron_step`).
    """
    if settings.current().fused:
        spikes, trace = fused_neuron_sequence(x, p, temporal_grad, record)
        return spikes, (trace if record else None)
    return neuron_loop(x, p, record, temporal_grad)


def neuron_loop(
    x: torch.Tensor, p: NeuronParameters, record: bool = False, temporal_grad: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The recurrence over x [T, B, ...] step by step through autograd (:func:`neuron_step` T times): the
    ``reference`` backend's path, and that of neuron kinds the fused node does not carry."""
    state = initial_state(x[0], p)
    spikes, trace = [], []
    for k in range(x.shape[0]):
        s, state, h = neuron_step(x[k], state, p, temporal_grad)
        spikes.append(s)
        if record:
            trace.append(h)
    return torch.stack(spikes), (torch.stack(trace) if record else None)


def neuron_pool_sequence(x: torch.Tensor, p: NeuronParameters, k: int, who: str = "neuron_pool_sequence",
                         temporal_grad: bool = True) -> torch.Tensor | None:
    """``F.avg_pool2d`` (k x k, stride k) of ``neuron_sequence(x, p)[0]`` for x [T, B, C, H, W] whose steps are
    channels-last (a stacked :class:`~dnmsnn.layers.Conv2d`'s output), in one pass of the C++ kernel that
    never writes the spikes (same values); None where that does not apply (see
    :func:`~dnmsnn.functional.fused.neuron_pool_fusable`) or inside :func:`reference_path`. NaN or Inf in x
    (found by the kernel as it reads x): :class:`~dnmsnn.InputError` naming ``who``."""
    if not (settings.current().fused and neuron_pool_fusable(x, p, k)):
        return None
    return fused_neuron_pool(x, p, temporal_grad, k, who)


def neuron_linear_sequence(x: torch.Tensor, p: NeuronParameters, weight: torch.Tensor,
                           bias: torch.Tensor | None, temporal_grad: bool = True) -> torch.Tensor:
    """``F.linear(neuron_sequence(x, p)[0], weight, bias)``: a spiking layer and the Linear layer it feeds.

    With gradients and the fused path this is one autograd node that keeps the spikes as bytes
    (:class:`~dnmsnn.functional.fused.NeuronLinearSequence`: same values, less memory); otherwise the
    two steps as written.
    """
    if settings.current().fused and torch.is_grad_enabled():
        return fused_neuron_linear(x, p, temporal_grad, weight, bias)
    spikes, _ = neuron_sequence(x, p, temporal_grad=temporal_grad)
    return linear(spikes, weight, bias)
