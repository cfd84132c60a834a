"""The totals mode: a spiking network read as the equivalent network on accumulated spike flows (Wu et al.).

Phase 1 (:func:`recording_totals`): a normal forward, without a graph, during which every neuron adds
``FI = sum_t I(t)`` (its total input current) and ``FO = sum_t s(t)`` (its spike count) to a
:class:`TotalsRecord`. Phase 2 (``module.totals(x, T)`` inside :func:`applying_totals`): the same synapses
applied to the totals, ``FI^n = W^n FO^{n-1}``
(eq. 6; a bias b contributes ``T b``), and each spiking layer replaced by the straight-through op
``FO^n`` forward / ``S^n * grad`` backward, ``S^n ~= dFO^n / dFI^n``. Only layers that are linear in
their input over time (Linear, Conv2d, AvgPool2d, Flatten, Dropout with its recorded mask) have a
totals form; others raise an error naming the layer.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
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

    Phase 1 fills it (:func:`recording_totals`: each neuron adds its step's or sequence's FI and FO), the rule
    sets the slopes (:meth:`set_slope`), phase 2 reads it (:func:`applying_totals`: each neuron's ``totals``
    returns its FO with the gradient ``S * incoming``)."""

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
                             "(dnmsnn.totals.recording_totals) over the same network first")
        return self._flows[layer]

    def fi(self, layer: torch.nn.Module) -> torch.Tensor:
        return self.flows(layer).fi

    def fo(self, layer: torch.nn.Module) -> torch.Tensor:
        return self.flows(layer).fo

    def slope(self, layer: torch.nn.Module) -> torch.Tensor | None:
        return self.flows(layer).slope

    def set_slope(self, layer: torch.nn.Module, slope: torch.Tensor) -> None:
        self.flows(layer).slope = slope


_ACTIVE: contextvars.ContextVar[tuple[str, TotalsRecord] | None] = contextvars.ContextVar(
    "dnmsnn_totals", default=None)


@contextlib.contextmanager
def _active(phase: str, record: TotalsRecord) -> Iterator[TotalsRecord]:
    token = _ACTIVE.set((phase, record))
    try:
        yield record
    finally:
        _ACTIVE.reset(token)


def recording_totals(record: TotalsRecord | None = None) -> contextlib.AbstractContextManager[TotalsRecord]:
    """Within the block (phase 1), every neuron adds its FI / FO to ``record`` (a new one if None), yielded."""
    return _active("record", TotalsRecord() if record is None else record)


def applying_totals(record: TotalsRecord) -> contextlib.AbstractContextManager[TotalsRecord]:
    """Within the block (phase 2), every neuron's ``totals(x, T)`` reads its FO and slope S from ``record``."""
    return _active("apply", record)


def is_recording() -> bool:
    """Whether neurons are recording totals here (phase 1)."""
    active = _ACTIVE.get()
    return active is not None and active[0] == "record"


def recording() -> TotalsRecord | None:
    """The record phase 1 is filling here, else None."""
    active = _ACTIVE.get()
    return active[1] if active is not None and active[0] == "record" else None


def applied() -> TotalsRecord | None:
    """The record phase 2 reads here, else None."""
    active = _ACTIVE.get()
    return active[1] if active is not None and active[0] == "apply" else None


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
