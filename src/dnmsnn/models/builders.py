"""Shared pieces for model builders: a neuron factory from keyword arguments, Bondarev-style init."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .._checks import check_choice
from ..errors import InputError
from ..neuron_registry import neuron_kind
from ..neurons import Integrator

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
    neuron_args: Mapping[str, Any] | None = None,
) -> nn.Module:
    """A layer of the registered neuron kind ``neuron`` (:mod:`dnmsnn.neuron_registry`: ``lif`` in the beta or tau
    form, ``if``, ``plif``, ``alif``, ...) from flat keyword arguments; ``neuron_args`` holds the kind's own
    arguments (e.g. ``{tau_a: 20, adapt: 1.0}`` for ``alif``)."""
    kind = neuron_kind(neuron)
    extra = dict(neuron_args or {})
    unknown = sorted(set(extra) - set(kind.extra_args))
    if unknown:
        raise InputError(f"neuron {neuron!r} takes no argument(s) {', '.join(unknown)} in neuron_args; its own "
                         f"arguments: {', '.join(kind.extra_args) or 'none'}")
    return kind.build(beta=beta, tau=tau, threshold=threshold, v_reset=v_reset, reset=reset, surrogate=surrogate,
                      detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold,
                      surrogate_param=surrogate_param, **extra)


def neuron_factory(neuron: str = "lif", **kwargs: Any) -> Callable[[], nn.Module]:
    """A zero-argument maker of identical, independent neuron layers: ``make_neuron(neuron, **kwargs)`` (checked
    now: a bad kind or argument fails before any layer is built)."""
    make_neuron(neuron, **kwargs)
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
