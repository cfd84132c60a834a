"""Spike functions: Heaviside forward, surrogate derivative backward.

The analytic derivatives and their primitives below are written from the formulas (Bondarev eq. 13 for
``exp``; the usual sigmoid / arctan / triangle / rectangle / SuperSpike shapes), not taken from the library.
"""
from __future__ import annotations

import math

import pytest
import torch

import dnmsnn
from dnmsnn import InputError
from dnmsnn.functional import spike
from dnmsnn.functional.surrogate import SURROGATES, Surrogate, get_surrogate


def d_exp(x, w):
    return torch.exp(-x.abs() / w)


def d_sigmoid(x, k):
    s = 1.0 / (1.0 + torch.exp(-k * x))
    return k * s * (1.0 - s)


def d_atan(x, a):
    return (a / 2.0) / (1.0 + (math.pi / 2.0 * a * x) ** 2)


def d_triangle(x, w):
    return torch.clamp(1.0 - x.abs() / w, min=0.0) / w


def d_rect(x, w):
    return torch.where(x.abs() < w / 2.0, torch.full_like(x, 1.0 / w), torch.zeros_like(x))


def d_fast_sigmoid(x, k):
    return 1.0 / (1.0 + k * x.abs()) ** 2


# Primitives P with P' = the surrogate derivative (sigmoid, atan, fast_sigmoid: smooth everywhere; exp,
# triangle, rect: piecewise, differentiable away from 0 and the kinks, which the test points avoid).
def p_exp(x, w):
    return torch.sign(x) * w * (1.0 - torch.exp(-x.abs() / w))


def p_sigmoid(x, k):
    return torch.sigmoid(k * x)


def p_atan(x, a):
    return torch.atan(math.pi / 2.0 * a * x) / math.pi + 0.5


def p_triangle(x, w):
    u = torch.clamp(x.abs(), max=w)
    return torch.sign(x) * (u / w - u**2 / (2.0 * w**2))


def p_rect(x, w):
    return torch.clamp(x / w, -0.5, 0.5)


def p_fast_sigmoid(x, k):
    return x / (1.0 + k * x.abs())


ANALYTIC = {
    "exp": (d_exp, p_exp, "width", 1.0),
    "sigmoid": (d_sigmoid, p_sigmoid, "slope", 4.0),
    "atan": (d_atan, p_atan, "alpha", 2.0),
    "triangle": (d_triangle, p_triangle, "width", 1.0),
    "rect": (d_rect, p_rect, "width", 1.0),
    "fast_sigmoid": (d_fast_sigmoid, p_fast_sigmoid, "slope", 1.0),
}
PARAMS = [0.3, 1.0, 2.5, 10.0]
CASES = [(name, p) for name in ANALYTIC for p in PARAMS]


def grid(param: float) -> torch.Tensor:
    """Points on both sides of 0 (and 0 itself), scaled to the parameter, plus far-out values."""
    base = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    return torch.cat([base, base * param, torch.tensor([0.0, -1e-9, 1e-9, 50.0, -50.0], dtype=torch.float64)])


def off_kinks(x: torch.Tensor, name: str, param: float) -> torch.Tensor:
    """Drop points where the piecewise primitive is not differentiable (0, |x| = w, |x| = w / 2)."""
    keep = x.abs() > 1e-6
    if name in ("triangle", "rect"):
        edge = param if name == "triangle" else param / 2.0
        keep &= (x.abs() - edge).abs() > 1e-6
    return x[keep]


def test_all_six_surrogates_are_registered():
    assert set(SURROGATES) == set(ANALYTIC)
    for name, (_, _, param, default) in ANALYTIC.items():
        s = get_surrogate(name)
        assert isinstance(s, Surrogate) and s.name == name and s.param == param
        assert getattr(s, param) == default


@pytest.mark.parametrize("strict", [False, True], ids=["ge", "gt"])
@pytest.mark.parametrize("name,param", CASES)
def test_forward_is_heaviside(name, param, strict):
    sur = get_surrogate(name, **{ANALYTIC[name][2]: param})
    x = grid(param)
    y = spike(x, sur, strict)
    expected = (x > 0) if strict else (x >= 0)
    assert y.dtype == x.dtype
    assert torch.equal(y, expected.to(x.dtype))
    zero = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(spike(zero, sur, strict), torch.full_like(zero, 0.0 if strict else 1.0))


