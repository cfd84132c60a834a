"""Spike functions: Heaviside forward, surrogate derivative backward.

Forward:  s = H(x) with H(x) = 1 if x >= 0 (or x > 0 when ``strict``), else 0, where x = v - threshold.
Backward: ds/dx := f'(x), the surrogate derivative named below (x is the distance to the threshold).

| name | f'(x) | parameter (default) |
|---|---|---|
| ``exp`` | exp(-abs(x) / width) -- Bondarev eq. 13 exactly with width = 1 | width (1.0) |
| ``sigmoid`` | slope * sig(slope x) * (1 - sig(slope x)) | slope (4.0) |
| ``atan`` | alpha / 2 / (1 + (pi/2 * alpha * x)^2) | alpha (2.0) |
| ``triangle`` | max(0, 1 - abs(x) / width) / width | width (1.0) |
| ``rect`` | 1/width if abs(x) < width/2 else 0 | width (1.0) |
| ``fast_sigmoid`` | 1 / (1 + slope abs(x))^2  (SuperSpike) | slope (1.0) |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import check_positive
from ..errors import InputError


@dataclass(frozen=True)
class Surrogate:
    """Base class: a named surrogate derivative f'(x) with one shape parameter."""

    name: ClassVar[str] = ""
    param: ClassVar[str] = ""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __post_init__(self) -> None:
        check_positive(getattr(self, self.param), f"surrogate {self.name!r} {self.param}")


@dataclass(frozen=True)
class Exp(Surrogate):
    """f'(x) = exp(-|x| / width); width = 1 is Bondarev's eq. 13."""

    width: float = 1.0
    name: ClassVar[str] = "exp"
    param: ClassVar[str] = "width"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x.abs() / self.width)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """f'(x) = k sig(kx)(1 - sig(kx)), the derivative of sig(kx)."""

    slope: float = 4.0
    name: ClassVar[str] = "sigmoid"
    param: ClassVar[str] = "slope"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1.0 - s)


@dataclass(frozen=True)
class ATan(Surrogate):
    """f'(x) = (alpha/2) / (1 + (pi/2 alpha x)^2), the derivative of atan(pi/2 alpha x)/pi + 1/2."""

    alpha: float = 2.0
    name: ClassVar[str] = "atan"
    param: ClassVar[str] = "alpha"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """f'(x) = max(0, 1 - |x|/width) / width (unit area)."""

    width: float = 1.0
    name: ClassVar[str] = "triangle"
    param: ClassVar[str] = "width"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - x.abs() / self.width, min=0.0) / self.width


@dataclass(frozen=True)
class Rect(Surrogate):
    """f'(x) = 1/width on |x| < width/2, else 0 (unit area)."""

    width: float = 1.0
    name: ClassVar[str] = "rect"
    param: ClassVar[str] = "width"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.width / 2.0).to(x.dtype) / self.width


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """f'(x) = 1 / (1 + slope |x|)^2 (SuperSpike; the surrogate all peer libraries share)."""

    slope: float = 1.0
    name: ClassVar[str] = "fast_sigmoid"
    param: ClassVar[str] = "slope"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (1.0 + self.slope * x.abs()) ** 2


SURROGATES: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (Exp, Sigmoid, ATan, Triangle, Rect, FastSigmoid)
}


def get_surrogate(spec: str | Surrogate, **params: float) -> Surrogate:
    """Return a Surrogate from a name (``"exp"``) plus optional parameter, or pass an instance through."""
    if isinstance(spec, Surrogate):
        if params:
            raise InputError("give surrogate parameters either in the instance or as keywords, not both")
        return spec
    if not isinstance(spec, str) or spec not in SURROGATES:
        raise InputError(f"unknown surrogate {spec!r}; available: {', '.join(SURROGATES)}")
    cls = SURROGATES[spec]
    unknown = set(params) - {cls.param}
    if unknown:
        raise InputError(f"surrogate {spec!r} takes the parameter {cls.param!r}, not {sorted(unknown)}")
    return cls(**params)


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate, strict: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None, None


def spike(x: torch.Tensor, surrogate: Surrogate, strict: bool = False) -> torch.Tensor:
    """s = H(x) forward (x >= 0, or x > 0 if strict) with the surrogate derivative f'(x) backward."""
    return _SpikeFn.apply(x, surrogate, strict)
