"""The training fast paths change speed and memory, never results.

* C++ kernel and PyTorch loop of the fused node: bitwise forward, gradients to float rounding, in float32
  too (test_fused.py covers every option in float64);
* the no-gradient path (inference) builds no node and gives the same spikes;
* the closed-form Integrator readout of Network.classify equals the literal trace + readout;
* a spiking layer and the Linear it feeds run as one node (spikes kept as bytes) with the same values;
* backend selection and the silent fallback without the C++ kernel.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import default_dtype

import dnmsnn
from dnmsnn.errors import InputError
from dnmsnn.functional import (
    cpp,
    fast_path_info,
    fused_backend,
    integrator_readout,
    integrator_readout_weights,
    reference_path,
    spike_matmul,
)
from dnmsnn.functional.surrogate import FastSigmoid
from dnmsnn.network import read_out

ROOT = Path(__file__).resolve().parents[1]
PEER_BENCH = ROOT.parent / "shared" / "tools" / "peer_bench" / "peer_bench.py"
needs_cpp = pytest.mark.needs_cpp
BACKENDS = ["python", pytest.param("cpp", marks=needs_cpp)]


def canonical_lif(**kw) -> dnmsnn.LIF:
    args = dict(beta=0.8187, threshold=1.0, v_reset=0.0, reset="zero", surrogate="fast_sigmoid", surrogate_param=1.0,
                detach_reset=True, strict=True)
    args.update(kw)
    return dnmsnn.LIF(**args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form, reset, detach, thr", list(itertools.product(
    ["beta", "beta_vreset", "tau", "if"], ["zero", "subtract"], [False, True], ["scalar", "per_neuron"])))
def test_float32_forward_bitwise_gradients_close(backend, form, reset, detach, thr):
    torch.manual_seed(7)
    threshold = 1.0 if thr == "scalar" else torch.rand(40) * 0.5 + 0.75
    kw = dict(threshold=threshold, reset=reset, detach_reset=detach, surrogate="fast_sigmoid", record=True)
    if form == "beta":
        neuron = dnmsnn.LIF(beta=0.8187, **kw)
    elif form == "beta_vreset":
        neuron = dnmsnn.LIF(beta=0.9, v_reset=-0.3, **kw)
    elif form == "tau":
        neuron = dnmsnn.LIF(tau=5.5, v_reset=-0.1, **kw)
    else:
        neuron = dnmsnn.IF(v_reset=-0.2, **kw)
    x = (torch.randn(25, 6, 40) * 0.8).requires_grad_()
    w = torch.randn(25, 6, 40)
    out = []
    for ctx in (lambda: fused_backend(backend), reference_path):
        with ctx():
            y = neuron(x)
        (g,) = torch.autograd.grad((y * w).sum(), x)
        out.append((y, neuron.v_trace, g))
    (y1, h1, g1), (y2, h2, g2) = out
    assert torch.equal(y1, y2) and torch.equal(h1, h2)
    torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("record", [False, True])
def test_no_grad_path_same_spikes_and_no_node(backend, record):
    torch.manual_seed(1)
    neuron = canonical_lif(record=record)
    x = torch.randn(12, 4, 30) * 1.5
    with fused_backend(backend):
        y_grad = neuron(x.clone().requires_grad_())
        trace_grad = neuron.v_trace
        with torch.inference_mode():
            y_inf = neuron(x)
            trace_inf = neuron.v_trace
        with torch.no_grad():
            y_ng = neuron(x.requires_grad_())
    assert y_inf.grad_fn is None and y_ng.grad_fn is None and not y_ng.requires_grad
    assert torch.equal(y_inf, y_grad.detach()) and torch.equal(y_ng, y_grad.detach())
    if record:
        assert torch.equal(trace_inf, trace_grad)
    else:
        assert trace_inf is None


@needs_cpp
def test_cpp_and_python_backends_agree_on_a_network():
    torch.manual_seed(3)
    net = dnmsnn.Network(dnmsnn.Linear(50, 40), canonical_lif(), dnmsnn.Linear(40, 30), canonical_lif(),
                         dnmsnn.Linear(30, 5), dnmsnn.Integrator(beta=0.8187), readout="sum", input_shape=(50,))
    x = (torch.rand(15, 8, 50) < 0.5).float()
    y = torch.randint(0, 5, (8,))
    res = []
    for backend in ("cpp", "python"):
        net.zero_grad()
        with fused_backend(backend):
            logits = net.classify(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        res.append((logits.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.equal(res[0][0], res[1][0])
    for a, b in zip(res[0][1], res[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_cpp_backend_refuses_what_it_cannot_run():
    class MySurrogate(FastSigmoid):
        def derivative(self, x):
            return torch.ones_like(x)

    neuron = dnmsnn.LIF(beta=0.9, surrogate=MySurrogate())
    x = torch.randn(4, 2, 3, requires_grad=True)
    with fused_backend("cpp"), pytest.raises(InputError, match="surrogate"):
        neuron(x)
    with fused_backend("cpp"), pytest.raises(InputError, match="float32/float64"):
        neuron(x.detach().half())
    # "auto" falls back to the PyTorch loop, whose backward calls the custom surrogate
    (g_auto,) = torch.autograd.grad(neuron(x).sum(), x)
    with reference_path():
        (g_ref,) = torch.autograd.grad(neuron(x).sum(), x)
    torch.testing.assert_close(g_auto, g_ref)
    with pytest.raises(InputError, match="fused backend"):
        fused_backend("fortran")


def test_fast_path_info_names_the_backend():
    info = fast_path_info()
    assert info["backend"] == "auto" and info["fused_backend"] in ("cpp", "python") and info["cpp_kernel"]
    assert (info["fused_backend"] == "cpp") == (cpp.load() is not None)
    with fused_backend("python"):
        assert fast_path_info()["fused_backend"] == "python"
    with reference_path():
        assert fast_path_info() | {"cpp_kernel": "-"} == {"backend": "reference", "fused_backend": "none",
                                                          "cpp_kernel": "-", "spike_kernels": "spike kernels: off "
                                                          "(backend 'reference')"}


def test_without_cpp_training_falls_back_silently(tmp_path):
    code = ("import torch, dnmsnn; from dnmsnn.functional import fast_path_info; "
            "n = dnmsnn.LIF(beta=0.9); x = torch.randn(5, 2, 3, requires_grad=True); n(x).sum().backward(); "
            "print(fast_path_info())")
    env = dict(os.environ, DNMSNN_NO_CPP="1", DNMSNN_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'fused_backend': 'python'" in out.stdout and "DNMSNN_NO_CPP" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing was built


# ------------------------------------------------------------------ closed-form Integrator readout
@pytest.mark.parametrize("beta", [None, 0.8187, 1.0])
@pytest.mark.parametrize("readout", ["final", "sum", "mean"])
def test_integrator_readout_closed_form(beta, readout):
    torch.manual_seed(0)
    x = torch.randn(17, 3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64)
    closed = integrator_readout(x, beta, readout)
    literal = read_out(dnmsnn.functional.integrator_sequence(x, beta), readout)
    torch.testing.assert_close(closed, literal, rtol=1e-12, atol=1e-12)
    g1, = torch.autograd.grad((closed * w).sum(), x)
    g2, = torch.autograd.grad((literal * w).sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)
    assert integrator_readout_weights(17, beta, readout, torch.float64).shape == (17,)


def _mlp(readout: str, beta: float | None, record: bool = False) -> dnmsnn.Network:
    torch.manual_seed(2)
    return dnmsnn.Network(dnmsnn.Linear(20, 16), canonical_lif(), dnmsnn.Linear(16, 4),
                          dnmsnn.Integrator(beta=beta, record=record), readout=readout, input_shape=(20,))


@pytest.mark.parametrize("readout", ["final", "sum", "mean"])
@pytest.mark.parametrize("beta", [None, 0.8187])
def test_classify_closed_form_equals_reference_path(readout, beta):
    with default_dtype(torch.float64):
        net = _mlp(readout, beta)
    x = (torch.rand(11, 5, 20, dtype=torch.float64) < 0.5).double()
    grads = []
    for ref in (False, True):
        net.zero_grad()
        with reference_path() if ref else torch.enable_grad():
            logits = net.classify(x)
        logits.pow(2).sum().backward()
        grads.append((logits.detach(), [p.grad.clone() for p in net.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_closed_form_is_skipped_when_the_trace_is_needed():
    x = (torch.rand(6, 2, 20) < 0.5).float()
    net = _mlp("sum", 0.9, record=True)
    net.classify(x)
    assert net[-1].v_trace is not None and net[-1].v_trace.shape == (6, 2, 4)
    net = _mlp("sum", 0.9)
    seen = []
    net[-1].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    net.classify(x)
    assert seen == [(6, 2, 4)]  # the hook ran: the Integrator was called
    net = _mlp("final", None)
    # spatial gradients differ from the closed form's: literal path
    logits = net.run(x, "logits", temporal_grad=False).output
    torch.testing.assert_close(logits, net(x)[-1])


# ------------------------------------------------------------------ spiking layer + Linear as one node
PAIR_CASES = list(itertools.product(["beta", "tau"], ["zero", "subtract"], [False, True], [True, False],
                                    [True, False], ["scalar", "learnable"]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form, reset, detach, temporal, bias, thr", PAIR_CASES)
def test_neuron_linear_node_equals_the_two_layers(backend, form, reset, detach, temporal, bias, thr):
    torch.manual_seed(11)
    kw = dict(reset=reset, detach_reset=detach, surrogate="fast_sigmoid", v_reset=-0.1)
    if thr == "learnable":
        kw.update(threshold=torch.rand(12) * 0.5 + 0.75, learn_threshold=True)
    neuron = dnmsnn.LIF(beta=0.85, **kw) if form == "beta" else dnmsnn.LIF(tau=3.0, **kw)
    lin = dnmsnn.Linear(12, 5, bias=bias)
    x = (torch.randn(14, 3, 12) * 0.9).requires_grad_()
    w = torch.randn(14, 3, 5)
    params = [x, *lin.parameters(), *([neuron.threshold] if thr == "learnable" else [])]
    res = []
    for fused in (True, False):
        run = dnmsnn.RunOptions(temporal_grad=temporal)
        with fused_backend(backend):
            assert dnmsnn.plan.pair_choice(neuron, lin, x, run).block == "neuron+linear"  # the plan fuses the pair
            y = neuron.forward_fused(x, lin, run) if fused else lin(neuron(x, run))
        res.append((y, torch.autograd.grad((y * w).sum(), params)))
    assert torch.equal(res[0][0], res[1][0])
    for a, b in zip(res[0][1], res[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_neuron_linear_node_in_chunks(monkeypatch):
    import dnmsnn.functional.fused as fused

    monkeypatch.setattr(fused, "_CHUNK_VALUES", 1)  # 256-row chunks
    torch.manual_seed(5)
    neuron, lin = canonical_lif(), dnmsnn.Linear(10, 6)
    x = (torch.randn(70, 10, 10) * 1.5).requires_grad_()  # 700 rows: chunks 256, 256, 188
    g = torch.randn(70, 10, 6)
    with spike_matmul(False):  # the dense, chunked products (the spike kernels have their own tests)
        y = neuron.forward_fused(x, lin)
        got = torch.autograd.grad((y * g).sum(), (x, lin.weight, lin.bias))
        with reference_path():
            y_ref = lin(neuron(x))
        ref = torch.autograd.grad((y_ref * g).sum(), (x, lin.weight, lin.bias))
    assert torch.equal(y, y_ref)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _layer1(net: dnmsnn.Network, x: torch.Tensor, **kw) -> list:
    """The plan's choices for the network's first neuron (layer 1), from dnmsnn.explain."""
    return dnmsnn.explain(net, x, **kw).for_layer("1")


def test_network_fuses_neuron_and_linear_only_when_nothing_is_hidden():
    x = (torch.rand(6, 2, 20) < 0.5).float()
    net = _mlp("sum", 0.9)
    assert [c.block for c in _layer1(net, x)] == ["neuron+linear"]
    assert "no gradients" in _layer1(net, x, grad=False)[0].reason
    with reference_path():
        assert _layer1(net, x)[0].reason == "backend 'reference'"
    net[1].record = True
    assert "records its potential trace" in _layer1(net, x)[0].reason
    net.classify(x)
    assert net[1].v_trace is not None
    net[1].record = False
    seen = []
    handle = net[1].register_forward_hook(lambda m, i, o: seen.append(o))
    assert "hooks" in _layer1(net, x)[0].reason and len(seen) == 1  # the hook ran: the layer was not skipped
    handle.remove()
    for p in net.parameters():
        p.requires_grad_(False)
    assert "nothing to differentiate" in _layer1(net, x)[0].reason


def test_network_with_pairs_equals_reference_path():
    torch.manual_seed(6)
    with default_dtype(torch.float64):
        net = dnmsnn.Network(dnmsnn.Linear(20, 16), canonical_lif(), dnmsnn.Linear(16, 12), canonical_lif(),
                             dnmsnn.Linear(12, 4), dnmsnn.Integrator(beta=0.8187), readout="sum", input_shape=(20,))
    x = (torch.rand(9, 5, 20, dtype=torch.float64) < 0.5).double()
    out = []
    for ref in (False, True):
        net.zero_grad()
        with reference_path() if ref else torch.enable_grad():
            trace = net(x)  # Sequential.forward fuses too
            logits = net.classify(x)
        (logits.pow(2).sum() + trace.sum()).backward()
        out.append((trace.detach(), logits.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.equal(out[0][0], out[1][0])
    torch.testing.assert_close(out[0][1], out[1][1], rtol=1e-12, atol=1e-12)
    for a, b in zip(out[0][2], out[1][2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ the peer_bench adapter
@pytest.mark.skipif(not PEER_BENCH.is_file(), reason="../shared/tools/peer_bench is not beside the repo")
def test_peer_bench_adapter_passes_the_equivalence_check():
    cmd = [sys.executable, str(PEER_BENCH), "--plugin", str(ROOT / "benchmarks" / "peer_bench_dnmsnn.py"),
           "--check", "--libs", "dnmsnn", "--check-T", "6", "--check-batch", "4", "--threads", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("| dnmsnn | PASS |") == 2


# ------------------------------------------------------------------ buffer reuse
def test_buffer_pool_reuses_only_idle_storage():
    from dnmsnn.functional.buffers import BufferPool

    pool = BufferPool(min_bytes=0)
    if not pool.enabled:
        pytest.skip("this torch has no storage use counts")
    a = pool.empty((10, 4), torch.float32)
    ptr = a.data_ptr()
    b = pool.empty((40,), torch.float32)  # same bytes, a still alive: new memory
    assert b.data_ptr() != ptr
    view = a[2:]
    del a
    assert pool.empty((10, 4), torch.float32).data_ptr() not in (ptr, b.data_ptr())  # the view keeps a's storage
    del view
    c = pool.empty((5, 8), torch.float32)  # now idle: reused, reshaped
    assert c.data_ptr() == ptr and c.shape == (5, 8)
    assert pool.empty((3,), torch.float64).data_ptr() not in (ptr, b.data_ptr())  # other size
    small = BufferPool(min_bytes=0, max_bytes=200)
    x = small.empty((40,), torch.float32)  # 160 bytes
    y = small.empty((40,), torch.float32)  # over the cap while x is alive: served unpooled
    assert small.stats()["buffers"] == 1 and x.data_ptr() != y.data_ptr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_pooled_buffers_never_overwrite_what_a_caller_holds(backend, monkeypatch):
    from dnmsnn.functional.buffers import POOL

    monkeypatch.setattr(POOL, "min_bytes", 0)  # pool even these small tensors
    torch.manual_seed(8)
    neuron = canonical_lif(record=True)
    x1, x2 = torch.randn(6, 3, 5) * 2, torch.randn(6, 3, 5) * 2
    with fused_backend(backend):
        s1 = neuron(x1.requires_grad_())
        h1 = neuron.v_trace
        keep = (s1.clone(), h1.clone())
        (g1,) = torch.autograd.grad(s1.sum(), x1)
        g1_copy = g1.clone()
        for _ in range(3):  # more calls, forward and backward, with and without gradients
            s2 = neuron(x2.requires_grad_())
            torch.autograd.grad(s2.sum(), x2)
            with torch.no_grad():
                neuron(x2)
    assert torch.equal(s1, keep[0]) and torch.equal(h1, keep[1]) and torch.equal(g1, g1_copy)
    with reference_path():
        s_ref = neuron(x1)
    assert torch.equal(s1, s_ref)


def test_network_training_with_pool_equals_without(monkeypatch):
    from dnmsnn.functional import buffer_pool
    from dnmsnn.functional.buffers import POOL

    monkeypatch.setattr(POOL, "min_bytes", 0)
    x = (torch.rand(8, 4, 20) < 0.5).float()
    y = torch.randint(0, 4, (4,))
    res = []
    for pooled in (True, False):
        net = _mlp("sum", 0.8187)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        with buffer_pool(pooled):
            for _ in range(4):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(net.classify(x), y).backward()
                opt.step()
        res.append([p.detach().clone() for p in net.parameters()])
    for a, b in zip(*res, strict=True):
        assert torch.equal(a, b)
