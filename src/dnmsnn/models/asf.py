"""Networks of the ASF paper (Wu et al.): the LeNet it reports, and our CIFAR-10 network.

Both use only layers with a totals form (Linear, Conv2d, average pooling), so the asf rule can drive
them, and an Integrator output (the slides' non-firing output layer). No biases by default (eq. 1
has none). Neurons are the slides' IF (``neuron="if"``) or LIF (``neuron="lif"``, tau form), with the
strict Heaviside (spike when V > V_th) and reset to V_reset = 0.
"""
from __future__ import annotations

import math
from typing import Any

from .._checks import check_choice
from ..errors import InputError
from ..layers import AvgPool2d, Conv2d, Flatten, Linear
from ..network import Network
from ..neurons import Integrator
from .builders import neuron_factory, uniform_sqrt3_init
from .registry import register_model

INITS = ("fan_in", "torch")


def init_synapses(net: Network, init: str, gain: float) -> Network:
    """``init="fan_in"``: W ~ U[-g sqrt(3/fan_in), g sqrt(3/fan_in)] (variance g^2/fan_in), so spikes reach the
    deeper layers at the start; ``"torch"``: PyTorch's default U[-1/sqrt(fan_in), 1/sqrt(fan_in)], under which
    the third spiking layer of the LeNet is silent on MNIST and every ASF slope falls back to 1/V_th.
    """
    check_choice(init, "init", INITS)
    if gain <= 0:
        raise InputError(f"gain must be > 0, got {gain}")
    if init == "torch":
        return net
    for layer in net.modules():
        if isinstance(layer, (Linear, Conv2d)):
            fan_in = math.prod(layer.weight.shape[1:])
            uniform_sqrt3_init(layer, fan_in)
            layer.weight.data.mul_(gain)
    return net


def _neuron(neuron: str, tau: float, threshold: float, surrogate: str, neuron_args: dict[str, Any] | None):
    """Wu et al.'s neurons: strict Heaviside (V > V_th), reset to V_reset = 0."""
    return neuron_factory(neuron, tau=tau, threshold=threshold, v_reset=0.0, strict=True, surrogate=surrogate,
                          neuron_args=neuron_args)


@register_model(summary="ASF LeNet 20C5-P2-50C5-P2-200FC-10FC (IF or LIF, average pooling)", paper="Wu et al.")
def asf_lenet(
    input_shape: tuple[int, ...] = (1, 28, 28),
    num_classes: int = 10,
    neuron: str = "if",
    neuron_args: dict[str, Any] | None = None,
    tau: float = 2.0,
    threshold: float = 1.0,
    bias: bool = False,
    surrogate: str = "atan",
    init: str = "fan_in",
    gain: float = 1.0,
) -> Network:
    """conv5x5(20) -> spike -> avgpool2 -> conv5x5(50) -> spike -> avgpool2 -> FC200 -> spike -> FC10 -> Integrator.

    ``surrogate`` is used only when the same network is trained by bptt or spatial (asf needs none);
    ``init``/``gain``: see :func:`init_synapses` (the slides give no initialisation).
    """
    c, h, w = input_shape
    flat = 50 * ((h - 4) // 2 - 4) // 2 * (((w - 4) // 2 - 4) // 2)
    spike = _neuron(neuron, tau, threshold, surrogate, neuron_args)
    net = Network(
        Conv2d(c, 20, 5, bias=bias), spike(), AvgPool2d(2),
        Conv2d(20, 50, 5, bias=bias), spike(), AvgPool2d(2),
        Flatten(), Linear(flat, 200, bias=bias), spike(),
        Linear(200, num_classes, bias=bias), Integrator(),
        readout="final", input_shape=tuple(input_shape), num_classes=num_classes,
    )
    return init_synapses(net, init, gain)


@register_model(summary="Our CIFAR-10 net for ASF: VGG-style 64C3-64C3-P2-128C3-128C3-P2-256C3-P2-FC256-10",
                paper="Wu et al. (layout ours)")
def asf_vgg(
    input_shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    width: int = 64,
    neuron: str = "if",
    neuron_args: dict[str, Any] | None = None,
    tau: float = 2.0,
    threshold: float = 1.0,
    bias: bool = False,
    surrogate: str = "atan",
    init: str = "fan_in",
    gain: float = 1.0,
) -> Network:
    """The slides report CIFAR-10 results without an architecture; this small VGG (no BatchNorm, which has no
    totals form; average pooling) is our choice. ``width`` scales every layer (64 = the layout in the summary).
    """
    c, h, w = input_shape

    spike = _neuron(neuron, tau, threshold, surrogate, neuron_args)

    w1, w2, w3 = width, 2 * width, 4 * width
    def conv(cin: int, cout: int) -> Conv2d:
        return Conv2d(cin, cout, 3, padding=1, bias=bias)

    layers = [
        conv(c, w1), spike(), conv(w1, w1), spike(), AvgPool2d(2),
        conv(w1, w2), spike(), conv(w2, w2), spike(), AvgPool2d(2),
        conv(w2, w3), spike(), AvgPool2d(2),
        Flatten(), Linear(w3 * (h // 8) * (w // 8), w3, bias=bias), spike(), Linear(w3, num_classes, bias=bias),
        Integrator(),
    ]
    net = Network(*layers, readout="final", input_shape=tuple(input_shape), num_classes=num_classes)
    return init_synapses(net, init, gain)
