"""Tutorial 2: training a spiking network with backpropagation through time (BPTT).

What this teaches:

* the training loop every rule shares: encode a batch, ``rule.loss_backward(net, x, y)`` fills the
  gradients (surrogate gradients through all T steps, for ``bptt``), the optimizer steps;
* a validation split carved from the training set (``dnmsnn.data.split_validation``) and a
  repeatable evaluation (``dnmsnn.train.collect_outputs`` encodes the inputs from a fixed-seed
  stream, leaving the training stream alone);
* that a network trained at one T can be tested at another (accuracy against the test length);
* the same experiment as a typed config run by ``dnmsnn.train.Trainer`` (what ``dnmsnn train``
  does), whose run directory ``dnmsnn plot`` (``dnmsnn.analysis.plots.plot_run``) turns into figures.

Run it (about 15 s on one core)::

    python docs/tutorials/02_training_bptt.py --out figures/   # or DNMSNN_TUTORIAL_OUT=figures/

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
from dnmsnn.analysis.plots import plot_run, plot_training
from dnmsnn.data import load_dataset, split_validation
from dnmsnn.train import Trainer, collect_outputs, load_run_config


def output_dir() -> Path:
    """--out DIR, else $DNMSNN_TUTORIAL_OUT, else a new temporary folder."""
    parser = argparse.ArgumentParser(description="dnmsnn tutorial: training with BPTT")
    parser.add_argument("--out", default=os.environ.get("DNMSNN_TUTORIAL_OUT"), help="folder for the figures")
    out = Path(parser.parse_args().out or tempfile.mkdtemp(prefix="dnmsnn-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def accuracy(net: dnmsnn.Network, rule, encoder: dnmsnn.Encoder, dataset, T: int) -> float:
    """Test accuracy at sequence length T, on a fixed-seed input stream (repeatable)."""
    (logits,), labels = collect_outputs([net], [rule], encoder, dataset, T)
    return float((logits.argmax(-1) == labels).double().mean())


def main() -> None:
    out = output_dir()

    # --- data: 1,437 training images (10 % of them kept for validation) and 360 test images ---------
    train, val = split_validation(load_dataset("digits", "train"), fraction=0.1, seed=0)
    test = load_dataset("digits", "test")
    print(f"train {len(train)}, validation {len(val)}, test {len(test)} images of shape {train.shape}")

    # --- model, encoder, rule, optimizer ------------------------------------------------------------
    torch.manual_seed(0)                                  # weight initialisation
    net = dnmsnn.models.create("digits_mlp")              # 64-128-10, LIF beta 0.9, Integrator output
    encoder = dnmsnn.PoissonEncoder(T=8, seed=0)          # the training stream
    rule = dnmsnn.rules.create("bptt")                    # loss "ce" on the final output potential
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

    rows = []
    order = torch.Generator().manual_seed(0)
    for epoch in range(1, 7):
        net.train()
        losses, correct = [], 0
        for idx in torch.randperm(len(train), generator=order).split(32):
            x, y = encoder(train.images[idx]), train.labels[idx]   # x: [T, 32, 1, 8, 8] spikes
            optimizer.zero_grad()
            loss, logits = rule.loss_backward(net, x, y)           # backward through all T steps
            optimizer.step()
            losses.append(float(loss))
            correct += int((logits.argmax(-1) == y).sum())
        row = {"epoch": epoch, "train_loss": sum(losses) / len(losses), "train_acc": correct / len(train),
               "val_acc": accuracy(net, rule, encoder, val, T=8), "test_acc": accuracy(net, rule, encoder, test, T=8)}
        rows.append(row)
        print(f"epoch {epoch}: loss {row['train_loss']:.3f}  train {row['train_acc']:.1%}  "
              f"val {row['val_acc']:.1%}  test {row['test_acc']:.1%}")
    files = plot_training(rows, out / "bptt_curves", title="digits_mlp, BPTT, T = 8", formats=("png",))

    # --- trained at T = 8, tested at other lengths --------------------------------------------------
    lengths = [1, 2, 4, 8, 16, 32]
    accs = [accuracy(net, rule, encoder, test, T) for T in lengths]
    print("test accuracy by T:", ", ".join(f"T={T}: {a:.1%}" for T, a in zip(lengths, accs, strict=True)))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(lengths, [100 * a for a in accs], marker="o")
    ax.set(xscale="log", xlabel="test sequence length T", ylabel="test accuracy (%)", title="trained at T = 8")
    ax.set_xticks(lengths, [str(T) for T in lengths])
    fig.tight_layout()
    fig.savefig(out / "bptt_acc_vs_T.png")
    plt.close(fig)
    files.append(out / "bptt_acc_vs_T.png")

    # --- the same experiment as a config: what `dnmsnn train --config FILE --set KEY=VALUE` runs ------
    cfg = load_run_config(None, [                         # None: the defaults, then KEY=VALUE overrides
        "model.name=digits_mlp", "data.name=digits", "data.val_fraction=0.1",
        "encoder.T=8", "encoder.eval_T=[1,2,4,8,16]", "rule.name=bptt",
        "optim.lr=3e-3", "train.epochs=4", "train.batch_size=32", "train.progress=false",
    ])
    results = Trainer(cfg, out / "run", echo=lambda line: None).fit()
    print(f"Trainer: test accuracy {results['test_acc']:.1%} at T={results['test_T']}; "
          f"run directory {out / 'run'} holds config.yaml, metrics.jsonl, checkpoint.pt, results.json")
    files += plot_run(out / "run", out / "run_plots", formats=("png",), echo=lambda line: None)
    for path in files:
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
