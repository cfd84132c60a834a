"""Spike activity, synaptic operations (SynOps) and an energy estimate of a spiking network.

One pass of the network over an input ``x [T, B, ...]`` is walked layer by layer (the same order
:class:`~dnmsnn.layers.Sequential` and :class:`~dnmsnn.layers.Residual` run it, nested containers
included), and every layer's traffic is counted:

* **neurons** (LIF / IF): spikes emitted, firing rate = spikes / (neurons x T x samples);
  the Integrator output layer never spikes and is listed with no rate;
* **the input**: when the network input is spikes (``PoissonEncoder`` / ``SignedPoissonEncoder``),
  the encoded input counts as a spiking layer of its own (``"input"``), and the first synapse is
  driven by its spikes; for ``DirectEncoder`` (analog frames) the first synapse multiplies;
* **synapses** (Linear, Conv2d) driven by spikes do one *accumulate* (AC) per spike and target:
  SynOps = sum over input spikes of the spike's fan-out. For ``Linear`` the fan-out of every input
  is ``out_features``; for ``Conv2d`` it depends on the position (borders reach fewer outputs,
  stride and dilation change it), so the count is exact: the spike map (nonzero = 1) is convolved
  with an all-ones kernel of the layer's geometry, which gives the number of nonzero input taps of
  every output position, summed and multiplied by ``out_channels / groups``;
* **synapses driven by analog values** (a direct-encoded input, the output of BatchNorm or any
  layer that is not a spike source) multiply: dense multiply-accumulates (MACs) at every step.

A signal counts as spikes after a LIF / IF layer or a spiking input, and stays spikes through
Flatten, Dropout, MaxPool2d, AvgPool2d (the pooled value of spikes is a scaled spike count, the
scale folds into the next weights) and a Residual sum of two spike signals; a nonzero value other
than +-1 (an average-pooled or summed spike) is counted as one event. Bias additions, neuron state
updates and memory traffic are not counted.

The ANN reference is the same network with every synapse dense: MACs of one pass (one "frame"),
and the dense MACs of all T steps (the SNN simulated without exploiting sparsity).

Energy per operation (45 nm CMOS, 32-bit floating point) from M. Horowitz, "Computing's energy
problem (and what we can do about it)", IEEE ISSCC 2014, pp. 10-14: add 0.9 pJ, multiply 3.7 pJ,
so an accumulate costs ``E_AC = 0.9 pJ`` and a multiply-accumulate ``E_MAC = 3.7 + 0.9 = 4.6 pJ``.
SNN energy = SynOps x E_AC + MACs (analog-driven synapses) x E_MAC; ANN energy = ANN MACs x E_MAC.
These are the usual first-order numbers of SNN papers; they say nothing about a particular chip.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..graph import layer_labels
from ..layers import AvgPool2d, Dropout, Flatten, MaxPool2d, Residual
from ..neurons import IF, LIF, Integrator

E_AC_PJ = 0.9
"""Energy of one 32-bit floating-point add (accumulate) at 45 nm, pJ (Horowitz 2014)."""
E_MAC_PJ = 4.6
"""Energy of one 32-bit floating-point multiply (3.7 pJ) plus add (0.9 pJ) at 45 nm, pJ (Horowitz 2014)."""
ENERGY_SOURCE = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014: "
                 "45 nm, 32-bit float add 0.9 pJ, multiply 3.7 pJ")

_SPIKE_PRESERVING = (Flatten, Dropout, MaxPool2d, AvgPool2d, nn.Identity, nn.Flatten, nn.Dropout,
                     nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class LayerCount:
    """Totals of one layer over every step and sample that passed through it.

    ``role`` is ``"input"``, ``"synapse"`` or ``"neuron"``. For synapses ``driven_by`` is ``"spikes"``
    (``synops`` counted) or ``"analog"`` (``macs`` counted); ``dense_macs_per_step`` is per sample.
    """

    name: str
    type: str
    role: str
    shape: tuple[int, ...]
    driven_by: str = ""
    events: float = 0.0  # synapse: nonzero inputs; neuron / input: spikes
    synops: float = 0.0
    macs: float = 0.0
    dense_macs_per_step: int = 0
    spiking: bool = True  # False for the Integrator

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class Activity:
    """Counts of one or more batches; ``summary()`` turns them into per-sample numbers."""

    layers: list[LayerCount] = field(default_factory=list)
    samples: int = 0
    T: int = 0
    skipped: list[str] = field(default_factory=list)  # modules whose synapses could not be counted

    def merge(self, other: Activity) -> Activity:
        if not self.layers:
            return other
        if [(a.name, a.shape) for a in self.layers] != [(b.name, b.shape) for b in other.layers] or self.T != other.T:
            raise InputError("cannot merge activity of different networks or sequence lengths")
        for a, b in zip(self.layers, other.layers, strict=True):
            a.events += b.events
            a.synops += b.synops
            a.macs += b.macs
        self.samples += other.samples
        return self

    def summary(self, e_ac: float = E_AC_PJ, e_mac: float = E_MAC_PJ) -> dict[str, Any]:
        """Per-sample layer table, totals and energy (pJ per sample) as a JSON-ready dict."""
        n, T = max(self.samples, 1), self.T
        layers = []
        for c in self.layers:
            row: dict[str, Any] = {"name": c.name, "type": c.type, "role": c.role, "shape": list(c.shape)}
            if c.role == "synapse":
                row.update(driven_by=c.driven_by, input_events_per_sample=c.events / n,
                           synops_per_sample=c.synops / n, macs_per_sample=c.macs / n,
                           mean_fan_out=(c.synops / c.events) if c.events else 0.0,
                           ann_macs_per_pass=c.dense_macs_per_step, dense_macs_per_sample=c.dense_macs_per_step * T)
            elif c.spiking:
                row.update(neurons=c.size, spikes_per_sample=c.events / n,
                           firing_rate=c.events / (n * T * c.size) if c.size else 0.0)
            else:
                row.update(neurons=c.size, spikes_per_sample=None, firing_rate=None)
            layers.append(row)
        syn = [c for c in self.layers if c.role == "synapse"]
        synops = sum(c.synops for c in syn) / n
        macs = sum(c.macs for c in syn) / n
        ann = sum(c.dense_macs_per_step for c in syn)
        e_snn = synops * e_ac + macs * e_mac
        e_ann = ann * e_mac
        spikes = sum(c.events for c in self.layers if c.role == "neuron" and c.spiking) / n
        return {
            "samples": self.samples,
            "T": T,
            "layers": layers,
            "totals": {
                "spikes_per_sample": spikes,
                "synops_per_sample": synops,
                "snn_macs_per_sample": macs,
                "ann_macs_per_pass": ann,
                "dense_macs_per_sample": ann * T,
                "energy_snn_pj_per_sample": e_snn,
                "energy_ann_pj_per_pass": e_ann,
                "energy_dense_pj_per_sample": ann * T * e_mac,
                "energy_ratio_ann_over_snn": (e_ann / e_snn) if e_snn else None,
            },
            "energy_per_op_pj": {"ac": e_ac, "mac": e_mac, "source": ENERGY_SOURCE},
            "not_counted": self.skipped,
        }


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    return (x != 0).to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def _conv_synops(conv: nn.Conv2d, mask: torch.Tensor) -> float:
    """Exact accumulates of a convolution driven by a 0/1 event map [N, C_in, H, W]."""
    g = conv.groups
    ones = torch.ones((g, conv.in_channels // g, *conv.kernel_size), dtype=mask.dtype, device=mask.device)
    taps = conv._conv_forward(mask, ones, None)  # [N, groups, H_out, W_out]: nonzero taps per output and group
    return float(taps.sum(dtype=torch.float64)) * (conv.out_channels // g)


def _dense_macs(module: nn.Module, y_step: torch.Size) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    c = module  # Conv2d: every output position does C_in/groups x kh x kw multiply-accumulates
    return math.prod(y_step) * (c.in_channels // c.groups) * math.prod(c.kernel_size)


class _Walker:
    def __init__(self) -> None:
        self.counts: list[LayerCount] = []
        self.skipped: list[str] = []

    def run(self, module: nn.Module, x: torch.Tensor, name: str, spikes: bool) -> tuple[torch.Tensor, bool]:
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.Sequential):
            for child_name, child in module.named_children():
                x, spikes = self.run(child, x, prefix + child_name, spikes)
            return x, spikes
        if isinstance(module, Residual):
            y, s_body = self.run(module.body, x, prefix + "body", spikes)
            if module.shortcut is None:
                return y + x, s_body and spikes
            z, s_short = self.run(module.shortcut, x, prefix + "shortcut", spikes)
            return y + z, s_body and s_short
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            T = x.shape[0]
            y = module(x)
            c = LayerCount(name, type(module).__name__, "synapse", tuple(x.shape[2:]),
                           driven_by="spikes" if spikes else "analog",
                           dense_macs_per_step=_dense_macs(module, y.shape[2:]))
            mask = _nonzero(x)
            c.events = float(mask.sum(dtype=torch.float64))
            if spikes:
                if isinstance(module, nn.Linear):
                    c.synops = c.events * module.out_features
                else:
                    c.synops = _conv_synops(module, mask.flatten(0, 1))
            else:
                c.macs = float(c.dense_macs_per_step) * T * x.shape[1]
            self.counts.append(c)
            return y, False
        if isinstance(module, (LIF, IF)):
            y = module(x)
            self.counts.append(LayerCount(name, type(module).__name__, "neuron", tuple(y.shape[2:]),
                                          events=float(_nonzero(y).sum(dtype=torch.float64))))
            return y, True
        if isinstance(module, Integrator):
            y = module(x)
            self.counts.append(LayerCount(name, "Integrator", "neuron", tuple(y.shape[2:]), spiking=False))
            return y, False
        if isinstance(module, _SPIKE_PRESERVING):
            return module(x), spikes
        if any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in module.modules()):
            self.skipped.append(f"{name} ({type(module).__name__}: unknown container, its synapses are not counted)")
        return module(x), False


def is_spike_tensor(x: torch.Tensor) -> bool:
    """True when every value is -1, 0 or 1 (what the Poisson encoders emit)."""
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


@torch.no_grad()
def count_activity(network: nn.Module, x: torch.Tensor, *, input_spikes: bool | None = None) -> Activity:
    """Counts of one batch ``x [T, B, ...]`` (totals over steps and samples; see the module docstring).

    ``input_spikes``: whether the input is spikes (Poisson coding) or analog frames (direct coding);
    ``None`` decides from the values (all in {-1, 0, 1} = spikes). The network runs in eval mode.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 3 or not x.is_floating_point():
        raise InputError("count_activity expects a floating tensor laid out [T, B, ...]")
    spikes = is_spike_tensor(x) if input_spikes is None else bool(input_spikes)
    was_training = network.training
    network.eval()
    walker = _Walker()
    if spikes:
        walker.counts.append(LayerCount("input", "input spikes", "input", tuple(x.shape[2:]),
                                        events=float(_nonzero(x).sum(dtype=torch.float64))))
    try:
        walker.run(network, x, "", spikes)
    finally:
        network.train(was_training)
    return Activity(walker.counts, samples=x.shape[1], T=x.shape[0], skipped=walker.skipped)


