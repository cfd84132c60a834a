"""Bondarev's digital LIF network: 784-300-300-10, no biases, Integrator output."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import check_choice
from ..layers import Flatten, Linear
from ..network import Network
from ..neurons import LIF, Integrator
from .builders import uniform_sqrt3_init
from .registry import register_model

H_RULES = ("hidden", "fan_in")


@register_model(summary="Bondarev's 784-300-300-10 digital LIF network (328,200 weights)", paper="Bondarev")
def bondarev_mlp(
    input_shape: tuple[int, ...] = (1, 28, 28),
    hidden: Sequence[int] = (300, 300),
    num_classes: int = 10,
    beta: float = 0.8187,
    threshold_gains: Sequence[float] = (5.0, 3.0),
    h_rule: str = "hidden",
    learn_threshold: bool = False,
    surrogate: str = "exp",
    surrogate_param: float | None = None,
    seed: int | None = None,
) -> Network:
    """Eqs. 3-6: ``v^m[k] = beta v^m[k-1] + W^m b^{m-1}[k]``, spike at ``v >= s_m``, reset to 0.

    The last layer accumulates (Integrator).

    Initialisation (the paper follows Lee et al. 2016): ``W ~ U[-sqrt(3/h), sqrt(3/h)]`` and thresholds
    ``s_m = gain_m sqrt(3/h_m)`` with gains 5 and 3. The paper's h is "the number of neurons in the
    hidden layer", which is ambiguous:

    * ``h_rule="hidden"`` (default, the literal reading): h = the width of the hidden layer, 300, for
      every matrix and both thresholds (W ~ U[+-0.1], s = 0.5 and 0.3);
    * ``h_rule="fan_in"`` (Lee et al.'s M, synapses per neuron): h = each matrix's input width
      (784, 300, 300), thresholds 5 sqrt(3/784) = 0.309 and 3 sqrt(3/300) = 0.3.

    Thresholds are fixed unless ``learn_threshold`` (the paper only says they are initialised).
    """
    check_choice(h_rule, "h_rule", H_RULES)
    if len(threshold_gains) != len(hidden):
        raise ValueError(f"threshold_gains needs one gain per hidden layer ({len(hidden)}), got {len(threshold_gains)}")
    widths = [math.prod(input_shape), *hidden, num_classes]
    gen_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    layers: list = [Flatten()]
    for m in range(len(widths) - 1):
        lin = Linear(widths[m], widths[m + 1], bias=False)
        h = widths[m] if h_rule == "fan_in" else max(hidden)
        uniform_sqrt3_init(lin, h)
        layers.append(lin)
        if m < len(hidden):
            s = threshold_gains[m] * math.sqrt(3.0 / h)
            layers.append(LIF(beta=beta, threshold=s, v_reset=0.0, reset="zero", surrogate=surrogate,
                              surrogate_param=surrogate_param, learn_threshold=learn_threshold))
    layers.append(Integrator())
    if seed is not None:
        torch.random.set_rng_state(gen_state)
    return Network(*layers, readout="final", input_shape=tuple(input_shape), num_classes=num_classes)
