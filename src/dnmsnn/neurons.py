"""Neuron modules: thin ``nn.Module`` wrappers over :mod:`dnmsnn.functional.neuron`.

Each takes ``[T, B, ...]`` and returns ``[T, B, ...]``; the state starts at rest on every call, so
there is no state to forget to reset. ``record=True`` keeps the pre-reset potential H in ``.v_trace``.
How a call computes (temporal gradients, ASF totals) is the :class:`~dnmsnn.module.RunOptions` it is given as
its last argument (the network's :meth:`~dnmsnn.Network.run` passes it down; a direct call uses the default).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from . import functional as F
from . import plan
from ._checks import check_choice, check_finite, check_sequence
from .errors import InputError
from .functional.surrogate import Surrogate, get_surrogate
from .layers import Linear, square_window
from .module import DEFAULT_RUN, RunOptions, SpikingModule
from .neuron_registry import NeuronKind, register_neuron
from .totals import StraightThroughTotals

RESETS = ("zero", "subtract")


def _threshold_tensor(threshold: float | torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(threshold, dtype=dtype).detach().clone()
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
        raise InputError(f"threshold must be finite and > 0 everywhere, got {threshold!r}")
    return t


class _SpikingNeuron(SpikingModule):
    """Shared machinery of LIF and IF: threshold (fixed, per-neuron or learnable), reset, surrogate."""

    takes_run = True
    is_neuron = True

    def __init__(
        self,
        *,
        threshold: float | torch.Tensor,
        v_reset: float,
        reset: str,
        surrogate: str | Surrogate,
        detach_reset: bool,
        strict: bool,
        learn_threshold: bool,
        record: bool,
        surrogate_param: float | None,
    ) -> None:
        super().__init__()
        check_choice(reset, "reset", RESETS)
        if not isinstance(v_reset, (int, float)) or isinstance(v_reset, bool) or not math.isfinite(v_reset):
            raise InputError(f"v_reset must be a finite number, got {v_reset!r}")
        if learn_threshold:
            self.threshold = nn.Parameter(_threshold_tensor(threshold, torch.get_default_dtype()))
        else:  # kept in float64 so float64 inputs see the exact value; cast to the input's dtype when used
            self.register_buffer("threshold", _threshold_tensor(threshold, torch.float64))
        thr = self.threshold
        if float(v_reset) >= float(thr.detach().min()):
            raise InputError(f"v_reset ({v_reset}) must lie below the threshold ({threshold!r})")
        kw = {} if surrogate_param is None else {get_surrogate(surrogate).param: surrogate_param}
        self.surrogate = get_surrogate(surrogate, **kw)
        self.v_reset = float(v_reset)
        self.reset = reset
        self.detach_reset = bool(detach_reset)
        self.strict = bool(strict)
        self.record = bool(record)
        self.v_trace: torch.Tensor | None = None

    # the charge form; overridden by LIF
    beta: float | None = None
    tau: float | None = None

    def parameters_tuple(self, dtype: torch.dtype | None = None) -> F.NeuronParameters:
        """The constants as the functional layer takes them (a fixed threshold cast to ``dtype``)."""
        thr = self.threshold
        if dtype is not None and not thr.requires_grad and thr.dtype != dtype:
            thr = thr.to(dtype)
        return F.NeuronParameters(
            threshold=thr, v_reset=self.v_reset, beta=self.beta, tau=self.tau, reset=self.reset,
            strict=self.strict, detach_reset=self.detach_reset, surrogate=self.surrogate,
        )

    def forward(self, x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        check_sequence(x, type(self).__name__)
        check_finite(x, type(self).__name__)
        self._check_threshold_shape(x.shape[1:])
        p = self.parameters_tuple(x.dtype)
        choice = plan.note(plan.neuron_choice(x, p, self), self)
        if choice.kernel == plan.LOOP:
            spikes, trace = F.neuron_loop(x, p, self.record, run.temporal_grad)
        else:
            spikes, trace = F.neuron_sequence(x, p, self.record, run.temporal_grad)
        self.v_trace = None if trace is None else trace.detach()
        self._accumulate(x.detach().sum(0), spikes.detach().sum(0), run)
        return spikes

    def forward_fused(self, x: torch.Tensor, nxt: nn.Module, run: RunOptions = DEFAULT_RUN) -> torch.Tensor | None:
        """``nxt(self(x))`` as one node where :func:`dnmsnn.plan.pair_choice` says so, else None (then both
        layers run as usual). Called by :func:`~dnmsnn.layers.run_layers`. Two pairs fuse, with the same values:

        * a Linear (``dnmsnn.Linear`` or a plain ``torch.nn.Linear``) after the neuron, with gradients on: the
          spikes are kept as bytes (less memory, see :func:`~dnmsnn.functional.neuron_linear_sequence`);
        * a k x k AvgPool2d with stride k after the neuron on channels-last conv output (a stacked
          :class:`~dnmsnn.layers.Conv2d`), with or without gradients: the spikes are pooled inside the C++
          kernel and never written (see :func:`~dnmsnn.functional.neuron_pool_sequence`).
        """
        choice = plan.pair_choice(self, nxt, x, run)
        if choice is None:
            return None
        name = type(self).__name__
        self.v_trace = None
        if choice.block == "neuron+pool":  # the kernel rejects NaN / Inf itself
            return F.neuron_pool_sequence(x, self.parameters_tuple(x.dtype), square_window(nxt), name,
                                          run.temporal_grad)
        check_sequence(x, name)
        check_finite(x, name)
        self._check_threshold_shape(x.shape[1:])
        if isinstance(nxt, Linear):
            nxt.check_input(x)  # the spikes have x's shape
        elif x.dim() < 3 or x.shape[-1] != nxt.in_features:
            raise InputError(f"{type(nxt).__name__} expects {nxt.in_features} input features, got shape "
                             f"{tuple(x.shape)}")
        return F.neuron_linear_sequence(x, self.parameters_tuple(x.dtype), nxt.weight, nxt.bias, run.temporal_grad)

    def step(self, x: torch.Tensor, state: F.NeuronState | None = None,
             run: RunOptions = DEFAULT_RUN) -> tuple[torch.Tensor, F.NeuronState]:
        if plan.recording():
            plan.note(plan.step_choice(self), self)
        s, state, _ = F.neuron_step(x, state, self.parameters_tuple(x.dtype), run.temporal_grad)
        self._accumulate(x.detach(), s.detach(), run)
        return s, state

    def _check_threshold_shape(self, step_shape: torch.Size) -> None:
        if self.threshold.dim():
            try:
                torch.broadcast_shapes(self.threshold.shape, step_shape)
            except RuntimeError:
                raise InputError(f"per-neuron threshold of shape {tuple(self.threshold.shape)} does not broadcast "
                                 f"against one step's input [B, ...] = {tuple(step_shape)}") from None

    def _accumulate(self, fi: torch.Tensor, fo: torch.Tensor, run: RunOptions) -> None:
        """In a run that records totals (ASF phase 1: ``run.record``), add this call's FI and FO to the record."""
        if run.record is not None:
            run.record.accumulate(self, fi, fo)

    def totals(self, x: torch.Tensor, T: int, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        """Straight-through on totals: value FO (recorded), gradient S * incoming (Wu et al., eqs. 8-9), read from
        the run's record (``run.apply``: ASF phase 2)."""
        record = run.apply
        flows = None if record is None or self not in record else record.flows(self)
        if flows is None or flows.slope is None:
            raise InputError(f"{type(self).__name__}.totals needs a recorded forward and a slope S (the asf rule's "
                             "phases: net.run(x, record_totals=True), then net.run(totals_in, 'totals', "
                             "totals=record, T=T) with the slopes set)")
        if flows.fo.shape != x.shape:
            raise InputError(f"recorded totals {tuple(flows.fo.shape)} do not match the input {tuple(x.shape)}")
        if plan.recording():
            plan.note(plan.totals_choice(self), self)
        return StraightThroughTotals.apply(x, flows.fo, flows.slope)

    def extra_repr(self) -> str:
        form = f"beta={self.beta}" if self.beta is not None else (f"tau={self.tau}" if self.tau else "IF")
        thr = float(self.threshold) if self.threshold.dim() == 0 else f"tensor{tuple(self.threshold.shape)}"
        return (f"{form}, threshold={thr}, v_reset={self.v_reset}, reset={self.reset!r}, "
                f"surrogate={self.surrogate}, strict={self.strict}, detach_reset={self.detach_reset}")


class LIF(_SpikingNeuron):
    """Leaky integrate-and-fire layer.

    ``beta`` (Bondarev, eq. 4): ``H[k] = beta V[k-1] + x[k]`` (leak towards v_reset when v_reset != 0).
    ``tau`` (Cao et al. eq. 2 as it must be read, = Wu et al.'s LIF):
    ``H[t] = V[t-1] + (x[t] - (V[t-1] - v_reset)) / tau``.
    Spike ``S = H >= threshold`` (``strict=True``: ``H > threshold``, Wu et al.'s Heaviside);
    reset ``"zero"`` to v_reset (all three papers) or ``"subtract"`` the threshold (our extension).
    The input x[k] enters H[k], which may fire in the same step k (Bondarev's convention; we read
    Wu et al.'s printed V(t+1) = V(t) + I(t) the same way).
    """

    kind: ClassVar[str] = "lif"

    def __init__(
        self,
        beta: float | None = None,
        tau: float | None = None,
        threshold: float | torch.Tensor = 1.0,
        v_reset: float = 0.0,
        reset: str = "zero",
        surrogate: str | Surrogate = "exp",
        detach_reset: bool = False,
        *,
        strict: bool = False,
        learn_threshold: bool = False,
        record: bool = False,
        surrogate_param: float | None = None,
    ) -> None:
        if (beta is None) == (tau is None):
            raise InputError("LIF needs exactly one of beta (Bondarev: H = beta V + x) or tau "
                             "(Cao et al. and Wu et al.: H = V + (x - (V - v_reset)) / tau); use IF for no leak")
        if beta is not None and (isinstance(beta, bool) or not isinstance(beta, (int, float))
                                 or not 0.0 < float(beta) <= 1.0):
            raise InputError(f"beta must lie in (0, 1] (beta = exp(-dt/tau)), got {beta!r}")
        if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float))
                                or not math.isfinite(tau) or float(tau) < 1.0):
            raise InputError(f"tau must be a finite number >= 1 (tau < 1 makes the leak overshoot), got {tau!r}")
        super().__init__(threshold=threshold, v_reset=v_reset, reset=reset, surrogate=surrogate,
                         detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold,
                         record=record, surrogate_param=surrogate_param)
        self.beta = None if beta is None else float(beta)
        self.tau = None if tau is None else float(tau)


