"""Literal NumPy (float64) reference of the three papers' neurons and of Bondarev's network.

Written from the papers, not from ``dnmsnn``: one time step ``k`` after the other, one neuron after the
other, in scalar Python arithmetic, so that each line can be checked against an equation.

Papers (``shared/seeds`` beside the repository):

* Cao et al. -- DNM-SNN (2022), eqs. 1-5: LIF with a time constant ``tau_m``. The printed
  eq. 2 has typos; it is read as ``H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau_m``. Eq. 3 fires on
  ``H[t] >= V_th``, eq. 5 resets with ``V[t] = H[t] (1 - S[t]) + V_reset S[t]``.
* Bondarev -- Bondarev, eqs. 3-6: ``net[k] = W b[k]`` (3), ``v[k] = beta v[k-1] + net[k]`` (4), spike when
  ``v[k] >= s`` (5), reset to 0 (6); the last layer only accumulates its weighted input spikes.
* Wu et al. -- ASF slides: IF ``V(t+1) = V(t) + I(t)``, LIF ``V(t+1) = V(t) + (I(t) - (V(t) - V_reset)) / tau``,
  strict Heaviside ``s = 1 if V - V_th > 0`` (eqs. 2-3), reset to ``V_reset`` (eq. 4). The printed
  ``V(t+1)`` is read as the pre-reset potential ``H`` of the step ``t`` in which the input arrives and fires.

Conventions shared by every function here:

* ``x`` is an array ``[T, B, ...]`` (time first, then batch, then any feature dims) of input currents
  ``X[k]`` (the ``net[k]`` / ``I(t)`` of the papers); it is converted to float64;
* every neuron starts at rest, ``V[-1] = v_reset``;
* thresholds are a scalar or an array that broadcasts against one step ``[B, ...]`` (per-neuron thresholds);
* ``strict=False`` fires on ``H >= V_th`` (Cao et al. and Bondarev), ``strict=True`` on ``H > V_th`` (Wu et al.);
* ``reset="zero"`` is the papers' reset to ``v_reset`` (Cao et al. eq. 5, Bondarev eq. 6, Wu et al. eq. 4);
  ``reset="subtract"`` is the usual "reset by subtraction" extension, ``V[k] = H[k] - V_th S[k]``;
* spiking neurons return ``(spikes, H)``: the spike trains ``S`` and the pre-reset potentials ``H``, both
  ``[T, B, ...]`` float64.

Later tests may add references for other rules (ASF totals, spatial updates) to this module.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "heaviside",
    "reset_potential",
    "lif_beta",
    "lif_beta_subtract",
    "lif_tau",
    "lif_tau_subtract",
    "if_neuron",
    "if_neuron_subtract",
    "integrator",
    "mlp_forward",
    "sigmoid",
]

RESETS = ("zero", "subtract")


def heaviside(u: float, strict: bool = False) -> float:
    """The spike function of the distance ``u = H - V_th`` to the threshold.

    Non-strict (Cao et al. eq. 3, Bondarev eq. 5): 1 if ``u >= 0``. Strict (Wu et al. eq. 3): 1 if ``u > 0``.
    """
    if strict:
        return 1.0 if u > 0.0 else 0.0
    return 1.0 if u >= 0.0 else 0.0


def reset_potential(h: float, s: float, v_th: float, v_reset: float, reset: str = "zero") -> float:
    """The post-step potential ``V[k]`` of one neuron from its pre-reset potential ``h`` and spike ``s``.

    ``reset="zero"``: Cao et al. eq. 5, ``V = H (1 - S) + V_reset S`` (Bondarev eq. 6 with ``V_reset = 0``,
    Wu et al. eq. 4). Written as the convex combination so that a smooth ``s`` in [0, 1] (a relaxed spike)
    gives the natural relaxation of the reset. ``reset="subtract"``: ``V = H - V_th S``.
    """
    if reset == "zero":
        return h * (1.0 - s) + v_reset * s
    if reset == "subtract":
        return h - v_th * s
    raise ValueError(f"unknown reset {reset!r}")


def _as_input(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError("reference neurons take x laid out [T, B, ...]")
    return x


def _per_neuron(value, step_shape: tuple[int, ...]) -> np.ndarray:
    """A scalar or per-neuron parameter broadcast to the shape of one step ``[B, ...]``."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), step_shape)


