"""The execution plan: dnmsnn.explain shows, per layer, the block, backend and kernel that ran, and why."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import dnmsnn
from dnmsnn import InputError
from dnmsnn.cli import main
from dnmsnn.functional import cpp
from dnmsnn.plan import explain

needs_kernels = pytest.mark.needs_cpp


def mlp_and_input(**kw):
    torch.manual_seed(0)
    net = dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(32,), **kw)
    return net, dnmsnn.PoissonEncoder(T=4, seed=0)(torch.rand(6, 1, 8, 8))


def lenet_and_input():
    torch.manual_seed(0)
    return dnmsnn.models.create("asf_lenet"), dnmsnn.PoissonEncoder(T=3, seed=0)(torch.rand(4, 1, 28, 28))


def test_training_fuses_neuron_and_linear_inference_does_not():
    net, x = mlp_and_input()
    plan = explain(net, x)
    assert [c.block for c in plan.for_layer("2")] == ["neuron+linear"]
    assert plan.for_layer("4")[0].kernel.startswith("closed form")            # the Integrator readout
    inference = explain(net, x, grad=False)
    assert [c.block for c in inference.for_layer("2")] == ["neuron", "neuron"]
    assert "no gradients" in inference.for_layer("2")[0].reason
    assert [c.block for c in inference.for_layer("3")] == ["linear"]
    assert "LIF" in str(plan) and "neuron+linear" in str(plan)


@needs_kernels
def test_the_plan_names_the_backend_in_force():
    net, x = lenet_and_input()
    auto = explain(net, x)
    assert [c.block for c in auto.for_layer("1")] == ["neuron+pool"]
    assert auto.for_layer("1")[0].backend == "cpu-kernels"
    with dnmsnn.use_backend("torch"):
        torch_plan = explain(net, x)
    assert "neuron+pool" not in torch_plan.blocks()
    assert {c.backend for c in torch_plan.for_layer("1") if c.block == "neuron"} == {"torch", "-"}
    with dnmsnn.use_backend("reference"):
        ref = explain(net, x)
    assert {c.backend for c in ref.for_layer("0")} == {"reference"}
    assert not {"neuron+pool", "neuron+linear"} & set(ref.blocks())
    assert [c.kernel for c in ref.for_layer("4") if c.backend == "reference"] == ["step-by-step autograd loop"]


@needs_kernels
def test_spike_convolution_shows_where_the_input_is_zero_one():
    net, x = lenet_and_input()
    with dnmsnn.settings.use(spike_kernels=True):
        plan = explain(net, x)
    assert plan.for_layer("0")[0].kernel.startswith("spike convolution")      # Poisson spikes: 0/1
    assert plan.for_layer("3")[0].kernel.startswith("chunked")                # pooled spikes are not 0/1
    with dnmsnn.settings.use(spike_kernels=False):
        assert "switched off" in explain(net, x).for_layer("0")[0].reason


@pytest.mark.parametrize("neuron, why", [("plif", "tau as a constant"), ("alif", "two variables")])
def test_neurons_the_fused_node_cannot_carry_run_the_loop_and_say_why(neuron, why):
    net, x = mlp_and_input(neuron=neuron, tau=2.0)
    plan = explain(net, x)
    rows = [c for c in plan.for_layer("2") if c.block == "neuron" and c.backend != "-"]
    assert rows and rows[0].kernel == "step-by-step autograd loop" and why in rows[0].reason


def test_readout_spatial_step_and_totals_modes():
    net, x = mlp_and_input()
    assert "no temporal gradient" in explain(net, x, temporal_grad=False).for_layer("4")[0].reason
    step = explain(net, x, mode="step")
    assert step.for_layer("2")[0].reason == "single-step mode"
    totals = explain(net, x, mode="totals")
    assert any("straight-through on totals" in c.kernel for c in totals.for_layer("2"))
    with pytest.raises(InputError, match="mode"):
        explain(net, x, mode="graph")
    with pytest.raises(InputError, match="example input"):
        explain(net, x[0, 0, 0])


def test_a_torch_linear_after_a_neuron_fuses_with_the_same_values():
    torch.manual_seed(0)
    lin = nn.Linear(32, 10)
    net = dnmsnn.Network(dnmsnn.Flatten(), dnmsnn.Linear(64, 32), dnmsnn.LIF(beta=0.9), lin, dnmsnn.Integrator(),
                         input_shape=(1, 8, 8))
    x = dnmsnn.PoissonEncoder(T=4, seed=0)(torch.rand(5, 1, 8, 8))
    plan = explain(net, x)
    assert [c.block for c in plan.for_layer("2")] == ["neuron+linear"]
    y = net.classify(x)
    y.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    with dnmsnn.use_backend("reference"):
        y_ref = net.classify(x)
        y_ref.sum().backward()
    assert torch.allclose(y, y_ref, atol=1e-5)
    for g, p in zip(grads, net.parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-5)
    bare = nn.Sequential(nn.Flatten(2), nn.Linear(64, 10))  # a torch module the plan only names
    net2 = dnmsnn.Network(bare, dnmsnn.Integrator(), input_shape=(1, 8, 8))
    row = explain(net2, x).for_layer("0")[0]
    assert row.kernel.startswith("torch.nn.Sequential")


def test_explain_leaves_the_network_as_it_was():
    torch.manual_seed(0)
    net = dnmsnn.models.create("resnet11_w8", input_shape=(1, 28, 28))
    x = dnmsnn.DirectEncoder(T=2)(torch.rand(3, 1, 28, 28))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    plan = explain(net, x)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())  # BatchNorm statistics restored
    assert all(p.grad is None for p in net.parameters())
    first = next(net.parameters())
    first.grad = torch.ones_like(first)                      # a user's accumulated gradient survives explain
    explain(net, x)
    assert torch.equal(first.grad, torch.ones_like(first))
    assert "batchnorm2d" in plan.blocks() and plan.for_layer("17")  # every layer, the spiking output included


def test_cli_explain(capsys):
    assert main(["explain", "--set", "data.name=digits", "--set", "model.name=digits_mlp", "--set",
                 "encoder.T=3"]) == 0
    out = capsys.readouterr().out
    assert "digits_mlp on digits inputs" in out and "neuron+linear" in out
    assert main(["explain", "--set", "data.name=digits", "--set", "model.name=digits_mlp", "--no-grad"]) == 0
    assert "no gradients" in capsys.readouterr().out
    assert main(["explain", "--set", "model.name=nosuch"]) == 2
    assert "unknown model" in capsys.readouterr().err


def torch_lenet_twin(seed=0):
    """asf_lenet's layers, the synapses and pooling as plain torch modules; and the dnmsnn original."""
    torch.manual_seed(seed)
    ours = dnmsnn.models.create("asf_lenet")
    mods = []
    for m in ours:
        if isinstance(m, dnmsnn.Conv2d):
            t = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, bias=m.bias is not None)
            t.load_state_dict(m.state_dict())
            mods.append(t)
        elif isinstance(m, dnmsnn.AvgPool2d):
            mods.append(nn.AvgPool2d(m.kernel_size))
        else:
            mods.append(m)
    return ours, dnmsnn.Network(*mods, readout=ours.readout, input_shape=ours.input_shape)


