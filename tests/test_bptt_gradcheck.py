"""BPTT gradients of dnmsnn networks: exact against finite differences of a smooth twin, and against a
hand-derived NumPy backward pass through time.

Construction of the smooth twin (``smooth_spikes`` fixture)
-------------------------------------------------------------
The real network's spike ``S = Heaviside(H - threshold)`` is not differentiable, so its BPTT gradient
(surrogate derivative in place of the Heaviside's) cannot be compared with finite differences directly.
We therefore give the network a spike function whose *forward* is smooth as well:

* the library's spike autograd function (``dnmsnn.functional.surrogate._SpikeFn``) is subclassed; the
  subclass runs the library's forward (so the context holds what the library's backward needs) but
  returns ``sigmoid(k u)``, with ``u = H - threshold`` and ``k`` the slope of the ``"sigmoid"`` surrogate;
  its backward is the library's, unchanged: ``grad * surrogate.derivative(u)`` = ``grad * k sig(ku)(1 - sig(ku))``;
* ``dnmsnn.functional.neuron.spike`` (what every LIF / IF step calls) is monkeypatched to apply it, and
  the multi-step neurons are made to run step by step (``dnmsnn.functional.reference_path()``; the
  default fused node has its own inline Heaviside, so it is compared with the step-by-step path, and
  both with the hand-derived backward, further below).

With the ``"sigmoid"`` surrogate of slope ``k`` the library's surrogate derivative is then the *exact*
derivative of the patched forward, so the gradient that the library's BPTT path computes (charge,
fire, reset, recurrence over T, Linear layers, Integrator, readout, loss, ``rules.create("bptt")``) must
equal the true gradient of the smooth network, which central finite differences of the loss give to
~1e-9 in float64. A wrong surrogate argument (e.g. H instead of H - threshold), a missing path through
the reset or through time, or a wrong leak factor in the backward would break the match. The smooth
forward itself is checked against ``reference.mlp_forward`` with the same sigmoid spike, so the patch is
known to be in effect.

The hand-derived NumPy BPTT covers the real Heaviside forward, ``detach_reset`` and all three charge forms,
on the default (fused) path, the step-by-step path and without temporal gradient (``temporal_grad=False``).
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import reference as ref
import torch
from helpers import default_dtype

import dnmsnn
import dnmsnn.functional.neuron as neuron_fn
from dnmsnn.functional.surrogate import _SpikeFn
from dnmsnn.rules.base import task_loss

K = 4.0  # slope of the sigmoid spike / surrogate


class SmoothForwardSpike(_SpikeFn):
    """The library's spike function with ``sigmoid(slope * u)`` as forward; backward inherited unchanged."""

    @staticmethod
    def forward(ctx, u, surrogate, strict):  # type: ignore[override]
        _SpikeFn.forward(ctx, u, surrogate, strict)  # the library saves what its backward needs
        return torch.sigmoid(surrogate.slope * u)


def smooth_spike(u: torch.Tensor, surrogate, strict: bool = False) -> torch.Tensor:
    return SmoothForwardSpike.apply(u, surrogate, strict)


# The step-by-step autograd path (the one that calls ``neuron_fn.spike``); multi-step neurons
# otherwise run a fused node with its own inline Heaviside and hand-written backward.
def REFERENCE_PATH():
    return dnmsnn.use_backend("reference")


NO_TEMPORAL = dnmsnn.RunOptions(temporal_grad=False)


@pytest.fixture
def smooth_spikes(monkeypatch):
    monkeypatch.setattr(neuron_fn, "spike", smooth_spike)
    with REFERENCE_PATH():
        yield


def make_net(form: str, reset: str = "zero", v_reset: float = 0.0, learn_threshold: bool = False,
             bias: bool = False, surrogate: str = "sigmoid", surrogate_param: float | None = K,
             detach_reset: bool = False, hidden=(3,), seed: int = 0) -> dnmsnn.Network:
    """2 inputs -> hidden LIF / IF -> 2 Integrator outputs (Bondarev's layout), float64, fixed weights."""
    kw = dict(beta=None, tau=None)
    if form == "beta":
        kw["beta"] = 0.8
    elif form == "tau":
        kw["tau"] = 2.0
    torch.manual_seed(seed)
    with default_dtype(torch.float64):
        net = dnmsnn.models.create(
            "mlp", input_shape=(2,), hidden=hidden, num_classes=2, neuron="if" if form == "if" else "lif",
            threshold=0.5, v_reset=v_reset, reset=reset, surrogate=surrogate, surrogate_param=surrogate_param,
            learn_threshold=learn_threshold, bias=bias, detach_reset=detach_reset, **kw,
        )
    with torch.no_grad():  # weights large enough that the hidden layer is near and across its threshold
        for m in net:
            if isinstance(m, dnmsnn.Linear):
                m.weight.uniform_(-1.5, 1.5)
    return net


