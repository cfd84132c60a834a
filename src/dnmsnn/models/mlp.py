"""Fully connected spiking networks: the generic ``mlp`` and the embedded-digits demo network."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..layers import Dropout, Flatten, Linear
from ..network import Network
from .builders import make_neuron, make_output
from .registry import register_model


@register_model(summary="Fully connected SNN: Flatten -> [Linear -> LIF/IF]* -> Linear -> Integrator or spiking output")
def mlp(
    input_shape: tuple[int, ...] = (1, 28, 28),
    hidden: Sequence[int] = (300, 300),
    num_classes: int = 10,
    neuron: str = "lif",
    neuron_args: dict[str, Any] | None = None,
    beta: float | None = 0.8187,
    tau: float | None = None,
    threshold: float = 1.0,
    v_reset: float = 0.0,
    reset: str = "zero",
    surrogate: str = "exp",
    surrogate_param: float | None = None,
    detach_reset: bool = False,
    strict: bool = False,
    learn_threshold: bool = False,
    bias: bool = False,
    dropout: float = 0.0,
    output: str = "integrator",
    readout: str | None = None,
) -> Network:
    """Layers: Flatten, then per hidden width Linear (no bias by default: Bondarev) + neuron, then the output.

    ``tau`` set means the tau form (beta is then ignored); ``output="spiking"`` reads spike counts;
    ``neuron_args``: the neuron kind's own arguments (e.g. ``{tau_a: 20, adapt: 1.0}`` for ``neuron="alif"``).
    """
    neuron_kw = dict(beta=None if tau is not None else beta, tau=tau, threshold=threshold, v_reset=v_reset,
                     reset=reset, surrogate=surrogate, surrogate_param=surrogate_param,
                     detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold,
                     neuron_args=neuron_args)
    layers = [Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [Linear(width, h, bias=bias), make_neuron(neuron, **neuron_kw)]
        if dropout:
            layers.append(Dropout(dropout))
        width = h
    out_layer, natural = make_output(output, lambda: make_neuron(neuron, **neuron_kw))
    layers += [Linear(width, num_classes, bias=bias), out_layer]
    return Network(*layers, readout=readout or natural, input_shape=tuple(input_shape), num_classes=num_classes)


@register_model(summary="Demo network for the embedded 8x8 digits: 64-128-10 LIF, Integrator output")
def digits_mlp(
    input_shape: tuple[int, ...] = (1, 8, 8),
    hidden: Sequence[int] = (128,),
    beta: float | None = 0.9,
    threshold: float = 1.0,
    surrogate: str = "exp",
    bias: bool = True,
    output: str = "integrator",
) -> Network:
    """A small LIF network for scikit-learn's embedded digits, trained in seconds (``dnmsnn demo``)."""
    return mlp(input_shape=input_shape, hidden=hidden, num_classes=10, beta=beta, threshold=threshold,
               surrogate=surrogate, bias=bias, output=output)
