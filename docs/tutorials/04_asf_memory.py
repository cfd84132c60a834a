"""Tutorial 4: Accumulated Spiking Flow (ASF, Wu et al.) and training memory against T.

What this teaches:

* the ``asf`` rule's two phases: phase 1 runs the T steps without a graph and records, per spiking
  layer, the total input FI = sum_t I(t) and the spike count FO = sum_t s(t); phase 2 backpropagates
  once through the same synapses applied to the totals, with dFO/dFI approximated by the ratio
  S = FO / FI (``slope="sample"``: one ratio per layer and sample, ``"batch"``, ``"neuron"``);
* its loss, eq. 5: L = 1/2 || Y - V^N(T) / (T V_th) ||^2 on the output Integrator's total;
* the memory each rule keeps for its backward pass (autograd's saved tensors, measured with
  ``torch.autograd.graph.saved_tensors_hooks``) against T: it grows linearly for ``bptt`` and the
  offline ``spatial`` rule, and stays flat for ``spatial`` online and ``asf``. ``asf`` with
  ``phase1="layer"`` still allocates each layer's [T, B, ...] output for a moment during phase 1 (no
  graph is kept); ``phase1="step"`` runs phase 1 step by step, so nothing of size T is allocated.

``benchmarks/memory_vs_T.py`` measures the whole process's peak memory the same way for the
Bondarev network (see the benchmark page among the reports).

Run it (about 15 s on one core)::

    python docs/tutorials/04_asf_memory.py --out figures/   # or DNMSNN_TUTORIAL_OUT=figures/

Without ``--out`` or ``DNMSNN_TUTORIAL_OUT`` the figures go to a new temporary folder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import weakref
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import dnmsnn
from dnmsnn.data import load_dataset
from dnmsnn.train import collect_outputs


def output_dir() -> Path:
    """--out DIR, else $DNMSNN_TUTORIAL_OUT, else a new temporary folder."""
    parser = argparse.ArgumentParser(description="dnmsnn tutorial: ASF and memory against T")
    parser.add_argument("--out", default=os.environ.get("DNMSNN_TUTORIAL_OUT"), help="folder for the figures")
    out = Path(parser.parse_args().out or tempfile.mkdtemp(prefix="dnmsnn-tutorial-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


class _Held:
    """What autograd keeps in place of a saved tensor while the meter is active."""

    __slots__ = ("tensor", "__weakref__")


class SavedTensorMeter:
    """Peak bytes of the tensors autograd holds for backward (parameters excluded): activation memory.

    A tensor saved by several nodes is counted once; the count drops when the graph holding it is freed.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.params = {p.data_ptr() for p in model.parameters()}
        self.live: dict[tuple[int, int], list[int]] = {}
        self.current = self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def _pack(self, t: torch.Tensor) -> _Held:
        held = _Held()
        held.tensor = t
        if t.data_ptr() not in self.params:
            key = (t.data_ptr(), t.numel())
            entry = self.live.setdefault(key, [0, t.numel() * t.element_size()])
            if entry[0] == 0:
                self.current += entry[1]
                self.peak = max(self.peak, self.current)
            entry[0] += 1
            weakref.finalize(held, self._release, key)
        return held

    def _release(self, key: tuple[int, int]) -> None:
        entry = self.live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.live[key]

    @staticmethod
    def _unpack(held: _Held) -> torch.Tensor:
        return held.tensor


def make_net() -> dnmsnn.Network:
    """An IF network for the digits (ASF's IF neuron, Integrator output)."""
    return dnmsnn.models.create("mlp", input_shape=(1, 8, 8), hidden=(128,), neuron="if", threshold=1.0)


def main() -> None:
    out = output_dir()
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")

    # --- phase 1: totals per layer, and the slopes S = FO / FI --------------------------------------
    torch.manual_seed(0)
    net = make_net()
    encoder = dnmsnn.PoissonEncoder(T=8, seed=0)
    rule = dnmsnn.rules.create("asf", slope="sample")        # loss "mse": eq. 5
    x, y = encoder(train.images[:32]), train.labels[:32]
    totals = rule.set_slopes(net, rule.record(net, x))       # phase 1 alone: no graph; FI, FO, S per layer
    for name, layer in rule.spiking_layers(net):
        fi, fo, slope = totals.fi(layer), totals.fo(layer), totals.slope(layer)
        print(f"layer {name}: mean FI {float(fi.mean()):.2f}, mean FO {float(fo.mean()):.2f}, "
              f"S per sample {slope.flatten()[:4].tolist()} ...")
    loss, logits = rule.loss_backward(net, x, y)             # both phases, then one backward
    print(f"asf loss {float(loss):.4f}; logits = V^N(T) / (T V_th) of shape {tuple(logits.shape)}")

    # --- training with ASF ----------------------------------------------------------------------------
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    order, accs = torch.Generator().manual_seed(0), []
    for epoch in range(1, 7):
        for idx in torch.randperm(len(train), generator=order).split(32):
            optimizer.zero_grad()
            rule.loss_backward(net, encoder(train.images[idx]), train.labels[idx])
            optimizer.step()
        (out_logits,), labels = collect_outputs([net], [rule], encoder, test, T=8)
        accs.append(float((out_logits.argmax(-1) == labels).double().mean()))
        print(f"asf epoch {epoch}: test accuracy {accs[-1]:.1%}")

    # --- activation memory against T, per rule ----------------------------------------------------------
    rules = {
        "bptt": ("bptt", {}),
        "spatial (offline)": ("spatial", {}),
        "spatial online": ("spatial", {"online": True}),
        "asf (phase1=layer)": ("asf", {}),
        "asf (phase1=step)": ("asf", {"phase1": "step"}),
    }
    lengths = [4, 8, 16, 32, 64]
    images, labels = train.images[:64], train.labels[:64]
    memory: dict[str, list[float]] = {name: [] for name in rules}
    seconds: dict[str, list[float]] = {name: [] for name in rules}
    for T in lengths:
        x = dnmsnn.PoissonEncoder(T=T, seed=0)(images)
        for name, (rule_name, kw) in rules.items():
            torch.manual_seed(0)
            model, rule = make_net(), dnmsnn.rules.create(rule_name, **kw)
            start = time.perf_counter()
            with SavedTensorMeter(model) as meter:
                rule.loss_backward(model, x, labels)
            seconds[name].append(time.perf_counter() - start)
            memory[name].append(meter.peak / 2**20)
    print("peak saved-tensor MB (batch 64) for T = " + ", ".join(map(str, lengths)))
    for name in rules:
        print(f"  {name:20s} " + "  ".join(f"{m:6.2f}" for m in memory[name])
              + "   seconds: " + "  ".join(f"{s:.3f}" for s in seconds[name]))

    fig, (ax_mem, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in rules:
        ax_mem.plot(lengths, memory[name], marker="o", label=name)
    ax_mem.set(xscale="log", xlabel="sequence length T", ylabel="MB kept for backward (batch 64)",
               title="activation memory of one training step")
    ax_mem.set_xticks(lengths, [str(T) for T in lengths])
    ax_mem.legend(fontsize=7)
    ax_acc.plot(range(1, len(accs) + 1), [100 * a for a in accs], marker="o")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="IF network trained by asf, T = 8")
    fig.tight_layout()
    path = out / "asf_memory_vs_T.png"
    fig.savefig(path)
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