@pytest.mark.parametrize("strict", [False, True], ids=["ge", "gt"])
@pytest.mark.parametrize("name,param", CASES)
def test_backward_is_the_analytic_derivative(name, param, strict):
    d, _, pname, _ = ANALYTIC[name]
    sur = get_surrogate(name, **{pname: param})
    x = grid(param).requires_grad_(True)
    upstream = torch.linspace(-2.0, 3.0, x.numel(), dtype=torch.float64)
    spike(x, sur, strict).backward(upstream)
    expected = upstream * d(x.detach(), param)
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(sur.derivative(x.detach()), d(x.detach(), param), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,param", CASES)
def test_derivative_matches_autograd_of_primitive(name, param):
    d, p, pname, _ = ANALYTIC[name]
    x = off_kinks(grid(param), name, param).requires_grad_(True)
    p(x, param).sum().backward()
    sur = get_surrogate(name, **{pname: param})
    torch.testing.assert_close(sur.derivative(x.detach()), x.grad, rtol=1e-10, atol=1e-12)
    # and our own analytic formula is that derivative too (the primitives are right)
    torch.testing.assert_close(d(x.detach(), param), x.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "atan", "fast_sigmoid"])
def test_smooth_primitives_differentiable_at_zero(name):
    d, p, pname, _ = ANALYTIC[name]
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    p(x, 2.0).sum().backward()
    torch.testing.assert_close(get_surrogate(name, **{pname: 2.0}).derivative(x.detach()), x.grad)


@pytest.mark.parametrize("name", ["sigmoid", "atan", "fast_sigmoid"])
@pytest.mark.parametrize("param", [0.5, 3.0])
def test_derivative_gradcheck_against_primitive_finite_differences(name, param):
    """Central finite differences of the smooth primitive equal the surrogate derivative."""
    _, p, pname, _ = ANALYTIC[name]
    sur = get_surrogate(name, **{pname: param})
    # 40 points: 0 is left out, where fast_sigmoid's derivative has a cusp (central differences are
    # only first-order accurate there)
    x = torch.linspace(-2.0, 2.0, 40, dtype=torch.float64)
    h = 1e-6
    fd = (p(x + h, param) - p(x - h, param)) / (2 * h)
    torch.testing.assert_close(sur.derivative(x), fd, rtol=1e-7, atol=1e-8)


def test_exp_default_is_bondarev_eq13():
    """Bondarev eq. 13: f'(v - s) = exp(-|v - s|)."""
    x = torch.linspace(-4, 4, 33, dtype=torch.float64)
    torch.testing.assert_close(get_surrogate("exp").derivative(x), torch.exp(-(x.abs())))


@pytest.mark.parametrize("name", list(ANALYTIC))
@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_neuron_gradient_uses_surrogate_at_distance_to_threshold(name, neuron):
    """One step of a neuron: dS/dx = f'(H - threshold) with H = x (rest at 0)."""
    d, _, pname, _ = ANALYTIC[name]
    param = 0.7
    torch.set_default_dtype(torch.float64)
    try:
        kw = dict(threshold=0.8, surrogate=name, surrogate_param=param)
        m = dnmsnn.LIF(beta=0.9, **kw) if neuron == "lif" else dnmsnn.IF(**kw)
    finally:
        torch.set_default_dtype(torch.float32)
    assert getattr(m.surrogate, pname) == param
    x = torch.linspace(-1.0, 2.5, 36, dtype=torch.float64).reshape(1, 4, 9).requires_grad_(True)
    m(x).sum().backward()
    torch.testing.assert_close(x.grad, d(x.detach() - 0.8, param), rtol=1e-12, atol=1e-15)


def test_surrogate_instance_passes_through():
    sur = SURROGATES["triangle"](width=0.5)
    assert get_surrogate(sur) is sur
    m = dnmsnn.LIF(beta=0.5, surrogate=sur)
    assert m.surrogate is sur


@pytest.mark.parametrize("name", ["foo", "", "EXP", None, 3])
def test_unknown_surrogate_name(name):
    with pytest.raises(InputError):
        get_surrogate(name)


@pytest.mark.parametrize("name", list(ANALYTIC))
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_bad_parameter_value(name, bad):
    pname = ANALYTIC[name][2]
    with pytest.raises(InputError):
        get_surrogate(name, **{pname: bad})
    with pytest.raises(InputError):
        SURROGATES[name](**{pname: bad})
    with pytest.raises(InputError):
        dnmsnn.LIF(beta=0.5, surrogate=name, surrogate_param=bad)


def test_wrong_parameter_name_and_double_specification():
    with pytest.raises(InputError):
        get_surrogate("exp", slope=2.0)
    with pytest.raises(InputError):
        get_surrogate(SURROGATES["exp"](width=2.0), width=1.0)