def test_torch_image_layers_run_every_step_on_the_fast_paths():
    ours, twin = torch_lenet_twin()
    x = dnmsnn.PoissonEncoder(T=3, seed=0)(torch.rand(4, 1, 28, 28))
    plan = explain(twin, x)
    assert plan.for_layer("0")[0].kernel.startswith(("chunked", "spike convolution"))
    assert [c.block for c in plan.for_layer("1")] == ["neuron+pool"] or cpp.load() is None
    y, y_ours = twin.classify(x), ours.classify(x)
    torch.testing.assert_close(y, y_ours)                     # the same layers, the same paths: same values
    y.sum().backward()
    y_ours.sum().backward()
    torch.testing.assert_close(twin[0].weight.grad, ours[0].weight.grad)
    state, steps = None, []
    for k in range(3):                                        # single-step mode: torch layers take [B, C, H, W]
        out, state = twin.step(x[k], state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps), twin(x), rtol=1e-5, atol=1e-5)
    bn = dnmsnn.Network(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), dnmsnn.LIF(beta=0.9), nn.MaxPool2d(2), dnmsnn.Flatten(),
                        dnmsnn.Linear(4 * 13 * 13, 10), dnmsnn.Integrator(), input_shape=(1, 28, 28))
    assert bn(x).shape == (3, 4, 10)
    assert set(explain(bn, x).blocks()) >= {"batchnorm2d", "maxpool2d"}