def batch(T: int = 4, B: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, B, 2, generator=g, dtype=torch.float64) * 1.2
    targets = torch.tensor([0, 1, 1, 0, 1][:B])
    return x, targets


def finite_difference_grads(net, loss_fn, h: float = 1e-6) -> dict[str, torch.Tensor]:
    grads = {}
    with torch.no_grad():
        for name, p in net.named_parameters():
            g = torch.zeros_like(p)
            flat, gflat = p.view(-1), g.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + h
                up = loss_fn()
                flat[i] = old - h
                down = loss_fn()
                flat[i] = old
                gflat[i] = (up - down) / (2 * h)
            grads[name] = g
    return grads


GRAD_CASES = {
    "lif_beta": dict(form="beta"),
    "lif_beta_vreset_subtract": dict(form="beta", v_reset=-0.3, reset="subtract"),
    "lif_tau": dict(form="tau"),
    "lif_tau_vreset": dict(form="tau", v_reset=-0.5),
    "if": dict(form="if"),
    "if_subtract": dict(form="if", reset="subtract"),
    "lif_learn_threshold_bias": dict(form="beta", learn_threshold=True, bias=True),
    "if_learn_threshold_subtract": dict(form="if", reset="subtract", learn_threshold=True),
}


@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_bptt_gradient_equals_finite_differences_of_smooth_twin(smooth_spikes, case, loss):
    net = make_net(**GRAD_CASES[case])
    x, targets = batch()
    rule = dnmsnn.rules.create("bptt", loss=loss)
    net.zero_grad()
    loss_value, logits = rule.loss_backward(net, x, targets)
    bptt = {name: p.grad.clone() for name, p in net.named_parameters()}
    assert all(g is not None for g in bptt.values())

    @torch.no_grad()
    def loss_fn() -> float:
        return float(task_loss(net.classify(x), targets, loss))

    assert loss_fn() == pytest.approx(float(loss_value), rel=1e-14)
    fd = finite_difference_grads(net, loss_fn)
    assert set(fd) == set(bptt)
    for name in fd:
        assert bptt[name].abs().max() > 1e-4, name  # not a vacuous comparison
        torch.testing.assert_close(bptt[name], fd[name], rtol=1e-6, atol=1e-9, msg=f"{case} {loss} {name}")


def test_smooth_twin_forward_is_the_reference_with_sigmoid_spikes(smooth_spikes):
    """The patch is in effect: the network computes Bondarev eqs. 3-6 with S = sigmoid(k (v - s))."""
    net = make_net("beta", hidden=(4, 3))
    x, _ = batch(T=5, B=2)
    Ws = [m.weight.detach().numpy() for m in net if isinstance(m, dnmsnn.Linear)]
    scores, hidden, _ = ref.mlp_forward(Ws, x.numpy(), 0.8, [0.5, 0.5], spike=lambda u: ref.sigmoid(K * u))
    np.testing.assert_allclose(net(x).detach().numpy(), scores, rtol=0, atol=1e-12)
    assert not set(np.unique(hidden[0])) <= {0.0, 1.0}  # really smooth


NEURONS = {
    "lif_beta": (dnmsnn.LIF, dict(beta=0.7)),
    "lif_beta_vreset": (dnmsnn.LIF, dict(beta=0.7, v_reset=-0.4)),
    "lif_tau_subtract": (dnmsnn.LIF, dict(tau=2.5, reset="subtract")),
    "if": (dnmsnn.IF, dict()),
    "if_subtract_strict": (dnmsnn.IF, dict(reset="subtract", strict=True)),
}


