"""The totals mode: a spiking network read as the equivalent network on accumulated spike flows (Wu et al.).

Phase 1 (``net.run(x, record_totals=True)``, see :meth:`dnmsnn.Network.run`): a normal forward, without a
graph, during which every neuron adds ``FI = sum_t I(t)`` (its total input current) and ``FO = sum_t s(t)`` (its
spike count) to a :class:`TotalsRecord`, returned as the result's ``totals``. Phase 2
(``net.run(fo0, "totals", totals=record, T=T)``): the same synapses applied to the totals, ``FI^n = W^n FO^{n-1}``
(eq. 6; a bias b contributes ``T b``), and each spiking layer replaced by the straight-through op
``FO^n`` forward / ``S^n * grad`` backward, ``S^n ~= dFO^n / dFI^n``. Only layers that are linear in
their input over time (Linear, Conv2d, AvgPool2d, Flatten, Dropout with its recorded mask) have a
totals form; others raise an error naming the layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InputError


@dataclass
class Flows:
    """One spiking layer's totals: ``fi`` = FI (summed input), ``fo`` = FO (spike count), ``slope`` = S."""

    fi: torch.Tensor
    fo: torch.Tensor
    slope: torch.Tensor | None = None


class TotalsRecord:
    """The totals of one recorded forward, per spiking layer, owned by whoever recorded it (the asf rule keeps
    its last one as ``rule.last_totals``); the layers themselves keep nothing between calls.

    Phase 1 fills it (a run with ``record_totals``: each neuron adds its step's or sequence's FI and FO), the rule
    sets the slopes (:meth:`set_slope`), phase 2 reads it (a ``"totals"`` run given the record: each neuron's
    ``totals`` returns its FO with the gradient ``S * incoming``)."""

    def __init__(self) -> None:
        self._flows: dict[torch.nn.Module, Flows] = {}

    def accumulate(self, layer: torch.nn.Module, fi: torch.Tensor, fo: torch.Tensor) -> None:
        """Add one step's (or a whole sequence's summed) input and spikes of ``layer``."""
        f = self._flows.get(layer)
        if f is None:
            self._flows[layer] = Flows(fi.clone(), fo.clone())
        else:
            f.fi, f.fo = f.fi + fi, f.fo + fo

    def __contains__(self, layer: torch.nn.Module) -> bool:
        return layer in self._flows

    def flows(self, layer: torch.nn.Module) -> Flows:
        """``layer``'s totals (an error naming it when it was not recorded)."""
        if layer not in self._flows:
            raise InputError(f"no totals were recorded for {type(layer).__name__}: run phase 1 "
                             "(net.run(x, record_totals=True)) over the same network first")
        return self._flows[layer]

    def fi(self, layer: torch.nn.Module) -> torch.Tensor:
        return self.flows(layer).fi

    def fo(self, layer: torch.nn.Module) -> torch.Tensor:
        return self.flows(layer).fo

    def slope(self, layer: torch.nn.Module) -> torch.Tensor | None:
        return self.flows(layer).slope

    def set_slope(self, layer: torch.nn.Module, slope: torch.Tensor) -> None:
        self.flows(layer).slope = slope


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
