"""Small input checks shared by the public entry points; each raises InputError with the fix."""
from __future__ import annotations

import math

import torch

from .errors import InputError


def check_sequence(x: torch.Tensor, who: str, min_dim: int = 2, exact_dim: int | None = None) -> None:
    """Require a floating tensor laid out [T, B, ...] (T and B at least 1)."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{who} expects a torch.Tensor laid out [T, B, ...], got {type(x).__name__}")
    if exact_dim is not None and x.dim() != exact_dim:
        raise InputError(
            f"{who} expects a {exact_dim}-D input [T, B, ...] ({exact_dim - 2} feature dims), got shape "
            f"{tuple(x.shape)}; multi-step layers take time first, then batch"
        )
    if x.dim() < min_dim:
        raise InputError(f"{who} expects an input laid out [T, B, ...], got shape {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{who} got an empty time or batch dimension: shape {tuple(x.shape)} (T and B must be >= 1)")
    if not x.is_floating_point():
        raise InputError(f"{who} expects a floating-point tensor, got dtype {x.dtype}; convert with .float()")


def check_finite(x: torch.Tensor, who: str) -> None:
    """Reject NaN / Inf values (they would silently poison every later step).

    Fast path: one reduction, no input-sized temporaries (a NaN or Inf anywhere makes the sum non-finite).
    Only if the sum is not finite (NaN/Inf present, or a float overflow of huge finite values) is the
    exact element-wise test run, one slice at a time, so memory stays independent of T.
    """
    if not x.is_floating_point() or x.numel() == 0 or bool(torch.isfinite(x.sum())):
        return
    for part in (x if x.dim() > 0 else x.reshape(1)):
        if not bool(torch.isfinite(part).all()):
            raise InputError(f"{who} received NaN or Inf values; clean or clip the input first")


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_choice(value: str, name: str, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
