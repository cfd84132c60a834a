"""The parametric LIF (Fang et al. 2021): forward and BPTT gradient against a literal NumPy implementation of its
equations, training, models, calibration and NIR."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import bptt_losses_on_digits

import dnmsnn
from dnmsnn import InputError, ParametricLIF

ALPHA = 2.0  # the ATan surrogate's alpha: f'(x) = (alpha / 2) / (1 + (pi / 2 alpha x)^2)


def literal(x, w, v_th, v_reset, c):
    """Fang et al. eqs. 4-5 step by step (float64), and BPTT of L = sum_t,i c[t, i] S[t, i] by hand:
    H[t] = V[t-1] + k (X[t] - (V[t-1] - V_reset)), k = sigmoid(w); S[t] = H[t] >= V_th;
    V[t] = H[t] (1 - S[t]) + V_reset S[t]; dS/dH taken as the ATan surrogate (also through the reset)."""
    T = x.shape[0]
    k = 1.0 / (1.0 + math.exp(-w))
    V = np.full(x.shape[1:], v_reset)
    Vs, Hs, Ss = [V], [], []
    for t in range(T):
        H = V + k * (x[t] - (V - v_reset))
        S = (H - v_th >= 0).astype(np.float64)
        V = H * (1 - S) + v_reset * S
        Hs.append(H), Ss.append(S), Vs.append(V)
    gV = np.zeros_like(V)     # dL/dV[t] flowing back from step t+1
    gk, gx = 0.0, np.zeros_like(x)
    for t in reversed(range(T)):
        H, S, V_prev = Hs[t], Ss[t], Vs[t]
        sg = (ALPHA / 2) / (1 + (math.pi / 2 * ALPHA * (H - v_th)) ** 2)
        gS = c[t] + gV * (v_reset - H)        # S enters L directly and V[t] through the reset
        gH = gS * sg + gV * (1 - S)
        gk += float((gH * (x[t] - (V_prev - v_reset))).sum())
        gx[t] = gH * k
        gV = gH * (1 - k)
    return np.stack(Ss), np.stack(Hs), gk * k * (1 - k), gx


@pytest.mark.parametrize("tau, v_reset", [(2.0, 0.0), (5.0, -0.3)])
def test_forward_and_gradient_match_the_literal_equations(tau, v_reset):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(7, 3, 5, generator=g, dtype=torch.float64) * 2.2)
    c = torch.randn(7, 3, 5, generator=g, dtype=torch.float64)
    n = ParametricLIF(tau=tau, v_reset=v_reset, surrogate="atan", record=True).double()
    with torch.no_grad():
        n.w.add_(0.37)  # away from the initial value, so that tau is really a learned number
    xr = x.clone().requires_grad_()
    s = n(xr)
    (s * c).sum().backward()
    S, H, gw, gx = literal(x.numpy(), float(n.w.detach()), 1.0, v_reset, c.numpy())
    assert 0 < S.mean() < 1
    np.testing.assert_array_equal(s.detach().numpy(), S)
    np.testing.assert_allclose(n.v_trace.numpy(), H, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(n.w.grad), gw, rtol=1e-9)
    np.testing.assert_allclose(xr.grad.numpy(), gx, rtol=1e-9, atol=1e-12)
    assert n.tau == pytest.approx(1 + math.exp(-float(n.w.detach())))


def test_single_step_equals_the_sequence():
    n = ParametricLIF(tau=3.0)
    x = torch.rand(6, 4, 8) * 1.5
    seq = n(x)
    state, steps = None, []
    for k in range(6):
        s, state = n.step(x[k], state)
        steps.append(s)
    assert torch.equal(torch.stack(steps), seq)


def test_bptt_learns_tau_and_the_loss_falls():
    torch.manual_seed(0)
    net = dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(32,), neuron="plif", tau=2.0, surrogate="atan")
    plif = net[2]
    losses = bptt_losses_on_digits(net)
    assert plif.w.grad is not None and plif.tau != pytest.approx(2.0)
    assert losses[-1] < 0.5 * losses[0]


def test_errors_calibration_and_nir(tmp_path):
    with pytest.raises(InputError, match="tau"):
        ParametricLIF(tau=1.0)
    with pytest.raises(InputError, match="learned"):
        ParametricLIF(tau=2.0).tau = 3.0
    with pytest.raises(InputError, match="beta"):
        dnmsnn.models.create("mlp", neuron="plif", beta=0.9)
    torch.manual_seed(0)
    net = dnmsnn.models.create("asf_lenet", neuron="plif", tau=2.0)
    from dnmsnn.calibrate import calibrate_firing

    records = calibrate_firing(net, dnmsnn.PoissonEncoder(T=6, seed=0)(torch.rand(16, 1, 28, 28)), 0.02, 0.2)
    assert all(r.reached for r in records)  # a ParametricLIF is a LIF to everything that reads the network
    nir = pytest.importorskip("nir")
    with torch.no_grad():
        net[1].w.fill_(0.5)
    from dnmsnn.nir import to_nir

    graph = to_nir(net)
    lifs = [node for node in graph.nodes.values() if isinstance(node, nir.LIF)]
    assert lifs and np.allclose(lifs[0].tau, 1 + math.exp(-0.5))  # the learned tau of the moment (dt = 1)
