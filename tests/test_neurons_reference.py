"""LIF / IF / Integrator against the literal NumPy reference of the papers (tests/reference.py).

Spikes must agree exactly and pre-reset potentials H to far better than 1e-6. Modules are built with
float64 as the default dtype (thresholds are buffers in the default dtype) and fed float64 inputs, so
the library and the reference do the same arithmetic; a separate test covers what happens when a
default (float32) module receives float64 input.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref
import torch
from helpers import default_dtype
from hypothesis import given, settings
from hypothesis import strategies as st

import dnmsnn
from dnmsnn import IF, LIF, InputError, Integrator

POT_TOL = 1e-10  # float64 library vs float64 reference: same formulas, rounding differences only
SHAPES = [(6, 3, 5), (5, 2), (4, 2, 3, 4, 4), (9, 1, 1)]


def build(cls, dtype: torch.dtype = torch.float64, **kw):
    """A neuron module whose threshold buffer / parameter is created in ``dtype``."""
    with default_dtype(dtype):
        return cls(**kw)


def as_numpy(value) -> np.ndarray | float:
    if isinstance(value, torch.Tensor):
        return value.detach().double().numpy()
    return value


def reference_of(cls, kw: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(spikes, H) of the reference neuron matching the module ``cls(**kw)``."""
    th = as_numpy(kw.get("threshold", 1.0))
    v_reset = kw.get("v_reset", 0.0)
    strict = kw.get("strict", False)
    reset = kw.get("reset", "zero")
    if cls is IF:
        return ref.if_neuron(x, th, v_reset, strict, reset=reset)
    if kw.get("beta") is not None:
        return ref.lif_beta(x, kw["beta"], th, v_reset, strict=strict, reset=reset)
    return ref.lif_tau(x, kw["tau"], th, v_reset, strict, reset=reset)


NEURON_CASES = {
    "lif_beta_bondarev": (LIF, dict(beta=0.8187)),
    "lif_beta_threshold": (LIF, dict(beta=0.6, threshold=0.7)),
    "lif_beta_vreset_neg": (LIF, dict(beta=0.7, threshold=0.8, v_reset=-0.4)),
    "lif_beta_vreset_pos": (LIF, dict(beta=0.9, threshold=1.3, v_reset=0.25)),
    "lif_beta_strict": (LIF, dict(beta=0.8, strict=True)),
    "lif_beta_subtract": (LIF, dict(beta=0.8, reset="subtract")),
    "lif_beta_subtract_vreset_strict": (LIF, dict(beta=0.75, threshold=0.9, v_reset=-0.5, reset="subtract",
                                                  strict=True)),
    "lif_beta_one": (LIF, dict(beta=1.0, threshold=1.1)),
    "lif_beta_detach_reset": (LIF, dict(beta=0.8, detach_reset=True)),
    "lif_tau": (LIF, dict(tau=2.0)),
    "lif_tau_vreset_strict": (LIF, dict(tau=3.0, threshold=0.7, v_reset=-0.5, strict=True)),
    "lif_tau_subtract": (LIF, dict(tau=1.5, threshold=0.9, reset="subtract")),
    "lif_tau_one": (LIF, dict(tau=1.0, threshold=0.6)),
    "if": (IF, dict()),
    "if_strict_vreset": (IF, dict(threshold=1.5, v_reset=-1.0, strict=True)),
    "if_subtract": (IF, dict(threshold=0.8, reset="subtract")),
    "if_subtract_strict": (IF, dict(threshold=1.2, reset="subtract", strict=True)),
}
CASE_IDS = list(NEURON_CASES)


def random_input(shape, seed: int = 0, loc: float = 0.5, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, scale, size=shape)


