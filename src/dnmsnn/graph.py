"""One walk over a network's layers, in forward order, that the rest of the library reads.

Each layer gets a role (``synapse``: Linear / Conv2d; ``affine``: a BatchNorm after one; ``neuron``: LIF, IF and
their subclasses, Integrator; ``block``: a Residual), a readable label (``conv2``, ``fc1``, ``conv2 LIF``,
``block3 LIF`` for a neuron firing on a residual block's sum, ``output LIF`` for the last neuron layer), and, for
a neuron, its *drivers*: the names of the affine modules whose output it integrates (the last Linear / Conv2d /
BatchNorm before it; after a residual block, the last affine module of each branch, since it fires on their sum).

Firing-rate calibration (:mod:`dnmsnn.calibrate`) scales the drivers; the analysis, the trainer's log and
``dnmsnn info MODEL`` print the labels; the asf rule walks the spiking layers.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .layers import BatchNorm1d, BatchNorm2d, Residual
from .neurons import IF, LIF, Integrator

SYNAPSES = (nn.Linear, nn.Conv2d, nn.Conv1d)
AFFINE = (*SYNAPSES, nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm1d, BatchNorm2d)


@dataclass(frozen=True)
class Layer:
    """One module of the walk: its ``name`` (as in ``named_modules``), ``module``, ``role``, ``label`` and, for a
    neuron, ``drivers`` (module names)."""

    name: str
    module: nn.Module
    role: str
    label: str
    drivers: tuple[str, ...] = ()


def walk(network: nn.Module) -> list[Layer]:
    """The synapse, affine, neuron and residual-block modules of ``network`` in forward order (module docstring)."""
    out: list[Layer] = []
    counts = {"conv": 0, "fc": 0, "block": 0}
    label, drivers = "", []           # the last synapse's label, the last affine module (what a neuron integrates)
    block: tuple[str, str, dict[str, str]] | None = None  # open residual block: name, label, {branch: last affine}
    for name, module in network.named_modules():
        if block and not name.startswith(block[0] + "."):  # past the block: a neuron after it fires on the sum
            label, drivers, block = block[1], list(block[2].values()), None
        branch = name[len(block[0]) + 1:].split(".")[0] if block else None
        if isinstance(module, Residual):
            counts["block"] += 1
            block = (name, f"block{counts['block']}", {})
            out.append(Layer(name, module, "block", block[1]))
        elif isinstance(module, AFFINE):
            if isinstance(module, SYNAPSES):
                kind = "fc" if isinstance(module, nn.Linear) else "conv"
                counts[kind] += 1
                label = f"{kind}{counts[kind]}"
            if block:
                block[2][branch] = name
            else:
                drivers = [name]
            out.append(Layer(name, module, "synapse" if isinstance(module, SYNAPSES) else "affine", label))
        elif isinstance(module, (LIF, IF, Integrator)):
            feeding = ([block[2][branch]] if branch in block[2] else []) if block else list(drivers)
            kind = type(module).__name__
            out.append(Layer(name, module, "neuron", f"{label} {kind}".strip(), tuple(feeding)))
    neurons = [i for i, layer in enumerate(out) if layer.role == "neuron"]
    if neurons:
        last = out[neurons[-1]]
        out[neurons[-1]] = Layer(last.name, last.module, "neuron", f"output {type(last.module).__name__}",
                                 last.drivers)
    return out


def layer_labels(network: nn.Module) -> dict[str, str]:
    """A readable label per synapse, neuron and residual block, by module name, plus ``input`` for the encoded
    input (the names figures and tables show instead of ``layer 3.body.1``)."""
    labels = {"input": "input"}
    labels.update({layer.name: layer.label for layer in walk(network) if layer.role != "affine"})
    return labels


def spiking_layers(network: nn.Module) -> list[tuple[str, list[str]]]:
    """``[(name of a LIF / IF layer, [names of the affine modules that drive it])]`` in forward order."""
    return [(layer.name, list(layer.drivers)) for layer in walk(network)
            if layer.role == "neuron" and isinstance(layer.module, (LIF, IF))]
