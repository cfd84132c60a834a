"""Figures for runs and reports (matplotlib, Agg backend; PNG and SVG).

Each function takes plain data or run directories and writes a figure (one file per format in
``formats``, returned as a list of paths); none trains anything. :func:`plot_run` makes the whole set
for one run directory (what ``dnmsnn plot RUN_DIR`` calls).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..encoders import PoissonEncoder
from ..errors import DnmsnnError
from ..graph import layer_labels
from .runs import load_metrics, load_results, mean_std

FORMATS = ("png", "svg")


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DnmsnnError("plotting needs matplotlib: pip install 'dnmsnn[plot]'") from exc
    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 10})
    return plt


def save(fig, path: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``path`` with each suffix in ``formats``; returns the files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        p = path.with_suffix("." + fmt)
        fig.savefig(p, bbox_inches="tight")
        out.append(p)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def plot_curves(
    groups: dict[str, Sequence[str | Path]], path: str | Path, keys: Sequence[str] = ("train_acc", "test_acc"),
    formats: Sequence[str] = FORMATS,
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
    return save(fig, path, formats)


def plot_acc_vs_T(groups: dict[str, Sequence[str | Path]], path: str | Path, formats: Sequence[str] = FORMATS):
    """Test accuracy against the test sequence length T, mean +- std over each group's runs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, runs in groups.items():
        res = [load_results(r)["test_acc_by_T"] for r in runs]
        Ts = sorted({int(t) for t in res[0]})
        stats = [mean_std([100 * r[str(T)] for r in res]) for T in Ts]
        ax.errorbar(Ts, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", ms=3, capsize=2, label=label)
    ax.set_xlabel("test sequence length T")
    ax.xaxis.get_major_locator().set_params(integer=True)  # T is a whole number of steps
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    return save(fig, path, formats)


def plot_reconstruction(images: torch.Tensor, lengths: Sequence[int], path: str | Path, seed: int = 0,
                        formats: Sequence[str] = FORMATS):
    """Bondarev's Fig. 2: each image recovered as spike counts / length of a Poisson train of that length."""
    plt = _plt()
    n = images.shape[0]
    fig, axes = plt.subplots(n, len(lengths) + 1, figsize=(1.3 * (len(lengths) + 1), 1.4 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i].squeeze(0).numpy(), cmap="gray", vmin=0, vmax=1)
        for j, T in enumerate(lengths):
            counts = PoissonEncoder(T, seed=seed + i)(images[i:i + 1]).sum(0)[0]
            axes[i, j + 1].imshow((counts / T).squeeze(0).numpy(), cmap="gray", vmin=0, vmax=1)
    for j, title in enumerate(["original", *[f"T={T}" for T in lengths]]):
        axes[0, j].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    return save(fig, path, formats)


def plot_output_potentials(trace: torch.Tensor, labels: torch.Tensor, path: str | Path, class_names=None,
                           formats: Sequence[str] = FORMATS):
    """Bondarev's Fig. 3: the output layer's potential v^M[k] of every class over the steps, one panel per input."""
    plt = _plt()
    n = trace.shape[1]
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.8), squeeze=False, sharey=False)
    steps = range(1, trace.shape[0] + 1)
    for i in range(n):
        ax = axes[0, i]
        for c in range(trace.shape[2]):
            ax.plot(steps, trace[:, i, c].tolist(), lw=2.2 if c == int(labels[i]) else 0.9,
                    label=str(c) if class_names is None else class_names[c])
        ax.set_title(f"label {int(labels[i])}", fontsize=9)
        ax.set_xlabel("step k")
    axes[0, 0].set_ylabel("output potential v^M[k]")
    axes[0, -1].legend(fontsize=6, ncol=2)
    return save(fig, path, formats)


# ----------------------------------------------------------------------------- one run directory
LOSS_KEYS = ("train_loss", "val_loss", "test_loss")
ACC_KEYS = ("train_acc", "val_acc", "test_acc")


