"""The asf rule (Wu et al.) against the literal NumPy reference of the slides, and its options."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_asf import asf_gradients

import dnmsnn
from dnmsnn import IF, LIF, Flatten, InputError, Integrator, Linear, Network
from dnmsnn.rules.asf import asf_slope
from dnmsnn.totals import TotalsRecord


def net2(neuron: str, n_in=6, n_hidden=7, n_out=3, v_th=0.625, seed=0):
    torch.manual_seed(seed)
    cell = IF(threshold=v_th, strict=True) if neuron == "if" else LIF(tau=2.0, threshold=v_th, strict=True)
    net = Network(Linear(n_in, n_hidden, bias=False), cell, Linear(n_hidden, n_out, bias=False), Integrator(),
                  input_shape=(n_in,), num_classes=n_out).double()
    with torch.no_grad():
        net[0].weight.uniform_(-0.2, 0.8)
        net[2].weight.uniform_(-1, 1)
    return net


@pytest.mark.parametrize("neuron", ["if", "lif"])
@pytest.mark.parametrize("shared_fi", ["all", "positive"])
def test_gradients_match_literal_numpy(neuron, shared_fi):
    net = net2(neuron)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # some hidden neurons inhibited on balance, so that the two readings differ
        net[0].weight.uniform_(-0.4, 0.8, generator=g)
    x = (torch.rand(8, 5, 6, generator=g) < 0.6).double()
    y = torch.randint(0, 3, (5,), generator=g)
    rule = dnmsnn.rules.create("asf", slope="sample", shared_fi=shared_fi)
    rule.loss_backward(net, x, y)
    W = [net[0].weight.detach().numpy(), net[2].weight.detach().numpy()]
    grads, FI, FO = asf_gradients(W, x.numpy(), y.numpy(), v_th=0.625, tau=None if neuron == "if" else 2.0,
                                  positive_fi=shared_fi == "positive")
    assert (FI[0] < 0).any()  # some neurons are inhibited, so the two readings differ
    np.testing.assert_allclose(rule.last_totals.fi(net[1]).numpy(), FI[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rule.last_totals.fo(net[1]).numpy(), FO[0], rtol=0, atol=0)
    assert not any(hasattr(m, "fo_total") for m in net.modules())  # the layers keep nothing between calls
    assert 0 < FO[0].mean() < 8  # neurons fire, but not at every step
    np.testing.assert_allclose(net[0].weight.grad.numpy(), grads[0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(net[2].weight.grad.numpy(), grads[1], rtol=1e-10, atol=1e-13)


def test_phase1_step_and_layer_agree_and_phase2_reproduces_the_output():
    net = net2("if")
    x = (torch.rand(12, 4, 6) < 0.5).double()
    y = torch.randint(0, 3, (4,))
    grads = []
    for phase1 in ("layer", "step"):
        net.zero_grad()
        loss, logits = dnmsnn.rules.create("asf", phase1=phase1).loss_backward(net, x, y)
        grads.append([p.grad.clone() for p in net.parameters()])
        torch.testing.assert_close(logits * 12 * 0.625, net(x)[-1])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_slope_modes():
    fi = torch.tensor([[2.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    fo = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert torch.allclose(asf_slope(fi, fo, "sample", 9.0), torch.tensor([[1 / 3], [9.0]]))
    assert torch.allclose(asf_slope(fi, fo, "batch", 9.0), torch.tensor([[1 / 3]]))
    assert torch.allclose(asf_slope(fi, fo, "neuron", 9.0), torch.tensor([[0.5, 0.0, 9.0], [9.0, 9.0, 9.0]]))
    assert torch.allclose(asf_slope(fi, fo, "sample", 9.0, shared_fi="positive"), torch.tensor([[1 / 4], [9.0]]))
    assert torch.allclose(asf_slope(fi, fo, "batch", 9.0, shared_fi="positive"), torch.tensor([[1 / 4]]))


@pytest.mark.parametrize("slope", ["neuron", "batch"])
@pytest.mark.parametrize("mask", ["silent", "inhibited"])
def test_slope_masks(slope, mask):
    """silent: S = 0 where FO = 0; inhibited: S = 0 where FI <= eps, 1/V_th (neuron mode) where FI > 0 but FO = 0."""
    net = net2("if")  # V_th = 0.625
    layer = net[1]
    # the four cases: inhibited (FI < 0), FI = 0, positive input below threshold (FO = 0), firing
    record = TotalsRecord()
    record.accumulate(layer, torch.tensor([[-1.0, 0.0, 0.5, 3.0], [-2.0, 0.0, 0.25, 2.0]], dtype=torch.float64),
                      torch.tensor([[0.0, 0.0, 0.0, 4.0], [0.0, 0.0, 0.0, 2.0]], dtype=torch.float64))
    rule = dnmsnn.rules.create("asf", slope=slope, mask=mask)
    rule.set_slopes(net, record)
    got = record.slope(layer).expand(2, 4)
    shared = 6.0 / 2.75  # batch: sum FO / sum FI over the layer and the batch
    if mask == "silent":
        ratio = [4 / 3, 1.0] if slope == "neuron" else [shared, shared]
        expected = [[0, 0, 0, ratio[0]], [0, 0, 0, ratio[1]]]
    elif slope == "neuron":
        expected = [[0, 0, 1 / 0.625, 4 / 3], [0, 0, 1 / 0.625, 1.0]]
    else:
        expected = [[0, 0, shared, shared], [0, 0, shared, shared]]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_conv_lenet_runs_and_bias_totals_are_exact():
    torch.manual_seed(0)
    net = Network(dnmsnn.Conv2d(1, 4, 3), IF(strict=True), dnmsnn.AvgPool2d(2), Flatten(), dnmsnn.Dropout(0.2),
                  Linear(4 * 3 * 3, 10), Integrator(), input_shape=(1, 8, 8))
    x = (torch.rand(6, 3, 1, 8, 8) < 0.5).float()
    loss, logits = dnmsnn.rules.create("asf").loss_backward(net, x, torch.tensor([1, 2, 3]))
    assert torch.isfinite(loss) and net[0].weight.grad.abs().sum() > 0
    net.eval()
    torch.testing.assert_close(dnmsnn.rules.create("asf").loss_backward(net, x, torch.tensor([1, 2, 3]))[1] * 6,
                               net(x)[-1], rtol=1e-5, atol=1e-5)


def test_layers_without_totals_form_are_refused():
    net = Network(Flatten(), Linear(4, 4), dnmsnn.BatchNorm1d(4), IF(), Linear(4, 2), Integrator(), input_shape=(4,),
                  num_classes=2)
    with pytest.raises(InputError, match="BatchNorm1d"):
        dnmsnn.rules.create("asf").loss_backward(net, torch.rand(3, 2, 4), torch.tensor([0, 1]))


def test_invalid_options():
    bad = ({"slope": "layer"}, {"phase1": "x"}, {"mask": "x"}, {"momentum": 0.5, "slope": "sample"}, {"v_th": -1.0},
           {"shared_fi": "x"}, {"shared_fi": "positive", "slope": "neuron"})
    for kw in bad:
        with pytest.raises(InputError):
            dnmsnn.rules.create("asf", **kw)


def test_asf_lenet_init_reaches_every_layer():
    """With fan-in init (default) spikes reach the output; bounds are g sqrt(3 / fan_in)."""
    import math

    from dnmsnn.layers import Conv2d

    torch.manual_seed(0)
    x = (torch.rand(10, 8, 1, 28, 28) < 0.3).float()
    net = dnmsnn.models.create("asf_lenet", gain=2.0)
    conv1 = next(m for m in net.modules() if isinstance(m, Conv2d))
    assert float(conv1.weight.detach().abs().max()) <= 2.0 * math.sqrt(3 / 25) + 1e-6
    assert float(conv1.weight.detach().abs().max()) > 2.0 * math.sqrt(3 / 25) * 0.9
    with torch.no_grad():
        assert net(x)[-1].abs().sum() > 0
    with pytest.raises(InputError, match="init"):
        dnmsnn.models.create("asf_lenet", init="xavier")
    with pytest.raises(InputError, match="gain"):
        dnmsnn.models.create("asf_vgg", gain=0.0)
