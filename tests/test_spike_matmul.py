"""Multiplication-free products with 0/1 spike operands (functional/spike_matmul.py, spike_matmul.cpp).

Checked against a literal NumPy implementation of y[r] = b + sum_{j: s[r,j]=1} W[:, j] and
dW[:, j] = sum_{r: s[r,j]=1} g[r] (float64), on shapes that exercise every code path: gather rows
(< 20 % ones) and four-Russians rows (>= 20 %) in one batch, output widths that are not a multiple
of the 16-float vector and wider than one 256-float pass, K not a multiple of 4, odd row counts.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import dnmsnn
from dnmsnn.functional import cpp, spike_matmul, spike_matmul_enabled
from dnmsnn.functional.spike_matmul import count_ones

sm = importlib.import_module("dnmsnn.functional.spike_matmul")  # the module: the package exports a function so named


@pytest.fixture(autouse=True)
def kernels_on():
    """The kernels under test run wherever they apply, whatever this machine's speed verdict (machine_choice)."""
    with spike_matmul(True):
        yield

pytestmark = pytest.mark.needs_cpp

SHAPES = [  # (rows, in K, out M)
    (1, 3, 1), (7, 5, 17), (65, 37, 21), (130, 64, 300), (257, 301, 10), (96, 784, 33),
]


