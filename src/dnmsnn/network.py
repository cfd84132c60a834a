"""A classification network: a :class:`~dnmsnn.layers.Sequential` plus what a rule needs to read it.

The readout turns the output trace ``[T, B, classes]`` into logits ``[B, classes]``:

* ``"final"``: the last step, ``y[T-1]`` -- with an Integrator output layer this is the accumulated
  potential ``v[T] = sum_k W b[k]`` (Bondarev's score, Wu et al.'s ``V^N(T)``);
* ``"sum"``: ``sum_k y[k]`` -- with a spiking output layer these are the spike counts (Cao et al.);
* ``"mean"``: ``sum_k y[k] / T`` -- firing rates of a spiking output layer.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from . import plan
from ._checks import check_choice, check_finite, check_sequence
from .errors import InputError
from .functional.neuron import integrator_readout
from .layers import Sequential, run_layers
from .neurons import IF, LIF, Integrator

READOUTS = ("final", "sum", "mean")


def read_out(trace: torch.Tensor, readout: str) -> torch.Tensor:
    """Logits [B, ...] from an output trace [T, B, ...] (see the module docstring)."""
    if readout == "final":
        return trace[-1]
    if readout == "sum":
        return trace.sum(0)
    return trace.mean(0)


def prefix_readouts(trace: torch.Tensor, readout: str) -> torch.Tensor:
    """The readout of every prefix of the trace, ``out[t] = read_out(trace[:t+1], readout)`` [T, B, ...]: the
    logits the network would give if it stopped after step t (``sum`` of spike outputs: the counts so far).
    Gradients reach every step (unlike the spatial rule's ``running_readout``); ``out[T-1]`` is the readout."""
    check_choice(readout, "readout", READOUTS)
    if readout == "final":
        return trace
    total = torch.cumsum(trace, 0)
    if readout == "sum":
        return total
    steps = torch.arange(1, trace.shape[0] + 1, dtype=trace.dtype, device=trace.device)
    return total / steps.view(-1, *([1] * (trace.dim() - 1)))


class Network(Sequential):
    """A spiking classifier: ``forward(x) -> [T, B, classes]`` trace, ``classify(x) -> [B, classes]`` logits."""

    def __init__(
        self,
        *layers: nn.Module,
        readout: str = "final",
        input_shape: tuple[int, ...] = (),
        num_classes: int = 10,
    ) -> None:
        super().__init__(*layers)
        self.readout = check_choice(readout, "readout", READOUTS)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)

    def check_input(self, x: torch.Tensor) -> None:
        """Shape [T, B, *input_shape], floating, finite."""
        check_sequence(x, "Network")
        if self.input_shape and tuple(x.shape[2:]) != self.input_shape:
            raise InputError(
                f"this network expects inputs [T, B, {', '.join(map(str, self.input_shape))}], got shape "
                f"{tuple(x.shape)}; encode images with an encoder (e.g. PoissonEncoder(T)) first"
            )
        check_finite(x, "Network")

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] of an encoded input x [T, B, ...].

        With an :class:`~dnmsnn.neurons.Integrator` output layer the readout is taken in closed form
        (:func:`~dnmsnn.functional.integrator_readout`: one weighted sum over T instead of the trace;
        same values up to float rounding, same gradients), unless the Integrator records its trace,
        hooks are attached, or :func:`~dnmsnn.functional.reference_path` /
        :func:`~dnmsnn.functional.no_temporal_grad` is active.
        """
        self.check_input(x)
        if not plan.readout_choice(self):
            return read_out(self(x), self.readout)
        *body, out = self
        x = run_layers(body, x)
        check_sequence(x, "Integrator")
        check_finite(x, "Integrator")
        out.v_trace = None
        return integrator_readout(x, out.beta, self.readout)

    def neurons(self) -> Iterator[tuple[str, nn.Module]]:
        """(name, module) of every LIF / IF / Integrator layer, in order."""
        for name, m in self.named_modules():
            if isinstance(m, (LIF, IF, Integrator)):
                yield name, m