# ------------------------------------------------------------------------------------------------
# against the reference
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", CASE_IDS)
def test_neuron_matches_reference(case, shape):
    cls, kw = NEURON_CASES[case]
    m = build(cls, record=True, **kw)
    x = random_input(shape, seed=len(case) + len(shape)) * kw.get("tau", 1.0)  # tau form: H ~ x / tau
    y = m(torch.from_numpy(x))
    s_ref, h_ref = reference_of(cls, kw, x)
    assert y.shape == x.shape and y.dtype == torch.float64
    np.testing.assert_array_equal(y.numpy(), s_ref)
    np.testing.assert_allclose(m.v_trace.numpy(), h_ref, rtol=0, atol=POT_TOL)
    if x.size >= 60:  # the comparison is not vacuous
        assert 0.02 < s_ref.mean() < 0.98


PER_NEURON = [
    ((6, 3, 5), (5,)),
    ((6, 3, 5), (1, 5)),
    ((6, 3, 5), (3, 5)),  # one threshold per batch element and neuron: still broadcasts
    ((4, 2, 3, 4, 4), (3, 1, 1)),  # per channel, conv-like
    ((4, 2, 3, 4, 4), (3, 4, 4)),
    ((4, 2, 3, 4, 4), (4,)),  # per column
]
FORMS = {
    "beta": (LIF, dict(beta=0.85)),
    "beta_vreset": (LIF, dict(beta=0.85, v_reset=-0.2, strict=True)),
    "tau": (LIF, dict(tau=2.0, reset="subtract")),
    "if": (IF, dict()),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("shape,thr_shape", PER_NEURON, ids=lambda s: "x".join(map(str, s)))
def test_per_neuron_threshold_matches_reference(form, shape, thr_shape):
    cls, kw = FORMS[form]
    rng = np.random.default_rng(7)
    thr = rng.uniform(0.3, 1.5, size=thr_shape)
    kw = dict(kw, threshold=torch.from_numpy(thr))
    m = build(cls, record=True, **kw)
    assert tuple(m.threshold.shape) == thr_shape
    x = random_input(shape, seed=3)
    y = m(torch.from_numpy(x))
    s_ref, h_ref = reference_of(cls, kw, x)
    np.testing.assert_array_equal(y.numpy(), s_ref)
    np.testing.assert_allclose(m.v_trace.numpy(), h_ref, rtol=0, atol=POT_TOL)


# Hand-worked sequences whose potentials hit the threshold exactly (all values are dyadic, so exact in
# float32 and float64): (module, kwargs, x for one neuron over time, spikes for H >= th, spikes for H > th).
EXACT = {
    "if_thr2": (IF, dict(threshold=2.0), [1, 1, 1, 1, 2, 0.5], [0, 1, 0, 1, 1, 0], [0, 0, 1, 0, 1, 0]),
    "lif_beta_half": (LIF, dict(beta=0.5), [1, 0.5, 0.75], [1, 0, 1], [0, 0, 1]),
    "lif_beta_vreset": (LIF, dict(beta=0.5, v_reset=-1.0), [2, 1, 1.5], [1, 0, 1], [0, 0, 1]),
    "lif_tau2": (LIF, dict(tau=2.0), [1, 1.5, 1, 3], [0, 1, 0, 1], [0, 0, 0, 1]),
    "lif_tau4_subtract": (LIF, dict(tau=4.0, reset="subtract"), [4, 2], [1, 0], [0, 1]),
    "if_subtract": (IF, dict(reset="subtract"), [1.5, 0.5, 1.0], [1, 1, 1], [1, 0, 1]),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("strict", [False, True], ids=["ge", "gt"])
@pytest.mark.parametrize("case", list(EXACT))
def test_exact_threshold_ge_vs_gt(case, strict, dtype):
    cls, kw, xs, expect_ge, expect_gt = EXACT[case]
    kw = dict(kw, strict=strict)
    expected = np.array(expect_gt if strict else expect_ge, dtype=np.float64)[:, None, None]
    x = np.array(xs, dtype=np.float64)[:, None, None]
    s_ref, _ = reference_of(cls, kw, x)
    np.testing.assert_array_equal(s_ref, expected)  # the reference agrees with the hand computation
    m = build(cls, dtype=dtype, **kw)
    y = m(torch.tensor(x, dtype=dtype))
    np.testing.assert_array_equal(y.double().numpy(), expected)


@pytest.mark.parametrize("strict", [False, True], ids=["ge", "gt"])
def test_exact_threshold_per_neuron(strict):
    """IF with thresholds [1, 2, 3] driven by a constant 1: H climbs through integers and hits each one."""
    expected = np.array([[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float64).T  # [T, neuron]
    if strict:
        expected = np.array([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64).T
    m = build(IF, threshold=torch.tensor([1.0, 2.0, 3.0]), strict=strict)
    x = torch.ones(4, 2, 3, dtype=torch.float64)
    y = m(x)
    for b in range(2):
        np.testing.assert_array_equal(y[:, b].numpy(), expected)
    s_ref, _ = ref.if_neuron(x.numpy(), np.array([1.0, 2.0, 3.0]), strict=strict)
    np.testing.assert_array_equal(y.numpy(), s_ref)


# ------------------------------------------------------------------------------------------------
# dtypes
# ------------------------------------------------------------------------------------------------


def test_float32_module_with_float64_input_representable_threshold():
    """A module built in the default float32 takes float64 input, answers in float64 and agrees with
    the reference (a fixed threshold is stored in float64 and cast to the input's dtype)."""
    kw = dict(beta=0.75, threshold=0.75, v_reset=-0.25)
    m = LIF(record=True, **kw)
    assert m.threshold.dtype == torch.float64
    x = random_input((8, 4, 6), seed=11)
    y = m(torch.from_numpy(x))
    assert y.dtype == torch.float64 and m.v_trace.dtype == torch.float64
    s_ref, h_ref = reference_of(LIF, kw, x)
    np.testing.assert_array_equal(y.numpy(), s_ref)
    np.testing.assert_allclose(m.v_trace.numpy(), h_ref, rtol=0, atol=POT_TOL)


def test_float32_module_with_float64_input_unrepresentable_threshold():
    """threshold=0.3 is not a float32 number: a float64 potential of exactly 0.3 must still fire (H >= 0.3)."""
    m = IF(threshold=0.3)
    x = torch.tensor([[0.3]], dtype=torch.float64)  # H[0] = 0.3 == threshold in float64
    s_ref, _ = ref.if_neuron(x.numpy(), 0.3)
    assert s_ref[0, 0] == 1.0
    assert m(x)[0, 0].item() == 1.0


def test_float32_module_matches_reference_within_float32_precision():
    kw = dict(beta=0.8187, threshold=0.5)
    m = LIF(record=True, **kw)
    x = random_input((10, 4, 8), seed=5).astype(np.float32)
    y = m(torch.from_numpy(x))
    assert y.dtype == torch.float32
    s_ref, h_ref = reference_of(LIF, kw, x.astype(np.float64))
    np.testing.assert_array_equal(y.numpy(), s_ref)
    np.testing.assert_allclose(m.v_trace.numpy(), h_ref, rtol=0, atol=1e-5)


def test_double_module_keeps_float64_threshold():
    """``.double()`` converts the threshold buffer; values given exactly stay exact."""
    m = LIF(beta=0.5, threshold=1.0).double()
    assert m.threshold.dtype == torch.float64
    y = m(torch.tensor([[1.0], [0.5], [0.75]], dtype=torch.float64))
    np.testing.assert_array_equal(y.numpy().ravel(), [1, 0, 1])


# ------------------------------------------------------------------------------------------------
# integrators
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [None, 1.0, 0.9, 0.5], ids=lambda b: f"beta={b}")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_integrator_matches_reference(beta, shape):
    m = Integrator(beta=beta, record=True)
    x = random_input(shape, seed=2)
    v = m(torch.from_numpy(x))
    v_ref = ref.integrator(x, beta)
    assert v.shape == x.shape and v.dtype == torch.float64
    np.testing.assert_allclose(v.numpy(), v_ref, rtol=0, atol=POT_TOL)
    np.testing.assert_allclose(m.v_trace.numpy(), v_ref, rtol=0, atol=POT_TOL)
    # state at rest on every call; step loop equals forward
    torch.testing.assert_close(m(torch.from_numpy(x)), v, rtol=0, atol=0)
    state, steps = None, []
    for k in range(x.shape[0]):
        out, state = m.step(torch.from_numpy(x[k]), state)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps), v, rtol=0, atol=1e-12)


def test_integrator_total_is_total_input():
    """Wu et al.: the output layer's V^N(T) is the total input current FI = sum_t I(t)."""
    x = torch.from_numpy(random_input((7, 3, 4), seed=1))
    torch.testing.assert_close(Integrator()(x)[-1], x.sum(0), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# state, step(), record
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASE_IDS)
def test_state_starts_at_rest_on_every_call(case):
    cls, kw = NEURON_CASES[case]
    m = build(cls, **kw)
    x = torch.from_numpy(random_input((6, 3, 5), seed=4))
    first = m(x)
    m(torch.from_numpy(random_input((4, 2, 5), seed=5, loc=3.0)))  # a different call in between
    again = m(x)
    assert torch.equal(first, again)
    assert torch.equal(m(x[:3]), first[:3])  # a prefix is not influenced by any earlier call


@pytest.mark.parametrize("case", CASE_IDS)
def test_step_loop_equals_forward(case):
    cls, kw = NEURON_CASES[case]
    m = build(cls, **kw)
    x = torch.from_numpy(random_input((4, 2, 3, 4, 4), seed=6))
    state, outs = None, []
    for k in range(x.shape[0]):
        s, state = m.step(x[k], state)
        outs.append(s)
    assert torch.equal(torch.stack(outs), m(x))


def test_record_false_keeps_no_trace_and_trace_is_detached():
    x = torch.from_numpy(random_input((5, 2, 3), seed=8)).requires_grad_(True)
    m = build(LIF, beta=0.9)
    m(x)
    assert m.v_trace is None
    m.record = True
    m(x)
    assert m.v_trace is not None and not m.v_trace.requires_grad
    _, h_ref = ref.lif_beta(x.detach().numpy(), 0.9, 1.0)
    np.testing.assert_allclose(m.v_trace.numpy(), h_ref, rtol=0, atol=POT_TOL)


def test_detach_reset_changes_only_the_gradient():
    x = torch.from_numpy(random_input((6, 3, 4), seed=9))
    a, b = build(LIF, beta=0.8), build(LIF, beta=0.8, detach_reset=True)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = a(xa), b(xb)
    assert torch.equal(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    assert not torch.allclose(xa.grad, xb.grad)


# ------------------------------------------------------------------------------------------------
# learnable threshold
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("thr", [0.6, torch.tensor([0.4, 0.6, 0.8, 1.0])], ids=["scalar", "per_neuron"])
def test_learn_threshold_is_a_parameter_with_gradient(thr):
    m = build(LIF, beta=0.8, threshold=thr, learn_threshold=True)
    assert isinstance(m.threshold, torch.nn.Parameter) and m.threshold.requires_grad
    assert any(p is m.threshold for p in m.parameters())
    x = torch.from_numpy(random_input((1, 5, 4), seed=10))
    m(x).sum().backward()
    # one step: S = H(x - th) with dS/dth = -exp(-|x - th|) (exp surrogate, width 1: Bondarev eq. 13)
    th = torch.as_tensor(thr, dtype=torch.float64)
    expected = -torch.exp(-(x[0] - th).abs()).sum(0)
    if th.dim() == 0:
        expected = expected.sum()
    assert m.threshold.grad is not None and m.threshold.grad.shape == m.threshold.shape
    torch.testing.assert_close(m.threshold.grad, expected, rtol=1e-12, atol=1e-12)


def test_learn_threshold_gradient_over_time():
    m = build(LIF, beta=0.8, threshold=0.7, learn_threshold=True, reset="subtract")
    x = torch.from_numpy(random_input((6, 3, 4), seed=12))
    m(x).sum().backward()
    assert m.threshold.grad is not None and torch.isfinite(m.threshold.grad).all()
    assert m.threshold.grad.item() != 0.0


def test_fixed_threshold_is_a_buffer():
    m = LIF(beta=0.8, threshold=0.7)
    assert "threshold" in dict(m.named_buffers()) and not list(m.parameters())
    assert "threshold" in m.state_dict()


# ------------------------------------------------------------------------------------------------
# invalid arguments
# ------------------------------------------------------------------------------------------------

BAD_CONSTRUCTORS = {
    "beta_0": (LIF, dict(beta=0)),
    "beta_1.5": (LIF, dict(beta=1.5)),
    "beta_negative": (LIF, dict(beta=-0.5)),
    "beta_nan": (LIF, dict(beta=float("nan"))),
    "beta_bool": (LIF, dict(beta=True)),
    "tau_0.5": (LIF, dict(tau=0.5)),
    "tau_inf": (LIF, dict(tau=float("inf"))),
    "beta_and_tau": (LIF, dict(beta=0.5, tau=2.0)),
    "neither": (LIF, dict()),
    "threshold_0": (LIF, dict(beta=0.5, threshold=0.0)),
    "threshold_-1": (LIF, dict(beta=0.5, threshold=-1.0)),
    "threshold_nan": (LIF, dict(beta=0.5, threshold=float("nan"))),
    "threshold_inf": (LIF, dict(beta=0.5, threshold=float("inf"))),
    "threshold_tensor_with_0": (LIF, dict(beta=0.5, threshold=torch.tensor([1.0, 0.0]))),
    "threshold_empty": (LIF, dict(beta=0.5, threshold=torch.tensor([]))),
    "reset_foo": (LIF, dict(beta=0.5, reset="foo")),
    "surrogate_foo": (LIF, dict(beta=0.5, surrogate="foo")),
    "surrogate_param_0": (LIF, dict(beta=0.5, surrogate_param=0.0)),
    "v_reset_at_threshold": (LIF, dict(beta=0.5, v_reset=1.0)),
    "v_reset_nan": (LIF, dict(beta=0.5, v_reset=float("nan"))),
    "if_threshold_0": (IF, dict(threshold=0.0)),
    "if_reset_foo": (IF, dict(reset="foo")),
    "if_surrogate_foo": (IF, dict(surrogate="nope")),
    "integrator_beta_0": (Integrator, dict(beta=0.0)),
    "integrator_beta_1.5": (Integrator, dict(beta=1.5)),
}


@pytest.mark.parametrize("case", list(BAD_CONSTRUCTORS))
def test_invalid_arguments_raise_input_error(case):
    cls, kw = BAD_CONSTRUCTORS[case]
    with pytest.raises(InputError):
        cls(**kw)


BAD_INPUTS = {
    "rank0": torch.tensor(1.0),
    "rank1": torch.ones(5),
    "int64": torch.ones(3, 2, 4, dtype=torch.int64),
    "int32": torch.ones(3, 2, dtype=torch.int32),
    "bool": torch.ones(3, 2, dtype=torch.bool),
    "empty_T": torch.ones(0, 2, 3),
    "empty_B": torch.ones(3, 0, 3),
    "list": [[1.0, 2.0]],
}


@pytest.mark.parametrize("module", ["lif", "if", "integrator"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_invalid_input_raises_input_error(module, case):
    m = {"lif": LIF(beta=0.9), "if": IF(), "integrator": Integrator()}[module]
    with pytest.raises(InputError):
        m(BAD_INPUTS[case])


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError) and issubclass(InputError, dnmsnn.DnmsnnError)


# ------------------------------------------------------------------------------------------------
# whole Bondarev network (Bondarev eqs. 3-6) against reference.mlp_forward
# ------------------------------------------------------------------------------------------------


def _poisson_spikes(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=shape[1:]) > rng.uniform(size=shape)).astype(np.float64)


def test_network_with_per_layer_thresholds_matches_reference():
    sizes, thresholds, beta = [12, 7, 5, 3], [0.6, 0.4], 0.8187
    rng = np.random.default_rng(0)
    Ws = [rng.uniform(-1, 1, size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
    with default_dtype(torch.float64):
        net = dnmsnn.Network(
            dnmsnn.Linear(12, 7, bias=False), LIF(beta=beta, threshold=thresholds[0], record=True),
            dnmsnn.Linear(7, 5, bias=False), LIF(beta=beta, threshold=thresholds[1], record=True),
            dnmsnn.Linear(5, 3, bias=False), Integrator(),
            readout="final", input_shape=(12,), num_classes=3,
        )
    linears = [m for m in net if isinstance(m, dnmsnn.Linear)]
    with torch.no_grad():
        for lin, W in zip(linears, Ws, strict=True):
            lin.weight.copy_(torch.from_numpy(W))
    b = _poisson_spikes((10, 4, 12), seed=1)
    scores, hidden_s, hidden_h = ref.mlp_forward(Ws, b, beta, thresholds)
    trace = net(torch.from_numpy(b))
    np.testing.assert_allclose(trace.detach().numpy(), scores, rtol=0, atol=POT_TOL)
    np.testing.assert_allclose(net.classify(torch.from_numpy(b)).detach().numpy(), scores[-1], rtol=0, atol=POT_TOL)
    lifs = [m for m in net if isinstance(m, LIF)]
    for lif, h in zip(lifs, hidden_h, strict=True):
        np.testing.assert_allclose(lif.v_trace.numpy(), h, rtol=0, atol=POT_TOL)
    assert all(0 < s.mean() < 1 for s in hidden_s)


def test_registered_mlp_matches_reference():
    with default_dtype(torch.float64):
        net = dnmsnn.models.create("mlp", input_shape=(2, 3, 3), hidden=(8, 6), num_classes=4,
                                   beta=0.8187, threshold=0.5)
    Ws = [m.weight.detach().numpy().copy() for m in net if isinstance(m, dnmsnn.Linear)]
    assert [W.shape for W in Ws] == [(8, 18), (6, 8), (4, 6)]
    x = _poisson_spikes((12, 5, 2, 3, 3), seed=2)
    scores, hidden_s, _ = ref.mlp_forward(Ws, x.reshape(12, 5, 18), 0.8187, [0.5, 0.5])
    logits = net.classify(torch.from_numpy(x))
    np.testing.assert_allclose(logits.detach().numpy(), scores[-1], rtol=0, atol=POT_TOL)
    assert all(s.sum() > 0 for s in hidden_s)


# ------------------------------------------------------------------------------------------------
# property tests
# ------------------------------------------------------------------------------------------------


@st.composite
def neuron_setups(draw):
    """A random neuron (form, strict, reset, v_reset, scalar or broadcast per-neuron threshold) and input.

    With ``quantized`` every number is a small dyadic fraction, so all arithmetic is exact and
    potentials land exactly on the threshold often: a sharp test of >= versus >.
    """
    T = draw(st.integers(1, 6))
    step_shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=4)))  # [B, *features]
    form = draw(st.sampled_from(["beta", "tau", "if"]))
    quantized = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):  # per-neuron threshold broadcasting against [B, *features]
        drop = draw(st.integers(0, len(step_shape) - 1))
        thr_shape = tuple(d if draw(st.booleans()) else 1 for d in step_shape[drop:])
    else:
        thr_shape = ()
    if quantized:
        x = rng.integers(-4, 9, size=(T, *step_shape)) * 0.25
        thr = rng.integers(1, 9, size=thr_shape) * 0.25
        beta = draw(st.sampled_from([0.5, 0.75, 1.0]))
        tau = draw(st.sampled_from([1.0, 2.0, 4.0]))
        v_reset = draw(st.sampled_from([0.0, -0.25, -1.0]))
    else:
        x = rng.normal(0.5, 1.0, size=(T, *step_shape))
        thr = rng.uniform(0.2, 2.0, size=thr_shape)
        beta = draw(st.floats(0.05, 1.0))
        tau = draw(st.floats(1.0, 10.0))
        v_reset = draw(st.floats(-1.0, 0.0))
    kw = dict(threshold=float(thr) if thr_shape == () else torch.from_numpy(thr), v_reset=v_reset,
              strict=draw(st.booleans()), reset=draw(st.sampled_from(["zero", "subtract"])))
    cls = IF if form == "if" else LIF
    if form == "beta":
        kw["beta"] = beta
    elif form == "tau":
        kw["tau"] = tau
    return cls, kw, x


@settings(max_examples=60, deadline=None)
@given(neuron_setups())
def test_property_neurons_match_reference(setup):
    cls, kw, x = setup
    m = build(cls, record=True, **kw)
    xt = torch.from_numpy(x)
    y = m(xt)
    assert y.shape == xt.shape and y.dtype == xt.dtype
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
    s_ref, h_ref = reference_of(cls, kw, x)
    np.testing.assert_array_equal(y.numpy(), s_ref)
    np.testing.assert_allclose(m.v_trace.numpy(), h_ref, rtol=0, atol=1e-9)
    assert torch.equal(m(xt), y)  # starts at rest again


@settings(max_examples=40, deadline=None)
@given(neuron_setups())
def test_property_step_loop_and_full_threshold_agree(setup):
    cls, kw, x = setup
    m = build(cls, **kw)
    xt = torch.from_numpy(x)
    y = m(xt)
    state, outs = None, []
    for k in range(xt.shape[0]):
        s, state = m.step(xt[k], state)
        outs.append(s)
    assert torch.equal(torch.stack(outs), y)
    # a broadcast per-neuron threshold acts like the same threshold expanded to every neuron
    full = torch.as_tensor(kw["threshold"], dtype=torch.float64).expand(xt.shape[1:]).clone()
    assert torch.equal(build(cls, **dict(kw, threshold=full))(xt), y)


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 8), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       beta=st.one_of(st.none(), st.floats(0.05, 1.0)), seed=st.integers(0, 2**32 - 1))
def test_property_integrator(T, shape, beta, seed):
    x = np.random.default_rng(seed).normal(size=(T, *shape))
    m = Integrator(beta=beta)
    v = m(torch.from_numpy(x))
    np.testing.assert_allclose(v.numpy(), ref.integrator(x, beta), rtol=0, atol=1e-9)
    assert torch.equal(m(torch.from_numpy(x)), v)


