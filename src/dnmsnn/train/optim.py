"""Optimizers and learning-rate schedules from an :class:`OptimConfig`."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from .config import OptimConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam (Bondarev: beta1 0.9, beta2 0.999), AdamW or SGD with momentum."""
    params = list(params)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: none (constant), cosine to 0 over the run, step (x gamma every step_size), exponential."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
