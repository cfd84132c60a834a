"""Encoders: Poisson rate coding (Bondarev), its signed variant, the direct (analog) encoder.

Bondarev: "at each time step, the pixel intensity was compared with a random number with a uniform
distribution. If the pixel intensity exceeded the value of a random number, then a spike was generated",
so the spike count of a pixel of intensity p over T steps is Binomial(T, p), intensity 0 never spikes
and intensity 1 always does.
"""
from __future__ import annotations

import math

import pytest
import torch

import dnmsnn
from dnmsnn import DirectEncoder, InputError, PoissonEncoder, SignedPoissonEncoder, create_encoder

Z = 5.0  # width of the binomial acceptance band, in standard deviations (deterministic: seeded streams)


def binomial_band(T: int, p: float) -> tuple[float, float]:
    sd = math.sqrt(T * p * (1.0 - p))
    return T * p - Z * sd - 1.0, T * p + Z * sd + 1.0


INTENSITIES = [0.0, 0.01, 0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_poisson_rates_match_intensities(dtype):
    T = 20000
    x = torch.tensor([INTENSITIES, INTENSITIES[::-1]], dtype=dtype)  # [B=2, 11]
    spikes = PoissonEncoder(T, seed=1)(x)
    assert spikes.shape == (T, 2, len(INTENSITIES)) and spikes.dtype == dtype
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    counts = spikes.sum(0)
    for b in range(2):
        for j, p in enumerate(x[b].tolist()):
            c = float(counts[b, j])
            if p == 0.0:
                assert c == 0.0
            elif p == 1.0:
                assert c == T
            else:
                lo, hi = binomial_band(T, p)
                assert lo <= c <= hi, (p, c, T)


def test_poisson_draws_are_fresh_per_step_and_per_input():
    """Lag-1 autocorrelation ~ 0 (a fresh number every step) and independent inputs (a shared number
    would nest the trains: P(both) = min(p, q) instead of p q)."""
    T = 20000
    x = torch.tensor([[0.5, 0.3, 0.7]])
    s = PoissonEncoder(T, seed=2)(x)[:, 0]
    a = s[:, 0]
    corr = torch.corrcoef(torch.stack([a[:-1], a[1:]]))[0, 1]
    assert abs(float(corr)) < Z / math.sqrt(T)
    both = float((s[:, 1] * s[:, 2]).mean())
    assert abs(both - 0.21) < Z * math.sqrt(0.21 * 0.79 / T)


def test_poisson_conv_shaped_input():
    x = torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    s = PoissonEncoder(7, seed=0)(x)
    assert s.shape == (7, 3, 2, 4, 4)
    assert torch.all(s[:, 0, 0, 0, 0] == 0) and torch.all(s[:, 0, 0, 0, 1] == 1)


@pytest.mark.parametrize("cls", [PoissonEncoder, SignedPoissonEncoder])
def test_seeding_gives_identical_streams(cls):
    x = torch.linspace(0.0, 1.0, 17).reshape(1, 17)
    a, b, c = cls(40, seed=123), cls(40, seed=123), cls(40, seed=124)
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, c(x))
    second = a(x)
    assert not torch.equal(first, second)  # the stream moves on
    a.seed(123)
    assert torch.equal(a(x), first)  # re-seeding restarts it
    state = a.get_rng_state()
    nxt = a(x)
    a.set_rng_state(state)
    assert torch.equal(a(x), nxt)


@pytest.mark.parametrize("cls", [PoissonEncoder, SignedPoissonEncoder])
def test_eval_stream_restores_training_stream(cls):
    x = torch.full((4, 6), 0.5)
    ref_enc = cls(30, seed=7)
    train1, train2 = ref_enc(x), ref_enc(x)

    enc = cls(30, seed=7)
    assert torch.equal(enc(x), train1)
    with enc.eval_stream(99) as e:
        assert e is enc
        eval_a = enc(x)
    assert torch.equal(enc(x), train2)  # the evaluation draws did not consume the training stream
    with enc.eval_stream(99):
        eval_b = enc(x)
    assert torch.equal(eval_a, eval_b)  # evaluation is repeatable
    assert not torch.equal(eval_a, train1)


def test_eval_stream_restores_on_exception():
    x = torch.full((2, 3), 0.5)
    enc, ref_enc = PoissonEncoder(20, seed=3), PoissonEncoder(20, seed=3)
    ref_enc(x)
    enc(x)
    with pytest.raises(RuntimeError), enc.eval_stream(5):
        enc(x)
        raise RuntimeError("boom")
    assert torch.equal(enc(x), ref_enc(x))