def analyze(
    network: nn.Module,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    *,
    input_spikes: bool | None = None,
    e_ac: float = E_AC_PJ,
    e_mac: float = E_MAC_PJ,
) -> dict[str, Any]:
    """Per-sample firing rates, SynOps, MACs and energy of ``network`` over one or more encoded batches.

    ``inputs`` is one ``[T, B, ...]`` tensor or an iterable of them (same T). Returns
    :meth:`Activity.summary`: ``layers`` (one row per input / synapse / neuron layer), ``totals``
    and the per-operation energies used.
    """
    batches = [inputs] if isinstance(inputs, torch.Tensor) else inputs
    total = Activity()
    for x in batches:
        total = total.merge(count_activity(network, x, input_spikes=input_spikes))
    if total.samples == 0:
        raise InputError("analyze got no input batches")
    return _labelled(total.summary(e_ac, e_mac), network)


def _labelled(summary: dict[str, Any], network: nn.Module) -> dict[str, Any]:
    """Add each layer row's readable ``label`` (:func:`layer_labels`) to an :meth:`Activity.summary`."""
    labels = layer_labels(network)
    for row in summary["layers"]:
        row["label"] = labels.get(row["name"], row["name"])
    return summary


def energy_pj(synops: float, macs: float = 0.0, e_ac: float = E_AC_PJ, e_mac: float = E_MAC_PJ) -> float:
    """``synops x e_ac + macs x e_mac`` in pJ (defaults: Horowitz 2014, 45 nm, 0.9 / 4.6 pJ)."""
    return synops * e_ac + macs * e_mac


