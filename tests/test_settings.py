"""dnmsnn.settings: one object for every switch of how dnmsnn computes, read from the environment once."""
from __future__ import annotations

import pytest
import torch

import dnmsnn
from dnmsnn import InputError, settings
from dnmsnn.functional import buffer_pool, fused_backend, fused_enabled, reference_path, spike_matmul, stacked_conv
from dnmsnn.functional.conv import stacked_conv_applies
from dnmsnn.functional.spike_matmul import spike_matmul_enabled


@pytest.mark.parametrize("env, expected", [
    ({}, settings.Settings()),
    ({"DNMSNN_BACKEND": "reference"}, settings.Settings(backend="reference")),
    ({"DNMSNN_BACKEND": " Torch "}, settings.Settings(backend="torch")),
    ({"DNMSNN_SPIKE_MATMUL": "on"}, settings.Settings(spike_kernels=True)),
    ({"DNMSNN_SPIKE_MATMUL": "0"}, settings.Settings(spike_kernels=False)),
    ({"DNMSNN_SPIKE_MATMUL": "on", "DNMSNN_NO_SPIKE_MATMUL": "1"}, settings.Settings(spike_kernels=False)),
    ({"DNMSNN_NO_STACKED_CONV": "1", "DNMSNN_NO_BUFFER_POOL": "1"},
     settings.Settings(stacked_conv=False, buffer_pool=False)),
])
def test_the_environment_table(env, expected):
    assert settings.from_environment(env) == expected


@pytest.mark.parametrize("env, name", [({"DNMSNN_BACKEND": "cuda"}, "DNMSNN_BACKEND"),
                                       ({"DNMSNN_SPIKE_MATMUL": "maybe"}, "DNMSNN_SPIKE_MATMUL")])
def test_unknown_environment_values_are_named(env, name):
    with pytest.raises(InputError, match=name):
        settings.from_environment(env)


def test_use_nests_restores_and_rejects_unknown_fields():
    before = settings.current()
    with settings.use(buffer_pool=False) as outer:
        assert settings.current() == outer and not outer.buffer_pool
        with dnmsnn.use_backend("torch") as inner:
            assert inner.backend == "torch" and not inner.buffer_pool  # changes stack
        assert settings.current() == outer
    assert settings.current() == before
    with pytest.raises(InputError, match="unknown setting"), settings.use(fast=True):
        pass
    with pytest.raises(InputError, match="backend"), settings.use(backend="gpu"):
        pass


def test_reference_turns_every_fast_path_off():
    x = torch.zeros(4, 3, 8, 8)
    assert fused_enabled() and stacked_conv_applies(x)
    with reference_path():
        assert settings.current().backend == "reference"
        assert not fused_enabled() and not stacked_conv_applies(x) and not spike_matmul_enabled()
        with spike_matmul(True):  # an explicit request does not bring a fast path back under reference
            assert not spike_matmul_enabled()


def test_the_old_switches_are_views_of_the_settings():
    with fused_backend("python"):
        assert settings.current().backend == "torch" and not spike_matmul_enabled()  # no C++ code at all
    with fused_backend("cpp"):
        assert settings.current().backend == "cpu-kernels"
    with spike_matmul(False):
        assert settings.current().spike_kernels is False and not spike_matmul_enabled()
    with spike_matmul(None):
        assert settings.current().spike_kernels is None
    with stacked_conv(False):
        assert not settings.current().stacked_conv and not stacked_conv_applies(torch.zeros(4, 3, 8, 8))
    with buffer_pool(False):
        assert not settings.current().buffer_pool


def test_every_backend_computes_the_same_network():
    """float64, so that no spike sits within rounding of its threshold on one path and not on another (the
    paths order their sums differently; in float32 a rare flip would be a machine-dependent failure)."""
    from dnmsnn.functional import cpp

    torch.manual_seed(0)
    net = dnmsnn.Network(dnmsnn.Conv2d(1, 4, 3), dnmsnn.LIF(beta=0.9), dnmsnn.AvgPool2d(2), dnmsnn.Flatten(),
                         dnmsnn.Linear(4 * 3 * 3, 10), dnmsnn.Integrator(), input_shape=(1, 8, 8)).double()
    x = dnmsnn.PoissonEncoder(T=5, seed=0)(torch.rand(6, 1, 8, 8)).double()
    outs = {}
    for backend in [b for b in settings.BACKENDS if b != "cpu-kernels" or cpp.load() is not None]:
        with dnmsnn.use_backend(backend):
            outs[backend] = net.classify(x)
    assert outs["reference"].abs().sum() > 0
    for backend, out in outs.items():
        torch.testing.assert_close(out, outs["reference"], rtol=1e-12, atol=1e-12, msg=backend)
