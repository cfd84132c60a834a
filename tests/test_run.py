"""``Network.run``, the one way in: its modes against their shorthands, the options it hands down the layers
(temporal gradient, ASF totals) and the executor data-parallel training installs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import dnmsnn
from dnmsnn import InputError, RunOptions
from dnmsnn.totals import TotalsRecord


def mlp_and_input(**kw):
    torch.manual_seed(0)
    net = dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(16, 12), **kw)
    return net, dnmsnn.PoissonEncoder(T=5, seed=0)(torch.rand(4, 1, 8, 8))


def spiking_layers(net):
    return [m for _, m in net.neurons() if isinstance(m, (dnmsnn.LIF, dnmsnn.IF))]


def test_each_mode_is_its_shorthand():
    net, x = mlp_and_input()
    assert torch.equal(net.run(x).output, net(x))
    assert torch.equal(net.run(x, "logits").output, net.classify(x))
    result = net.run(x[0], "step")
    y, state = net.step(x[0])
    assert torch.equal(result.output, y) and result.totals is None
    assert torch.equal(net.run(x[1], "step", state=result.state).output, net.step(x[1], state)[0])


def test_steps_add_up_to_the_sequence():
    net, x = mlp_and_input(readout="sum", output="spiking")
    state, outs = None, []
    for k in range(x.shape[0]):
        r = net.run(x[k], "step", state=state)
        outs.append(r.output)
        state = r.state
    torch.testing.assert_close(torch.stack(outs), net.run(x).output, rtol=0, atol=0)


def test_without_temporal_grad_values_agree_and_gradients_stay_within_each_step():
    net, x = mlp_and_input()
    first = net[1]  # the first Linear: its input is the encoded image
    assert isinstance(first, dnmsnn.Linear)
    xs = x.clone().requires_grad_()
    full = net.run(xs)
    cut = net.run(xs, temporal_grad=False)
    assert torch.equal(full.output, cut.output)  # bitwise, the Integrator's trace included
    # the output at step 0 depends on later steps' inputs in neither run; at the last step, with the temporal
    # path cut, only the last step's input reaches it through the spiking layers (the Integrator still sums)
    (g_full,) = torch.autograd.grad(full.output[-1].sum(), xs)
    (g_cut,) = torch.autograd.grad(cut.output[-1].sum(), xs)
    assert not torch.equal(g_full, g_cut)


def test_record_totals_keeps_fi_and_fo_of_every_spiking_layer():
    net, x = mlp_and_input()
    inputs: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda m, a, out: inputs.__setitem__(m, (a[0].sum(0), out.sum(0))))
             for m in spiking_layers(net)]
    with torch.no_grad():
        result = net.run(x, record_totals=True)
    for h in hooks:
        h.remove()
    assert isinstance(result.totals, TotalsRecord)
    for m in spiking_layers(net):
        fi, fo = inputs[m]
        torch.testing.assert_close(result.totals.fi(m), fi)
        assert torch.equal(result.totals.fo(m), fo)
    # a step-by-step run adds every step to the record it is given: the same totals
    record, state = TotalsRecord(), None
    with torch.no_grad():
        for k in range(x.shape[0]):
            state = net.run(x[k], "step", state=state, record_totals=record).state
    for m in spiking_layers(net):
        torch.testing.assert_close(record.fi(m), result.totals.fi(m))
        assert torch.equal(record.fo(m), result.totals.fo(m))


def test_a_run_without_record_leaves_no_totals_behind():
    net, x = mlp_and_input()
    with torch.no_grad():
        assert net.run(x).totals is None
    rule = dnmsnn.rules.create("asf")
    rule.loss_backward(net, x, torch.zeros(x.shape[1], dtype=torch.long))
    assert all(m in rule.last_totals for m in spiking_layers(net))


def test_totals_mode_reads_the_record_it_is_given():
    net, x = mlp_and_input()
    rule = dnmsnn.rules.create("asf")
    record = rule.set_slopes(net, rule.record(net, x))
    result = net.run(x.sum(0), "totals", totals=record, T=x.shape[0])
    assert result.totals is record
    torch.testing.assert_close(result.output, net(x)[-1].detach(), rtol=1e-5, atol=1e-5)  # V^N(T) = FI^N


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="graph"), "mode"),
    (dict(mode="totals"), "totals= the TotalsRecord"),
    (dict(mode="totals", totals=TotalsRecord(), T=0), "T= its number of steps"),
    (dict(mode="totals", totals=TotalsRecord(), T=3, record_totals=True), "cannot record"),
    (dict(totals=TotalsRecord()), "belong to mode 'totals'"),
    (dict(T=3), "belong to mode 'totals'"),
    (dict(state=[None]), "belongs to mode 'step'"),
    (dict(record_totals="yes"), "record_totals must be"),
])
def test_bad_arguments_are_named(kwargs, match):
    net, x = mlp_and_input()
    with pytest.raises(InputError, match=match):
        net.run(x, **kwargs)


class OwnBlock(nn.Module):
    """A user's layer with a forward of its own around a neuron."""

    def __init__(self) -> None:
        super().__init__()
        self.neuron = dnmsnn.LIF(beta=0.9)

    def forward(self, x):
        return self.neuron(x)


