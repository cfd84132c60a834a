"""NIR export / import: exact round trips, the Euler semantics of the written nodes, errors, CLI, peers."""
from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings

import numpy as np
import pytest
import torch

import dnmsnn
from dnmsnn import DnmsnnError, InputError

nir = pytest.importorskip("nir")
from dnmsnn.nir import NIRMappingWarning, from_nir, to_nir, write_nir  # noqa: E402


def spikes_in(*shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def mlp(neuron, out=None, *, seed=0, hidden=12, readout=None):
    torch.manual_seed(seed)
    out = out or dnmsnn.Integrator()
    net = dnmsnn.Network(dnmsnn.Flatten(), dnmsnn.Linear(16, hidden), neuron, dnmsnn.Linear(hidden, 3, bias=False),
                         out, input_shape=(1, 4, 4),
                         readout=readout or ("final" if isinstance(out, dnmsnn.Integrator) else "sum"))
    with torch.no_grad():
        net[1].weight.mul_(2.5)
    return net


FORMS = {
    "beta": lambda: dnmsnn.LIF(beta=0.8187, threshold=0.5),
    "beta_v_reset": lambda: dnmsnn.LIF(beta=0.9, threshold=0.6, v_reset=-0.3),
    "beta_1": lambda: dnmsnn.LIF(beta=1.0, threshold=0.8),
    "tau": lambda: dnmsnn.LIF(tau=2.0, threshold=0.4),
    "tau_v_reset": lambda: dnmsnn.LIF(tau=3.0, threshold=0.4, v_reset=0.1),
    "if": lambda: dnmsnn.IF(threshold=1.0),
    "strict": lambda: dnmsnn.IF(threshold=1.0, strict=True),
    "per_neuron": lambda: dnmsnn.LIF(beta=0.7, threshold=torch.linspace(0.3, 1.2, 12)),
    "learnable": lambda: dnmsnn.LIF(tau=2.5, threshold=0.5, learn_threshold=True, surrogate="atan",
                                    surrogate_param=3.0, detach_reset=True),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_round_trip_gives_identical_spikes(form):
    net = mlp(FORMS[form]())
    x = spikes_in(15, 6, 1, 4, 4)
    back = from_nir(to_nir(net))
    assert torch.equal(back(x), net(x))
    assert type(back[2]) is type(net[2])
    for key in ("beta", "tau", "v_reset", "reset", "strict", "detach_reset"):
        assert getattr(back[2], key) == getattr(net[2], key), key
    assert torch.equal(back[2].threshold, net[2].threshold)
    assert isinstance(back[2].threshold, torch.nn.Parameter) == isinstance(net[2].threshold, torch.nn.Parameter)
    assert back[2].surrogate == net[2].surrogate
    assert back.readout == net.readout and back.input_shape == net.input_shape and back.num_classes == net.num_classes


def test_subtract_reset_warns_but_round_trips():
    net = mlp(dnmsnn.LIF(beta=0.9, threshold=0.5, reset="subtract"))
    with pytest.warns(NIRMappingWarning, match="subtract"):
        graph = to_nir(net)
    x = spikes_in(10, 4, 1, 4, 4)
    assert torch.equal(from_nir(graph)(x), net(x))


def test_spiking_output_leaky_integrator_and_file_round_trip(tmp_path):
    x = spikes_in(12, 5, 1, 4, 4)
    for out in (dnmsnn.LIF(tau=2.0, threshold=0.3), dnmsnn.Integrator(beta=0.5), dnmsnn.Integrator()):
        net = mlp(dnmsnn.IF(threshold=0.7), out)
        path = write_nir(net, tmp_path / "m.nir")
        back = from_nir(path)
        assert torch.equal(back(x), net(x)) and torch.equal(back.classify(x), net.classify(x))


def conv_net():
    torch.manual_seed(1)
    return dnmsnn.Network(
        dnmsnn.Conv2d(1, 4, 3, padding=1), dnmsnn.IF(threshold=0.5), dnmsnn.AvgPool2d(2),
        dnmsnn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), dnmsnn.LIF(beta=0.8, threshold=0.3),
        dnmsnn.Flatten(), dnmsnn.Dropout(0.2), dnmsnn.Linear(24, 5), dnmsnn.Integrator(), input_shape=(1, 8, 8))


def test_conv_net_round_trip(tmp_path):
    net = conv_net()
    x = spikes_in(8, 3, 1, 8, 8, p=0.5)
    graph = to_nir(net)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds.count("Conv2d") == 2 and "AvgPool2d" in kinds and "Flatten" in kinds
    back = from_nir(graph)
    assert torch.equal(back(x), net.eval()(x))
    assert back[3].bias is None and back[0].bias is not None
    write_nir(net, tmp_path / "conv.nir")
    assert torch.equal(from_nir(tmp_path / "conv.nir")(x), net(x))


def test_torch_image_layers_export_as_their_dnmsnn_twins():
    """A network built from torch.nn.Conv2d / AvgPool2d (run on the [T*B] stack, as dnmsnn's) exports the same graph."""
    torch.manual_seed(4)
    net = dnmsnn.Network(torch.nn.Conv2d(1, 4, 3, padding=1), dnmsnn.LIF(beta=0.9, threshold=0.5),
                         torch.nn.AvgPool2d(2), dnmsnn.Flatten(), dnmsnn.Linear(64, 3), dnmsnn.Integrator(),
                         input_shape=(1, 8, 8))
    graph = to_nir(net)
    assert [type(n).__name__ for n in graph.nodes.values()].count("Conv2d") == 1
    x = spikes_in(6, 2, 1, 8, 8, p=0.5)
    assert torch.equal(from_nir(graph)(x), net.eval()(x))


def residual_net():
    torch.manual_seed(2)
    L, S = dnmsnn.Linear, dnmsnn.Sequential
    return dnmsnn.Network(
        dnmsnn.Flatten(), L(16, 8), dnmsnn.IF(threshold=0.5),
        dnmsnn.Residual(S(L(8, 8), dnmsnn.IF(threshold=0.5))),                           # identity shortcut
        dnmsnn.Residual(S(L(8, 8), dnmsnn.LIF(tau=2.0, threshold=0.3)), L(8, 8, bias=False)),  # right after a sum
        dnmsnn.LIF(beta=0.9, threshold=0.5),
        dnmsnn.Residual(S(L(8, 8), dnmsnn.IF(threshold=0.4),
                          dnmsnn.Residual(S(L(8, 8), dnmsnn.IF(threshold=0.4))))),          # nested
        L(8, 3), dnmsnn.Integrator(), input_shape=(1, 4, 4))


def test_residual_blocks_round_trip():
    net = residual_net()
    x = spikes_in(10, 4, 1, 4, 4, p=0.6)
    graph = to_nir(net)
    assert sum(isinstance(n, nir.Scale) for n in graph.nodes.values()) == 1  # one junction: a sum feeding a fork
    back = from_nir(graph)
    assert torch.equal(back(x), net(x))
    assert isinstance(back[4], dnmsnn.Residual) and back[4].shortcut is not None and back[3].shortcut is None
    assert isinstance(back[6].body[2], dnmsnn.Residual)
    torch.manual_seed(3)
    last = dnmsnn.Network(dnmsnn.Flatten(), dnmsnn.Linear(16, 8), dnmsnn.IF(threshold=0.5),
                          dnmsnn.Residual(dnmsnn.Linear(8, 8), dnmsnn.Linear(8, 8)), input_shape=(1, 4, 4))
    assert torch.equal(from_nir(to_nir(last))(x), last(x))  # a block ending at the Output node


def strip_metadata(graph):
    graph.metadata = {}
    for node in graph.nodes.values():
        node.metadata = {}
    return graph


@pytest.mark.parametrize("form", ["beta", "beta_v_reset", "tau", "tau_v_reset", "if"])
@pytest.mark.parametrize("dt", [1.0, 1e-3])
def test_plain_nir_semantics_are_exact_for_strict_neurons(form, dt):
    """Without dnmsnn's metadata (what any other reader sees), strict (>) neurons still give the same spikes."""
    neuron = FORMS[form]()
    neuron.strict = True
    net = mlp(neuron)
    x = spikes_in(15, 6, 1, 4, 4)
    back = from_nir(strip_metadata(to_nir(net, dt=dt)), dt=dt)
    assert torch.equal(back(x), net(x))
    assert back[2].strict and type(back[2]) is type(net[2])


def euler_reference(graph, x, dt):
    """A literal NumPy reader of chain graphs: nodes in edge order, Euler at dt, fire on v > v_th, reset to v_reset."""
    order, nxt = [], {a: b for a, b in graph.edges}
    k = "input"
    while nxt.get(k) and nxt[k] != "output":
        k = nxt[k]
        order.append(graph.nodes[k])
    T, B = x.shape[:2]
    state = [None] * len(order)
    out = []
    for t in range(T):
        h = x[t].reshape(B, -1)
        for i, n in enumerate(order):
            if isinstance(n, nir.Flatten):
                continue
            if isinstance(n, (nir.Linear, nir.Affine)):
                h = h @ n.weight.astype(np.float64).T + (n.bias if isinstance(n, nir.Affine) else 0.0)
                continue
            v = np.zeros_like(h) + (n.v_reset if isinstance(n, (nir.LIF, nir.IF)) else 0.0) if state[i] is None \
                else state[i]
            if isinstance(n, (nir.LIF, nir.LI)):
                v = v + dt / n.tau * ((n.v_leak - v) + n.r * h)
            else:  # IF, I: dv/dt = r I
                v = v + dt * n.r * h
            if isinstance(n, (nir.LIF, nir.IF)):
                z = (v > n.v_threshold).astype(np.float64)
                v = np.where(z > 0, n.v_reset, v)
                state[i], h = v, z
            else:
                state[i], h = v, v
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize("form", ["beta", "beta_v_reset", "tau", "tau_v_reset", "if", "per_neuron"])
@pytest.mark.parametrize("dt", [1.0, 0.25, 1e-4])
def test_written_nodes_are_the_euler_step_of_each_form(form, dt):
    """The table in dnmsnn.nir: Euler on the exported ODE at dt reproduces the dnmsnn network (float64)."""
    neuron = FORMS[form]()
    neuron.strict = True
    for out in (dnmsnn.Integrator(), dnmsnn.Integrator(beta=0.6)):
        net = mlp(neuron, out).double()
        x = spikes_in(20, 5, 1, 4, 4).double()
        ref = euler_reference(to_nir(net, dt=dt), x.numpy(), dt)
        np.testing.assert_allclose(ref, net(x).detach().numpy(), rtol=1e-9, atol=1e-9)


def test_graph_parameters_follow_the_table():
    graph = to_nir(mlp(dnmsnn.LIF(tau=2.0, v_reset=0.1, threshold=0.5)), dt=0.5)
    lif = graph.nodes["lif_2"]
    assert np.all(lif.tau == 1.0) and np.all(lif.r == 1.0) and np.all(lif.v_leak == 0.1) and lif.tau.shape == (12,)
    graph = to_nir(mlp(dnmsnn.LIF(beta=0.75)), dt=1e-4)
    lif = graph.nodes["lif_2"]
    assert np.allclose(lif.tau, 4e-4) and np.allclose(lif.r, 4.0) and np.all(lif.v_reset == 0.0)
    graph = to_nir(mlp(dnmsnn.IF(), dnmsnn.Integrator()), dt=0.5)
    assert isinstance(graph.nodes["if_2"], nir.IF) and np.all(graph.nodes["if_2"].r == 2.0)
    assert isinstance(graph.nodes["i_4"], nir.I) and isinstance(graph.nodes["affine_1"], nir.Affine)
    assert isinstance(graph.nodes["linear_3"], nir.Linear)
    flat = graph.nodes["flatten_0"]
    assert flat.start_dim == 0 and flat.end_dim == -1 and list(flat.input_type["input"]) == [1, 4, 4]


def foreign_graph(node, weight_scale=1.0):
    """A graph as another tool would write it: no dnmsnn metadata."""
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(6, 5)) * weight_scale).astype(np.float32)
    return nir.NIRGraph.from_list(nir.Linear(weight=w), node)


