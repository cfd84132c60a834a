"""The chunked channels-last convolution and pooling of time-stacked batches (dnmsnn.functional.conv)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import dnmsnn
import dnmsnn.functional.conv as conv
from dnmsnn.functional import reference_path, stacked_avg_pool2d, stacked_conv, stacked_conv2d


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few images, so every test crosses chunk boundaries (and a ragged last chunk)."""
    monkeypatch.setattr(conv, "CHUNK_OUTPUT_BYTES", 3000)


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.permute(0, 2, 3, 1).is_contiguous()


CONV_CASES = [  # (c_in, c_out, k, stride, padding, dilation, groups, h)
    (1, 4, 5, 1, 0, 1, 1, 12),
    (3, 6, 3, 1, 1, 1, 1, 9),
    (4, 8, 3, 2, 1, 1, 2, 11),
    (2, 3, 3, 1, 2, 2, 1, 10),
]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 1e-4)])
@pytest.mark.parametrize("case", CONV_CASES)
def test_stacked_conv2d_matches_aten_values_and_gradients(case, dtype, tol, small_chunks):
    c_in, c_out, k, stride, padding, dilation, groups, h = case
    g = torch.Generator().manual_seed(0)
    x = torch.randn(13, c_in, h, h, dtype=dtype, generator=g, requires_grad=True)
    w = torch.randn(c_out, c_in // groups, k, k, dtype=dtype, generator=g, requires_grad=True)
    b = torch.randn(c_out, dtype=dtype, generator=g, requires_grad=True)
    args = ((stride, stride), (padding, padding), (dilation, dilation), groups)
    y = stacked_conv2d(x, w, b, *args)
    ref = F.conv2d(x, w, b, *args)
    assert _is_channels_last(y) and y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=tol, atol=tol)
    gy = torch.randn(ref.shape, dtype=dtype, generator=g)
    got = torch.autograd.grad(y, (x, w, b), gy)
    want = torch.autograd.grad(ref, (x, w, b), gy)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=tol, atol=tol)
    assert got[1].is_contiguous()  # the weight gradient has the parameter's layout


def test_stacked_conv2d_gradcheck(small_chunks):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: stacked_conv2d(x, w, b, (1, 1), (1, 1), (1, 1), 1), (x, w, b))


