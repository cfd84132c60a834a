"""The spatial rule (Bondarev, eqs. 7-13) against the literal NumPy reference, and its modes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_spatial import spatial_gradients, spatial_sgd_per_step

import dnmsnn
from dnmsnn import InputError

BETA = 0.8187


def small_net(seed=0):
    """3-layer Bondarev network 6-5-4-3 with thresholds large enough that some neurons fire and some do not."""
    torch.manual_seed(seed)
    net = dnmsnn.models.create("bondarev_mlp", input_shape=(6,), hidden=(5, 4), num_classes=3,
                               threshold_gains=(1.0, 0.8), beta=BETA).double()
    with torch.no_grad():
        for lin in (net[1], net[3], net[5]):
            lin.weight.uniform_(-1.0, 1.0)
    return net


def batch(seed=0, T=6, B=4):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, 6, generator=g) < 0.5).double()
    y = torch.randint(0, 3, (B,), generator=g)
    return x, y


def weights(net):
    return [net[i].weight.detach().numpy().copy() for i in (1, 3, 5)]


def thresholds(net):
    return [float(net[2].threshold), float(net[4].threshold)]


@pytest.mark.parametrize("loss, step_scale", [("ce", "none"), ("ce", "1/k"), ("mse", "none")])
@pytest.mark.parametrize("online", [False, True])
def test_gradients_match_literal_numpy(loss, step_scale, online):
    net, (x, y) = small_net(), batch()
    rule = dnmsnn.rules.create("spatial", loss=loss, step_scale=step_scale, online=online)
    rule.loss_backward(net, x, y)
    ref = spatial_gradients(weights(net), x.numpy(), y.numpy(), BETA, thresholds(net), loss, step_scale)
    for got, want in zip((net[1].weight.grad, net[3].weight.grad, net[5].weight.grad), ref, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)
    # hidden spikes happen, so the test exercises eq. 8 through firing and silent neurons
    net[2].record = True
    net(x)
    assert 0 < float((net[2].v_trace >= thresholds(net)[0]).double().mean()) < 1


def test_per_step_update_is_eq_7_with_sgd():
    net, (x, y) = small_net(1), batch(1)
    lr = 0.05
    rule = dnmsnn.rules.create("spatial", online=True, update="step")
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    rule.bind_optimizer(opt)
    ref = spatial_sgd_per_step(weights(net), x.numpy(), y.numpy(), BETA, thresholds(net), lr)
    rule.loss_backward(net, x, y)
    for got, want in zip(weights(net), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_online_equals_offline_in_float32():
    torch.manual_seed(0)
    net = dnmsnn.models.create("bondarev_mlp")
    x = dnmsnn.PoissonEncoder(10, seed=0)(torch.rand(8, 1, 28, 28))
    y = torch.randint(0, 10, (8,))
    grads = {}
    for online in (False, True):
        net.zero_grad()
        dnmsnn.rules.create("spatial", online=online).loss_backward(net, x, y)
        grads[online] = [p.grad.clone() for p in net.parameters()]
    for a, b in zip(grads[False], grads[True], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_spatial_differs_from_bptt():
    net, (x, y) = small_net(), batch()
    dnmsnn.rules.create("spatial").loss_backward(net, x, y)
    g_spatial = net[1].weight.grad.clone()
    net.zero_grad()
    dnmsnn.rules.create("bptt").loss_backward(net, x, y)
    assert not torch.allclose(g_spatial, net[1].weight.grad)


def test_forward_values_unchanged_by_spatial_mode():
    net, (x, _) = small_net(), batch()
    a = net.run(x, temporal_grad=False).output
    torch.testing.assert_close(a, net(x), rtol=0, atol=0)


def test_bondarev_model_matches_the_paper():
    net = dnmsnn.models.create("bondarev_mlp")
    assert sum(p.numel() for p in net.parameters()) == 328_200
    assert [float(n.threshold) for _, n in list(net.neurons())[:2]] == pytest.approx([0.5, 0.3])
    assert float(net[1].weight.detach().abs().max()) <= 0.1 + 1e-7
    fan_in = dnmsnn.models.create("bondarev_mlp", h_rule="fan_in")
    assert float(fan_in[2].threshold) == pytest.approx(5 * (3 / 784) ** 0.5, rel=1e-6)
    assert float(fan_in[1].weight.detach().abs().max()) <= (3 / 784) ** 0.5 + 1e-7
    learn = dnmsnn.models.create("bondarev_mlp", learn_threshold=True)
    assert isinstance(learn[2].threshold, torch.nn.Parameter)


def test_invalid_options():
    with pytest.raises(InputError):
        dnmsnn.rules.create("spatial", update="step")  # needs online
    with pytest.raises(InputError):
        dnmsnn.rules.create("spatial", step_scale="k")
    net, (x, y) = small_net(), batch()
    with pytest.raises(InputError, match="bind_optimizer"):
        dnmsnn.rules.create("spatial", online=True, update="step").loss_backward(net, x, y)