def test_import_folds_an_input_gain_into_the_weights():
    n = 6
    graph = foreign_graph(nir.LIF(tau=np.full(n, 2.0), r=np.full(n, 3.0), v_leak=np.zeros(n),
                                  v_threshold=np.full(n, 0.5), v_reset=np.zeros(n)))
    net = from_nir(graph).double()
    lif = net[1]
    assert lif.beta == 0.5 and lif.strict and lif.reset == "zero"
    assert torch.allclose(net[0].weight, torch.as_tensor(graph.nodes["linear"].weight, dtype=torch.float64) * 1.5)
    x = spikes_in(20, 4, 5, p=0.5).double()
    np.testing.assert_array_equal(euler_reference(graph, x.numpy(), 1.0), net(x).detach().numpy())
    graph = foreign_graph(nir.LIF(tau=np.full(n, 4.0), r=np.full(n, 1.0), v_leak=np.zeros(n),
                                  v_threshold=np.full(n, 0.2), v_reset=np.zeros(n)))
    assert from_nir(graph)[1].tau == 4.0  # r = 1: the tau form, no folding
    assert from_nir(graph, dt=2.0)[1].tau == 2.0


def test_import_errors_are_clear():
    n = 6
    bad_leak = foreign_graph(nir.LIF(tau=np.full(n, 2.0), r=np.ones(n), v_leak=np.full(n, 0.2),
                                     v_threshold=np.ones(n), v_reset=np.zeros(n)))
    with pytest.raises(InputError, match="v_leak"):
        from_nir(bad_leak)
    mixed = foreign_graph(nir.LIF(tau=np.linspace(2, 3, n), r=np.ones(n), v_leak=np.zeros(n),
                                  v_threshold=np.ones(n), v_reset=np.zeros(n)))
    with pytest.raises(InputError, match="differs between neurons"):
        from_nir(mixed)
    with pytest.raises(InputError, match="no dnmsnn equivalent"):
        from_nir(foreign_graph(nir.Threshold(threshold=np.ones(n))))
    no_synapse = nir.NIRGraph.from_list(nir.IF(r=np.full(n, 2.0), v_threshold=np.ones(n), v_reset=np.zeros(n)))
    with pytest.raises(InputError, match="fold"):
        from_nir(no_synapse)
    with pytest.raises(DnmsnnError, match="no NIR file"):
        from_nir("missing.nir")
    with pytest.raises(InputError):
        from_nir(42)


