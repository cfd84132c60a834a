"""Spiking ResNets of the DNM-SNN paper (Cao et al.): ``resnet11`` and ``resnet20``, with width variants.

Cao et al. trains an "SNN-Resnet11" whose figure (Fig. 2) is not in the text, and a ResNet20 it does not
describe. Both layouts here are therefore assumptions, stated as such:

* ``resnet11`` -- the SNN-ResNet11 of Lee et al. (2020), which Cao et al. cites for deep spiking ResNets:
  a 3x3 conv stem (64) with 2x2 average pooling, four basic residual blocks of widths 128-256-512-512
  (strides 1-2-2-1), 2x2 average pooling, FC 1024 and FC 10: 1 + 8 + 2 = 11 weight layers.
* ``resnet20`` -- the standard CIFAR ResNet-20 (He et al. 2016): a 3x3 conv stem (16), three stages of
  three basic blocks (16-32-64, strides 1-2-2), global average pooling, FC 10: 1 + 18 + 1 = 20 layers.

A basic block is ``conv3x3 -> [BN] -> neuron -> conv3x3 -> [BN]``, summed with the shortcut (identity, or a
1x1 conv [+ BN] when the shape changes), then a neuron: it spikes on the sum. ``width`` scales every
channel count (``width=64`` / ``16`` are the full networks; ``resnet11_w8`` and ``resnet20_w4`` are the small
variants for fast CPU runs). Neurons are Cao et al.'s LIF (eq. 2, tau form, reset to V_reset, spike at
H >= V_th) or IF. ``norm=False`` drops BatchNorm, which has no totals form, so that the ``asf`` rule can drive
the network too. The output is Cao et al.'s spiking layer read as spike counts (``output="spiking"``) or an
Integrator read as its final potential.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ..errors import InputError
from ..layers import AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Residual, Sequential
from ..network import Network
from .builders import make_output, neuron_factory
from .registry import register_model

NeuronFactory = Callable[[], nn.Module]


def _conv_out(size: int, stride: int) -> int:
    """Spatial size after a 3x3 conv with padding 1 (and a 1x1 conv with the same stride)."""
    return (size - 1) // stride + 1


def _conv_bn(cin: int, cout: int, k: int, stride: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=not norm)]
    return layers + [BatchNorm2d(cout)] if norm else layers


def basic_block(cin: int, cout: int, stride: int, norm: bool, neuron: NeuronFactory) -> list[nn.Module]:
    """``Residual(conv-BN-neuron-conv-BN, shortcut)`` followed by a neuron that fires on the sum."""
    body = Sequential(*_conv_bn(cin, cout, 3, stride, norm), neuron(), *_conv_bn(cout, cout, 3, 1, norm))
    shortcut = None if stride == 1 and cin == cout else Sequential(*_conv_bn(cin, cout, 1, stride, norm))
    return [Residual(body, shortcut), neuron()]


def _check_input(input_shape: Sequence[int], width: int) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise InputError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
    if width < 1:
        raise InputError(f"width must be >= 1, got {width}")
    c, h, w = (int(v) for v in input_shape)
    return c, h, w


def spiking_resnet(
    stem: int,
    blocks: Sequence[tuple[int, int]],
    head: Sequence[int],
    *,
    stem_pool: bool,
    final_pool: str,
    input_shape: Sequence[int],
    num_classes: int,
    norm: bool,
    neuron: NeuronFactory,
    output: str,
) -> Network:
    """Generic builder: stem conv (+ pool), ``blocks`` = [(width, stride)], then pooling and the FC ``head``.

    ``final_pool="global"`` averages the whole final map; ``"2x2"`` halves it (at least 1x1 remains).
    """
    c, h, w = (int(v) for v in input_shape)
    layers: list[nn.Module] = [*_conv_bn(c, stem, 3, 1, norm), neuron()]
    if stem_pool:
        layers.append(AvgPool2d(2))
        h, w = h // 2, w // 2
    cin = stem
    for cout, stride in blocks:
        layers += basic_block(cin, cout, stride, norm, neuron)
        cin, h, w = cout, _conv_out(h, stride), _conv_out(w, stride)
    if min(h, w) < 1:
        raise InputError(f"input_shape {tuple(input_shape)} is too small for this network")
    if final_pool == "global":
        layers.append(AvgPool2d((h, w)))
        h = w = 1
    elif min(h, w) >= 2:
        layers.append(AvgPool2d(2))
        h, w = h // 2, w // 2
    layers.append(Flatten())
    width = cin * h * w
    for units in head:
        layers += [Linear(width, units), neuron()]
        width = units
    out_layer, readout = make_output(output, neuron)
    layers += [Linear(width, num_classes), out_layer]
    return Network(*layers, readout=readout, input_shape=tuple(input_shape), num_classes=num_classes)


@register_model(summary="SNN-ResNet11 (assumed: Lee et al. 2020): conv64-AP2-[128,256,512,512]-AP2-FC1024-10",
                paper="Cao et al. (layout assumed)")
def resnet11(
    input_shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    width: int = 64,
    neuron: str = "lif",
    neuron_args: dict[str, Any] | None = None,
    tau: float = 2.0,
    threshold: float = 1.0,
    surrogate: str = "atan",
    detach_reset: bool = False,
    norm: bool = True,
    output: str = "spiking",
) -> Network:
    """Stem ``width``, blocks ``2w-4w-8w-8w`` (strides 1-2-2-1), FC ``16w`` (= 1024 at ``width=64``), FC 10."""
    _check_input(input_shape, width)
    blocks = [(2 * width, 1), (4 * width, 2), (8 * width, 2), (8 * width, 1)]
    return spiking_resnet(width, blocks, [16 * width], stem_pool=True, final_pool="2x2",
                          input_shape=input_shape, num_classes=num_classes, norm=norm,
                          neuron=neuron_factory(neuron, tau=tau, threshold=threshold, v_reset=0.0, surrogate=surrogate,
                                                detach_reset=detach_reset, neuron_args=neuron_args), output=output)


@register_model(summary="CIFAR ResNet-20 as an SNN: conv16-[16x3, 32x3, 64x3]-GAP-FC10",
                paper="Cao et al. (layout ours)")
def resnet20(
    input_shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    width: int = 16,
    neuron: str = "lif",
    neuron_args: dict[str, Any] | None = None,
    tau: float = 2.0,
    threshold: float = 1.0,
    surrogate: str = "atan",
    detach_reset: bool = False,
    norm: bool = True,
    output: str = "spiking",
) -> Network:
    """Stem ``width``; three stages of three basic blocks (``w``, ``2w``, ``4w``; strides 1-2-2); GAP; FC 10."""
    _check_input(input_shape, width)
    blocks = [(m * width, stride if i == 0 else 1) for m, stride in ((1, 1), (2, 2), (4, 2)) for i in range(3)]
    return spiking_resnet(width, blocks, [], stem_pool=False, final_pool="global", input_shape=input_shape,
                          num_classes=num_classes, norm=norm,
                          neuron=neuron_factory(neuron, tau=tau, threshold=threshold, v_reset=0.0, surrogate=surrogate,
                                                detach_reset=detach_reset, neuron_args=neuron_args), output=output)


def _width_variant(base: Callable[..., Network], width: int, name: str, summary: str, paper: str) -> None:
    """Register ``base`` under ``name`` with ``width`` as its default (every other argument unchanged)."""
    sig = inspect.signature(base)
    params = [p.replace(default=width) if p.name == "width" else p for p in sig.parameters.values()]

    def variant(**kwargs) -> Network:
        return base(**{"width": width, **kwargs})

    variant.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    variant.__doc__ = f"``{base.__name__}(width={width})``; every other argument as :func:`{base.__name__}`."
    variant.__name__ = name
    register_model(summary=summary, paper=paper, name=name)(variant)


_width_variant(resnet11, 8, "resnet11_w8", "resnet11 at width 8 (stem 8, blocks 16-32-64-64, FC 128): for CPU runs",
               "Cao et al. (layout assumed)")
_width_variant(resnet20, 4, "resnet20_w4", "resnet20 at width 4 (stages 4-8-16): for CPU runs",
               "Cao et al. (layout ours)")
