"""Firing-rate-aware initialisation: every spiking layer of the LeNet, the MLP and resnet11_w8, IF and LIF, ends
inside the target band; nothing but the drivers' weights changes; runs stay deterministic."""
from __future__ import annotations

import pytest
import torch

import dnmsnn
from dnmsnn import InputError
from dnmsnn.calibrate import calibrate_firing, spiking_layers
from dnmsnn.train import Trainer, load_run_config

LOW, HIGH = 0.02, 0.2


def encoded(shape, T=6, n=32):
    torch.manual_seed(1)
    return dnmsnn.PoissonEncoder(T=T, seed=0)(torch.rand(n, *shape))


def rates(net, x):
    out = {}
    hooks = [m.register_forward_hook(lambda mod, a, y, n=n: out.__setitem__(n, float(y.float().mean())))
             for n, m in net.named_modules() if isinstance(m, (dnmsnn.LIF, dnmsnn.IF))]
    net.train()
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return out


CASES = [("asf_lenet", {"neuron": "if"}, (1, 28, 28)), ("asf_lenet", {"neuron": "lif"}, (1, 28, 28)),
         ("mlp", {"hidden": (100, 100)}, (1, 28, 28)), ("mlp", {"hidden": (100, 100), "tau": 2.0, "v_reset": 0.0},
                                                         (1, 28, 28)),
         ("resnet11_w8", {"input_shape": (1, 16, 16)}, (1, 16, 16)),
         ("resnet11_w8", {"input_shape": (1, 16, 16), "neuron": "if"}, (1, 16, 16))]


@pytest.mark.parametrize("name,args,shape", CASES, ids=[f"{c[0]}-{c[1].get('neuron', c[1].get('tau', 'lif'))}"
                                                         for c in CASES])
def test_every_spiking_layer_ends_in_the_band(name, args, shape):
    torch.manual_seed(0)
    net = dnmsnn.models.create(name, **args)
    x = encoded(shape, n=8 if name.startswith("resnet") else 32)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    records = calibrate_firing(net, x, LOW, HIGH)
    assert all(r.reached for r in records), records
    drivers = {d for r in records for d in r.drivers if r.scale != 1.0}
    for key, value in net.state_dict().items():  # only the drivers' weights and biases changed (BN stats kept)
        if not any(key.startswith(d + ".") and key.rsplit(".", 1)[1] in ("weight", "bias") for d in drivers):
            assert torch.equal(value, before[key]), key
    measured = rates(net, x)  # measured again, independently of the calibration's own numbers
    assert all(LOW <= measured[r.name] <= HIGH for r in records), (measured, records)
    centre = (LOW * HIGH) ** 0.5  # aimed at the band's centre, not left at its edge
    near = [r for r in records if centre / 1.15 <= measured[r.name] <= centre * 1.15]
    assert len(near) == len(records), (centre, measured)


def test_lif_lenet_starts_with_a_silent_layer_that_calibration_wakes():
    torch.manual_seed(0)
    net = dnmsnn.models.create("asf_lenet", neuron="lif")
    records = calibrate_firing(net, encoded((1, 28, 28)), LOW, HIGH)
    assert min(r.rate_before for r in records) == 0.0 and min(r.rate_after for r in records) >= LOW


def test_residual_neurons_are_driven_by_both_branches():
    layers = dict(spiking_layers(dnmsnn.models.create("resnet11_w8")))
    assert any(len(d) == 2 and any(".body." in x for x in d) and any(".shortcut." in x for x in d)
               for d in layers.values())


def test_bad_band_and_input_are_clear_errors():
    net = dnmsnn.models.create("digits_mlp")
    x = encoded((1, 8, 8))
    with pytest.raises(InputError, match="0 < low < high < 1"):
        calibrate_firing(net, x, 0.3, 0.2)
    with pytest.raises(InputError, match="finite"):
        calibrate_firing(net, x * float("nan"), LOW, HIGH)


def test_a_calibrated_run_is_deterministic_and_resumes_exactly(tmp_path):
    fast = ["data.name=digits", "model.name=digits_mlp", "model.args.beta=0.5", "model.firing_rate=[0.1, 0.3]",
            "encoder.T=6", "train.progress=false"]
    said = []
    a = Trainer(load_run_config(None, [*fast, "train.epochs=2"]), tmp_path / "a", echo=said.append)
    b = Trainer(load_run_config(None, [*fast, "train.epochs=2"]), tmp_path / "b", echo=lambda s: None)
    assert any("firing rates calibrated" in s for s in said)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    ra = a.fit()
    part = Trainer(load_run_config(None, [*fast, "train.epochs=1"]), tmp_path / "c", echo=lambda s: None)
    part.fit()
    resumed = Trainer(load_run_config(None, [*fast, "train.epochs=2"]), tmp_path / "c", resume=True,
                      echo=lambda s: None)
    assert resumed.fit()["test_acc_by_T"] == ra["test_acc_by_T"]
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