def firing_rates(network: nn.Module, x: torch.Tensor, *, input_spikes: bool | None = None) -> dict[str, float]:
    """Firing rate (spikes per neuron per step) of the input (when spikes) and of every LIF / IF layer."""
    rows = count_activity(network, x, input_spikes=input_spikes).summary()["layers"]
    return {r["name"]: r["firing_rate"] for r in rows
            if r["role"] in ("input", "neuron") and r["firing_rate"] is not None}



@torch.no_grad()
def record_neurons(network: nn.Module, x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Run ``x [T, B, ...]`` once (eval mode) and return, per LIF / IF / Integrator layer (by module name),
    ``{"kind": "LIF" | "IF" | "Integrator", "out": [T, B, ...] spikes or potential, "v": [T, B, ...]
    pre-reset potential}``, after ``"input"``: ``{"kind": "input", "out": x}``.

    The neurons' ``record`` flags (and ``v_trace``) are set for the call and restored afterwards."""
    neurons = [(n, m) for n, m in network.named_modules() if isinstance(m, (LIF, IF, Integrator))]
    saved = [(m, m.record, m.v_trace) for _, m in neurons]
    out: dict[str, dict[str, Any]] = {"input": {"kind": "input", "out": x}}

    def hook(name: str):
        def fn(mod: nn.Module, args: Any, y: torch.Tensor) -> None:
            out[name] = {"kind": type(mod).__name__, "out": y.detach(), "v": mod.v_trace}
        return fn

    hooks = []
    for name, m in neurons:
        m.record = True
        hooks.append(m.register_forward_hook(hook(name)))
    was_training = network.training
    network.eval()
    try:
        network(x)
    finally:
        for h in hooks:
            h.remove()
        for m, flag, trace in saved:
            m.record, m.v_trace = flag, trace
        network.train(was_training)
    return out


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _row_name(row: dict[str, Any]) -> str:
    label = row.get("label")
    return row["name"] if not label or label == row["name"] else f"{label} (`{row['name']}`)"


def to_markdown(report: dict[str, Any]) -> str:
    """The :func:`analyze` / :func:`analyze_run` result as a markdown page."""
    t = report["totals"]
    e = report["energy_per_op_pj"]
    head = report.get("run_dir")
    lines = [f"# Activity and energy{f' of {head}' if head else ''}", ""]
    if "model" in report:
        lines += [f"Model `{report['model']}` on `{report['dataset']}` (test split), encoder `{report['encoder']}`, "
                  f"T = {report['T']}, {report['samples']} test samples"
                  + (f", accuracy {100 * report['accuracy']:.2f} %" if report.get("accuracy") is not None else "")
                  + ". All numbers are per sample (one input of T steps).", ""]
    else:
        lines += [f"T = {report['T']}, {report['samples']} samples; all numbers are per sample.", ""]
    lines += ["| layer (module) | type | shape | driven by | input events | SynOps (AC) | MACs | ANN MACs / pass |"
              " spikes | firing rate |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["layers"]:
        shape = "x".join(map(str, r["shape"]))
        if r["role"] == "synapse":
            lines.append(f"| {_row_name(r)} | {r['type']} | {shape} | {r['driven_by']} | "
                         f"{_fmt(r['input_events_per_sample'])} | {_fmt(r['synops_per_sample'])} | "
                         f"{_fmt(r['macs_per_sample'])} | {_fmt(r['ann_macs_per_pass'])} | | |")
        else:
            lines.append(f"| {_row_name(r)} | {r['type']} | {shape} | | | | | | {_fmt(r['spikes_per_sample'])} | "
                         f"{_fmt(r['firing_rate'])} |")
    ratio = t["energy_ratio_ann_over_snn"]
    lines += [
        "",
        "| total per sample | value |",
        "|---|---|",
        f"| spikes (hidden and output neurons) | {_fmt(t['spikes_per_sample'])} |",
        f"| SynOps (accumulates triggered by spikes) | {_fmt(t['synops_per_sample'])} |",
        f"| MACs of analog-driven synapses (all T steps) | {_fmt(t['snn_macs_per_sample'])} |",
        f"| ANN MACs, one pass | {_fmt(t['ann_macs_per_pass'])} |",
        f"| dense MACs, T steps | {_fmt(t['dense_macs_per_sample'])} |",
        f"| energy SNN = SynOps x {e['ac']} pJ + MACs x {e['mac']} pJ | {t['energy_snn_pj_per_sample'] / 1e6:.4g} uJ |",
        f"| energy ANN, one pass = MACs x {e['mac']} pJ | {t['energy_ann_pj_per_pass'] / 1e6:.4g} uJ |",
        f"| energy dense, T steps | {t['energy_dense_pj_per_sample'] / 1e6:.4g} uJ |",
        f"| ANN / SNN energy | {'–' if ratio is None else f'{ratio:.3g}x'} |",
        "",
        f"Per-operation energies: {e['source']} (accumulate 0.9 pJ, multiply-accumulate 3.7 + 0.9 = 4.6 pJ). "
        "SynOps count one accumulate per spike and synaptic target (Conv2d counted exactly, borders included); "
        "spike inputs (Poisson-encoded) drive the first synapse with accumulates, analog inputs (direct "
        "coding) with MACs at every step. Bias additions, neuron updates and memory traffic are not counted.",
    ]
    if report.get("not_counted"):
        lines += ["", "Not counted: " + "; ".join(report["not_counted"])]
    return "\n".join(lines) + "\n"


def analyze_run(
    run_dir: str | Path,
    T: int | None = None,
    batches: int = 10,
    batch_size: int = 100,
    data_dir: str | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Analyze a trained run on its test inputs: :func:`analyze` over ``batches`` batches of ``batch_size``
    test images encoded at ``T`` (default the run's test T) with the run's evaluation stream, plus the
    accuracy on those samples. Writes ``analysis.json`` and ``analysis.md`` into the run directory
    when ``write``."""
    from .._checks import check_positive_int
    from ..network import read_out
    from .runs import load_run

    check_positive_int(batches, "batches")
    check_positive_int(batch_size, "batch_size")
    if T is not None:
        check_positive_int(T, "T")
    cfg, model, test, encoder = load_run(run_dir, data_dir)
    T = T or cfg.test_T
    spikes_in = cfg.encoder.name in ("poisson", "signed_poisson")
    total, correct = Activity(), 0
    with encoder.eval_stream(cfg.encoder.eval_seed):
        encoder.with_T(T)
        for b in range(batches):
            images = test.images[b * batch_size:(b + 1) * batch_size]
            if not len(images):
                break
            x = encoder(images)
            counts = count_activity(model, x, input_spikes=spikes_in)
            total = total.merge(counts)
            with torch.no_grad():
                logits = read_out(model(x), model.readout)
            correct += int((logits.argmax(-1) == test.labels[b * batch_size:(b + 1) * batch_size]).sum())
    report = {"run_dir": str(run_dir), "model": cfg.model.name, "dataset": test.name, "encoder": cfg.encoder.name,
              "accuracy": correct / max(total.samples, 1), **_labelled(total.summary(), model)}
    if write:
        run = Path(run_dir)
        (run / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
        (run / "analysis.md").write_text(to_markdown(report))
    return report