@pytest.mark.parametrize("case", list(NEURONS))
def test_neuron_gradcheck_with_smooth_spike(smooth_spikes, case):
    """torch.autograd.gradcheck of one neuron layer (input -> spikes over T) with the smooth forward."""
    cls, kw = NEURONS[case]
    with default_dtype(torch.float64):
        m = cls(surrogate="sigmoid", surrogate_param=K, **kw)
    x = (torch.rand(5, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1.5)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Heaviside forward: the library's BPTT against a hand-derived NumPy backward pass through time
# ------------------------------------------------------------------------------------------------

SURROGATE_D = {
    "exp": lambda u: np.exp(-np.abs(u)),  # Bondarev eq. 13
    "triangle": lambda u: np.maximum(0.0, 1.0 - np.abs(u)),
}


def numpy_bptt(W1, W2, x, targets, form, th, v_reset, reset, detach, dsur, temporal=True):
    """CE loss of x -> W1 -> spiking layer -> W2 -> Integrator (final readout) and its exact BPTT gradient.

    Charge ``H = a V + c net + d`` with (a, c) = (beta, 1) for the beta form (plus the leak towards v_reset),
    (1 - 1/tau, 1/tau) for the tau form, (1, 1) for IF; reset ``V = H (1 - S) + v_reset S`` or ``H - th S``;
    ``dS/dH := f'(H - th)``; with ``detach`` the reset's S carries no gradient; without ``temporal`` no
    gradient flows from any state at k-1 into step k (``temporal_grad=False``: space only, Bondarev eq. 8).
    """
    a, c = {"beta": (0.8, 1.0), "tau": (0.5, 0.5), "if": (1.0, 1.0)}[form]
    T, B, _ = x.shape
    V = np.full((B, W1.shape[0]), v_reset)
    Hs, Ss = [], []
    for k in range(T):
        net = x[k] @ W1.T
        if form == "beta":
            H = v_reset + a * (V - v_reset) + net
        elif form == "tau":
            H = V + (net - (V - v_reset)) * c
        else:
            H = V + net
        S = (H >= th).astype(np.float64)
        V = H * (1 - S) + v_reset * S if reset == "zero" else H - th * S
        Hs.append(H)
        Ss.append(S)
    logits = sum(S @ W2.T for S in Ss)
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(B), targets]))
    g = p.copy()
    g[np.arange(B), targets] -= 1.0
    g /= B
    # dL/dnet2[k] = dL/dlogits for every k (the integrator sums them); without temporal gradient the
    # integrator's previous potential is detached as well, so only the last step's input gets it
    g_out = [g if temporal or k == T - 1 else np.zeros_like(g) for k in range(T)]
    dW2 = sum(gk.T @ S for gk, S in zip(g_out, Ss, strict=True))
    dW1 = np.zeros_like(W1)
    gV = np.zeros_like(V)
    for k in reversed(range(T)):
        H, S = Hs[k], Ss[k]
        dV_dS = 0.0 if detach else ((v_reset - H) if reset == "zero" else -th)
        dV_dH = (1 - S) if reset == "zero" else 1.0
        gS = g_out[k] @ W2 + gV * dV_dS
        gH = gS * dsur(H - th) + gV * dV_dH
        dW1 += (gH * c).T @ x[k]
        gV = gH * a if temporal else np.zeros_like(gH)
    return loss, dW1, dW2


def run_path(path: str):
    return REFERENCE_PATH() if path.startswith("reference") else contextlib.nullcontext()


def bptt_loss_backward(net, x, targets, path: str) -> torch.Tensor:
    """The bptt rule's loss and backward; on a ``no_temporal`` path the same objective from a run without
    temporal gradient (``net.run(..., temporal_grad=False)``, the spatial rule's mode)."""
    with run_path(path):
        if "no_temporal" not in path:
            return dnmsnn.rules.create("bptt").loss_backward(net, x, targets)[0]
        loss = dnmsnn.rules.base.task_loss(net.run(x, "logits", temporal_grad=False).output, targets)
    loss.backward()
    return loss.detach()