def literal_forward(s: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """y[r] = b + sum of the columns W[:, j] whose s[r, j] is 1 (Bondarev eq. 3 with binary b[k])."""
    out = np.zeros((s.shape[0], w.shape[0]))
    for r in range(s.shape[0]):
        acc = np.zeros(w.shape[0]) if b is None else b.astype(np.float64).copy()
        for j in range(s.shape[1]):
            if s[r, j] == 1:
                acc += w[:, j]
        out[r] = acc
    return out


def literal_weight_grad(g: np.ndarray, s: np.ndarray) -> np.ndarray:
    """dW[:, j] = sum of the gradient rows g[r] whose s[r, j] is 1."""
    out = np.zeros((g.shape[1], s.shape[1]))
    for j in range(s.shape[1]):
        for r in range(s.shape[0]):
            if s[r, j] == 1:
                out[:, j] += g[r]
    return out


def mixed_spikes(rows: int, k: int, seed: int) -> torch.Tensor:
    """0/1 rows whose densities run from 0 to 90 %: both the gather and the four-Russians rows."""
    gen = torch.Generator().manual_seed(seed)
    density = torch.linspace(0.0, 0.9, rows).unsqueeze(1)
    return (torch.rand(rows, k, generator=gen) < density).float()


@pytest.mark.parametrize("rows,k,m", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_forward_and_weight_grad_match_the_literal_sums(rows, k, m, dtype):
    torch.manual_seed(rows + k + m)
    s = mixed_spikes(rows, k, seed=rows)
    w, b, g = torch.randn(m, k), torch.randn(m), torch.randn(rows, m)
    mod = cpp.load()
    ones = mod.spike_count(s.to(dtype))
    assert ones == int(s.sum())
    y = mod.spike_linear(s.to(dtype), ones, w, b, torch.empty(rows, m))
    np.testing.assert_allclose(y.numpy(), literal_forward(s.numpy(), w.double().numpy(), b.double().numpy()),
                               rtol=1e-5, atol=1e-4)
    gw = mod.spike_weight_grad(g, s.to(dtype), ones)
    assert gw.shape == (m, k)
    np.testing.assert_allclose(gw.numpy(), literal_weight_grad(g.double().numpy(), s.numpy()), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("density", [0.05, 0.5])  # the weight gradient picks gather / four Russians per call
def test_weight_grad_both_algorithms(density):
    torch.manual_seed(1)
    s = (torch.rand(203, 45) < density).float()
    g = torch.randn(203, 70)
    gw = cpp.load().spike_weight_grad(g, s, int(s.sum()))
    np.testing.assert_allclose(gw.numpy(), literal_weight_grad(g.double().numpy(), s.numpy()), rtol=1e-5, atol=1e-4)


def test_count_rejects_anything_but_zero_and_one():
    mod = cpp.load()
    assert mod.spike_count(torch.tensor([0.0, 1.0, 1.0])) == 2
    assert mod.spike_count(torch.tensor([0.0, 1.0, 0.5])) == -1
    assert mod.spike_count(torch.tensor([0.0, float("nan")])) == -1
    assert mod.spike_count(torch.tensor([2], dtype=torch.uint8)) == -1
    x = torch.zeros(5000)
    x[4999] = -1.0  # past the first 4096-value block
    assert mod.spike_count(x) == -1


def test_linear_on_real_valued_input_is_exactly_f_linear():
    torch.manual_seed(0)
    lin = dnmsnn.Linear(12, 5)
    x = torch.randn(3, 4, 12)
    assert count_ones(x.reshape(-1, 12), lin.weight) is None
    assert torch.equal(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias))


def linear_backend(layer, x) -> str:
    """The backend the plan chose for a Linear layer's product on x (one training call, recorded by explain)."""
    (choice,) = [c for _, _, c in dnmsnn.explain(layer, x).rows if c.block == "linear"]
    return choice.backend


def test_linear_layer_gradients_match_dense_autograd():
    torch.manual_seed(2)
    lin = dnmsnn.Linear(50, 40)
    x = mixed_spikes(6 * 9, 50, seed=3).reshape(6, 9, 50).requires_grad_()
    g = torch.randn(6, 9, 40)
    y = lin(x)
    assert linear_backend(lin, x) == "cpu-kernels"  # the plan: the spike kernels computed it
    got = torch.autograd.grad((y * g).sum(), (x, lin.weight, lin.bias))
    with spike_matmul(False):
        y_ref = lin(x)
        ref = torch.autograd.grad((y_ref * g).sum(), (x, lin.weight, lin.bias))
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_turned_off_gives_f_linear_bitwise():
    lin = dnmsnn.Linear(30, 7)
    x = mixed_spikes(40, 30, seed=4).reshape(4, 10, 30)
    assert spike_matmul_enabled()
    with spike_matmul(False):
        assert not spike_matmul_enabled()
        assert torch.equal(lin(x), torch.nn.functional.linear(x, lin.weight, lin.bias))


def test_a_row_does_not_depend_on_the_rest_of_the_batch():
    """Per-row choice of algorithm: the same spikes give bitwise the same output alone, in a step, or among T steps."""
    torch.manual_seed(5)
    lin = dnmsnn.Linear(64, 300)
    x = mixed_spikes(8 * 6, 64, seed=5).reshape(8, 6, 64)
    full = lin(x)
    for t in range(8):
        step, _ = lin.step(x[t])
        assert torch.equal(step, full[t])
        for r in range(6):
            assert torch.equal(lin.step(x[t, r:r + 1])[0][0], full[t, r])


def test_results_do_not_depend_on_the_thread_count():
    torch.manual_seed(6)
    s = mixed_spikes(300, 200, seed=6)
    w, b, g = torch.randn(90, 200), torch.randn(90), torch.randn(300, 90)
    mod, ones = cpp.load(), int(s.sum())
    before = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append((mod.spike_linear(s, ones, w, b, torch.empty(300, 90)), mod.spike_weight_grad(g, s, ones)))
    finally:
        torch.set_num_threads(before)
    for y, gw in outs[1:]:
        assert torch.equal(y, outs[0][0]) and torch.equal(gw, outs[0][1])


def test_fused_pair_node_and_unfused_layers_agree_bitwise():
    """uint8 spikes of the LIF -> Linear node and float spikes of the separate layers go through the same sums."""
    torch.manual_seed(7)
    neuron, lin = dnmsnn.LIF(beta=0.9), dnmsnn.Linear(20, 33)
    x = (torch.randn(10, 8, 20) * 2).requires_grad_()
    y = neuron.forward_fused(x, lin)
    assert y is not None
    y_ref = lin(neuron(x))  # the two layers called one by one: no pair node, the same spike kernels
    assert torch.equal(y, y_ref)


def test_single_step_equals_multi_step_bitwise():
    torch.manual_seed(8)
    net = dnmsnn.Sequential(dnmsnn.Linear(40, 64), dnmsnn.LIF(beta=0.9), dnmsnn.Linear(64, 48), dnmsnn.LIF(beta=0.9),
                            dnmsnn.Linear(48, 10))
    x = dnmsnn.PoissonEncoder(T=6, seed=0)(torch.rand(5, 40))
    multi = net(x)
    state, steps = None, []
    for k in range(6):
        out, state = net.step(x[k], state)
        steps.append(out)
    assert torch.equal(torch.stack(steps), multi)


def test_training_step_matches_dense_products():
    """A few Adam steps of a small MLP with and without the spike kernels stay within float rounding."""
    def train(enabled: bool) -> list[torch.Tensor]:
        torch.manual_seed(9)
        net = dnmsnn.Network(dnmsnn.Linear(30, 40), dnmsnn.LIF(beta=0.9), dnmsnn.Linear(40, 10), dnmsnn.Integrator(),
                             readout="sum")
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = dnmsnn.PoissonEncoder(T=5, seed=1)(torch.rand(16, 30))
        y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(2))
        with spike_matmul(enabled):
            for _ in range(3):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(net.classify(x), y).backward()
                opt.step()
        return [p.detach().clone() for p in net.parameters()]

    for a, b in zip(train(True), train(False), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_double_backward_is_refused_clearly_and_works_when_turned_off():
    lin = dnmsnn.Linear(8, 4)
    x = mixed_spikes(10, 8, seed=10).reshape(2, 5, 8).requires_grad_()
    (g,) = torch.autograd.grad(lin(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        g.sum().backward()
    with spike_matmul(False):
        (g,) = torch.autograd.grad(lin(x).pow(2).sum(), x, create_graph=True)
        g.sum().backward()
    assert lin.weight.grad is not None


# ----------------------------------------------------------------- the machine's verdict ("auto")
def test_auto_follows_the_machines_verdict(monkeypatch):
    """In "auto" mode a Linear on spikes takes the kernels exactly where the stored verdict says they are faster."""
    if cpp.load() is None:
        pytest.skip("no C++ kernels")
    x = (torch.rand(4, 16, 32) < 0.3).float()
    layer = dnmsnn.Linear(32, 24)
    for spike in (True, False):
        monkeypatch.setitem(sm._verdict, "choice", {"linear": {"spike": spike, "spike_ms": 1.0, "dense_ms": 2.0},
                                                    "conv": {"spike": False, "spike_ms": 2.0, "dense_ms": 1.0}})
        with spike_matmul(None):
            assert (linear_backend(layer, x) == "cpu-kernels") == spike
            assert spike_matmul_enabled()
            assert ("spike kernels" if spike else "dense") in sm.explain_choice().split(";")[0]
    with spike_matmul(False):
        assert "off" in sm.explain_choice()


def test_the_first_stored_verdict_wins_and_is_read_back(tmp_path):
    """Two processes measuring at once store one verdict: the second finds the first's file and uses it."""
    path = tmp_path / "build" / sm.VERDICT_FILE
    first = {k: {"spike": True, "spike_ms": 1.0, "dense_ms": 2.0} for k in sm.KINDS}
    second = {k: {"spike": False, "spike_ms": 3.0, "dense_ms": 2.0} for k in sm.KINDS}
    assert sm._store_verdict(path, first) == first
    assert sm._store_verdict(path, second) == first
    assert sm._read_verdict(path) == first and not list(path.parent.glob(".*tmp"))
    path.write_text("{not json")
    assert sm._read_verdict(path) == {}   # a corrupt file is measured again, not trusted
    path.write_text('{"linear": {"spike": "yes"}}')
    assert sm._read_verdict(path) == {}


def test_the_measured_verdict_is_well_formed():
    if cpp.load() is None:
        pytest.skip("no C++ kernels")
    choice = sm.machine_choice()
    assert set(choice) == set(sm.KINDS)
    for v in choice.values():
        assert v["spike_ms"] > 0 and v["dense_ms"] > 0 and v["spike"] == (v["spike_ms"] < v["dense_ms"])
    assert sm.machine_choice() is choice  # measured or read once per process
