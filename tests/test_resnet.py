"""The DNM-SNN ResNets (Cao et al.): layouts, parameter counts, and every learning rule can drive them."""
from __future__ import annotations

import pytest
import torch

import dnmsnn
from dnmsnn.errors import InputError
from dnmsnn.layers import Conv2d, Linear, Residual


def weight_layers(model) -> int:
    """Weight layers on the main path (1x1 shortcut projections are not counted, as in the ResNet papers)."""
    shortcuts = {id(m) for r in model.modules() if isinstance(r, Residual) and r.shortcut is not None
                 for m in r.shortcut.modules()}
    return sum(isinstance(m, (Conv2d, Linear)) and id(m) not in shortcuts for m in model.modules())


def spikes(T: int, B: int, shape) -> torch.Tensor:
    return (torch.rand(T, B, *shape, generator=torch.Generator().manual_seed(0)) < 0.3).float()


@pytest.mark.parametrize("name,layers", [("resnet11", 11), ("resnet20", 20), ("resnet11_w8", 11), ("resnet20_w4", 20)])
def test_depth_is_in_the_name(name, layers):
    assert weight_layers(dnmsnn.models.create(name)) == layers


def test_resnet20_has_the_standard_parameter_count():
    # CIFAR ResNet-20 (He et al. 2016) has ~0.27 M parameters; BN adds 2 per channel, biases none.
    n = sum(p.numel() for p in dnmsnn.models.create("resnet20").parameters())
    assert 0.26e6 < n < 0.28e6


def test_resnet11_head_is_fc1024_at_full_width():
    fcs = [m for m in dnmsnn.models.create("resnet11").modules() if isinstance(m, Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(512 * 2 * 2, 1024), (1024, 10)]


def test_width_variants_keep_their_width_default_and_accept_overrides():
    assert dnmsnn.models.info("resnet11_w8").defaults["width"] == 8
    small = dnmsnn.models.create("resnet20_w4", neuron="if", output="integrator", input_shape=(1, 28, 28))
    assert small.readout == "final" and small(spikes(3, 2, (1, 28, 28))).shape == (3, 2, 10)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (2, 16, 16)])
def test_any_reasonable_input_shape(shape):
    for name in ("resnet11_w8", "resnet20_w4"):
        out = dnmsnn.models.create(name, input_shape=shape)(spikes(2, 3, shape))
        assert out.shape == (2, 3, 10)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(InputError, match="width"):
        dnmsnn.models.create("resnet20", width=0)
    with pytest.raises(InputError, match="input_shape"):
        dnmsnn.models.create("resnet11", input_shape=(28, 28))


@pytest.mark.parametrize("rule,norm", [("bptt", True), ("spatial", True), ("asf", False)])
def test_every_rule_drives_the_resnets(rule, norm):
    torch.manual_seed(0)
    model = dnmsnn.models.create("resnet20_w4", input_shape=(1, 12, 12), norm=norm, output="integrator",
                                 neuron="if" if rule == "asf" else "lif")
    loss, logits = dnmsnn.rules.create(rule).loss_backward(model, spikes(4, 3, (1, 12, 12)), torch.tensor([0, 1, 2]))
    assert torch.isfinite(loss) and logits.shape == (3, 10)
    stem = next(m for m in model.modules() if isinstance(m, Conv2d))
    assert stem.weight.grad is not None and torch.isfinite(stem.weight.grad).all()


def test_step_mode_equals_multi_step_mode():
    torch.manual_seed(0)
    model = dnmsnn.models.create("resnet11_w8", input_shape=(1, 12, 12)).eval()
    x = spikes(5, 2, (1, 12, 12))
    state, outs = None, []
    for k in range(5):
        y, state = model.step(x[k], state)
        outs.append(y)
    torch.testing.assert_close(torch.stack(outs), model(x))
