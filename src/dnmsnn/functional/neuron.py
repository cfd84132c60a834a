"""Pure step and sequence functions of the three papers' neurons.

All three share one discrete-time frame (input and spike in the same step: x[k] enters the
potential H[k], which may fire at step k):

    charge   H[k] = charge(V[k-1], x[k])                       (form below)
    fire     S[k] = H(H[k] - threshold)     (>=; strict > for Wu et al.'s Heaviside, its eq. 3)
    reset    V[k] = H[k] (1 - S[k]) + v_reset S[k]            (reset="zero": all three papers)
             V[k] = H[k] - threshold S[k]                      (reset="subtract": our extension)
    V[0] = v_reset (rest)

Charge forms:
    beta  (Bondarev eq. 4):       H[k] = v_reset + beta (V[k-1] - v_reset) + x[k]
                                  = beta V[k-1] + x[k] for the paper's v_reset = 0
    tau   (Cao et al. eq. 2, read as H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau, which is
           also Wu et al.'s LIF; the slides print V(t+1) = V(t) + I(t) and we read their V(t+1) as
           our H[t], the potential that fires in the same step as the input arrives)
    if    (Wu et al.'s IF):        H[k] = V[k-1] + x[k]

The integrator (Bondarev's last layer, Wu et al.'s output layer) never fires:
    v[k] = v[k-1] + x[k]          (optionally leaky: v[k] = beta v[k-1] + x[k])
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch

from .. import settings
from .surrogate import Surrogate, spike


def reference_path() -> contextlib.AbstractContextManager[object]:
    """Within the block, compute with the ``reference`` backend (:mod:`dnmsnn.settings`): multi-step neurons
    run the step-by-step autograd loop instead of the fused node, the Integrator readout is its literal trace,
    and every other fast path is off (stacked convolutions, spike kernels, fused layer pairs, C++ code)."""
    return settings.use(backend="reference")


def fused_enabled() -> bool:
    """False inside :func:`reference_path` (multi-step neurons and readouts then run step by step)."""
    return settings.current().fused


class NeuronState(NamedTuple):
    """State of a spiking neuron between steps: the post-reset membrane potential V[k]."""

    v: torch.Tensor


class NeuronParameters(NamedTuple):
    """Constants of one spiking neuron layer; exactly one of ``beta`` / ``tau`` set means LIF, neither means IF."""

    threshold: torch.Tensor | float = 1.0
    v_reset: float = 0.0
    beta: float | None = None
    tau: float | None = None
    reset: str = "zero"  # "zero" (to v_reset) or "subtract"
    strict: bool = False  # fire on H > threshold (Wu et al.) instead of H >= threshold
    detach_reset: bool = False  # no gradient through the reset's spike
    surrogate: Surrogate | None = None


def initial_state(like: torch.Tensor, p: NeuronParameters) -> NeuronState:
    """V[0] = v_reset, shaped like one step's input [B, ...]."""
    return NeuronState(torch.full_like(like, p.v_reset))


def charge(v: torch.Tensor, x: torch.Tensor, p: NeuronParameters) -> torch.Tensor:
    """H[k] from V[k-1] and x[k] (beta, tau or IF form; see the module docstring)."""
    if p.beta is not None:
        if p.v_reset == 0.0:
            return p.beta * v + x
        return p.v_reset + p.beta * (v - p.v_reset) + x
    if p.tau is not None:
        return v + (x - (v - p.v_reset)) / p.tau
    return v + x