class IF(_SpikingNeuron):
    """Integrate-and-fire layer (no leak; ASF's IF neuron): ``H[k] = V[k-1] + x[k]``, then fire and reset as LIF."""

    kind: ClassVar[str] = "if"

    def __init__(
        self,
        threshold: float | torch.Tensor = 1.0,
        v_reset: float = 0.0,
        reset: str = "zero",
        surrogate: str | Surrogate = "exp",
        detach_reset: bool = False,
        *,
        strict: bool = False,
        learn_threshold: bool = False,
        record: bool = False,
        surrogate_param: float | None = None,
    ) -> None:
        super().__init__(threshold=threshold, v_reset=v_reset, reset=reset, surrogate=surrogate,
                         detach_reset=detach_reset, strict=strict, learn_threshold=learn_threshold,
                         record=record, surrogate_param=surrogate_param)


def _no_leak(*, beta: float | None = None, tau: float | None = None, **common: object) -> IF:
    return IF(**common)  # type: ignore[arg-type]


register_neuron(NeuronKind("lif", LIF, "leaky integrate-and-fire: beta form (Bondarev) or tau form (Cao et al., "
                           "Wu et al.)", paper="Bondarev; Cao et al.; Wu et al."))
register_neuron(NeuronKind("if", _no_leak, "integrate-and-fire, no leak (Wu et al.'s IF)", paper="Wu et al."))


