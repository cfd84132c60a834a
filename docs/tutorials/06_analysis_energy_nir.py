"""Tutorial 6: analysing a trained network: firing rates, SynOps, energy, and NIR export.

What this teaches:

* ``dnmsnn.analysis.analyze``: per layer, the spikes, the firing rate and the synaptic operations
  (SynOps: one accumulate per spike and synaptic target) of a network on encoded inputs, against the
  multiply-accumulates (MACs) of the same network run as an ANN; and the first-order energy estimate
  at 45 nm (0.9 pJ per accumulate, 4.6 pJ per MAC, Horowitz 2014);
* how SynOps and energy grow with the sequence length T while the ANN's cost stays one pass;
* ``dnmsnn.analysis.analyze_run`` on a run directory (what ``dnmsnn analyze RUN_DIR`` prints);
* export to NIR, the Neuromorphic Intermediate Representation (``dnmsnn.nir.to_nir``,
  ``dnmsnn.nir.write_nir``, ``dnmsnn export-nir RUN_DIR model.nir``), and reading the file back
  with ``dnmsnn.nir.from_nir`` into a network that gives the same outputs (needs the ``nir``
  package: the ``nir`` and ``dev`` extras).

Run it (about 10 s on one core)::

    python docs/tutorials/06_analysis_energy_nir.py --out figures/   # or DNMSNN_TUTORIAL_OUT=figures/

Without ``--out`` or ``DNMSNN_TUTORIAL_OUT`` the figures go to a new temporary folder.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import dnmsnn
from dnmsnn.analysis import analyze, analyze_run, firing_rates, load_run_model, to_markdown
from dnmsnn.analysis.plots import plot_firing_rates
from dnmsnn.cli import main as dnmsnn_cli
from dnmsnn.data import load_dataset
from dnmsnn.train import Trainer, load_run_config


def output_dir() -> Path:
    """--out DIR, else $DNMSNN_TUTORIAL_OUT, else a new temporary folder."""
    parser = argparse.ArgumentParser(description="dnmsnn tutorial: analysis, energy and NIR export")
    parser.add_argument("--out", default=os.environ.get("DNMSNN_TUTORIAL_OUT"), help="folder for the figures")
    out = Path(parser.parse_args().out or tempfile.mkdtemp(prefix="dnmsnn-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def main() -> None:
    out = output_dir()

    # --- a trained network: a short config run on the embedded digits ----------------------------------
    cfg = load_run_config(None, ["model.name=digits_mlp", "data.name=digits", "encoder.T=8", "optim.lr=3e-3",
                                 "train.epochs=3", "train.batch_size=32", "train.progress=false"])
    run_dir = out / "run"
    results = Trainer(cfg, run_dir, echo=lambda line: None).fit()
    print(f"trained digits_mlp: test accuracy {results['test_acc']:.1%} at T = {results['test_T']}")
    _, net = load_run_model(run_dir)                       # the trained network, in eval mode
    test = load_dataset("digits", "test")

    # --- activity and energy of the network on 100 test digits -------------------------------------------
    encoder = dnmsnn.PoissonEncoder(T=8, seed=123)
    x = encoder(test.images[:100])
    report = analyze(net, x)                               # per-sample numbers, one row per layer
    for row in report["layers"]:
        if row["role"] == "synapse":
            print(f"  {row['name']:>5} {row['type']:12s} driven by {row['driven_by']}: "
                  f"{row['synops_per_sample']:,.0f} SynOps, {row['ann_macs_per_pass']:,} ANN MACs per pass")
        else:
            rate = "never fires" if row.get("firing_rate") is None else f"firing rate {row['firing_rate']:.3f}"
            print(f"  {row['name']:>5} {row['type']:12s} {rate}")
    t = report["totals"]
    print(f"energy per sample: SNN {t['energy_snn_pj_per_sample'] / 1e3:.1f} nJ, "
          f"ANN {t['energy_ann_pj_per_pass'] / 1e3:.1f} nJ (ratio {t['energy_ratio_ann_over_snn']:.2f}x)")
    files = plot_firing_rates(firing_rates(net, x), out / "firing_rates", title="digits_mlp, T = 8",
                              formats=("png",))

    # SynOps grow with T (more steps, more spikes); the ANN pays one pass whatever T.
    lengths = [1, 2, 4, 8, 16, 32]
    snn_nj, ann_nj = [], []
    for T in lengths:
        totals = analyze(net, dnmsnn.PoissonEncoder(T=T, seed=123)(test.images[:100]))["totals"]
        snn_nj.append(totals["energy_snn_pj_per_sample"] / 1e3)
        ann_nj.append(totals["energy_ann_pj_per_pass"] / 1e3)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(lengths, snn_nj, marker="o", label="SNN: SynOps x 0.9 pJ")
    ax.plot(lengths, ann_nj, ls="--", label="ANN, one pass: MACs x 4.6 pJ")
    ax.set(xscale="log", xlabel="sequence length T", ylabel="nJ per sample", title="energy estimate (45 nm)")
    ax.set_xticks(lengths, [str(T) for T in lengths])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "energy_vs_T.png")
    plt.close(fig)
    files.append(out / "energy_vs_T.png")

    # the same numbers for a run directory, as `dnmsnn analyze RUN_DIR --T 8` prints them
    print(to_markdown(analyze_run(run_dir, T=8, batches=2, batch_size=100)))

    # --- NIR export, and reading it back ---------------------------------------------------------------
    if importlib.util.find_spec("nir") is None:
        print("nir is not installed (pip install 'dnmsnn[nir]'): skipped the NIR export")
    else:
        from dnmsnn.nir import from_nir, to_nir, write_nir

        graph = to_nir(net)                                # a nir.NIRGraph, Euler step dt = 1
        print("NIR nodes:", ", ".join(f"{k}: {type(n).__name__}" for k, n in graph.nodes.items()))
        path = write_nir(net, out / "digits_mlp.nir")      # HDF5 file
        dnmsnn_cli(["export-nir", str(run_dir), str(out / "from_cli.nir")])   # the same from the command line
        back = from_nir(path)
        with torch.no_grad():
            same = torch.equal(back(x), net(x))
        print(f"wrote {path}; read back, the network gives the same output potentials: {same}")
    for f in files:
        print(f"figure: {f}")


if __name__ == "__main__":
    main()