def test_signed_poisson_signs_and_rates():
    T = 20000
    vals = [-1.0, -0.7, -0.2, 0.0, 0.2, 0.7, 1.0]
    x = torch.tensor([vals])
    s = SignedPoissonEncoder(T, seed=4)(x)
    assert s.shape == (T, 1, len(vals))
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
    for j, v in enumerate(vals):
        col = s[:, 0, j]
        if v < 0:
            assert torch.all(col <= 0)
        elif v > 0:
            assert torch.all(col >= 0)
        else:
            assert torch.all(col == 0)
        count = float(col.abs().sum())
        p = abs(v)
        if p == 1.0:
            assert count == T
        elif p > 0:
            lo, hi = binomial_band(T, p)
            assert lo <= count <= hi


def test_direct_encoder_repeats_the_frame():
    x = torch.tensor([[0.25, -3.0, 7.5], [0.0, 1.0, 0.5]], dtype=torch.float64)  # analog: any finite value
    enc = DirectEncoder(5)
    y = enc(x)
    assert y.shape == (5, 2, 3) and y.dtype == torch.float64
    for k in range(5):
        assert torch.equal(y[k], x)
    assert torch.equal(enc(x), y)
    assert torch.equal(DirectEncoder(5, seed=11)(x), y)
    assert enc.with_T(2)(x).shape == (2, 2, 3)


def test_create_encoder_and_with_t():
    assert isinstance(create_encoder("poisson", 5, seed=0), PoissonEncoder)
    assert isinstance(create_encoder("signed_poisson", 5, seed=0), SignedPoissonEncoder)
    assert isinstance(create_encoder("direct", 5), DirectEncoder)
    with pytest.raises(InputError):
        create_encoder("rate", 5)
    enc = PoissonEncoder(20, seed=0)
    assert enc.with_T(5) is enc and enc(torch.full((1, 2), 0.5)).shape == (5, 1, 2)


BAD_VALUES = {
    "nan": torch.tensor([[0.5, float("nan")]]),
    "inf": torch.tensor([[0.5, float("inf")]]),
    "int": torch.tensor([[0, 1]]),
    "bool": torch.tensor([[True, False]]),
    "scalar": torch.tensor(0.5),
    "list": [[0.5]],
}
OUT_OF_RANGE = {
    PoissonEncoder: [torch.tensor([[-0.1, 0.5]]), torch.tensor([[0.5, 1.1]]), torch.tensor([[-1.0]])],
    SignedPoissonEncoder: [torch.tensor([[-1.1, 0.5]]), torch.tensor([[0.5, 1.5]])],
    DirectEncoder: [],
}
ENCODERS = [PoissonEncoder, SignedPoissonEncoder, DirectEncoder]


@pytest.mark.parametrize("case", list(BAD_VALUES))
@pytest.mark.parametrize("cls", ENCODERS, ids=lambda c: c.__name__)
def test_invalid_input_raises(cls, case):
    with pytest.raises(InputError):
        cls(4, seed=0)(BAD_VALUES[case])


@pytest.mark.parametrize("cls", [PoissonEncoder, SignedPoissonEncoder], ids=lambda c: c.__name__)
def test_out_of_range_raises(cls):
    for x in OUT_OF_RANGE[cls]:
        with pytest.raises(InputError):
            cls(4, seed=0)(x)


@pytest.mark.parametrize("T", [0, -3, 2.5, True, "5", None])
@pytest.mark.parametrize("cls", ENCODERS, ids=lambda c: c.__name__)
def test_invalid_T_raises(cls, T):
    with pytest.raises(InputError):
        cls(T, seed=0)
    with pytest.raises(InputError):
        cls(3, seed=0).with_T(T)


def test_unseeded_encoder_follows_torch_manual_seed():
    """Like nn.Linear's init, an unseeded encoder draws its seed from the global RNG: repeatable under
    torch.manual_seed, and it never re-seeds the global RNG non-deterministically."""
    x = torch.full((2, 32), 0.5)
    streams, after = [], []
    for _ in range(2):
        torch.manual_seed(0)
        enc = PoissonEncoder(8)
        after.append(torch.rand(3))
        streams.append(enc(x))
    assert torch.equal(streams[0], streams[1]) and torch.equal(after[0], after[1])


def test_unseeded_encoders_differ():
    x = torch.full((1, 64), 0.5)
    assert not torch.equal(PoissonEncoder(16)(x), PoissonEncoder(16)(x))


def test_encoders_are_modules_with_no_parameters():
    for cls in ENCODERS:
        enc = cls(3, seed=0)
        assert isinstance(enc, dnmsnn.Encoder) and isinstance(enc, torch.nn.Module)
        assert not list(enc.parameters())
