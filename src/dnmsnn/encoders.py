"""Encoders: analog frames [B, ...] -> input sequences [T, B, ...].

Poisson (Bondarev): at each step k, input j spikes when its intensity exceeds a fresh uniform
random number, ``b_j[k] = 1 if x_j > u_jk, u_jk ~ U[0, 1)``, so the mean rate equals the intensity.
Every encoder draws from its own seedable ``torch.Generator``; :meth:`Encoder.eval_stream` swaps
in a fixed-seed generator for evaluation so test accuracy is repeatable and the training stream
is left untouched.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ._checks import check_finite, check_positive_int
from .errors import InputError


class Encoder(nn.Module):
    """Base class: ``forward(x [B, ...]) -> [T, B, ...]`` with its own random stream."""

    def __init__(self, T: int, seed: int | None = None) -> None:
        super().__init__()
        self.T = check_positive_int(T, "T")
        self.generator = torch.Generator()
        if seed is None:  # draw from the global RNG, so torch.manual_seed() makes unseeded encoders repeatable
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator.manual_seed(int(seed))

    def _check(self, x: torch.Tensor, low: float, high: float) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise InputError(f"{type(self).__name__} expects a floating tensor [B, ...] of intensities")
        if x.dim() < 1:
            raise InputError(f"{type(self).__name__} expects at least a batch dimension, got a scalar")
        check_finite(x, type(self).__name__)
        if x.numel() and (float(x.min()) < low or float(x.max()) > high):
            raise InputError(f"{type(self).__name__} expects intensities in [{low}, {high}], got values in "
                             f"[{float(x.min()):.4g}, {float(x.max()):.4g}]; normalise the images first")

    def with_T(self, T: int) -> Encoder:
        """Set the sequence length (e.g. train at T = 20, test at T = 5) and return self."""
        self.T = check_positive_int(T, "T")
        return self

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def get_rng_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    @contextlib.contextmanager
    def eval_stream(self, seed: int) -> Iterator[Encoder]:
        """Within the block draw from a generator seeded with ``seed``; restore the training stream after."""
        saved = self.generator.get_state()
        self.generator.manual_seed(int(seed))
        try:
            yield self
        finally:
            self.generator.set_state(saved)

    def _uniform(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.rand((self.T, *x.shape), generator=self.generator, dtype=x.dtype)
        return u.to(x.device)

    def extra_repr(self) -> str:
        return f"T={self.T}"


class PoissonEncoder(Encoder):
    """``b[k] = 1 if x > u[k] else 0``, ``u[k] ~ U[0, 1)`` fresh at every step (Bondarev); x in [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, 0.0, 1.0)
        return (x.unsqueeze(0) > self._uniform(x)).to(x.dtype)


class SignedPoissonEncoder(Encoder):
    """``b[k] = sign(x) if |x| > u[k] else 0`` for x in [-1, 1] (negative intensities give -1 spikes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, -1.0, 1.0)
        return torch.sign(x).unsqueeze(0) * (x.abs().unsqueeze(0) > self._uniform(x)).to(x.dtype)


class DirectEncoder(Encoder):
    """The analog frame at every step: ``b[k] = x`` (no randomness; a view, no copy)."""

    def __init__(self, T: int, seed: int | None = None) -> None:
        super().__init__(T, seed=0 if seed is None else seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, float("-inf"), float("inf"))
        return x.unsqueeze(0).expand(self.T, *x.shape)


ENCODERS: dict[str, type[Encoder]] = {
    "poisson": PoissonEncoder,
    "signed_poisson": SignedPoissonEncoder,
    "direct": DirectEncoder,
}


def create_encoder(name: str, T: int, seed: int | None = None) -> Encoder:
    """Build an encoder by name: ``poisson``, ``signed_poisson`` or ``direct``."""
    if name not in ENCODERS:
        raise InputError(f"unknown encoder {name!r}; available: {', '.join(ENCODERS)}")
    return ENCODERS[name](T, seed=seed)
