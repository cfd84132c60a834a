"""Figures for runs and reports (matplotlib, Agg backend; PNG and SVG).

Each function takes plain data or run directories and writes a figure; none trains anything.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..encoders import PoissonEncoder
from ..errors import DnmsnnError
from .runs import load_metrics, load_results, mean_std


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DnmsnnError("plotting needs matplotlib: pip install 'dnmsnn[plot]'") from exc
    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 10})
    return plt


def save(fig, path: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write ``path`` with each suffix in ``formats``; returns the files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        p = path.with_suffix("." + fmt)
        fig.savefig(p, bbox_inches="tight")
        out.append(p)
    fig.clf()
    return out


def plot_curves(
    groups: dict[str, Sequence[str | Path]], path: str | Path, keys: Sequence[str] = ("train_acc", "test_acc")
):
    """Accuracy per epoch, mean +- std over each group's runs (e.g. seeds of one rule)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, runs in groups.items():
        rows = [load_metrics(r) for r in runs]
        n = min(len(r) for r in rows)
        for key in keys:
            if key not in rows[0][0]:
                continue
            stats = [mean_std([100 * r[e][key] for r in rows]) for e in range(n)]
            m = [s[0] for s in stats]
            sd = [s[1] for s in stats]
            ep = list(range(1, n + 1))
            line, = ax.plot(ep, m, marker="o", ms=3, label=f"{label}: {key.replace('_acc', '')}",
                            ls="-" if key == "test_acc" else "--")
            low = [a - b for a, b in zip(m, sd, strict=True)]
            high = [a + b for a, b in zip(m, sd, strict=True)]
            ax.fill_between(ep, low, high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_acc_vs_T(groups: dict[str, Sequence[str | Path]], path: str | Path):
    """Test accuracy against the test sequence length T, mean +- std over each group's runs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, runs in groups.items():
        res = [load_results(r)["test_acc_by_T"] for r in runs]
        Ts = sorted({int(t) for t in res[0]})
        stats = [mean_std([100 * r[str(T)] for r in res]) for T in Ts]
        ax.errorbar(Ts, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", ms=3, capsize=2, label=label)
    ax.set_xlabel("test sequence length T")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_reconstruction(images: torch.Tensor, lengths: Sequence[int], path: str | Path, seed: int = 0):
    """Seed 001's Fig. 2: each image recovered as spike counts / length of a Poisson train of that length."""
    plt = _plt()
    n = images.shape[0]
    fig, axes = plt.subplots(n, len(lengths) + 1, figsize=(1.3 * (len(lengths) + 1), 1.4 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i].squeeze(0), cmap="gray", vmin=0, vmax=1)
        for j, T in enumerate(lengths):
            counts = PoissonEncoder(T, seed=seed + i)(images[i:i + 1]).sum(0)[0]
            axes[i, j + 1].imshow((counts / T).squeeze(0), cmap="gray", vmin=0, vmax=1)
    for j, title in enumerate(["original", *[f"T={T}" for T in lengths]]):
        axes[0, j].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    return save(fig, path)


def plot_output_potentials(trace: torch.Tensor, labels: torch.Tensor, path: str | Path, class_names=None):
    """Seed 001's Fig. 3: the output layer's potential v^M[k] of every class over the steps, one panel per input."""
    plt = _plt()
    n = trace.shape[1]
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.8), squeeze=False, sharey=False)
    steps = range(1, trace.shape[0] + 1)
    for i in range(n):
        ax = axes[0, i]
        for c in range(trace.shape[2]):
            ax.plot(steps, trace[:, i, c], lw=2.2 if c == int(labels[i]) else 0.9,
                    label=str(c) if class_names is None else class_names[c])
        ax.set_title(f"label {int(labels[i])}", fontsize=9)
        ax.set_xlabel("step k")
    axes[0, 0].set_ylabel("output potential v^M[k]")
    axes[0, -1].legend(fontsize=6, ncol=2)
    return save(fig, path)
