"""Firing-rate-aware initialisation: scale each spiking layer's input so that it fires within a target band.

Deep SNNs start silent or saturated more often than not (a LIF layer with tau = 2 behind a fan-in
initialisation may never reach its threshold; a layer behind it then gets no input at all), and no
surrogate or ASF slope carries a gradient through a layer that is silent as a whole. In the spirit of
layer-sequential unit-variance initialisation for ANNs (Mishkin & Matas 2016), :func:`calibrate_firing`
walks the spiking layers in forward order and, for each, multiplies the affine layer(s) that drive it --
the ``Linear`` / ``Conv2d`` before it, or the ``BatchNorm`` after that convolution (scaling weights before a
batch norm would change nothing), or the last affine layer of each branch of a residual block whose sum
it fires on -- by one factor ``s``, found by bisection on ``log s``, so that the layer's mean firing rate on
real, encoded data (spikes per neuron per step) lies in ``[low, high]``, as close to its geometric centre
``sqrt(low * high)`` as the bisection gets (within 15 %). Thresholds, time constants and
every other neuron parameter stay as the papers give them; only the initial weights change.

The network runs in training mode (batch statistics for batch norm, whose running statistics are restored
afterwards; dropout off), without gradients. The result depends only on the weights and the data given, so a
run that calibrates on a fixed, seeded batch is as deterministic as one that does not.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InputError
from .graph import spiking_layers
from .layers import Dropout

CENTRE_TOLERANCE = 1.15  # a layer is calibrated once its rate is within this factor of the band's centre


@dataclass(frozen=True)
class LayerCalibration:
    """One spiking layer: its module name, the modules scaled, the factor, its rate before any layer was
    calibrated and its rate after calibration (with every layer before it calibrated too)."""

    name: str
    drivers: tuple[str, ...]
    scale: float
    rate_before: float
    rate_after: float
    reached: bool


def _rates(network: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, float]:
    modules = dict(network.named_modules())
    seen: dict[str, float] = {}
    hooks = [modules[n].register_forward_hook(
        lambda mod, args, y, n=n: seen.__setitem__(n, float(y.detach().float().mean()))) for n in names]
    try:
        network(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def calibrate_firing(
    network: nn.Module,
    x: torch.Tensor,
    low: float = 0.02,
    high: float = 0.2,
    max_evaluations: int = 40,
    echo: Callable[[str], None] | None = None,
) -> list[LayerCalibration]:
    """Scale the drivers of every LIF / IF layer of ``network``, in forward order, so that its mean firing
    rate on the encoded input ``x [T, B, ...]`` lies in ``[low, high]``, near its centre. Returns one record
    per layer; a layer whose band could not be reached (no driver, or none of the factors in [2^-20, 2^20]
    reaches it) keeps the factor that came closest and is marked ``reached=False``."""
    if not (0.0 < low < high < 1.0):
        raise InputError(f"the firing-rate band must satisfy 0 < low < high < 1, got [{low}, {high}]")
    if not isinstance(x, torch.Tensor) or x.dim() < 3 or not torch.isfinite(x).all():
        raise InputError("calibrate_firing needs a finite encoded input [T, B, ...]")
    layers = spiking_layers(network)
    if not layers:
        raise InputError("calibrate_firing: the network has no LIF / IF layer")
    modules = dict(network.named_modules())
    modes = {m: m.training for m in network.modules()}
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in norms]
    network.train()
    for m in network.modules():
        if isinstance(m, (Dropout, nn.Dropout)):
            m.eval()
    records = []
    try:
        with torch.no_grad():
            names = [n for n, _ in layers]
            before = _rates(network, x, names)
            for name, drivers in layers:
                now = _rates(network, x, [name])[name]  # after the layers before it were calibrated
                r = _calibrate_layer(network, x, name, [modules[d] for d in drivers], drivers, now, low, high,
                                     max_evaluations)
                records.append(LayerCalibration(r.name, r.drivers, r.scale, before[name], r.rate_after, r.reached))
                if echo is not None:
                    r = records[-1]
                    echo(f"calibrate: {name}: rate {r.rate_before:.4f} -> {r.rate_after:.4f} (x{r.scale:.4g} on "
                         f"{', '.join(r.drivers) or 'nothing'}){'' if r.reached else ' -- band not reached'}")
    finally:
        for m, state in zip(norms, saved, strict=True):
            for k, v in state.items():
                getattr(m, k).copy_(v)
        for m, mode in modes.items():
            m.train(mode)
    return records


def _calibrate_layer(network: nn.Module, x: torch.Tensor, name: str, drivers: list[nn.Module],
                     driver_names: list[str], rate0: float, low: float, high: float,
                     budget: int) -> LayerCalibration:
    """Bisection on log2 of the factor (rates grow with it: more input current, more spikes) toward the
    band's geometric centre ``sqrt(low * high)``, after an expansion 2^1, 2^2, 2^4, ... (or 2^-1, ...) that
    brackets it. It stops once the rate is within a factor ``CENTRE_TOLERANCE`` of the centre (or the budget
    is spent) and keeps the in-band factor closest to the centre. Aiming at the centre rather than stopping
    at the first factor inside the band keeps a layer away from the band's edges, where a small change of
    the weights during training silences or saturates it. Each trial sets the drivers to their original
    values times the factor, so no rounding accumulates."""
    target = math.sqrt(low * high)

    def score(r: float) -> tuple[bool, float]:  # (outside the band, distance to the centre): smaller is better
        return (not low <= r <= high, abs(math.log((r + 1e-9) / target)))

    if not drivers or score(rate0)[1] <= math.log(CENTRE_TOLERANCE):
        return LayerCalibration(name, tuple(driver_names), 1.0, rate0, rate0, low <= rate0 <= high)
    originals = [(m, m.weight.clone(), None if getattr(m, "bias", None) is None else m.bias.clone())
                 for m in drivers]

    def set_factor(log_s: float) -> None:
        for m, w, b in originals:
            m.weight.copy_(w * 2.0 ** log_s)
            if b is not None:
                m.bias.copy_(b * 2.0 ** log_s)

    direction = 1.0 if rate0 < target else -1.0
    expansion = iter(direction * e for e in (1.0, 2.0, 4.0, 8.0, 16.0, 20.0))
    lo, hi = (0.0, None) if direction > 0 else (None, 0.0)  # log2 factors known to fire below / above the centre
    best = (score(rate0), 0.0, rate0)
    for _ in range(budget):
        probe = (lo + hi) / 2 if lo is not None and hi is not None else next(expansion, None)
        if probe is None:
            break
        set_factor(probe)
        r = _rates(network, x, [name])[name]
        if score(r) < best[0]:
            best = (score(r), probe, r)
        if score(r)[1] <= math.log(CENTRE_TOLERANCE):
            break
        if r < target:
            lo = probe
        else:
            hi = probe
    _, log_s, r = best
    set_factor(log_s)
    return LayerCalibration(name, tuple(driver_names), 2.0 ** log_s, rate0, r, low <= r <= high)