def _member_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, metrics) of each cohort member of a metrics row; tolerant of the shapes a cohort may write:
    a list of dicts (with optional ``name``) or numbers (taken as test accuracy), or a dict name -> either."""
    members = row.get("members")
    if isinstance(members, dict):
        items = list(members.items())
    elif isinstance(members, (list, tuple)):
        items = [((m.get("name") or m.get("member") or f"member {i}") if isinstance(m, dict) else f"member {i}", m)
                 for i, m in enumerate(members)]
    else:
        return []
    out = []
    for label, m in items:
        if isinstance(m, (int, float)) and not isinstance(m, bool):
            m = {"test_acc": m}
        if isinstance(m, dict):
            out.append((str(label), m))
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _accuracy_of(v: Any) -> float | None:
    """An accuracy from a number or a dict with ``test_acc`` / ``acc``."""
    if isinstance(v, dict):
        for key in ("test_acc", "acc", "accuracy"):
            if _number(v.get(key)) is not None:
                return float(v[key])
        return None
    return _number(v)


def _mix_accuracies(mix: Any) -> dict[str, float]:
    """Accuracy per mix mode from a ``mix`` entry: a dict mode -> accuracy, possibly under ``test_acc`` /
    ``test`` (the cohort trainer's shape, with ``better`` / ``best_member`` naming the chosen mode / member)."""
    if not isinstance(mix, dict):
        return {}
    table = next((mix[k] for k in ("test_acc", "test", "acc") if isinstance(mix.get(k), dict)), None)
    if table is None:
        table = {k: v for k, v in mix.items() if k not in ("better", "best_member", "space", "decided_on")}
    out = {}
    for mode, v in table.items():
        acc = _accuracy_of(v)
        if acc is not None and 0.0 <= acc <= 1.0:
            label = mode
            if mode == "better" and isinstance(mix.get("better"), str):
                label = f"better ({mix['better']})"
            elif mode == "best_member" and _number(mix.get("best_member")) is not None:
                label = f"best member ({int(mix['best_member'])})"
            out[label] = acc
    return out


def plot_training(metrics: Sequence[dict[str, Any]], path: str | Path, title: str = "",
                  formats: Sequence[str] = FORMATS) -> list[Path]:
    """Loss and accuracy per epoch of one run; cohort members (rows with a ``members`` list) and mix
    strategies (a ``mix`` dict) get their own thinner lines."""
    plt = _plt()
    if not metrics:
        raise DnmsnnError("no metrics rows to plot (metrics.jsonl is empty)")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(metrics)]

    def line(ax, rows, key, label, scale=1.0, **kw):
        pts = [(e, _number(r.get(key))) for e, r in zip(epochs, rows, strict=True)]
        pts = [(e, v * scale) for e, v in pts if v is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **kw)

    # the run: one colour per split (solid); members: one colour per member, one dash style per split
    split_color = {"train": "C0", "val": "C2", "test": "C1"}
    split_style = {"train": "--", "val": "-.", "test": ":"}
    members = [_member_rows(r) for r in metrics]
    n_members = max(len(m) for m in members)
    first = {k for m in members if m for k in m[0][1]}  # a cohort's top-level keys repeat member 0's
    for ax, keys, scale in ((ax_loss, LOSS_KEYS, 1.0), (ax_acc, ACC_KEYS, 100.0)):
        for key in keys:
            split = key.split("_")[0]
            if key not in first:
                line(ax, metrics, key, split, scale, marker="o", ms=3, lw=2.0, color=split_color[split])
    for i in range(n_members):
        rows = [m[i][1] if i < len(m) else {} for m in members]
        label = next(m[i][0] for m in members if i < len(m))
        for ax, keys, scale in ((ax_loss, LOSS_KEYS, 1.0), (ax_acc, ACC_KEYS, 100.0)):
            for key in keys:
                split = key.split("_")[0]
                line(ax, rows, key, f"{label}: {split}", scale, ls=split_style[split], lw=1.5,
                     color=f"C{3 + i % 7}")
    mixes = [_mix_accuracies(r.get("mix")) for r in metrics]
    for j, name in enumerate(sorted({k for m in mixes for k in m})):
        line(ax_acc, [{"acc": m.get(name)} for m in mixes], "acc", f"mix {name}", 100.0, ls="-", lw=1.0,
             marker="s^vD<>p"[j % 7], ms=4, color="0.35", alpha=0.8)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        if len(epochs) < 12:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path, formats)


