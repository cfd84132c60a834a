"""Tutorial 3: spatial and online training (Bondarev's rule, Bondarev).

What this teaches:

* the ``spatial`` rule: at every step k a loss on the output so far, and its sensitivities passed
  back through the layers *within step k only* (eqs. 7-13; no gradient through V[k-1], neither the
  leak nor the reset); it is a different gradient from BPTT's, shown here by their cosine similarity;
* ``online=False`` (one backward over the whole sequence) and ``online=True, update="batch"`` (one
  backward per step, one step's graph in memory) give the same gradients;
* ``online=True, update="step"``: an optimizer step at every time step k, eq. 7 literally; the rule
  needs the optimizer first (``rule.bind_optimizer(optimizer)``) and steps it itself;
* how the three compare with BPTT when trained on the embedded digits.

Run it (about 20 s on one core)::

    python docs/tutorials/03_spatial_online.py --out figures/   # or DNMSNN_TUTORIAL_OUT=figures/

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
from dnmsnn.data import load_dataset
from dnmsnn.train import collect_outputs


def output_dir() -> Path:
    """--out DIR, else $DNMSNN_TUTORIAL_OUT, else a new temporary folder."""
    parser = argparse.ArgumentParser(description="dnmsnn tutorial: spatial and online training")
    parser.add_argument("--out", default=os.environ.get("DNMSNN_TUTORIAL_OUT"), help="folder for the figures")
    out = Path(parser.parse_args().out or tempfile.mkdtemp(prefix="dnmsnn-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def gradients(net: dnmsnn.Network, rule, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All of ``net``'s parameter gradients for one batch, flattened into one vector."""
    net.zero_grad()
    rule.loss_backward(net, x, y)
    return torch.cat([p.grad.flatten() for p in net.parameters()])


def train(rule_name: str, epochs: int, lr: float, **rule_args) -> list[float]:
    """Test accuracy after each epoch of digits_mlp trained by one rule (same init and data order for all)."""
    train_set, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    torch.manual_seed(0)
    net = dnmsnn.models.create("digits_mlp")
    encoder = dnmsnn.PoissonEncoder(T=8, seed=0)
    rule = dnmsnn.rules.create(rule_name, **rule_args)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps_itself = rule.steps_optimizer
    if steps_itself:
        rule.bind_optimizer(optimizer)                     # update="step": the rule steps at every k
    order, accs = torch.Generator().manual_seed(0), []
    for _ in range(epochs):
        for idx in torch.randperm(len(train_set), generator=order).split(32):
            optimizer.zero_grad()
            rule.loss_backward(net, encoder(train_set.images[idx]), train_set.labels[idx])
            if not steps_itself:
                optimizer.step()
        (logits,), labels = collect_outputs([net], [rule], encoder, test, T=8)
        accs.append(float((logits.argmax(-1) == labels).double().mean()))
    return accs


def main() -> None:
    out = output_dir()
    digits = load_dataset("digits", "train", limit=64)
    torch.manual_seed(0)
    net = dnmsnn.models.create("digits_mlp")
    x, y = dnmsnn.PoissonEncoder(T=8, seed=0)(digits.images), digits.labels

    # --- the same gradients offline and online ------------------------------------------------------
    offline = gradients(net, dnmsnn.rules.create("spatial"), x, y)                       # one backward
    online = gradients(net, dnmsnn.rules.create("spatial", online=True, update="batch"), x, y)  # T backwards
    print("spatial offline == online (update='batch'):", torch.allclose(offline, online, rtol=1e-4, atol=1e-6))

    # --- spatial is not BPTT: compare the directions ------------------------------------------------
    # BPTT differentiates one loss on the final output through time; spatial sums per-step losses and
    # cuts the temporal path. Step scaling ("1/k") and the loss ("mse": eq. 9 literally) are options.
    bptt = gradients(net, dnmsnn.rules.create("bptt"), x, y)
    for name, rule in [("spatial", dnmsnn.rules.create("spatial")),
                       ("spatial 1/k", dnmsnn.rules.create("spatial", step_scale="1/k")),
                       ("spatial mse", dnmsnn.rules.create("spatial", loss="mse"))]:
        g = gradients(net, rule, x, y)
        print(f"cosine(bptt, {name}) = {float(torch.nn.functional.cosine_similarity(bptt, g, dim=0)):.3f}")

    # --- training: BPTT, spatial summed per batch, spatial with an update at every step (eq. 7) ------
    epochs = 4
    runs = {
        "bptt": train("bptt", epochs, lr=3e-3),
        "spatial (summed per batch)": train("spatial", epochs, lr=3e-3),
        "spatial online, update per step": train("spatial", epochs, lr=1e-3, online=True, update="step"),
    }
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, accs in runs.items():
        ax.plot(range(1, epochs + 1), [100 * a for a in accs], marker="o", label=name)
        print(f"{name}: test accuracy per epoch " + ", ".join(f"{a:.1%}" for a in accs))
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="digits_mlp, T = 8, same init and data order")
    ax.set_xticks(range(1, epochs + 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "rules_compared.png"
    fig.savefig(path)
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
