"""The walk over a network's structure, in forward order, that the rest of the library reads.

:func:`flow` carries a value through the structure as the data flows: a Sequential's children one after the
other, a Residual's body and shortcut from the same value and joined after, every other module a leaf. Its
visitors are :func:`walk` (below) and the NIR export (:mod:`dnmsnn.nir`, which carries the example tensor and
the graph's open edges); running a network is the containers' own ``forward`` / ``step`` / ``totals``, through
the same dispatch (:func:`dnmsnn.layers.run_module`, :func:`dnmsnn.module.step_module`,
:func:`dnmsnn.module.totals_module`).

:func:`walk` gives each layer a role (``synapse``: Linear / Conv2d; ``affine``: a BatchNorm after one; ``neuron``:
LIF, IF and their subclasses, Integrator; ``block``: a Residual), a readable label (``conv2``, ``fc1``, ``conv2
LIF``, ``block3 LIF`` for a neuron firing on a residual block's sum, ``output LIF`` for the last neuron layer),
and, for a neuron, its *drivers*: the names of the affine modules whose output it integrates (the last Linear /
Conv2d / BatchNorm before it; after a residual block, the last affine module of each branch, since it fires on
their sum).

Firing-rate calibration (:mod:`dnmsnn.calibrate`) scales the drivers; the analysis, the trainer's log and
``dnmsnn info MODEL`` print the labels; the asf rule walks the spiking layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from torch import nn

from .layers import BatchNorm1d, BatchNorm2d, Residual
from .neurons import IF, LIF, Integrator

SYNAPSES = (nn.Linear, nn.Conv2d, nn.Conv1d)
AFFINE = (*SYNAPSES, nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm1d, BatchNorm2d)
V = TypeVar("V")


class Visitor(Generic[V]):
    """What :func:`flow` does at each point of the structure; the value ``V`` is the visitor's own."""

    def leaf(self, path: str, module: nn.Module, value: V) -> V:
        """A module that is neither a Sequential nor a Residual: the value after it."""
        raise NotImplementedError

    def fork(self, path: str, block: Residual, value: V) -> V:
        """Before a Residual's two branches: the value both start from."""
        return value

    def join(self, path: str, block: Residual, body: V, shortcut: V) -> V:
        """After a Residual: the value of ``body(x) + shortcut(x)`` from those of the branches."""
        raise NotImplementedError


def flow(module: nn.Module, value: V, visitor: Visitor[V], path: str = "") -> V:
    """Carry ``value`` through ``module`` in forward order (module docstring); ``path`` is the module's name as
    in ``named_modules`` (children: ``path.child``)."""
    prefix = f"{path}." if path else ""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            value = flow(child, value, visitor, prefix + name)
        return value
    if isinstance(module, Residual):
        value = visitor.fork(path, module, value)
        body = flow(module.body, value, visitor, prefix + "body")
        shortcut = value if module.shortcut is None else flow(module.shortcut, value, visitor, prefix + "shortcut")
        return visitor.join(path, module, body, shortcut)
    return visitor.leaf(path, module, value)


@dataclass(frozen=True)
class Layer:
    """One module of the walk: its ``name`` (as in ``named_modules``), ``module``, ``role``, ``label`` and, for a
    neuron, ``drivers`` (module names)."""

    name: str
    module: nn.Module
    role: str
    label: str
    drivers: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Feed:
    """What flows in :func:`walk`: the label of what feeds this point and the affine modules driving it."""

    label: str = ""
    drivers: tuple[str, ...] = ()


@dataclass
class _Walker(Visitor[_Feed]):
    out: list[Layer] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"conv": 0, "fc": 0, "block": 0})
    block_labels: dict[str, str] = field(default_factory=dict)  # residual block path -> its label

    def leaf(self, path: str, module: nn.Module, value: _Feed) -> _Feed:
        if isinstance(module, AFFINE):
            label = value.label
            if isinstance(module, SYNAPSES):
                kind = "fc" if isinstance(module, nn.Linear) else "conv"
                self.counts[kind] += 1
                label = f"{kind}{self.counts[kind]}"
            self.out.append(Layer(path, module, "synapse" if isinstance(module, SYNAPSES) else "affine", label))
            return _Feed(label, (path,))
        if isinstance(module, (LIF, IF, Integrator)):
            self.out.append(Layer(path, module, "neuron", f"{value.label} {type(module).__name__}".strip(),
                                  value.drivers))
            return _Feed(value.label, ())  # spikes: driven by no affine module
        for name, child in module.named_children():  # a module of the user's own: its children in order
            value = flow(child, value, self, f"{path}.{name}" if path else name)
        return value

    def fork(self, path: str, block: Residual, value: _Feed) -> _Feed:
        self.counts["block"] += 1
        self.block_labels[path] = f"block{self.counts['block']}"
        self.out.append(Layer(path, block, "block", self.block_labels[path]))
        return value

    def join(self, path: str, block: Residual, body: _Feed, shortcut: _Feed) -> _Feed:
        return _Feed(self.block_labels[path], tuple(dict.fromkeys(body.drivers + shortcut.drivers)))


def walk(network: nn.Module) -> list[Layer]:
    """The synapse, affine, neuron and residual-block modules of ``network`` in forward order (module docstring)."""
    walker = _Walker()
    flow(network, _Feed(), walker)
    out = walker.out
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