class Integrator(SpikingModule):
    """Non-spiking accumulating output layer: ``v[k] = v[k-1] + x[k]`` (leaky: ``beta v[k-1] + x[k]``).

    Returns the potential trace ``[T, B, ...]`` (Bondarev's last layer, Wu et al.'s output layer);
    ``v[T-1]`` is the total input, Wu et al.'s ``V^N(T)``.
    """

    takes_run = True
    is_neuron = True

    def __init__(self, beta: float | None = None, *, record: bool = False) -> None:
        super().__init__()
        if beta is not None and (isinstance(beta, bool) or not isinstance(beta, (int, float))
                                 or not 0.0 < float(beta) <= 1.0):
            raise InputError(f"Integrator beta must lie in (0, 1], got {beta!r}")
        self.beta = None if beta is None else float(beta)
        self.record = bool(record)
        self.v_trace: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        check_sequence(x, "Integrator")
        check_finite(x, "Integrator")
        v = F.integrator_sequence(x, self.beta, run.temporal_grad)
        self.v_trace = v.detach() if self.record else None
        return v

    def step(self, x: torch.Tensor, state: F.IntegratorState | None = None,
             run: RunOptions = DEFAULT_RUN) -> tuple[torch.Tensor, F.IntegratorState]:
        return F.integrator_step(x, state, self.beta, run.temporal_grad)

    def totals(self, x: torch.Tensor, T: int, run: RunOptions = DEFAULT_RUN) -> torch.Tensor:
        """v[T] = sum_t x[t] = FI: the accumulated output is its total input (Wu et al.'s V^N(T))."""
        if self.beta is not None:
            raise InputError("a leaky Integrator has no totals form (its v[T] is not the total input); use beta=None")
        return x

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


