"""Figures and tables for reports/bondarev_mnist.md from finished run directories.

    python scripts/report_bondarev.py --runs runs/bondarev --data-dir ../shared/data

Expects run directories ``<runs>/<group>-s<seed>`` for the groups in GROUPS (any may be missing), each
written by ``dnmsnn train --config configs/bondarev_mnist.yaml`` with the overrides named there. Writes figures to
``reports/figures/bondarev_*.{png,svg}`` and prints the markdown tables to stdout (and to
``reports/figures/bondarev_tables.md``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dnmsnn import create_encoder, rules
from dnmsnn.analysis.plots import plot_acc_vs_T, plot_curves, plot_output_potentials, plot_reconstruction
from dnmsnn.analysis.runs import load_metrics, load_results, load_run_model, mean_std
from dnmsnn.data import load_dataset
from dnmsnn.train import evaluate

PAPER_TEST, PAPER_TRAIN = 98.14, 99.73
GROUPS = {  # run-name prefix -> label
    "perstep": "spatial, update per step (eq. 7)",
    "spatial": "spatial, summed per batch",
    "bptt": "bptt",
}


def clean_train_accuracy(run: Path, data_dir: str, T: int) -> float:
    """Accuracy on the whole training set with the final weights at test length T (no running average)."""
    cfg, model = load_run_model(run)
    train = load_dataset(cfg.data.name, "train", data_dir)
    rule = rules.create(cfg.rule.name, loss=cfg.rule.loss, **cfg.rule.args)
    enc = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=0)
    return evaluate(model, rule, enc, train, T, 1000, cfg.encoder.eval_seed)["acc"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/bondarev")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--figures", default="reports/figures")
    a = ap.parse_args()
    root, fig = Path(a.runs), Path(a.figures)
    groups = {}
    for prefix, label in GROUPS.items():
        runs = sorted(p for p in root.glob(f"{prefix}-s*") if (p / "results.json").exists())
        if runs:
            groups[label] = runs
    lines = ["| rule | seeds | epochs | test acc. T=5 (%) | train acc. T=5, final weights (%) | "
             "train acc. running, last epoch (%) | samples/s (median) | wall time / run |",
             "|---|---|---|---|---|---|---|---|"]
    per_seed = ["| run | test T=5 | T=1 | T=10 | T=20 | clean train T=5 |", "|---|---|---|---|---|---|"]
    for rule, runs in groups.items():
        res = [load_results(r) for r in runs]
        clean = [100 * clean_train_accuracy(r, a.data_dir, 5) for r in runs]
        test = mean_std([100 * r["test_acc_by_T"]["5"] for r in res])
        running = mean_std([100 * r["train_acc_running"] for r in res])
        tr = mean_std(clean)
        sps = mean_std([r["train_samples_per_s_median"] for r in res])
        wall = mean_std([sum(m["train_time_s"] for m in load_metrics(r)) / 60 for r in runs])
        lines.append(f"| {rule} | {len(runs)} | {res[0]['epochs']} | {test[0]:.2f} ± {test[1]:.2f} | "
                     f"{tr[0]:.2f} ± {tr[1]:.2f} | {running[0]:.2f} ± {running[1]:.2f} | {sps[0]:.0f} | "
                     f"{wall[0]:.1f} min (training) |")
        for r, res_r, c in zip(runs, res, clean, strict=True):
            by = res_r["test_acc_by_T"]
            per_seed.append(f"| {r.name} | {100 * by['5']:.2f} | {100 * by['1']:.2f} | {100 * by['10']:.2f} | "
                            f"{100 * by['20']:.2f} | {c:.2f} |")
    lines.append(f"| paper (Bondarev) | 1 | 20 | {PAPER_TEST} | {PAPER_TRAIN} | – | – | – |")
    plot_curves(groups, fig / "bondarev_accuracy_per_epoch")
    plot_acc_vs_T(groups, fig / "bondarev_accuracy_vs_T")
    test = load_dataset("mnist", "test", a.data_dir)
    plot_reconstruction(test.images[:4], [5, 10, 20, 50, 255], fig / "bondarev_fig2_reconstruction")
    _, model = load_run_model(next(iter(groups.values()))[0])
    enc = create_encoder("poisson", 20, seed=1)
    with torch.no_grad():
        trace = model(enc(test.images[:4]))
    plot_output_potentials(trace, test.labels[:4], fig / "bondarev_fig3_output_potentials")
    out = "\n".join(lines) + "\n\n" + "\n".join(per_seed) + "\n"
    (fig / "bondarev_tables.md").write_text(out)
    (fig / "bondarev_summary.json").write_text(json.dumps({k: [str(r) for r in v] for k, v in groups.items()}))
    print(out)


if __name__ == "__main__":
    main()