def fire_and_reset(h: torch.Tensor, p: NeuronParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """S[k] = H(H[k] - threshold) with the surrogate backward, then the reset: returns (S[k], V[k])."""
    s = spike(h - p.threshold, p.surrogate, p.strict)
    s_reset = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        v = h * (1.0 - s_reset) + p.v_reset * s_reset
    else:
        v = h - p.threshold * s_reset
    return s, v


def neuron_step(
    x: torch.Tensor, state: NeuronState | None, p: NeuronParameters, temporal_grad: bool = True
) -> tuple[torch.Tensor, NeuronState, torch.Tensor]:
    """One step of a LIF / IF layer: returns (spikes S[k], new state V[k], pre-reset potential H[k]).

    ``temporal_grad=False``: V[k-1] is detached before it enters H[k], which cuts the leak and the reset paths
    between steps (Bondarev's spatial backpropagation, eq. 8: sensitivities pass from layer m+1 to m within
    the same step k only); the values are unchanged."""
    if state is None:
        state = initial_state(x, p)
    v_prev = state.v if temporal_grad else state.v.detach()
    h = charge(v_prev, x, p)
    s, v = fire_and_reset(h, p)
    return s, NeuronState(v), h


class IntegratorState(NamedTuple):
    """State of the non-spiking output layer: the accumulated potential v[k]."""

    v: torch.Tensor


def integrator_step(
    x: torch.Tensor, state: IntegratorState | None, beta: float | None = None, temporal_grad: bool = True
) -> tuple[torch.Tensor, IntegratorState]:
    """v[k] = v[k-1] + x[k] (or beta v[k-1] + x[k] when leaky); returns (v[k], state). ``temporal_grad=False``
    detaches v[k-1] (as :func:`neuron_step`)."""
    if state is None:
        v = x.clone()
    else:
        v_prev = state.v if temporal_grad else state.v.detach()
        v = (v_prev if beta is None else beta * v_prev) + x
    return v, IntegratorState(v)


def integrator_sequence(x: torch.Tensor, beta: float | None = None, temporal_grad: bool = True) -> torch.Tensor:
    """The potential trace v [T, B, ...] of an integrator driven by x [T, B, ...] from v[0] = 0.

    ``temporal_grad=False`` detaches v[k-1], so the only gradient left is dv[k]/dx[k] = 1: computed as the trace
    without a graph plus ``x - x.detach()`` (exactly 0), which keeps the values bitwise those of the full run."""
    if not temporal_grad:
        with torch.no_grad():
            v = integrator_sequence(x, beta)
        return v + (x - x.detach())
    if beta is None:
        return torch.cumsum(x, dim=0)
    out, state = [], None
    for k in range(x.shape[0]):
        v, state = integrator_step(x[k], state, beta)
        out.append(v)
    return torch.stack(out)


def integrator_readout_weights(T: int, beta: float | None, readout: str, dtype: torch.dtype,
                               device: torch.device | str = "cpu") -> torch.Tensor:
    """w [T] with readout(v) = sum_k w[k] x[k] for the integrator's trace v driven by x (from v[0] = 0).

    v[j] = sum_{k<=j} beta^(j-k) x[k], so ``"final"`` (v[T-1]) weighs x[k] with beta^(T-1-k), ``"sum"``
    (sum_j v[j]) with sum_{j=k}^{T-1} beta^(j-k) = (1 - beta^(T-k)) / (1 - beta) (T - k without leak),
    and ``"mean"`` with that over T. Computed in float64, then cast.
    """
    k = torch.arange(T, dtype=torch.float64)
    leaky = beta is not None and beta != 1.0
    if readout == "final":
        w = torch.pow(beta, T - 1 - k) if leaky else torch.ones(T, dtype=torch.float64)
    else:
        w = (1.0 - torch.pow(beta, T - k)) / (1.0 - beta) if leaky else T - k
        if readout == "mean":
            w = w / T
    return w.to(dtype=dtype, device=device)


def integrator_readout(x: torch.Tensor, beta: float | None, readout: str) -> torch.Tensor:
    """The readout ("final", "sum" or "mean") of an integrator driven by x [T, B, ...], in closed form.

    Equals ``read_out(integrator_sequence(x, beta), readout)`` up to float rounding, without the
    [T, B, ...] trace: one weighted sum over T (see :func:`integrator_readout_weights`). Gradients are
    those of full BPTT through the integrator (not those without a temporal gradient).
    """
    if readout == "final" and (beta is None or beta == 1.0):
        return x.sum(0)
    w = integrator_readout_weights(x.shape[0], beta, readout, x.dtype, x.device)
    return torch.tensordot(w, x, dims=([0], [0]))
