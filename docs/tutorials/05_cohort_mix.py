"""Tutorial 5: networks that learn from each other (DNM-SNN, Cao et al.) and the mix module.

What this teaches:

* ``dnmsnn.Cohort``: K networks trained on the same encoded batches; member k minimises its
  task loss plus lambda (``weight``) times an exchange loss against the other members' predictions
  of the batch (``exchange="kl"``, ``"mse"`` or ``"ce"``; the peers' predictions are detached);
  ``weight=0`` trains the members independently, which is the baseline to compare with;
* one optimizer per member: ``cohort.loss_backward(x, y)`` fills every member's gradients and the
  caller steps the optimizers, as with a single rule;
* ``dnmsnn.Mix``: combining the members' outputs by ``max``, ``average`` and ``vote``, and the
  modes decided on validation data (``better``: whichever of max / average is more accurate there;
  ``best_member``); never fitted on the test set;
* the same experiment as a config (``cohort: {size: 2, ...}``), run by the Trainer, and the bar
  chart of members and mix modes (``dnmsnn.analysis.plots.plot_cohort``).

Run it (about 20 s on one core)::

    python docs/tutorials/05_cohort_mix.py --out figures/   # or DNMSNN_TUTORIAL_OUT=figures/

Without ``--out`` or ``DNMSNN_TUTORIAL_OUT`` the figures go to a new temporary folder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import dnmsnn
from dnmsnn.analysis.plots import plot_cohort
from dnmsnn.data import load_dataset, split_validation
from dnmsnn.train import Trainer, collect_outputs, load_run_config


def output_dir() -> Path:
    """--out DIR, else $DNMSNN_TUTORIAL_OUT, else a new temporary folder."""
    parser = argparse.ArgumentParser(description="dnmsnn tutorial: cohorts and the mix module")
    parser.add_argument("--out", default=os.environ.get("DNMSNN_TUTORIAL_OUT"), help="folder for the figures")
    out = Path(parser.parse_args().out or tempfile.mkdtemp(prefix="dnmsnn-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_cohort(weight: float, train, epochs: int = 4) -> dnmsnn.Cohort:
    """Two digits_mlp members (initialised from seeds 0 and 1) trained with exchange weight lambda."""
    nets = []
    for seed in (0, 1):                                   # the paper: two identical architectures
        torch.manual_seed(seed)
        nets.append(dnmsnn.models.create("digits_mlp"))
    cohort = dnmsnn.Cohort(nets, "bptt", exchange="kl", weight=weight, temperature=1.0, seeds=[0, 1])
    optimizers = [torch.optim.Adam(net.parameters(), lr=3e-3) for net in nets]
    encoder = dnmsnn.PoissonEncoder(T=6, seed=0)          # both members see the same encoded batches
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(train), generator=order).split(32):
            for opt in optimizers:
                opt.zero_grad()
            losses, logits = cohort.loss_backward(encoder(train.images[idx]), train.labels[idx])
            for opt in optimizers:
                opt.step()
    return cohort


def main() -> None:
    out = output_dir()
    train, val = split_validation(load_dataset("digits", "train"), fraction=0.15, seed=0)
    test = load_dataset("digits", "test")
    encoder = dnmsnn.PoissonEncoder(T=6, seed=0)

    results = {}
    for weight in (0.0, 1.0):                             # independent members, then mutual learning
        cohort = train_cohort(weight, train)
        # every member's logits on the same fixed-seed inputs: validation to fit the mix, test to score it
        val_out, val_y = collect_outputs(cohort.models, cohort.rules, encoder, val, T=6)
        test_out, test_y = collect_outputs(cohort.models, cohort.rules, encoder, test, T=6)
        mix = dnmsnn.Mix(space="softmax").fit(val_out, val_y)
        accs = {f"member {k}": float((o.argmax(-1) == test_y).double().mean()) for k, o in enumerate(test_out)}
        accs.update({f"mix {mode}": acc for mode, acc in mix.accuracy(test_out, test_y).items()})
        results[weight] = accs
        print(f"lambda = {weight}: better = {mix.better!r}, best member = {mix.best_member}; test "
              + ", ".join(f"{k} {v:.1%}" for k, v in accs.items()))

    names = list(results[0.0])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.4
    for j, weight in enumerate(results):
        ax.bar([i + (j - 0.5) * width for i in range(len(names))], [100 * results[weight][n] for n in names],
               width, label=f"lambda = {weight:g}" + (" (independent)" if weight == 0 else " (kl exchange)"))
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    low = min(100 * v for r in results.values() for v in r.values())
    ax.set(ylim=(max(0.0, low - 5), 100), ylabel="test accuracy (%)", title="two digits_mlp members, T = 6")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files = [out / "cohort_lambda.png"]
    fig.savefig(files[0])
    plt.close(fig)

    # --- the same as a config: `dnmsnn train --config ... --set cohort.size=2` ----------------------------
    cfg = load_run_config(None, [
        "model.name=digits_mlp", "data.name=digits", "data.val_fraction=0.15", "encoder.T=6",
        "optim.lr=3e-3", "train.epochs=3", "train.batch_size=32", "train.progress=false",
        "cohort.size=2", "cohort.exchange=kl", "cohort.weight=1.0",
    ])
    run = Trainer(cfg, out / "cohort_run", echo=lambda line: None).fit()
    print("Trainer: members", [f"{m['test_acc']:.1%}" for m in run["members"]],
          "mix", {k: f"{v:.1%}" for k, v in run["mix"]["test_acc"].items()})
    files += plot_cohort(run, out / "cohort_run_bars", title="cohort run (config)", formats=("png",))
    for path in files:
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
