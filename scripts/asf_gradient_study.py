"""How close is an ASF gradient to the BPTT gradient of the same network? A controlled probe for the ASF report.

Trains the ASF LeNet with one ASF variant on MNIST and, every ``--every`` batches, takes on one fixed probe
batch (the first ``--probe`` training images, one fixed Poisson stream):

* the gradient of each ASF variant in ``--compare`` (the slides' shared slope ``batch``, per sample
  ``sample``, per neuron ``neuron``, each optionally ``+inhibited`` / ``+silent``; ``batch-positive``: the shared
  slope with FI summed over the neurons with positive FI only), phase 1 + 2 as in training;
* the BPTT gradient of the same objective, L = 1/2 ||Y - V^N(T) / (T V_th)||^2 through all T steps with the
  network's surrogate (atan by default): the reference direction;
* per weight layer, the cosine between each ASF gradient and the BPTT one; per spiking layer, the slope S of
  the trained variant (mean over its entries) and the firing rate.

    python scripts/asf_gradient_study.py --data-dir ../shared/data --neuron lif --calibrate 0.02,0.2 \\
        --train batch --out reports/data/asf/gradient_study/lif_cal_batch.jsonl

One line of JSON per probe. ``scripts/report_asf.py`` is not needed to read them: ``--plot`` draws the cosines.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import dnmsnn
from dnmsnn.calibrate import calibrate_firing
from dnmsnn.data import load_dataset
from dnmsnn.rules.base import task_loss


def rule_of(variant: str) -> dnmsnn.rules.base.LearningRule:
    """``SLOPE[-positive][+MASK]``, e.g. ``batch``, ``batch-positive`` (shared_fi="positive"), ``neuron+inhibited``."""
    slope, _, mask = variant.partition("+")
    slope, _, shared_fi = slope.partition("-")
    return dnmsnn.rules.create("asf", loss="mse", slope=slope, mask=mask or "none", phase1="layer",
                               shared_fi=shared_fi or "all")


def weight_grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().flatten().clone() for n, p in model.named_parameters()
            if n.endswith("weight") and p.grad is not None}


def bptt_grads(model, rule, x, y) -> dict[str, torch.Tensor]:
    """Surrogate-gradient BPTT of ASF's own objective (eq. 5) through the multi-step network."""
    model.zero_grad(set_to_none=True)
    trace = model(x)
    logits = trace[-1] / rule.output_scale(model, x.shape[0])
    task_loss(logits, y, "mse").backward()
    return weight_grads(model)


def asf_grads(model, rule, x, y) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    rule.loss_backward(model, x, y)
    return weight_grads(model)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float | None:
    na, nb = float(a.norm()), float(b.norm())
    return None if na == 0 or nb == 0 else float(a @ b) / (na * nb)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--neuron", default="lif", choices=["lif", "if"])
    p.add_argument("--calibrate", default=None, help="LOW,HIGH firing-rate band before training (default: none)")
    p.add_argument("--train", default="batch", help="the ASF variant trained, e.g. batch, neuron+inhibited")
    p.add_argument("--compare", default="batch,sample,neuron,neuron+inhibited")
    p.add_argument("--T", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--probe", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--replot", nargs="+", default=None, metavar="JSONL",
                   help="only redraw the figures of earlier studies (JSONL files this script wrote)")
    p.add_argument("--plot", action="store_true", help="also write OUT.png: cosine per layer against batches")
    args = p.parse_args()
    if args.replot:
        for f in map(Path, args.replot):
            lines = [json.loads(line) for line in f.read_text().splitlines()]
            plot(lines[1:], f.with_suffix(".png"), _title(lines[0]["meta"]["args"]))
        return 0
    if args.out is None:
        p.error("--out is required")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = load_dataset("mnist", "train", args.data_dir)
    model = dnmsnn.models.create("asf_lenet", neuron=args.neuron)
    enc = dnmsnn.PoissonEncoder(T=args.T, seed=args.seed + 1)
    probe_x = dnmsnn.PoissonEncoder(T=args.T, seed=4242)(train.images[:args.probe])
    probe_y = train.labels[:args.probe]
    if args.calibrate:
        low, high = (float(v) for v in args.calibrate.split(","))
        calibrate_firing(model, dnmsnn.PoissonEncoder(T=args.T, seed=7)(train.images[:256]), low, high)
    trained = rule_of(args.train)
    variants = {v: rule_of(v) for v in args.compare.split(",")}
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, correct, seen, t0 = [], 0, 0, time.perf_counter()
    for b in range(args.batches + 1):
        if b % args.every == 0:
            ref = bptt_grads(model, trained, probe_x, probe_y)
            cos = {v: {n: cosine(g, ref[n]) for n, g in asf_grads(model, r, probe_x, probe_y).items()}
                   for v, r in variants.items()}
            totals = trained.set_slopes(model, trained.record(model, probe_x))
            layers = trained.spiking_layers(model)
            row = {"batch": b, "samples": b * args.batch_size,
                   "train_acc_running": correct / seen if seen else None, "cosine": cos,
                   "slope": {n: float(totals.slope(m).float().mean()) for n, m in layers},
                   "rate": {n: float(totals.fo(m).float().mean()) / args.T for n, m in layers}}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if b == args.batches:
            break
        idx = order[b * args.batch_size:(b + 1) * args.batch_size]
        opt.zero_grad(set_to_none=True)
        _, logits = trained.loss_backward(model, enc(train.images[idx]), train.labels[idx])
        opt.step()
        correct += int((logits.argmax(-1) == train.labels[idx]).sum())
        seen += len(idx)
    meta = {"args": vars(args), "seconds": time.perf_counter() - t0, "dnmsnn": dnmsnn.__version__}
    out.write_text("".join(json.dumps(r) + "\n" for r in [{"meta": meta}, *rows]))
    if args.plot:
        plot(rows, out.with_suffix(".png"), _title(vars(args)))
    return 0


def _title(args: dict) -> str:
    return (f"{args['neuron'].upper()} LeNet, trained with ASF {args['train']}"
            + (f", firing rates calibrated into [{args['calibrate']}]" if args.get("calibrate") else ", fan-in init"))


LENET_LAYERS = {"0.weight": "conv1", "3.weight": "conv2", "7.weight": "fc1", "9.weight": "fc2 (output)"}


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(rows[0]["cosine"])
    layers = list(rows[0]["cosine"][variants[0]])
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.0), sharey=True, squeeze=False)
    xs = [r["samples"] for r in rows]
    for ax, layer in zip(axes[0], layers, strict=True):
        for v in variants:
            ax.plot(xs, [r["cosine"][v][layer] if r["cosine"][v][layer] is not None else float("nan")
                         for r in rows], marker="o", ms=2, label=v)
        ax.set_title(LENET_LAYERS.get(layer, layer), fontsize=9)
        ax.set_xlabel("training samples")
        ax.axhline(0, color="0.6", lw=0.8)
    axes[0, 0].set_ylabel("cosine(ASF, BPTT) gradient")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