def test_export_errors_are_clear():
    with pytest.raises(InputError, match="MaxPool2d"):
        to_nir(dnmsnn.Network(dnmsnn.MaxPool2d(2), dnmsnn.IF(), input_shape=(1, 4, 4)))
    with pytest.raises(InputError, match="input shape"):
        to_nir(dnmsnn.Sequential(dnmsnn.Linear(4, 2), dnmsnn.IF()))
    graph = to_nir(dnmsnn.Sequential(dnmsnn.Linear(4, 2), dnmsnn.IF()), input_shape=(4,))
    assert isinstance(from_nir(graph)[1], dnmsnn.IF)
    with pytest.raises(InputError, match="dt"):
        to_nir(mlp(dnmsnn.IF()), dt=0.0)


def test_missing_nir_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(DnmsnnError, match=r"pip install 'dnmsnn\[nir\]'"):
        to_nir(mlp(dnmsnn.IF()))


def test_cli_export_nir(tmp_path, capsys, monkeypatch):
    from dnmsnn.analysis.runs import load_run_model
    from dnmsnn.cli import main

    torch.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["train", "--set", "train.epochs=1", "--set", "train.progress=false", "--set", "encoder.T=6",
                 "--out", str(run)]) == 0
    out = tmp_path / "model.nir"
    assert main(["export-nir", str(run), str(out)]) == 0 and out.stat().st_size > 0
    _, model = load_run_model(run)
    x = spikes_in(6, 4, 1, 8, 8)
    assert torch.equal(from_nir(out)(x), model(x))
    assert main(["export-nir", str(run), str(tmp_path / "m2.nir"), "--dt", "1e-4"]) == 0
    assert from_nir(nir.read(tmp_path / "m2.nir"))[2].beta == model[2].beta
    capsys.readouterr()
    assert main(["export-nir", str(tmp_path), str(out)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "nir", None)
    assert main(["export-nir", str(run), str(out)]) == 2
    assert "pip install 'dnmsnn[nir]'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- peers
def run_stateful(module, x):
    """Drive a peer's imported module one step at a time (modules return out or (out, state))."""
    state, outs = None, []
    for t in range(x.shape[0]):
        r = module(x[t]) if state is None else module(x[t], state)
        y, state = r if isinstance(r, tuple) else (r, None)
        outs.append(y)
    return torch.stack(outs)


def peer_mlp(neuron_factory):
    torch.manual_seed(0)
    net = dnmsnn.Network(dnmsnn.Linear(16, 12), neuron_factory(), dnmsnn.Linear(12, 4), neuron_factory(),
                         input_shape=(16,), readout="sum")
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    return net


PEER_FORMS = {  # v_reset = 0 and strict thresholds: what NIR's LIF/IF say and both peers implement
    "beta": lambda: dnmsnn.LIF(beta=0.8, threshold=0.7, strict=True),
    "tau": lambda: dnmsnn.LIF(tau=2.5, threshold=0.4, strict=True),
    "if": lambda: dnmsnn.IF(threshold=1.0, strict=True),
}


def quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return fn(*args, **kwargs)
        finally:
            logging.disable(logging.NOTSET)


@pytest.mark.parametrize("form", ["beta", "tau"])  # snnTorch maps NIR IF to a leaky neuron and asserts r == 1
def test_snntorch_reads_the_same_spikes(form):
    pytest.importorskip("snntorch")
    import_nir = pytest.importorskip("snntorch.import_nir")
    net = peer_mlp(PEER_FORMS[form])
    x = spikes_in(20, 8, 16)
    ref = net(x)
    assert ref.sum() > 0
    module = quiet(import_nir.import_from_nir, to_nir(net, dt=1e-4))  # snnTorch's importer assumes dt = 1e-4
    assert torch.equal(quiet(run_stateful, module, x), ref)


def test_snntorch_reads_a_conv_net_per_sample():
    """snnTorch applies NIR's unbatched Flatten(start_dim=0) to its tensors as is, so feed one sample at a time."""
    pytest.importorskip("snntorch")
    import_nir = pytest.importorskip("snntorch.import_nir")
    torch.manual_seed(3)
    net = dnmsnn.Network(dnmsnn.Conv2d(1, 4, 3, padding=1), dnmsnn.LIF(beta=0.8, threshold=0.3, strict=True),
                         dnmsnn.AvgPool2d(2), dnmsnn.Flatten(), dnmsnn.Linear(64, 5),
                         dnmsnn.LIF(beta=0.8, threshold=0.2, strict=True), input_shape=(1, 8, 8), readout="sum")
    x = spikes_in(10, 3, 1, 8, 8, p=0.6)
    ref = net(x)
    assert ref.sum() > 0
    graph = to_nir(net, dt=1e-4)
    outs = [quiet(run_stateful, quiet(import_nir.import_from_nir, graph), x[:, b]) for b in range(x.shape[1])]
    assert torch.equal(torch.stack(outs, 1), ref)


@pytest.mark.parametrize("form", ["tau", "if"])  # Norse ignores r, so the beta form (r = 1/(1-beta)) disagrees
@pytest.mark.parametrize("dt", [1.0, 1e-3])
def test_norse_reads_the_same_spikes(form, dt):
    norse = pytest.importorskip("norse.torch")
    net = peer_mlp(PEER_FORMS[form])
    x = spikes_in(20, 8, 16)
    ref = net(x)
    assert ref.sum() > 0
    module = quiet(norse.from_nir, to_nir(net, dt=dt), dt=dt)
    assert torch.equal(quiet(run_stateful, module, x), ref)