@pytest.mark.parametrize("path", ["default", "reference_path", "no_temporal_grad", "reference_no_temporal"])
@pytest.mark.parametrize("detach", [False, True], ids=["through_reset", "detach_reset"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("form", ["beta", "tau", "if"])
@pytest.mark.parametrize("surrogate", list(SURROGATE_D))
def test_bptt_matches_hand_derived_numpy_bptt(form, reset, detach, surrogate, path):
    v_reset = -0.25 if reset == "zero" else 0.0
    net = make_net(form, reset=reset, v_reset=v_reset, surrogate=surrogate, surrogate_param=None,
                   detach_reset=detach, hidden=(6,), seed=2)
    x, targets = batch(T=6, B=5, seed=4)
    net.zero_grad()
    loss = bptt_loss_backward(net, x, targets, path)
    lin1, lin2 = [m for m in net if isinstance(m, dnmsnn.Linear)]
    W1, W2 = lin1.weight.detach().numpy(), lin2.weight.detach().numpy()
    loss_np, dW1, dW2 = numpy_bptt(W1, W2, x.numpy(), targets.numpy(), form, 0.5, v_reset, reset, detach,
                                   SURROGATE_D[surrogate], temporal="no_temporal" not in path)
    assert float(loss) == pytest.approx(loss_np, rel=1e-12)
    assert np.abs(dW1).max() > 1e-3
    np.testing.assert_allclose(lin1.weight.grad.numpy(), dW1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lin2.weight.grad.numpy(), dW2, rtol=1e-10, atol=1e-12)


EQUIV = {
    "lif_beta": (dnmsnn.LIF, dict(beta=0.8187)),
    "lif_beta_vreset_strict": (dnmsnn.LIF, dict(beta=0.7, v_reset=-0.3, strict=True)),
    "lif_beta_detach_subtract": (dnmsnn.LIF, dict(beta=0.9, detach_reset=True, reset="subtract")),
    "lif_tau_vreset": (dnmsnn.LIF, dict(tau=2.0, v_reset=-0.5, surrogate="atan")),
    "lif_tau_subtract_detach": (dnmsnn.LIF, dict(tau=3.0, reset="subtract", detach_reset=True, surrogate="rect")),
    "if_per_neuron": (dnmsnn.IF, dict(threshold=torch.tensor([0.5, 1.0, 1.5, 2.0]), surrogate="triangle")),
    "if_strict_detach": (dnmsnn.IF, dict(strict=True, detach_reset=True, surrogate="fast_sigmoid")),
}


@pytest.mark.parametrize("temporal", [True, False], ids=["bptt", "no_temporal_grad"])
@pytest.mark.parametrize("case", list(EQUIV))
def test_default_path_equals_step_by_step_path(case, temporal):
    """Whatever the multi-step neurons run by default (a fused node) gives the values and gradients of the
    step-by-step autograd path, to rounding (and the plan shows the two paths are different code)."""
    cls, kw = EQUIV[case]
    with default_dtype(torch.float64):
        m = cls(record=True, **kw)
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(7, 3, 4, generator=g, dtype=torch.float64) + 0.6
    upstream = torch.randn(7, 3, 4, generator=g, dtype=torch.float64)
    results = []
    kernels = []
    for path in ["default", "reference_path"]:
        x = x0.clone().requires_grad_(True)
        with run_path(path):
            kernels.append(dnmsnn.plan.neuron_choice(x, m.parameters_tuple(x.dtype), m).kernel)
            y = m(x) if temporal else m(x, NO_TEMPORAL)
        y.backward(upstream)
        results.append((y.detach(), m.v_trace.clone(), x.grad))
    (y_a, h_a, g_a), (y_b, h_b, g_b) = results
    assert kernels[0].startswith("fused node") and kernels[1] == "step-by-step autograd loop"
    assert torch.equal(y_a, y_b)
    assert 0 < y_a.mean() < 1
    torch.testing.assert_close(h_a, h_b, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_a, g_b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# training end to end
# ------------------------------------------------------------------------------------------------


def test_bptt_training_decreases_loss_on_separable_problem():
    """Two classes of Poisson-coded 4-pixel images (bright left half vs bright right half)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    B = 32
    targets = torch.arange(B) % 2
    base = torch.where(targets[:, None] == 0, torch.tensor([0.9, 0.8, 0.1, 0.2]), torch.tensor([0.1, 0.2, 0.9, 0.8]))
    images = (base + 0.1 * torch.rand(B, 4, generator=g) - 0.05).clamp(0, 1)
    encoder = dnmsnn.PoissonEncoder(8, seed=0)
    net = dnmsnn.models.create("mlp", input_shape=(4,), hidden=(16,), num_classes=2, beta=0.9, threshold=0.5,
                               bias=True)
    rule = dnmsnn.rules.create("bptt")
    with encoder.eval_stream(123):
        test_inputs = encoder(images)
    initial = float(task_loss(rule.predict(net, test_inputs), targets))
    losses, LR = [], 0.02
    for _ in range(30):
        net.zero_grad()
        loss, _ = rule.loss_backward(net, encoder(images), targets)
        with torch.no_grad():  # plain SGD (the trainer's optimizers are not under test here)
            for p in net.parameters():
                p -= LR * p.grad
        losses.append(float(loss))
    final_logits = rule.predict(net, test_inputs)
    final = float(task_loss(final_logits, targets))
    assert final < 0.5 * initial
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert (final_logits.argmax(1) == targets).float().mean() >= 0.9
