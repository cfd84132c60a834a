"""A classification network: a :class:`~dnmsnn.layers.Sequential` plus what a rule needs to read it.

The readout turns the output trace ``[T, B, classes]`` into logits ``[B, classes]``:

* ``"final"``: the last step, ``y[T-1]`` -- with an Integrator output layer this is the accumulated
  potential ``v[T] = sum_k W b[k]`` (Bondarev's score, Wu et al.'s ``V^N(T)``);
* ``"sum"``: ``sum_k y[k]`` -- with a spiking output layer these are the spike counts (Cao et al.);
* ``"mean"``: ``sum_k y[k] / T`` -- firing rates of a spiking output layer.

:meth:`Network.run` is the one way in: the rules, the cohort, ``explain`` and data-parallel training call it
(``forward``, ``classify``, ``step`` and ``totals`` are its shorthands), with the run's options as arguments.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import plan
from ._checks import check_choice, check_finite, check_sequence
from .errors import InputError
from .functional.neuron import integrator_readout
from .layers import Sequential, run_layers, run_module
from .module import RunOptions, step_module, totals_module
from .neurons import IF, LIF, Integrator
from .totals import TotalsRecord

READOUTS = ("final", "sum", "mean")
RUN_MODES = ("sequence", "logits", "step", "totals")


@dataclass
class RunResult:
    """What :meth:`Network.run` returns.

    ``output``: the output trace [T, B, classes] (mode ``sequence``), the logits [B, classes] (``logits``), one
    step's output [B, classes] (``step``) or the totals network's output [B, classes] (``totals``, Wu et al.'s
    V^N(T)); ``state``: the state after the step (``step``, else None); ``totals``: the
    :class:`~dnmsnn.totals.TotalsRecord` the run filled (``record_totals``) or read (``totals``), else None.
    """

    output: torch.Tensor
    state: Any = None
    totals: TotalsRecord | None = None


Executor = Callable[["Network", str, torch.Tensor, Any, "int | None", RunOptions], "tuple[torch.Tensor, Any]"]


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
    """A spiking classifier: ``forward(x) -> [T, B, classes]`` trace, ``classify(x) -> [B, classes]`` logits;
    :meth:`run` runs it in any mode."""

    executor: Executor | None = None  # set by data-parallel training for a batch: grad-recording runs go through DDP

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

    def run(
        self,
        x: torch.Tensor,
        mode: str = "sequence",
        *,
        state: Any = None,
        temporal_grad: bool = True,
        record_totals: bool | TotalsRecord = False,
        totals: TotalsRecord | None = None,
        T: int | None = None,
    ) -> RunResult:
        """Run the network once; every rule, the cohort and data-parallel training come in here.

        ``mode``: ``"sequence"`` (x [T, B, ...] -> the output trace), ``"logits"`` (x [T, B, ...] -> the readout,
        in closed form where the plan allows), ``"step"`` (x [B, ...] one step from ``state``, None = rest) or
        ``"totals"`` (x = the input's accumulated flows FO^0 [B, ...] over ``T`` steps -> Wu et al.'s totals
        network, reading FO and the slopes S from ``totals``).
        ``temporal_grad=False``: gradients within each step only (Bondarev's spatial backpropagation; the values
        are unchanged). ``record_totals``: True (a new record) or a :class:`~dnmsnn.totals.TotalsRecord` to add
        to (over the steps of a step-by-step run): every spiking neuron adds its FI and FO (ASF phase 1); the
        record is the result's ``totals``.
        """
        check_choice(mode, "mode", RUN_MODES)
        record = TotalsRecord() if record_totals is True else (record_totals or None)
        if record is not None and not isinstance(record, TotalsRecord):
            raise InputError(f"record_totals must be a bool or a TotalsRecord, got {type(record_totals).__name__}")
        if mode == "totals":
            if not isinstance(totals, TotalsRecord) or isinstance(T, bool) or not isinstance(T, int) or T < 1:
                raise InputError("mode 'totals' needs totals= the TotalsRecord of a recorded run (with slopes) and "
                                 "T= its number of steps (an int >= 1)")
            if record is not None:
                raise InputError("mode 'totals' reads recorded totals; it cannot record them (record_totals)")
        elif totals is not None or T is not None:
            raise InputError(f"totals= and T= belong to mode 'totals', not {mode!r}")
        if state is not None and mode != "step":
            raise InputError(f"state= belongs to mode 'step', not {mode!r}")
        options = RunOptions(bool(temporal_grad), record, totals)
        executor = self.executor if torch.is_grad_enabled() else None
        output, new_state = (executor or type(self).execute)(self, mode, x, state, T, options)
        return RunResult(output, new_state, totals if mode == "totals" else record)

    def execute(self, mode: str, x: torch.Tensor, state: Any, T: int | None,
                run: RunOptions) -> tuple[torch.Tensor, Any]:
        """:meth:`run`'s work with its arguments checked: (output, state after a step or None). What an executor
        (data-parallel training's DDP) wraps."""
        if mode == "sequence":
            return run_module(self, x, run), None
        if mode == "logits":
            return self._logits(x, run), None
        if mode == "step":
            return step_module(self, x, state, run)
        return totals_module(self, x, T, run), None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] of an encoded input x [T, B, ...]: ``run(x, "logits").output``.

        With an :class:`~dnmsnn.neurons.Integrator` output layer the readout is taken in closed form
        (:func:`~dnmsnn.functional.integrator_readout`: one weighted sum over T instead of the trace;
        same values up to float rounding, same gradients), unless the Integrator records its trace,
        hooks are attached, the backend is ``reference`` or the run has no temporal gradient
        (:func:`dnmsnn.plan.readout_choice`).
        """
        return self.run(x, "logits").output

    def _logits(self, x: torch.Tensor, run: RunOptions) -> torch.Tensor:
        self.check_input(x)
        if not plan.readout_choice(self, run):
            return read_out(run_module(self, x, run), self.readout)
        *body, out = self
        x = run_layers(body, x, run)
        check_sequence(x, "Integrator")
        check_finite(x, "Integrator")
        out.v_trace = None
        return integrator_readout(x, out.beta, self.readout)

    def neurons(self) -> Iterator[tuple[str, nn.Module]]:
        """(name, module) of every LIF / IF / Integrator layer, in order."""
        for name, m in self.named_modules():
            if isinstance(m, (LIF, IF, Integrator)):
                yield name, m