def test_stacked_conv2d_only_computes_wanted_gradients(small_chunks):
    x = torch.rand(7, 1, 8, 8)  # data: no gradient wanted
    w = torch.randn(4, 1, 3, 3, requires_grad=True)
    y = stacked_conv2d(x, w, None, (1, 1), (0, 0), (1, 1), 1)
    (gw,) = torch.autograd.grad(y.sum(), (w,))
    torch.testing.assert_close(gw, torch.autograd.grad(F.conv2d(x, w).sum(), (w,))[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,h", [(2, 8), (2, 9), (3, 10), (4, 8)])
def test_stacked_avg_pool2d_is_aten_bitwise(k, h):
    g = torch.Generator().manual_seed(k * h)
    x = torch.randn(6, 5, h, h + 1, generator=g, requires_grad=True)
    y = stacked_avg_pool2d(x, k)
    ref = F.avg_pool2d(x, k)
    assert _is_channels_last(y)
    assert torch.equal(y, ref)
    gy = torch.randn(ref.shape, generator=g)
    (got,) = torch.autograd.grad(y, x, gy)
    (want,) = torch.autograd.grad(ref, x, gy)
    assert torch.equal(got, want)  # incl. zero gradient on the rows / columns floor mode drops


def _lenet(threshold: float = 1.0) -> dnmsnn.Network:
    def lif():
        return dnmsnn.LIF(beta=0.8, threshold=threshold, surrogate="fast_sigmoid", strict=True)

    return dnmsnn.Network(
        dnmsnn.Conv2d(1, 4, 5), lif(), dnmsnn.AvgPool2d(2), dnmsnn.Conv2d(4, 6, 3), lif(), dnmsnn.AvgPool2d(2),
        dnmsnn.Flatten(), dnmsnn.Linear(24, 10), lif(), dnmsnn.Linear(10, 3), dnmsnn.Integrator(beta=0.8),
        readout="sum", input_shape=(1, 16, 16), num_classes=3)


def _run(net: dnmsnn.Network, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    net.zero_grad(set_to_none=True)
    out = net.classify(x)
    F.cross_entropy(out, y).backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_network_on_stacked_path_matches_plain_aten_path(dtype, tol, small_chunks):
    torch.manual_seed(0)
    net = _lenet().to(dtype)
    x = (torch.rand(6, 5, 1, 16, 16) < 0.5).to(dtype)
    y = torch.randint(0, 3, (5,))
    out, grads = _run(net, x, y)
    with stacked_conv(False):
        out_ref, grads_ref = _run(net, x, y)
    torch.testing.assert_close(out, out_ref, rtol=tol, atol=tol)
    for a, e in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, e, rtol=tol, atol=tol)


def test_layers_keep_channels_last_and_off_switches_restore_aten():
    x = torch.rand(3, 2, 1, 12, 12)
    c = dnmsnn.Conv2d(1, 4, 3)
    y = c(x)
    assert y.shape == (3, 2, 4, 10, 10) and y.permute(0, 1, 3, 4, 2).is_contiguous()
    s = dnmsnn.LIF(beta=0.9, threshold=0.3)(y)
    assert s.permute(0, 1, 3, 4, 2).is_contiguous()  # the neuron keeps the layout (no copy)
    p = dnmsnn.AvgPool2d(2)(s)
    assert p.permute(0, 1, 3, 4, 2).is_contiguous()
    for off in (stacked_conv(False), reference_path()):
        with off:
            assert c(x).is_contiguous()


def test_neuron_on_channels_last_steps_is_bitwise_the_contiguous_one():
    torch.manual_seed(3)
    x = (torch.randn(5, 2, 3, 4, 4) * 2).requires_grad_()
    x_cl = x.detach().permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3).requires_grad_()
    neuron = dnmsnn.LIF(beta=0.7, threshold=0.5)
    s, s_cl = neuron(x), neuron(x_cl)
    assert torch.equal(s, s_cl) and s_cl.permute(0, 1, 3, 4, 2).is_contiguous()
    g = torch.randn(s.shape)
    assert torch.equal(torch.autograd.grad(s, x, g)[0], torch.autograd.grad(s_cl, x_cl, g)[0])


def test_pool_settings_outside_the_stacked_case_use_aten():
    x = torch.rand(2, 3, 2, 9, 9)
    for pool in (dnmsnn.AvgPool2d(3, stride=2), dnmsnn.AvgPool2d(2, ceil_mode=True), dnmsnn.AvgPool2d(2, padding=1),
                 dnmsnn.AvgPool2d(2, divisor_override=3)):
        ref = torch.nn.AvgPool2d.forward(pool, x.flatten(0, 1)).unflatten(0, (2, 3))
        assert torch.equal(pool(x), ref)


def test_conv_wrong_channels_is_a_clear_error():
    with pytest.raises(dnmsnn.InputError, match="input channels"):
        dnmsnn.Conv2d(2, 4, 3)(torch.rand(2, 2, 3, 8, 8))


def _conv_neuron_pool(neuron: torch.nn.Module, h: int = 12) -> dnmsnn.Sequential:
    torch.manual_seed(5)
    return dnmsnn.Sequential(dnmsnn.Conv2d(2, 4, 3, padding=1), neuron, dnmsnn.AvgPool2d(2))


NEURONS = [
    lambda: dnmsnn.LIF(beta=0.8, threshold=0.4, surrogate="fast_sigmoid", strict=True),
    lambda: dnmsnn.LIF(tau=2.0, threshold=0.3, reset="subtract"),
    lambda: dnmsnn.IF(threshold=0.5, detach_reset=False),
    lambda: dnmsnn.LIF(beta=0.9, threshold=0.4, learn_threshold=True),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", NEURONS)
def test_neuron_pool_node_is_bitwise_the_two_layers(make, dtype):
    net = _conv_neuron_pool(make()).to(dtype)
    x = (torch.rand(6, 3, 2, 12, 12, generator=torch.Generator().manual_seed(2)) * 1.5).to(dtype)
    gy = torch.randn(6, 3, 4, 6, 6, generator=torch.Generator().manual_seed(3)).to(dtype)

    def run():
        net.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_()
        y = net(xr)
        y.backward(gy)
        return y.detach(), xr.grad, [p.grad.clone() for p in net.parameters()]

    calls = []
    orig = dnmsnn.functional.fused.NeuronPoolSequence.apply
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dnmsnn.functional.fused.NeuronPoolSequence, "apply",
                   lambda *a: calls.append(1) or orig(*a))
        fused = run()
    assert calls, "the neuron + pool node was not used"
    net[1].forward_fused = lambda x, nxt, run: None  # the two layers one after the other
    separate = run()
    assert torch.equal(fused[0], separate[0])
    for a, e in zip([fused[1], *fused[2]], [separate[1], *separate[2]], strict=True):
        assert torch.equal(a, e)
    with torch.inference_mode():
        del net[1].forward_fused
        assert torch.equal(net(x), separate[0])


def test_neuron_pool_falls_back_where_it_does_not_apply():
    x = torch.rand(4, 2, 2, 11, 11) * 2  # odd size: 11 -> conv (pad 1) 11 -> pool floor 5
    net = _conv_neuron_pool(dnmsnn.LIF(beta=0.8, threshold=0.4))
    y = net(x)
    with stacked_conv(False):
        ref = net(x)
    assert y.shape == ref.shape == (4, 2, 4, 5, 5)
    torch.testing.assert_close(y, ref)
    from dnmsnn.functional import fused_backend
    with fused_backend("python"):
        torch.testing.assert_close(net(torch.rand(4, 2, 2, 12, 12)).shape, torch.Size([4, 2, 4, 6, 6]))


def test_neuron_pool_rejects_nan():
    net = _conv_neuron_pool(dnmsnn.LIF(beta=0.8, threshold=0.4))
    x = torch.rand(3, 2, 2, 12, 12)
    x[1, 0, 0, 3, 3] = float("nan")
    with pytest.raises(dnmsnn.InputError, match="NaN"):
        net(x)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", [(0, 0, 0, 0, 0), (2, 1, 3, 11, 11), (1, 0, 1, 5, 6)])
@pytest.mark.parametrize("grad", [False, True])
def test_neuron_pool_kernel_finds_nonfinite_input_itself(bad, where, grad):
    """No NaN pass of its own: the kernel reports NaN / Inf anywhere (first or last step, band, channel)."""
    lif, pool = dnmsnn.LIF(beta=0.8, threshold=0.4), dnmsnn.AvgPool2d(2)
    x = torch.rand(3, 2, 12, 12, 4).permute(0, 1, 4, 2, 3)  # [T, B, C, H, W] with channels-last steps
    assert lif.forward_fused(x, pool) is not None  # the fused node applies to clean input
    x = x.clone(memory_format=torch.preserve_format)
    x[where] = bad
    x.requires_grad_(grad)
    with pytest.raises(dnmsnn.InputError, match="LIF received NaN or Inf"):
        lif.forward_fused(x, pool)
    with pytest.raises(dnmsnn.InputError, match="neuron_pool_sequence received NaN or Inf"):
        dnmsnn.functional.neuron_pool_sequence(x, lif.parameters_tuple(x.dtype), 2)


def test_higher_order_gradients_are_refused_clearly_and_work_on_aten():
    x = torch.rand(3, 2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    net = dnmsnn.Sequential(dnmsnn.Conv2d(1, 2, 3), dnmsnn.AvgPool2d(2)).double()
    (g,) = torch.autograd.grad(net(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        g.sum().backward()
    with stacked_conv(False):
        (g,) = torch.autograd.grad(net(x).pow(2).sum(), x, create_graph=True)
        g.sum().backward()
    assert net[0].weight.grad is not None
