"""The fused multi-step neuron gives the reference path's values exactly and its gradients to float precision.

Every test runs for both backends of the fused node: the PyTorch loop ("python") and the C++ kernel
("cpp", skipped where it cannot be built, e.g. without a C++ compiler).
"""
from __future__ import annotations

import itertools

import pytest
import torch

import dnmsnn
from dnmsnn.functional import cpp, fused_backend, reference_path

CASES = list(itertools.product(["beta", "tau", "if"], ["zero", "subtract"], [False, True], [False, True],
                               [True, False], ["exp", "atan", "rect", "sigmoid", "triangle", "fast_sigmoid"]))


@pytest.fixture(params=["python", "cpp"])
def backend(request):
    if request.param == "cpp" and cpp.load() is None:
        pytest.skip(f"C++ kernel unavailable: {cpp.status()}")
    with fused_backend(request.param):
        yield request.param


def make(form, **kw):
    if form == "beta":
        return dnmsnn.LIF(beta=0.8, **kw)
    if form == "tau":
        return dnmsnn.LIF(tau=2.0, **kw)
    return dnmsnn.IF(**kw)


@pytest.mark.parametrize("form, reset, detach, strict, temporal, surrogate", CASES)
def test_fused_equals_reference(backend, form, reset, detach, strict, temporal, surrogate):
    torch.manual_seed(hash((form, reset, detach, strict, temporal, surrogate)) % 1000)
    neuron = make(form, threshold=torch.rand(7) * 0.5 + 0.5, v_reset=0.0 if form == "beta" else -0.2,
                  reset=reset, detach_reset=detach, strict=strict, surrogate=surrogate, record=True).double()
    x = torch.randn(9, 3, 7, dtype=torch.float64).requires_grad_()
    weight = torch.randn(9, 3, 7, dtype=torch.float64)

    def run(reference: bool):
        with reference_path() if reference else torch.enable_grad():
            y = neuron(x, dnmsnn.RunOptions(temporal_grad=temporal))
        (gx,) = torch.autograd.grad((y * weight).sum(), x)
        return y, gx, neuron.v_trace

    y_fused, g_fused, h_fused = run(False)
    y_ref, g_ref, h_ref = run(True)
    assert torch.equal(y_fused, y_ref) and torch.equal(h_fused, h_ref)
    torch.testing.assert_close(g_fused, g_ref, rtol=1e-12, atol=1e-12)


def test_learnable_threshold_gets_a_gradient(backend):
    neuron = dnmsnn.LIF(beta=0.9, threshold=torch.full((4,), 0.5), learn_threshold=True)
    neuron(torch.rand(5, 2, 4) * 2).sum().backward()
    assert neuron.threshold.grad is not None and neuron.threshold.grad.abs().sum() > 0


def test_whole_network_gradients_fused_vs_reference(backend):
    torch.manual_seed(0)
    net = dnmsnn.models.create("bondarev_mlp", input_shape=(20,), hidden=(16, 12), num_classes=4).double()
    x = (torch.rand(8, 5, 20) < 0.4).double()
    y = torch.randint(0, 4, (5,))
    grads = []
    for ref in (False, True):
        net.zero_grad()
        with reference_path() if ref else torch.enable_grad():
            dnmsnn.rules.create("bptt").loss_backward(net, x, y)
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset, detach", [("zero", False), ("zero", True), ("subtract", False), ("subtract", True)])
@pytest.mark.parametrize("thr_shape", [(), (7,), (1, 7)])
def test_fused_threshold_gradient_equals_reference(backend, reset, detach, thr_shape):
    torch.manual_seed(3)
    thr = torch.rand(thr_shape, dtype=torch.float64) * 0.5 + 0.5
    neuron = dnmsnn.LIF(beta=0.8, threshold=thr, v_reset=-0.1 if reset == "zero" else 0.0, reset=reset,
                        detach_reset=detach, learn_threshold=True).double()
    x = torch.randn(9, 3, 7, dtype=torch.float64).requires_grad_()
    weight = torch.randn(9, 3, 7, dtype=torch.float64)
    grads = []
    for reference in (False, True):
        with reference_path() if reference else torch.enable_grad():
            y = neuron(x)
        grads.append(torch.autograd.grad((y * weight).sum(), (x, neuron.threshold)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