def plot_cohort(results: dict[str, Any], path: str | Path, title: str = "",
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Bar chart of the test accuracy of each cohort member and each mix strategy in ``results``
    (``results["members"]`` and ``results["mix"]``, as far as they are present); [] when neither is."""
    bars: list[tuple[str, float, str]] = []
    for label, m in _member_rows({"members": results.get("members")}):
        acc = _accuracy_of(m)
        if acc is not None:
            bars.append((label, acc, "C0"))
    for name, acc in _mix_accuracies(results.get("mix")).items():
        bars.append((f"mix: {name}", acc, "C1"))
    if not bars:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(bars) + 1.5), 3.8))
    xs = range(len(bars))
    ax.bar(xs, [100 * b[1] for b in bars], color=[b[2] for b in bars])
    for x, b in zip(xs, bars, strict=True):
        ax.text(x, 100 * b[1], f"{100 * b[1]:.2f}", ha="center", va="bottom", fontsize=8)
    low = min(100 * b[1] for b in bars)
    ax.set_ylim(max(0.0, low - 5.0), min(100.0, max(100 * b[1] for b in bars) + 2.0))
    ax.set_xticks(list(xs), [b[0] for b in bars], rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="x", visible=False)
    ax.set_title(title or "cohort members and mix strategies", fontsize=10)
    return save(fig, path, formats)


def plot_raster(record: dict[str, dict[str, Any]], path: str | Path, sample: int = 0,
                max_neurons: int = 1024, formats: Sequence[str] = FORMATS,
                labels: dict[str, str] | None = None) -> list[Path]:
    """Spike raster of one input, one panel per spiking layer (the input first when it is spikes).

    ``record`` is :func:`dnmsnn.analysis.activity.record_neurons`' output; layers with more than
    ``max_neurons`` neurons show their first ``max_neurons`` (said in the panel title)."""
    plt = _plt()
    layers = [(name, r["out"][:, sample].flatten(1)) for name, r in record.items()
              if r.get("kind") in ("LIF", "IF") or (r.get("kind") == "input" and _is_spiking(r["out"]))]
    if not layers:
        raise DnmsnnError("nothing spikes in this network's record (no LIF / IF layer and no spike input)")
    fig, axes = plt.subplots(len(layers), 1, figsize=(7.0, 1.2 + 1.6 * len(layers)), sharex=True, squeeze=False)
    for ax, (name, s) in zip(axes[:, 0], layers, strict=True):
        n = s.shape[1]
        shown = s[:, :max_neurons]
        t, i = torch.nonzero(shown, as_tuple=True)
        tick = max(1.0, min(12.0, 100.0 / shown.shape[1]))  # marker height in points: ~one neuron row
        ax.scatter((t + 1).tolist(), i.tolist(), s=tick ** 2, marker="|", color="k", linewidths=1.2)
        rate = float((s != 0).float().mean())
        more = f", first {max_neurons} of {n} shown" if n > max_neurons else ""
        ax.set_title(f"{_layer_label(name, labels)}: {n} neurons, rate {rate:.3f} spikes/step{more}", fontsize=9)
        ax.set_ylim(-0.5, shown.shape[1] - 0.5)
        ax.set_ylabel("neuron")
        ax.grid(False)
    axes[-1, 0].set_xlabel("step k")
    axes[-1, 0].set_xlim(0.5, layers[0][1].shape[0] + 0.5)
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    return save(fig, path, formats)


def plot_firing_rates(rates: dict[str, float], path: str | Path, title: str = "",
                      formats: Sequence[str] = FORMATS,
                      labels: dict[str, str] | None = None) -> list[Path]:
    """Bar chart of the mean firing rate (spikes per neuron per step) of each layer."""
    plt = _plt()
    if not rates:
        raise DnmsnnError("no firing rates to plot (the network has no LIF / IF layer)")
    names = list(rates)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.6))
    ax.bar(range(len(names)), [rates[n] for n in names], color=["C7" if n == "input" else "C0" for n in names])
    for x, n in enumerate(names):
        ax.text(x, rates[n], f"{rates[n]:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(range(len(names))), [_layer_label(n, labels) for n in names], rotation=30, ha="right")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.grid(axis="x", visible=False)
    ax.set_title(title or "firing rate per layer", fontsize=10)
    return save(fig, path, formats)


def plot_membrane(record: dict[str, dict[str, Any]], path: str | Path, sample: int = 0,
                  neurons: dict[str, Sequence[int]] | None = None, thresholds: dict[str, float] | None = None,
                  label: int | None = None, per_layer: int = 3, formats: Sequence[str] = FORMATS,
                labels: dict[str, str] | None = None) -> list[Path]:
    """Membrane potential traces of chosen neurons for one input (Bondarev's Fig. 3).

    Each neuron layer of ``record`` (:func:`~dnmsnn.analysis.activity.record_neurons`) gets a panel:
    the pre-reset potential H[k] of ``neurons[layer]`` (flat indices; default the ``per_layer`` most
    active ones) with the threshold dashed and spikes marked; a non-spiking output layer
    (Integrator) shows every class, the true ``label`` drawn thick."""
    plt = _plt()
    layers = [(name, r) for name, r in record.items() if name != "input" and r.get("v") is not None]
    if not layers:
        raise DnmsnnError("no neuron layer recorded a potential")
    fig, axes = plt.subplots(len(layers), 1, figsize=(7.0, 0.9 + 2.0 * len(layers)), sharex=True, squeeze=False)
    for ax, (name, r) in zip(axes[:, 0], layers, strict=True):
        v = r["v"][:, sample].flatten(1)
        steps = list(range(1, v.shape[0] + 1))
        if r.get("kind") == "Integrator":  # the output layer: every class
            for c in range(v.shape[1]):
                ax.plot(steps, v[:, c].tolist(), lw=2.2 if label == c else 0.9, label=str(c))
            ax.legend(fontsize=6, ncol=5, title="class", title_fontsize=6)
            ax.set_title(f"{_layer_label(name, labels)} (output potential)", fontsize=9)
        else:
            s = r["out"][:, sample].flatten(1)
            chosen = list((neurons or {}).get(name, [])) or s.sum(0).argsort(descending=True)[:per_layer].tolist()
            for j in chosen:
                line, = ax.plot(steps, v[:, j].tolist(), lw=1.4, label=f"neuron {j}")
                k = torch.nonzero(s[:, j]).flatten()
                ax.plot((k + 1).tolist(), v[k, j].tolist(), "o", ms=4, color=line.get_color())
            thr = (thresholds or {}).get(name)
            if thr is not None:
                ax.axhline(thr, ls="--", color="0.4", lw=1.0, label="threshold")
            ax.legend(fontsize=6, ncol=2)
            ax.set_title(f"{_layer_label(name, labels)}: pre-reset potential H[k] (dots: spikes)", fontsize=9)
        ax.set_ylabel("potential")
    axes[-1, 0].set_xlabel("step k")
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    return save(fig, path, formats)


def _is_spiking(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1) | (t == -1)).all())


def _layer_label(name: str, labels: dict[str, str] | None = None) -> str:
    """A layer's name in a figure: its role from :func:`~dnmsnn.graph.layer_labels` when known."""
    if labels and name in labels:
        return labels[name]
    return name if name == "input" else f"layer {name}"


class PlotsIncomplete(DnmsnnError):
    """Some figures of a run could not be made; ``files`` holds those that were written."""

    def __init__(self, files: list[Path], missing: list[str]) -> None:
        self.files, self.missing = files, missing
        super().__init__(f"made {len(files)} file(s), but could not make: {'; '.join(missing)}")


def _neuron_thresholds(model: torch.nn.Module) -> dict[str, float]:
    out = {}
    for name, m in model.named_modules():
        thr = getattr(m, "threshold", None)
        if isinstance(thr, torch.Tensor) and thr.dim() == 0:
            out[name] = float(thr)
    return out


def plot_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    formats: Sequence[str] = FORMATS,
    data_dir: str | None = None,
    sample: int = 0,
    rate_samples: int = 200,
    T: int | None = None,
    echo=print,
) -> list[Path]:
    """Every figure of one run directory into ``out_dir`` (default ``RUN_DIR/plots``); returns the files.

    From the logs: ``curves`` (loss / accuracy per epoch, per cohort member when logged),
    ``acc_vs_T`` (``results.json``'s ``test_acc_by_T``), ``cohort`` (members / mix, when present).
    From the trained model on test inputs (needs the dataset): ``raster``, ``membrane``
    and ``firing_rates`` (mean over ``rate_samples`` test inputs), and ``reconstruction`` (Poisson
    encoders only). Every figure that can be made is written; if any cannot be (no checkpoint, no test data,
    no spikes to show), :class:`PlotsIncomplete` is raised afterwards, naming them and why, with the files
    that were written in its ``files``.
    """
    from .activity import firing_rates, record_neurons
    from .runs import check_run_dir, load_run

    run = check_run_dir(run_dir)
    out = Path(out_dir) if out_dir is not None else run / "plots"
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise DnmsnnError(f"unsupported plot format(s) {bad or formats}; choose from png, svg, pdf")
    files: list[Path] = []
    missing: list[str] = []
    metrics = load_metrics(run)
    if metrics:
        files += plot_training(metrics, out / "curves", title=run.name, formats=formats)
    else:
        missing.append("curves (metrics.jsonl has no epoch yet)")
    results = load_results(run) if (run / "results.json").is_file() else None
    if results and results.get("test_acc_by_T"):
        files += plot_acc_vs_T({run.name: [run]}, out / "acc_vs_T", formats=formats)
    else:
        missing.append("acc_vs_T (no results.json: the run has not finished)")
    if results:
        files += plot_cohort(results, out / "cohort", title=f"{run.name}: members and mix modes", formats=formats)
    model_figures = "raster, membrane, firing_rates, reconstruction"
    if not (run / "checkpoint.pt").is_file():
        raise PlotsIncomplete(files, [*missing, f"{model_figures} (no checkpoint in {run})"])
    try:
        cfg, model, test, encoder = load_run(run, data_dir)
    except DnmsnnError as exc:
        raise PlotsIncomplete(files, [*missing, f"{model_figures} (they need the test set: {exc})"]) from None
    T = T or cfg.test_T
    if not 0 <= sample < len(test):
        raise DnmsnnError(f"--sample {sample} is out of range: the test set has {len(test)} samples")
    n = min(rate_samples, len(test))
    with encoder.eval_stream(cfg.encoder.eval_seed):
        x = encoder.with_T(T)(test.images[:n])
        one = x[:, sample:sample + 1] if sample < n else encoder(test.images[sample:sample + 1])
    rec = record_neurons(model, one)
    label = int(test.labels[sample])
    labels = layer_labels(model)
    try:
        files += plot_raster(rec, out / "raster", formats=formats, labels=labels)
    except DnmsnnError as exc:
        missing.append(f"raster ({exc})")
    files += plot_membrane(rec, out / "membrane", thresholds=_neuron_thresholds(model), label=label, formats=formats,
                           labels=labels)
    rates = firing_rates(model, x, input_spikes=cfg.encoder.name.endswith("poisson"))
    if rates:
        files += plot_firing_rates(rates, out / "firing_rates", title=f"{run.name}: {n} test inputs, T={T}",
                                   formats=formats, labels=labels)
    else:
        missing.append("firing_rates (the network has no spiking layer to count)")
    if cfg.encoder.name == "poisson" and test.shape[0] == 1:  # grey images
        files += plot_reconstruction(test.images[:4], [5, 10, 20, 50], out / "reconstruction", formats=formats)
    if missing:
        raise PlotsIncomplete(files, missing)
    return files
