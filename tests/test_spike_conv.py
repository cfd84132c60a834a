"""Stride-1 convolution of a 0/1 input by window-pattern tables (spike_matmul.cpp ``spike_conv2d``).

Checked against a literal NumPy convolution that adds the weight column of every input one under the kernel
(float64), on geometries that exercise every code path: padding (rows and columns whose window leaves the
image), several input channels, output channels that are not a multiple of the 16-float vector and more than
one 64-channel pass, kernel widths 1 to 7, NCHW / channels-last / uint8 input; then the layer: dispatch, the
gradients (oneDNN's backward), the off switch, thread-count independence.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnmsnn
import dnmsnn.functional.conv as conv_module
from dnmsnn.functional import cpp, spike_matmul, stacked_conv2d
from dnmsnn.functional.spike_matmul import spike_conv_ones


@pytest.fixture(autouse=True)
def kernels_on():
    """The kernels under test run wherever they apply, whatever this machine's speed verdict (machine_choice)."""
    with spike_matmul(True):
        yield

pytestmark = pytest.mark.needs_cpp

CASES = [  # (n, c_in, h, w, c_out, kh, kw, padding)
    (3, 1, 12, 10, 20, 5, 5, 0), (2, 2, 7, 9, 17, 3, 3, 1), (2, 3, 6, 6, 33, 5, 5, 2), (1, 1, 4, 4, 3, 5, 5, 2),
    (2, 4, 5, 8, 70, 3, 1, 0), (2, 2, 9, 9, 5, 7, 7, 3), (2, 1, 6, 6, 16, 1, 1, 0), (2, 2, 8, 7, 129, 2, 4, 1),
]


def literal_conv(s: np.ndarray, w: np.ndarray, b: np.ndarray | None, pad: int) -> np.ndarray:
    """y[n, :, oy, ox] = b + sum of W[:, ci, ky, kx] over the taps whose input s[n, ci, oy+ky-pad, ox+kx-pad] is 1."""
    n, ci, h, wd = s.shape
    co, _, kh, kw = w.shape
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    out = np.zeros((n, co, ho, wo))
    for i in range(n):
        for oy in range(ho):
            for ox in range(wo):
                acc = np.zeros(co) if b is None else b.astype(np.float64).copy()
                for c in range(ci):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy + ky - pad, ox + kx - pad
                            if 0 <= iy < h and 0 <= ix < wd and s[i, c, iy, ix] == 1:
                                acc += w[:, c, ky, kx]
                out[i, :, oy, ox] = acc
    return out


def _spikes(shape, seed, density=0.4):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density).float()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "uint8"])
def test_kernel_matches_the_literal_convolution(case, layout):
    n, ci, h, wd, co, kh, kw, pad = case
    s = _spikes((n, ci, h, wd), seed=co)
    w, b = torch.randn(co, ci, kh, kw), torch.randn(co)
    want = literal_conv(s.numpy(), w.double().numpy(), b.double().numpy(), pad)
    x = {"nchw": s, "channels_last": s.contiguous(memory_format=torch.channels_last),
         "uint8": s.to(torch.uint8)}[layout]
    out = torch.empty(n, want.shape[2], want.shape[3], co)
    cpp.load().spike_conv2d(x, w, b, pad, pad, out)
    np.testing.assert_allclose(out.permute(0, 3, 1, 2).double().numpy(), want, rtol=1e-5, atol=1e-5)


def test_kernel_without_bias_and_with_empty_or_full_input():
    w = torch.randn(6, 2, 3, 3)
    for s in (torch.zeros(2, 2, 5, 5), torch.ones(2, 2, 5, 5)):
        out = torch.empty(2, 5, 5, 6)
        cpp.load().spike_conv2d(s, w, None, 1, 1, out)
        want = literal_conv(s.numpy(), w.double().numpy(), None, 1)
        np.testing.assert_allclose(out.permute(0, 3, 1, 2).double().numpy(), want, rtol=1e-5, atol=1e-5)


def test_kernel_refuses_what_it_cannot_do():
    mod = cpp.load()
    with pytest.raises(RuntimeError, match="geometry"):
        mod.spike_conv2d(torch.zeros(1, 1, 20, 20), torch.randn(2, 1, 3, 11), None, 0, 0, torch.empty(1, 18, 10, 2))
    with pytest.raises(RuntimeError, match="out must be"):
        mod.spike_conv2d(torch.zeros(1, 1, 5, 5), torch.randn(2, 1, 3, 3), None, 0, 0, torch.empty(1, 2, 3, 3))