def test_reference_heaviside_and_reset_helpers():
    """The reference's own building blocks, checked against the equations by hand."""
    assert ref.heaviside(0.0) == 1.0 and ref.heaviside(0.0, strict=True) == 0.0
    assert ref.heaviside(-1e-300) == 0.0 and ref.heaviside(1e-300, strict=True) == 1.0
    assert ref.reset_potential(1.5, 1.0, 1.0, -0.5) == -0.5
    assert ref.reset_potential(0.7, 0.0, 1.0, -0.5) == 0.7
    assert ref.reset_potential(1.5, 1.0, 1.0, -0.5, "subtract") == 0.5
    s, h = ref.lif_beta_subtract([[1.5], [0.5]], 1.0, 1.0)
    np.testing.assert_array_equal(s.ravel(), [1, 1])
    np.testing.assert_array_equal(h.ravel(), [1.5, 1.0])
    s, h = ref.lif_tau_subtract([[4.0], [2.0]], 4.0, 1.0)
    np.testing.assert_array_equal(h.ravel(), [1.0, 0.5])
    s, h = ref.if_neuron_subtract([[2.5], [0.0]], 1.0)
    np.testing.assert_array_equal(h.ravel(), [2.5, 1.5])
    assert math.isclose(ref.sigmoid(0.0), 0.5) and ref.sigmoid(-800.0) == 0.0