def _run_neuron(
    x,
    charge: Callable[[float, float], float],
    v_th,
    v_reset: float,
    strict: bool,
    reset: str,
    spike: Callable[[float], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Shared loop: for every step ``k`` and every neuron ``i``: ``H = charge(V, X)``, fire, reset.

    ``spike`` replaces the Heaviside of ``H - V_th`` (e.g. a sigmoid, for a smooth relaxation of the
    network); by default it is :func:`heaviside` with the given ``strict``.
    """
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}")
    x = _as_input(x)
    T = x.shape[0]
    step_shape = x.shape[1:]
    th = _per_neuron(v_th, step_shape)
    spikes = np.zeros_like(x)
    hs = np.zeros_like(x)
    for i in np.ndindex(step_shape):  # one neuron (batch element and feature position) at a time
        v = float(v_reset)  # at rest before the first step
        for k in range(T):
            h = charge(v, float(x[(k, *i)]))
            u = h - float(th[i])
            s = heaviside(u, strict) if spike is None else spike(u)
            v = reset_potential(h, s, float(th[i]), v_reset, reset)
            spikes[(k, *i)] = s
            hs[(k, *i)] = h
    return spikes, hs


def lif_beta(
    x,
    beta: float,
    s,
    v_reset: float = 0.0,
    *,
    strict: bool = False,
    reset: str = "zero",
    spike: Callable[[float], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bondarev's LIF (Bondarev, eqs. 4-6): ``v[k] = beta v[k-1] + net[k]``, fire if ``v[k] >= s``, reset to 0.

    ``x`` holds ``net[k]`` (eq. 3 is applied by the caller or by :func:`mlp_forward`). The paper has
    ``v_reset = 0``; for a nonzero ``v_reset`` the leak decays towards the rest potential,
    ``H[k] = v_reset + beta (V[k-1] - v_reset) + x[k]``, which is eq. 4 for ``v_reset = 0``.
    Returns ``(spikes, H)``; ``H[k]`` is ``v[k]`` before the reset of eq. 6.
    """

    def charge(v: float, xk: float) -> float:
        return v_reset + beta * (v - v_reset) + xk

    return _run_neuron(x, charge, s, v_reset, strict, reset, spike)


def lif_tau(
    x,
    tau: float,
    v_th,
    v_reset: float = 0.0,
    strict: bool = False,
    *,
    reset: str = "zero",
    spike: Callable[[float], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """LIF with time constant (Cao et al. eqs. 1-5, read as ``H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau``;
    Wu et al.'s LIF ``V(t+1) = V(t) + (I(t) - (V(t) - V_reset)) / tau`` with ``V(t+1)`` read as ``H[t]``).

    Fire on ``H >= V_th`` (Cao et al. eq. 3) or ``H > V_th`` when ``strict`` (Wu et al. eq. 3); reset by
    Cao et al. eq. 5. Returns ``(spikes, H)``.
    """

    def charge(v: float, xk: float) -> float:
        return v + (xk - (v - v_reset)) / tau

    return _run_neuron(x, charge, v_th, v_reset, strict, reset, spike)


def if_neuron(
    x,
    v_th,
    v_reset: float = 0.0,
    strict: bool = False,
    *,
    reset: str = "zero",
    spike: Callable[[float], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate-and-fire (Wu et al.): ``V(t+1) = V(t) + I(t)`` read as ``H[t] = V[t-1] + X[t]``.

    Fire on ``H - V_th > 0`` when ``strict`` (Wu et al. eqs. 2-3), else on ``H >= V_th``; reset to
    ``V_reset`` (Wu et al. eq. 4). Returns ``(spikes, H)``.
    """

    def charge(v: float, xk: float) -> float:
        return v + xk

    return _run_neuron(x, charge, v_th, v_reset, strict, reset, spike)


def lif_beta_subtract(x, beta: float, s, v_reset: float = 0.0, *, strict: bool = False):
    """:func:`lif_beta` with reset by subtraction, ``V[k] = H[k] - s S[k]``. Returns ``(spikes, H)``."""
    return lif_beta(x, beta, s, v_reset, strict=strict, reset="subtract")


def lif_tau_subtract(x, tau: float, v_th, v_reset: float = 0.0, strict: bool = False):
    """:func:`lif_tau` with reset by subtraction, ``V[t] = H[t] - V_th S[t]``. Returns ``(spikes, H)``."""
    return lif_tau(x, tau, v_th, v_reset, strict, reset="subtract")


def if_neuron_subtract(x, v_th, v_reset: float = 0.0, strict: bool = False):
    """:func:`if_neuron` with reset by subtraction, ``V[t] = H[t] - V_th S[t]``. Returns ``(spikes, H)``."""
    return if_neuron(x, v_th, v_reset, strict, reset="subtract")


def integrator(x, beta: float | None = None) -> np.ndarray:
    """The non-spiking output layer: ``v[k] = v[k-1] + x[k]`` from ``v[-1] = 0``.

    Bondarev's last layer ("weighted input spikes are simply accumulated") and Wu et al.'s output layer
    (``V^N(T)`` = total input current). With ``beta`` it is the leaky integrator of Bondarev eq. 4 without
    a threshold: ``v[k] = beta v[k-1] + x[k]``. Returns the potential trace ``v`` ``[T, B, ...]``.
    """
    x = _as_input(x)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape[1:]):
        v = 0.0
        for k in range(x.shape[0]):
            v = (v if beta is None else beta * v) + float(x[(k, *i)])
            out[(k, *i)] = v
    return out


def _matvec(W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``net_i = sum_j w_ij b_j`` written out (Bondarev eq. 3 for one sample and one step)."""
    rows, cols = W.shape
    net = np.zeros(rows)
    for r in range(rows):
        acc = 0.0
        for c in range(cols):
            acc += W[r, c] * b[c]
        net[r] = acc
    return net


def mlp_forward(
    W_list: Sequence,
    b_seq,
    beta: float,
    thresholds: Sequence,
    *,
    spike: Callable[[float], float] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Bondarev's whole feedforward SNN (Bondarev, eqs. 3-6).

    ``W_list[m]`` is the ``I x J`` matrix ``W^m`` (out x in, the layout of ``torch.nn.Linear.weight``);
    ``b_seq`` the input spikes ``[T, B, J]``. Every layer but the last computes ``net^m[k] = W^m b^{m-1}[k]``
    (eq. 3) and feeds it to LIF neurons with leak ``beta`` and threshold ``thresholds[m]`` (eqs. 4-6, reset
    to 0); the last layer ``M`` only accumulates ``v^M[k] = v^M[k-1] + W^M b^{M-1}[k]``, the scores of the
    classifier. ``len(thresholds) == len(W_list) - 1``.

    ``spike`` optionally replaces the Heaviside of eq. 5 (a smooth relaxation, see :func:`lif_beta`).

    Returns ``(scores, hidden_spikes, hidden_H)``: the accumulated potentials of the last layer
    ``[T, B, classes]`` (``scores[-1]`` are the logits), and per hidden layer its spikes and pre-reset
    potentials ``[T, B, I_m]``.
    """
    W_list = [np.asarray(W, dtype=np.float64) for W in W_list]
    if len(thresholds) != len(W_list) - 1:
        raise ValueError("give one threshold per hidden layer (len(W_list) - 1)")
    b = _as_input(b_seq)
    T, B = b.shape[:2]
    hidden_spikes, hidden_h = [], []
    for W, s in zip(W_list[:-1], thresholds, strict=True):
        net = np.zeros((T, B, W.shape[0]))
        for k in range(T):
            for n in range(B):
                net[k, n] = _matvec(W, b[k, n])  # eq. 3
        b, h = lif_beta(net, beta, s, spike=spike)  # eqs. 4-6
        hidden_spikes.append(b)
        hidden_h.append(h)
    W_out = W_list[-1]
    net = np.zeros((T, B, W_out.shape[0]))
    for k in range(T):
        for n in range(B):
            net[k, n] = _matvec(W_out, b[k, n])
    return integrator(net), hidden_spikes, hidden_h


def sigmoid(u: float) -> float:
    """Numerically stable logistic function (for smooth relaxations of the spike)."""
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)
