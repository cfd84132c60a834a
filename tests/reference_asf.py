"""Literal NumPy (float64) implementation of Accumulated Spiking Flow training (Wu et al.), from the slides.

Forward, per sample, per step t, per neuron (IF or LIF of the slides, strict Heaviside, reset to V_reset):

    I^n(t)   = sum_j w_ij s_j^{n-1}(t)                              (eq. 1)
    V(t+1)   = V(t) + I(t)        (IF)   /   V(t) + (I(t) - (V(t) - V_reset)) / tau   (LIF)
    s^n(t)   = 1 if V - V_th > 0 else 0                            (eqs. 2-3)
    V        = V_reset s + V (1 - s)                               (eq. 4)
    FI_i^n = sum_t I_i^n(t),  FO_i^n = sum_t s_i^n(t);  the output layer only accumulates: V^N(T) = FI^N

Backward, once, on the totals (eqs. 5-9, with the per-layer shared ratio S^n = sum_i FO_i / sum_i FI_i):

    L          = 1/2 || Y - V^N(T) / (T V_th) ||^2                  (eq. 5)
    dL/dFI^N_j = (FI^N_j / (T V_th) - Y_j) / (T V_th)
    dL/dFO^n_i = sum_j dL/dFO^{n+1}_j S^{n+1} w^{n+1}_ji   (hidden; for n = N-1: sum_j dL/dFI^N_j w^N_ji, eq. 7)
    dL/dw^n_ij = dL/dFO^n_i S^n FO^{n-1}_j                          (eq. 9; output layer: dL/dFI^N_i FO^{N-1}_j)

The mini-batch loss is the mean over samples, so each sample's gradient carries a 1/B.
"""
from __future__ import annotations

import numpy as np


def simulate(W, inputs, v_th, v_reset=0.0, tau=None):
    """Returns per-layer (FI, FO) totals [B, n] for the hidden layers and FI^N of the output layer."""
    T, B = inputs.shape[:2]
    hidden = len(W) - 1
    FI = [np.zeros((B, W[n].shape[0])) for n in range(len(W))]
    FO = [np.zeros((B, W[n].shape[0])) for n in range(hidden)]
    for b in range(B):
        V = [np.full(W[n].shape[0], v_reset, dtype=np.float64) for n in range(hidden)]
        for t in range(T):
            s_prev = np.asarray(inputs[t, b], dtype=np.float64)
            for n in range(len(W)):
                I = np.array([sum(W[n][i, j] * s_prev[j] for j in range(len(s_prev))) for i in range(W[n].shape[0])])
                FI[n][b] += I
                if n == hidden:
                    break                                   # output layer: accumulate only
                if tau is None:
                    V[n] = V[n] + I                         # IF
                else:
                    V[n] = V[n] + (I - (V[n] - v_reset)) / tau   # LIF
                s = np.array([1.0 if V[n][i] - v_th > 0 else 0.0 for i in range(len(V[n]))])
                V[n] = v_reset * s + V[n] * (1.0 - s)
                FO[n][b] += s
                s_prev = s
    return FI, FO


def asf_gradients(W, inputs, labels, v_th, v_reset=0.0, tau=None, n_classes=None, positive_fi=False):
    """dL/dW^n of eqs. 5-9 with S^n shared over each sample's layer (``positive_fi``: its denominator sums
    the FI of the neurons whose FI is positive only)."""
    W = [np.asarray(w, dtype=np.float64) for w in W]
    T, B = inputs.shape[:2]
    FI, FO = simulate(W, inputs, v_th, v_reset, tau)
    FO0 = inputs.sum(0).astype(np.float64)
    grads = [np.zeros_like(w) for w in W]
    scale = T * v_th
    for b in range(B):
        Y = np.zeros(W[-1].shape[0])
        Y[labels[b]] = 1.0
        d_FI = (FI[-1][b] / scale - Y) / scale / B          # dL/dFI^N
        fo_below = FO[-1][b] if len(FO) else FO0[b]
        grads[-1] += np.outer(d_FI, fo_below)
        d_FO = W[-1].T @ d_FI                                # eq. 7
        for n in range(len(W) - 2, -1, -1):
            fi = FI[n][b]
            S = FO[n][b].sum() / (fi[fi > 0].sum() if positive_fi else fi.sum())   # shared ratio, this sample
            below = FO[n - 1][b] if n > 0 else FO0[b]
            grads[n] += np.outer(d_FO * S, below)           # eq. 9
            d_FO = W[n].T @ (d_FO * S)                       # eq. 8
    return grads, FI, FO