class OwnBlockTakingRun(dnmsnn.SpikingModule):
    """The same, written to take the run's options and hand them on."""

    takes_run = True

    def __init__(self) -> None:
        super().__init__()
        self.neuron = dnmsnn.LIF(beta=0.9)

    def forward(self, x, run=dnmsnn.module.DEFAULT_RUN):
        return self.neuron(x, run)


def own_network(block: nn.Module) -> dnmsnn.Network:
    torch.manual_seed(1)
    return dnmsnn.Network(dnmsnn.Linear(6, 8), block, dnmsnn.Linear(8, 3), dnmsnn.Integrator(), num_classes=3)


def test_a_neuron_inside_a_users_forward_cannot_be_told_silently():
    x = torch.rand(4, 2, 6) * 2
    net = own_network(OwnBlock())
    net.run(x)  # the default run: nothing to hand down
    with pytest.raises(InputError, match="OwnBlock holds a LIF inside a forward of its own"):
        net.run(x, temporal_grad=False)
    with pytest.raises(InputError, match="ASF totals"), torch.no_grad():
        net.run(x, record_totals=True)
    ok = own_network(OwnBlockTakingRun())
    with torch.no_grad():
        record = ok.run(x, record_totals=True).totals
    assert ok[1].neuron in record
    assert torch.equal(ok.run(x, temporal_grad=False).output, ok(x))


def test_the_executor_takes_grad_recording_runs_only():
    net, x = mlp_and_input()
    calls = []

    def executor(network, mode, inputs, state, T, run):
        calls.append((mode, run.temporal_grad))
        return type(network).execute(network, mode, inputs, state, T, run)

    net.executor = executor
    try:
        net.run(x, temporal_grad=False)
        net.classify(x)
        with torch.no_grad():
            net.run(x)
    finally:
        del net.executor
    assert calls == [("sequence", False), ("logits", True)]
    net.run(x)
    assert len(calls) == 2


def test_hooks_on_the_network_see_a_sequence_run():
    net, x = mlp_and_input()
    seen = []
    net.register_forward_hook(lambda m, a, out: seen.append(tuple(out.shape)))
    net.run(x)
    assert seen == [(5, 4, 10)]


def test_run_options_are_passed_not_ambient():
    """A neuron called directly runs with the default options, whatever runs around it: nothing is ambient."""
    net, x = mlp_and_input()
    lif = dnmsnn.LIF(beta=0.9)
    h = torch.rand(3, 2, 5, requires_grad=True)
    (g_alone,) = torch.autograd.grad(lif(h)[-1].sum(), h)
    net.run(x, temporal_grad=False)
    (g_after,) = torch.autograd.grad(lif(h)[-1].sum(), h)
    (g_cut,) = torch.autograd.grad(lif(h, RunOptions(temporal_grad=False))[-1].sum(), h)
    assert torch.equal(g_alone, g_after)
    assert g_cut[:-1].abs().sum() == 0


class OldStyleLIF(dnmsnn.LIF):
    """A subclass written before run options existed: forward and step without a run parameter."""

    def forward(self, x):
        return super().forward(x)

    def step(self, x, state=None):
        return super().step(x, state)


def test_a_subclass_overriding_forward_without_run_still_runs_and_is_refused_only_where_it_would_be_wrong():
    torch.manual_seed(2)
    net = dnmsnn.Network(dnmsnn.Linear(6, 8), OldStyleLIF(beta=0.9), dnmsnn.Linear(8, 3), dnmsnn.Integrator(),
                         num_classes=3)
    x = torch.rand(4, 2, 6) * 2
    assert net.run(x).output.shape == (4, 2, 3)
    assert net.run(x[0], "step").output.shape == (2, 3)
    with pytest.raises(InputError, match="OldStyleLIF overrides forward / step / totals without a run parameter"):
        net.run(x, temporal_grad=False)
    with pytest.raises(InputError, match="without a run parameter"):
        net.run(x[0], "step", temporal_grad=False)


@pytest.mark.parametrize("beta", [None, 0.8])
def test_integrator_without_temporal_grad_keeps_its_values_and_cuts_the_past(beta):
    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    full = dnmsnn.functional.integrator_sequence(x, beta)
    cut = dnmsnn.functional.integrator_sequence(x, beta, temporal_grad=False)
    assert torch.equal(full, cut)
    (g,) = torch.autograd.grad(cut[3].sum(), x)  # v[3] = beta v[2].detach() + x[3]: only x[3], with slope 1
    expected = torch.zeros_like(x)
    expected[3] = 1.0
    assert torch.equal(g, expected)
    steps, state = [], None
    for k in range(5):  # the step function's literal detach gives the same gradient
        v, state = dnmsnn.functional.integrator_step(x[k], state, beta, temporal_grad=False)
        steps.append(v)
    assert torch.equal(torch.autograd.grad(torch.stack(steps)[3].sum(), x)[0], expected)
