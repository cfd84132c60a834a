"""Time-distributed layers and containers: shapes, multi-step == single-step, one dropout mask, BN over T x B."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import dnmsnn
from dnmsnn import (
    IF,
    LIF,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    InputError,
    Integrator,
    Linear,
    MaxPool2d,
    Network,
    Residual,
    Sequential,
)


def conv_net() -> Network:
    torch.manual_seed(0)
    block = Residual(Sequential(Conv2d(4, 4, 3, padding=1), LIF(tau=2.0), Conv2d(4, 4, 3, padding=1)))
    return Network(
        Conv2d(1, 4, 3, padding=1, bias=False), BatchNorm2d(4), LIF(beta=0.9, threshold=0.5), block, IF(),
        AvgPool2d(2), MaxPool2d(2), Flatten(), Dropout(0.3), Linear(16, 10), Integrator(),
        readout="final", input_shape=(1, 8, 8),
    )


def test_conv_network_shapes_and_backward():
    net = conv_net()
    x = (torch.rand(5, 3, 1, 8, 8) > 0.5).float()
    y = net(x)
    assert y.shape == (5, 3, 10)
    net.classify(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_step_loop_equals_multi_step():
    net = conv_net().eval()
    x = torch.rand(6, 2, 1, 8, 8)
    multi = net(x)
    state, outs = None, []
    for k in range(x.shape[0]):
        y, state = net.step(x[k], state)
        outs.append(y)
    torch.testing.assert_close(torch.stack(outs), multi, rtol=1e-5, atol=1e-5)


def test_dropout_keeps_one_mask_for_all_steps():
    torch.manual_seed(1)
    d = Dropout(0.5)
    y = d(torch.ones(7, 4, 20))
    assert torch.equal(y[0], y[-1]) and (y == 0).any() and (y == 2.0).any()
    state, steps = None, []
    for _ in range(3):
        s, state = d.step(torch.ones(4, 20), state)
        steps.append(s)
    assert torch.equal(steps[0], steps[2])
    assert torch.equal(d.eval()(torch.ones(3, 2, 5)), torch.ones(3, 2, 5))


def test_batchnorm_statistics_over_time_and_batch():
    x = torch.randn(4, 3, 5, 6, 6) * 3 + 1
    ours, ref = BatchNorm2d(5), nn.BatchNorm2d(5)
    torch.testing.assert_close(ours(x), ref(x.flatten(0, 1)).unflatten(0, (4, 3)))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    x1 = torch.randn(4, 3, 7)
    torch.testing.assert_close(BatchNorm1d(7)(x1), nn.BatchNorm1d(7)(x1.flatten(0, 1)).unflatten(0, (4, 3)))


def test_linear_without_bias_matches_matmul():
    lin = Linear(6, 4, bias=False)
    x = torch.randn(3, 2, 6)
    torch.testing.assert_close(lin(x), x @ lin.weight.T)
    assert lin.bias is None


@pytest.mark.parametrize("layer, shape", [
    (Linear(6, 4), (2, 6)), (Linear(6, 4), (3, 2, 5)), (Conv2d(1, 2, 3), (3, 2, 8, 8)),
    (AvgPool2d(2), (3, 2, 8)), (Flatten(), (3, 2)),
])
def test_wrong_shapes_raise_input_error(layer, shape):
    with pytest.raises(InputError):
        layer(torch.zeros(shape))


def test_network_checks_its_input():
    net = dnmsnn.models.create("digits_mlp")
    with pytest.raises(InputError, match="expects inputs"):
        net.classify(torch.zeros(4, 2, 1, 28, 28))
    with pytest.raises(InputError, match="NaN"):
        net.classify(torch.full((4, 2, 1, 8, 8), float("nan")))
    with pytest.raises(InputError):
        dnmsnn.rules.create("bptt").loss_backward(net, torch.zeros(4, 2, 1, 8, 8), torch.tensor([0, 10]))


def test_spiking_output_reads_spike_counts():
    net = dnmsnn.models.create("mlp", input_shape=(1, 4, 4), hidden=(8,), output="spiking")
    assert net.readout == "sum"
    x = (torch.rand(5, 3, 1, 4, 4) > 0.5).float()
    counts = net.classify(x)
    assert torch.equal(counts, net(x).sum(0)) and counts.max() <= 5


def test_registry():
    assert {"mlp", "digits_mlp"} <= set(dnmsnn.models.available())
    with pytest.raises(InputError, match="available"):
        dnmsnn.models.create("nope")
    with pytest.raises(InputError, match="no argument"):
        dnmsnn.models.create("mlp", widht=3)
    assert "bptt" in dnmsnn.rules.available()
    with pytest.raises(InputError, match="available"):
        dnmsnn.rules.create("nope")


@pytest.mark.parametrize("neuron", [LIF(beta=0.9), IF(), Integrator()], ids=["LIF", "IF", "Integrator"])
def test_neurons_reject_nan_and_inf(neuron):
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InputError, match="NaN or Inf"):
            neuron(torch.full((3, 2, 4), bad))


def test_per_neuron_threshold_shape_must_broadcast():
    with pytest.raises(InputError, match="does not broadcast"):
        LIF(beta=0.9, threshold=torch.ones(3))(torch.rand(2, 2, 4))
    assert LIF(beta=0.9, threshold=torch.ones(4))(torch.rand(2, 2, 4)).shape == (2, 2, 4)


def test_finite_check_accepts_huge_finite_values_whose_sum_overflows():
    x = torch.full((4, 2, 3), 3.0e38)  # finite, but the sum overflows to inf: the exact check must pass it
    assert torch.isinf(x.sum())
    assert Integrator()(x).shape == (4, 2, 3)
    x[2, 1, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or Inf"):
        Integrator()(x)
