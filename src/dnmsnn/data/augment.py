"""Training-set augmentation of image batches [B,C,H,W], drawn from an explicit generator.

None of the three papers says it augments; these are ours, off by default, and a run that turns them on
says so in its config. Every draw comes from a ``torch.Generator`` seeded per epoch by the trainer, so a
resumed run sees the same augmented batches as an uninterrupted one.

* ``random_shift``: translate each image by (dy, dx), each uniform in {-s, ..., s}, filling with 0:
  ``out[b, c, i, j] = x[b, c, i - dy, j - dx]`` where that index lies inside the image, else 0.
* ``random_hflip``: mirror each image left-right with probability 1/2.
"""
from __future__ import annotations

import torch

from ..errors import InputError


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise InputError(f"augmentation expects a floating-point image batch [B,C,H,W], got "
                         f"{type(images).__name__} of shape {tuple(getattr(images, 'shape', ()))}")


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random translation by up to ``max_shift`` pixels in each direction, zero fill (a new tensor)."""
    _check_images(images)
    if max_shift < 0:
        raise InputError(f"random_shift: max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images.clone()
    b, c, h, w = images.shape
    s = max_shift
    padded = torch.nn.functional.pad(images, (s, s, s, s))
    # crop origin in the padded image: s - dy, s - dx with dy, dx uniform in [-s, s]
    oy = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]      # [B,1,H,1]
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :]      # [B,1,1,W]
    bidx = torch.arange(b)[:, None, None, None]
    cidx = torch.arange(c)[None, :, None, None]
    return padded[bidx, cidx, rows, cols]


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image along its width with probability 1/2 (a new tensor)."""
    _check_images(images)
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class Augmentation:
    """The configured train-time augmentation: shift, then flip; identity (no copy) when both are off."""

    def __init__(self, shift: int = 0, hflip: bool = False) -> None:
        if shift < 0:
            raise InputError(f"augmentation shift must be >= 0, got {shift}")
        self.shift, self.hflip = int(shift), bool(hflip)
        self.generator = torch.Generator()

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.hflip

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.shift:
            images = random_shift(images, self.shift, self.generator)
        if self.hflip:
            images = random_hflip(images, self.generator)
        return images

    def __repr__(self) -> str:
        return f"Augmentation(shift={self.shift}, hflip={self.hflip})"
