"""Small helpers shared by several test modules."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Within the block, new tensors and modules default to ``dtype``."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def bptt_losses_on_digits(net: torch.nn.Module, steps: int = 40, lr: float = 5e-3, T: int = 6) -> list[float]:
    """The bptt loss after each of ``steps`` Adam steps on the same 256 embedded digits (Poisson, seed 0)."""
    import dnmsnn
    from dnmsnn.data import load_dataset

    data = load_dataset("digits", "train", limit=256)
    x = dnmsnn.PoissonEncoder(T=T, seed=0)(data.images)
    rule, opt = dnmsnn.rules.create("bptt"), torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, _ = rule.loss_backward(net, x, data.labels)
        opt.step()
        losses.append(float(loss))
    return losses
