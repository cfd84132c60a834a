"""Literal NumPy (float64) implementation of Bondarev's spatial backpropagation (Bondarev, eqs. 3-13).

Written from the paper, one sample, one step k and one layer at a time:

    net^m[k] = W^m b^{m-1}[k]                                   (3)
    v^m[k]   = beta v^m[k-1] + net^m[k]                          (4), hidden layers
    b^m_i[k] = 1 if v^m_i[k] >= s_m else 0                       (5)
    v^m_i[k+] = 0 if v^m_i[k] >= s_m                             (6)
    v^M[k]   = v^M[k-1] + net^M[k]                               last layer accumulates, no reset
    Delta^M[k] = P[k] - y (softmax CE, eq. 12; eq. 11 read with exp in the denominator)
               = -e[k]/k, e[k] = y - v^M[k]/k (MSE, eq. 9)
    Delta^m[k] = f'(v^m[k] - s_m) * (W^{m+1})^T Delta^{m+1}[k]   (8), f'(x) = exp(-|x|) (13)
    W^m <- W^m - alpha Delta^m[k] (b^{m-1}[k])^T                (7)

The loss of a mini-batch is the mean over its samples, so each sample's Delta carries a 1/B.
"""
from __future__ import annotations

import math

import numpy as np


def forward_step(W, b0, v_prev, beta, thresholds):
    """One step k for one sample: returns (spike vectors b^0..b^{M-1}, pre-reset potentials, new states)."""
    spikes, pre, new_v = [np.asarray(b0, dtype=np.float64)], [], []
    M = len(W)
    for m in range(M):
        net = W[m] @ spikes[-1]                                      # eq. 3
        if m < M - 1:
            v = beta * v_prev[m] + net                              # eq. 4
            b = np.array([1.0 if v[i] >= thresholds[m] else 0.0 for i in range(len(v))])  # eq. 5
            pre.append(v.copy())
            new_v.append(np.where(b == 1.0, 0.0, v))                # eq. 6
            spikes.append(b)
        else:
            v = v_prev[m] + net                                     # accumulating last layer
            pre.append(v.copy())
            new_v.append(v)
    return spikes, pre, new_v


def output_delta(vM, label, k, loss, step_scale, batch):
    """Delta^M[k] for one sample (k is 1-based)."""
    y = np.zeros_like(vM)
    y[label] = 1.0
    if loss == "mse":
        e = y - vM / k
        return -e / k / batch                                        # eq. 9
    P = np.exp(vM - vM.max())
    P = P / P.sum()                                                 # eq. 11 (with exp below the line)
    scale = 1.0 / k if step_scale == "1/k" else 1.0
    return (P - y) * scale / batch                                   # eq. 12


def spatial_gradients(W, inputs, labels, beta, thresholds, loss="ce", step_scale="none"):
    """Sum over steps and samples of eq. 7's increments Delta^m[k] b^{m-1}[k]^T (alpha = 1, no update)."""
    W = [np.asarray(w, dtype=np.float64) for w in W]
    T, B = inputs.shape[:2]
    grads = [np.zeros_like(w) for w in W]
    for n in range(B):
        v = [np.zeros(w.shape[0]) for w in W]
        for k in range(T):
            spikes, pre, v = forward_step(W, inputs[k, n], v, beta, thresholds)
            delta = output_delta(pre[-1], labels[n], k + 1, loss, step_scale, B)
            for m in range(len(W) - 1, -1, -1):
                grads[m] += np.outer(delta, spikes[m])               # eq. 7 increment
                if m > 0:
                    fprime = np.array([math.exp(-abs(pre[m - 1][i] - thresholds[m - 1]))
                                       for i in range(len(pre[m - 1]))])   # eq. 13
                    delta = fprime * (W[m].T @ delta)                # eq. 8
    return grads


def spatial_sgd_per_step(W, inputs, labels, beta, thresholds, lr, loss="ce", step_scale="none"):
    """Eq. 7 literally for one mini-batch: the weights change after every step k (batch-mean Delta)."""
    W = [np.asarray(w, dtype=np.float64).copy() for w in W]
    T, B = inputs.shape[:2]
    v = [[np.zeros(w.shape[0]) for w in W] for _ in range(B)]
    for k in range(T):
        grads = [np.zeros_like(w) for w in W]
        for n in range(B):
            spikes, pre, v[n] = forward_step(W, inputs[k, n], v[n], beta, thresholds)
            delta = output_delta(pre[-1], labels[n], k + 1, loss, step_scale, B)
            for m in range(len(W) - 1, -1, -1):
                grads[m] += np.outer(delta, spikes[m])
                if m > 0:
                    fprime = np.exp(-np.abs(pre[m - 1] - thresholds[m - 1]))
                    delta = fprime * (W[m].T @ delta)
        W = [w - lr * g for w, g in zip(W, grads, strict=True)]     # eq. 7
    return W
