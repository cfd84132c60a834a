"""Shared pieces for model builders: a neuron factory from keyword arguments, Bondarev-style init."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .._checks import check_choice
from ..errors import InputError
from ..neurons import IF, LIF, Integrator

NEURONS = ("lif", "if", "plif")
OUTPUTS = ("integrator", "spiking")


def make_neuron(
    neuron: str = "lif",
    *,
    beta: float | None = None,
    tau: float | None = None,
    threshold: float | torch.Tensor = 1.0,
    v_reset: float = 0.0,
    reset: str = "zero",
    surrogate: str = "exp",
    surrogate_param: float | None = None,
    detach_reset: bool = False,
    strict: bool = False,
    learn_threshold: bool = False,
) -> nn.Module:
    """A LIF (``beta`` or ``tau`` form), IF or parametric LIF (``plif``: Fang et al.'s learnable tau, starting at
    ``tau``, default 2; no ``beta`` form) layer from flat keyword arguments."""
    check_choice(neuron, "neuron", NEURONS)
    common = dict(threshold=threshold, v_reset=v_reset, reset=reset, surrogate=surrogate,
                  detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold,
                  surrogate_param=surrogate_param)
    if neuron == "if":
        return IF(**common)
    if neuron == "plif":
        from ..parametric_lif import ParametricLIF  # parametric_lif imports neurons, as this module does

        if beta is not None:
            raise InputError("the parametric LIF (plif) learns tau (1 / tau = sigmoid(w)); give tau, not beta")
        return ParametricLIF(tau=2.0 if tau is None else tau, **common)
    return LIF(beta=beta, tau=tau, **common)


def neuron_factory(neuron: str = "lif", **kwargs) -> Callable[[], nn.Module]:
    """A zero-argument maker of identical, independent neuron layers: ``make_neuron(neuron, **kwargs)``.

    ``tau``/``beta`` only apply to ``"lif"`` (``make_neuron`` gives IF none of them).
    """
    check_choice(neuron, "neuron", NEURONS)
    return lambda: make_neuron(neuron, **kwargs)


def make_output(output: str, neuron_factory) -> tuple[nn.Module, str]:
    """The output layer and its natural readout: Integrator -> ``final`` potential, spiking -> spike ``sum``."""
    check_choice(output, "output", OUTPUTS)
    if output == "integrator":
        return Integrator(), "final"
    return neuron_factory(), "sum"


@torch.no_grad()
def uniform_sqrt3_init(layer: nn.Module, h: int) -> None:
    """W ~ U[-sqrt(3/h), sqrt(3/h)] (Bondarev / Lee et al. 2016); bias, if any, to zero."""
    bound = math.sqrt(3.0 / h)
    layer.weight.uniform_(-bound, bound)
    if getattr(layer, "bias", None) is not None:
        layer.bias.zero_()