def test_dispatch_needs_zero_one_float32_stride_one():
    s, w = _spikes((2, 1, 8, 8), seed=1), torch.randn(4, 1, 3, 3)
    one = ((1, 1), (0, 0), (1, 1), 1)
    assert spike_conv_ones(s, w, *one) == int(s.sum())
    assert spike_conv_ones(s * 0.5, w, *one) is None                       # not 0/1
    assert spike_conv_ones(s.double(), w.double(), *one) is None           # float64: oneDNN
    assert spike_conv_ones(s, w, (2, 2), (0, 0), (1, 1), 1) is None        # stride 2
    assert spike_conv_ones(s, w, (1, 1), (0, 0), (2, 2), 1) is None        # dilation 2
    assert spike_conv_ones(s, w, (1, 1), "same", (1, 1), 1) is None        # string padding
    big = torch.randn(64, 64, 7, 7)                                          # a 14.7 MB pattern table
    assert spike_conv_ones(_spikes((1, 64, 8, 8), seed=2), big, *one) is None
    nan = s.clone()
    nan[0, 0, 0, 0] = float("nan")
    assert spike_conv_ones(nan, w, *one) is None                           # NaN goes to oneDNN (and propagates)
    with spike_matmul(False):
        assert spike_conv_ones(s, w, *one) is None


@pytest.fixture
def spike_conv_calls(monkeypatch):
    """How many times the stacked Conv2d took the spike kernel."""
    calls = []
    real = conv_module.spike_conv2d_into
    monkeypatch.setattr(conv_module, "spike_conv2d_into", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.mark.parametrize("pad", [0, 2])
def test_stacked_conv_on_spikes_matches_aten_values_and_gradients(pad, spike_conv_calls):
    s = _spikes((9, 2, 10, 10), seed=3)
    w = torch.randn(21, 2, 5, 5, requires_grad=True)
    b = torch.randn(21, requires_grad=True)
    args = ((1, 1), (pad, pad), (1, 1), 1)
    y = stacked_conv2d(s, w, b, *args)
    ref = F.conv2d(s.double(), w.double(), b.double(), *args)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    assert y.permute(0, 2, 3, 1).is_contiguous() and spike_conv_calls == [1]  # channels-last, as the oneDNN path
    gy = torch.randn(ref.shape)
    got = torch.autograd.grad(y, (w, b), gy)
    want = torch.autograd.grad(F.conv2d(s, w, b, *args), (w, b), gy)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)
    sx = s.clone().requires_grad_(True)  # an input gradient, when asked for, is oneDNN's
    gx, = torch.autograd.grad(stacked_conv2d(sx, w, b, *args), (sx,), gy)
    torch.testing.assert_close(gx, torch.autograd.grad(F.conv2d(sx, w, b, *args), (sx,), gy)[0], rtol=1e-4, atol=1e-4)


def test_network_with_spike_input_trains_like_the_dense_path(spike_conv_calls):
    torch.manual_seed(0)
    net = dnmsnn.Network(dnmsnn.Conv2d(1, 8, 5), dnmsnn.LIF(beta=0.9), dnmsnn.AvgPool2d(2), dnmsnn.Flatten(),
                         dnmsnn.Linear(8 * 4 * 4, 10), dnmsnn.Integrator(beta=0.9), readout="sum")
    x = _spikes((6, 4, 1, 12, 12), seed=4)
    out = net.classify(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    assert spike_conv_calls == [1]
    net.zero_grad()
    with spike_matmul(False):
        out_dense = net.classify(x)
        out_dense.square().sum().backward()
    assert spike_conv_calls == [1]
    torch.testing.assert_close(out, out_dense, rtol=1e-4, atol=1e-4)
    for a, p in zip(grads, net.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-3, atol=1e-4)


def test_results_do_not_depend_on_the_thread_count():
    s, w, b = _spikes((40, 3, 14, 14), seed=5), torch.randn(37, 3, 5, 5), torch.randn(37)
    before, outs = torch.get_num_threads(), []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out = torch.empty(40, 10, 10, 37)
            outs.append(cpp.load().spike_conv2d(s, w, b, 0, 0, out))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(o, outs[0]) for o in outs[1:])
