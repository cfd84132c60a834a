"""Tutorial 1: neurons and spikes.

What this teaches:

* the neuron modules and the equation each one runs: ``LIF(beta=...)`` (Bondarev),
  ``LIF(tau=...)`` (DNM-SNN Cao et al. and ASF Wu et al.), ``IF`` and the non-spiking ``Integrator``;
* the tensor layout: time-major ``[T, B, ...]``, every call starting at rest, ``record=True`` keeping
  the pre-reset potential H[k] in ``.v_trace``;
* the Poisson encoder (a pixel of intensity p spikes with probability p at every step);
* that running a network one step at a time (``net.step``) gives exactly its multi-step output;
* the figures of ``dnmsnn.analysis.plots``: membrane potentials and a spike raster.

Run it (about 5 s; needs matplotlib, in the ``plot`` and ``dev`` extras)::

    python docs/tutorials/01_neurons_and_spikes.py --out figures/   # or DNMSNN_TUTORIAL_OUT=figures/

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
from dnmsnn.analysis import record_neurons
from dnmsnn.analysis.plots import plot_membrane, plot_raster
from dnmsnn.data import load_dataset


def output_dir() -> Path:
    """--out DIR, else $DNMSNN_TUTORIAL_OUT, else a new temporary folder."""
    parser = argparse.ArgumentParser(description="dnmsnn tutorial: neurons and spikes")
    parser.add_argument("--out", default=os.environ.get("DNMSNN_TUTORIAL_OUT"), help="folder for the figures")
    out = Path(parser.parse_args().out or tempfile.mkdtemp(prefix="dnmsnn-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def main() -> None:
    out = output_dir()
    torch.manual_seed(0)

    # --- 1. One neuron, constant input -------------------------------------------------------------
    # Bondarev's LIF (Bondarev, eqs. 4-6): H[k] = beta V[k-1] + x[k]; spike when H[k] >= threshold;
    # V[k] = 0 after a spike, else H[k]. Input x[k] = 0.3 at every step, T = 30, one sample, one neuron.
    T = 30
    x = torch.full((T, 1, 1), 0.3)
    lif = dnmsnn.LIF(beta=0.8187, threshold=1.0, record=True)
    spikes = lif(x)                                   # [T, 1, 1] of 0/1
    print("LIF(beta) spike steps:", torch.nonzero(spikes.flatten()).flatten().add(1).tolist())

    # The same input through the other forms: the tau form (Cao et al. eq. 2, Wu et al.'s LIF),
    # H = V + (x - (V - v_reset)) / tau, and the IF neuron, H = V + x (no leak).
    forms = {
        "LIF beta=0.8187": lif,
        "LIF tau=2": dnmsnn.LIF(tau=2.0, threshold=0.2, record=True),
        "IF": dnmsnn.IF(threshold=1.0, record=True),
    }
    fig, axes = plt.subplots(len(forms) + 1, 1, figsize=(7, 7), sharex=True)
    steps = range(1, T + 1)
    for ax, (name, neuron) in zip(axes, forms.items(), strict=False):
        s = neuron(x).flatten()
        h = neuron.v_trace.flatten()                  # pre-reset potential H[k] (record=True)
        ax.plot(steps, h.tolist(), label="H[k]")
        ax.plot([k for k in steps if s[k - 1]], [float(h[k - 1]) for k in steps if s[k - 1]], "o", label="spike")
        ax.axhline(float(neuron.threshold), ls="--", color="0.5", label="threshold")
        ax.set_title(f"{name}: {int(s.sum())} spikes in {T} steps", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    # The Integrator (Bondarev's last layer, ASF's output layer) never fires: v[k] = v[k-1] + x[k].
    v = dnmsnn.Integrator()(x).flatten()
    axes[-1].plot(steps, v.tolist(), color="C2")
    axes[-1].set_title("Integrator: v[k] = v[k-1] + x[k] (never fires)", fontsize=9)
    axes[-1].set_xlabel("step k")
    fig.tight_layout()
    neuron_forms = out / "neuron_forms.png"
    fig.savefig(neuron_forms)
    plt.close(fig)

    # Firing rate against input current (an f-I curve) for each form: x in [0, 1], one neuron per value.
    currents = torch.linspace(0.0, 1.0, 101)
    drive = currents.expand(200, 1, -1)               # T = 200 steps, batch 1, 101 neurons
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, neuron in forms.items():
        ax.plot(currents.tolist(), neuron(drive).mean(0).flatten().tolist(), label=name)
    ax.set(xlabel="constant input x", ylabel="spikes per step", title="firing rate against input")
    ax.legend(fontsize=8)
    fig.tight_layout()
    rate_curve = out / "rate_vs_input.png"
    fig.savefig(rate_curve)
    plt.close(fig)

    # --- 2. Encoding an image into spikes ----------------------------------------------------------
    digits = load_dataset("digits", "test")           # embedded 8x8 digits, nothing downloaded
    encoder = dnmsnn.PoissonEncoder(T=50, seed=0)     # b[k] = 1 if intensity > U[0, 1) (Bondarev)
    image = digits.images[:1]                         # [1, 1, 8, 8]
    train = encoder(image)                            # [50, 1, 1, 8, 8] of 0/1
    rate = train.mean(0)                              # the spike rate recovers the intensity
    print(f"Poisson: mean |rate - intensity| over the pixels at T=50: {float((rate - image).abs().mean()):.3f}")

    # --- 3. A network, multi-step and one step at a time -------------------------------------------
    net = dnmsnn.models.create("digits_mlp")          # Flatten, Linear 64->128, LIF, Linear 128->10, Integrator
    x = dnmsnn.PoissonEncoder(T=20, seed=1)(digits.images[:4])
    trace = net(x)                                    # [20, 4, 10]: the output potential at every step
    state, outs = None, []
    for k in range(x.shape[0]):                       # what an online rule or a streaming deployment does
        y, state = net.step(x[k], state)
        outs.append(y)
    print("step-by-step equals multi-step:", torch.allclose(torch.stack(outs), trace, atol=1e-6))

    # --- 4. Raster and membrane potentials of every layer ------------------------------------------
    # record_neurons runs the network once and keeps, per neuron layer, its output and H[k].
    record = record_neurons(net, x)
    thresholds = {name: float(m.threshold) for name, m in net.neurons() if hasattr(m, "threshold")}
    files = plot_raster(record, out / "raster", sample=0, formats=("png",))
    files += plot_membrane(record, out / "membrane", sample=0, thresholds=thresholds,
                           label=int(digits.labels[0]), formats=("png",))
    for path in [neuron_forms, rate_curve, *files]:
        print(f"figure: {path}")


if __name__ == "__main__":
    main()
