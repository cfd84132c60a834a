"""The adaptive LIF (Bellec et al. 2018): forward and BPTT gradient against a literal NumPy implementation of its
equations, single step, training, the neuron registry, models, calibration and NIR."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import bptt_losses_on_digits

import dnmsnn
from dnmsnn import AdaptiveLIF, InputError
from dnmsnn.neuron_registry import available, kind_of, neuron_kind

ALPHA = 2.0  # the ATan surrogate's alpha: f'(x) = (alpha / 2) / (1 + (pi / 2 alpha x)^2)


def literal(x, c, *, form, leak, v_th, v_reset, reset, tau_a, adapt):
    """Bellec et al.'s adaptive LIF in dnmsnn's frame, step by step (float64), and BPTT of
    L = sum_t,i c[t, i] S[t, i] by hand:
    H[t] = charge(V[t-1], x[t]); A[t] = v_th + adapt a[t-1]; S[t] = H[t] >= A[t];
    V[t] = H[t] - A[t] S[t] (subtract) or H[t] (1 - S[t]) + v_reset S[t] (zero);
    a[t] = rho a[t-1] + (1 - rho) S[t], rho = exp(-1 / tau_a); dS/dH = -dS/dA = the ATan surrogate of H - A."""
    if form == "tau":   # H = V + (x - (V - v_reset)) / tau
        cv, cx, c0 = 1 - 1 / leak, 1 / leak, v_reset / leak
    else:               # H = v_reset + beta (V - v_reset) + x
        cv, cx, c0 = leak, 1.0, v_reset * (1 - leak)
    rho = math.exp(-1 / tau_a)
    V, a = np.full(x.shape[1:], v_reset), np.zeros(x.shape[1:])
    Hs, As, Ss = [], [], []
    for t in range(x.shape[0]):
        H = cv * V + cx * x[t] + c0
        A = v_th + adapt * a
        S = (H - A >= 0).astype(np.float64)
        V = H - A * S if reset == "subtract" else H * (1 - S) + v_reset * S
        a = rho * a + (1 - rho) * S
        Hs.append(H), As.append(A), Ss.append(S)
    gV, ga = np.zeros_like(V), np.zeros_like(a)  # dL/dV[t], dL/da[t] flowing back from step t+1
    gx, gthr = np.zeros_like(x), 0.0
    for t in reversed(range(x.shape[0])):
        H, A, S = Hs[t], As[t], Ss[t]
        sg = (ALPHA / 2) / (1 + (math.pi / 2 * ALPHA * (H - A)) ** 2)
        if reset == "subtract":
            dV_dH, dV_dS, dV_dA = 1.0, -A, -S
        else:
            dV_dH, dV_dS, dV_dA = 1 - S, v_reset - H, 0.0
        gS = c[t] + gV * dV_dS + ga * (1 - rho)
        gH = gS * sg + gV * dV_dH
        gA = -gS * sg + gV * dV_dA
        gx[t] = gH * cx
        gthr += float(gA.sum())
        gV, ga = gH * cv, ga * rho + gA * adapt
    return np.stack(Ss), np.stack(Hs), gx, gthr


CASES = [
    dict(form="tau", leak=2.0, v_reset=0.0, reset="subtract", tau_a=5.0, adapt=0.8, scale=2.6),
    dict(form="tau", leak=3.0, v_reset=-0.2, reset="zero", tau_a=2.0, adapt=1.5, scale=2.6),
    dict(form="beta", leak=0.85, v_reset=0.0, reset="subtract", tau_a=10.0, adapt=0.4, scale=0.9),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['form']}-{c['reset']}")
def test_forward_and_gradient_match_the_literal_equations(case):
    case = dict(case)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(9, 3, 6, generator=g, dtype=torch.float64) * case.pop("scale")
    c = torch.randn(9, 3, 6, generator=g, dtype=torch.float64)
    leak = {case["form"]: case["leak"]}
    n = AdaptiveLIF(**leak, v_reset=case["v_reset"], reset=case["reset"], surrogate="atan", tau_a=case["tau_a"],
                    adapt=case["adapt"], learn_threshold=True, record=True).double()
    xr = x.clone().requires_grad_()
    s = n(xr)
    (s * c).sum().backward()
    S, H, gx, gthr = literal(x.numpy(), c.numpy(), v_th=1.0, **case)
    assert 0.05 < S.mean() < 0.8
    np.testing.assert_array_equal(s.detach().numpy(), S)
    np.testing.assert_allclose(n.v_trace.numpy(), H, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xr.grad.numpy(), gx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(n.threshold.grad), gthr, rtol=1e-9)


def test_the_threshold_adapts_and_adapt_zero_is_the_lif():
    x = torch.full((40, 1, 4), 1.6, dtype=torch.float64)
    lif = dnmsnn.LIF(tau=2.0, reset="subtract")
    alif = AdaptiveLIF(tau=2.0, tau_a=20.0, adapt=3.0)
    assert alif(x).sum() < 0.7 * lif(x).sum()            # adaptation slows a constantly driven neuron down
    assert torch.equal(AdaptiveLIF(tau=2.0, adapt=0.0)(x), lif(x))
    late, early = alif(x)[20:].mean(), alif(x)[:20].mean()
    assert late < early                                   # and the slowing grows while a builds up


def test_single_step_equals_the_sequence_and_spatial_gradients_stay_in_their_step():
    torch.manual_seed(0)
    n = AdaptiveLIF(tau=2.0, tau_a=4.0, adapt=0.6)
    x = torch.rand(6, 4, 8) * 1.6
    state, steps = None, []
    for k in range(6):
        s, state = n.step(x[k], state)
        steps.append(s)
    assert isinstance(state, dnmsnn.adaptive_lif.AdaptiveState)
    assert torch.equal(torch.stack(steps), n(x))
    xr = x.clone().requires_grad_()
    n(xr, dnmsnn.RunOptions(temporal_grad=False))[-1].sum().backward()  # only the last step's spikes in the loss
    assert xr.grad[:-1].abs().sum() == 0 and xr.grad[-1].abs().sum() > 0


def test_bptt_trains_an_adaptive_network():
    torch.manual_seed(0)
    net = dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(32,), neuron="alif", tau=2.0,
                               neuron_args={"tau_a": 8.0, "adapt": 0.5}, surrogate="atan")
    assert isinstance(net[2], AdaptiveLIF) and (net[2].tau_a, net[2].adapt) == (8.0, 0.5)
    losses = bptt_losses_on_digits(net)
    assert losses[-1] < 0.5 * losses[0]


def test_registry_errors_calibration_and_nir():
    assert {"lif", "if", "plif", "alif"} <= set(available())
    assert kind_of(AdaptiveLIF(tau=2.0)) is neuron_kind("alif") and kind_of(dnmsnn.Linear(2, 2)) is None
    assert neuron_kind("alif").runs_on != "fused" and neuron_kind("lif").runs_on == "fused"
    with pytest.raises(InputError, match="neuron must be one of"):
        neuron_kind("izhikevich")
    with pytest.raises(InputError, match="tau_a"):
        AdaptiveLIF(tau=2.0, tau_a=0.0)
    with pytest.raises(InputError, match="adapt"):
        AdaptiveLIF(tau=2.0, adapt=-1.0)
    with pytest.raises(InputError, match="no argument.*tau_a"):
        dnmsnn.models.create("mlp", neuron="lif", neuron_args={"tau_a": 3.0})
    with pytest.raises(InputError, match="no argument.*bogus"):
        dnmsnn.models.create("asf_lenet", neuron="alif", neuron_args={"bogus": 1})
    torch.manual_seed(0)
    net = dnmsnn.models.create("asf_lenet", neuron="alif", tau=2.0)
    from dnmsnn.calibrate import calibrate_firing

    records = calibrate_firing(net, dnmsnn.PoissonEncoder(T=6, seed=0)(torch.rand(16, 1, 28, 28)), 0.02, 0.2)
    assert all(r.reached for r in records)  # an AdaptiveLIF is a LIF to everything that reads the network
    pytest.importorskip("nir")
    from dnmsnn.nir import to_nir

    with pytest.raises(InputError, match="adaptive threshold"):
        to_nir(net)
