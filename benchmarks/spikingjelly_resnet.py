"""dnmsnn's spiking ResNet against a SpikingJelly twin of the same network: same function, then training speed.

Needs a Python with both libraries (torch 2.13.0, spikingjelly; dnmsnn from this checkout), e.g.

    python3 -m venv ../venv-sj && ../venv-sj/bin/pip install torch==2.13.0 numpy pyyaml tqdm scikit-learn spikingjelly
    PYTHONPATH=src ../venv-sj/bin/python benchmarks/spikingjelly_resnet.py --out benchmarks/results/sj_resnet11_w8

The twin is built from ``spikingjelly.activation_based`` in multi-step mode (``step_mode="m"``, backend
"torch": the CuPy backend needs a GPU), layer for layer in the order of dnmsnn's ``resnet11_w8`` / ``resnet20_w4``
(3x3 convs, BatchNorm over T x B, ``LIFNode(tau=2, decay_input=True, v_reset=0, v_threshold=1, ATan(alpha=2),
detach_reset=False)`` = Cao et al.'s LIF H = V + (X - (V - V_reset)) / tau, a residual sum that a LIF fires on,
average pooling, spiking output read as spike counts), and every parameter and buffer is copied from the
dnmsnn network, so both compute the same function of the same weights.

**Check**: one forward of both on the same direct-coded batch in training mode; reports the largest
difference of the output spike counts and of the first convolution's output, and how many output spikes
differ (a spike can flip where a potential lies within float rounding of the threshold, since the two
libraries order their sums differently); then the same layer by layer, both given the same input.
**Timing**: one BPTT step (cross-entropy on the counts, Adam) of each, round-robin in one process, median;
the ratio is SpikingJelly's time over dnmsnn's (> 1: dnmsnn faster).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import torch
from _results import write_results  # benchmarks/ is on sys.path when a script here runs
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

import dnmsnn
from dnmsnn.calibrate import calibrate_firing
from dnmsnn.layers import AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Residual, Sequential


def lif() -> nn.Module:
    return neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                          surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=False, step_mode="m")


class SJResidual(nn.Module):
    """body(x) + shortcut(x) on [T, B, ...] (identity shortcut when none)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


def twin(module: nn.Module) -> nn.Module:
    """The SpikingJelly module for one dnmsnn module (recursively for containers)."""
    if isinstance(module, Residual):
        return SJResidual(twin(module.body), None if module.shortcut is None else twin(module.shortcut))
    if isinstance(module, (Sequential, dnmsnn.Network)):
        return nn.Sequential(*[twin(m) for m in module])
    if isinstance(module, Conv2d):
        return layer.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                            module.padding, bias=module.bias is not None, step_mode="m")
    if isinstance(module, BatchNorm2d):
        return layer.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum, step_mode="m")
    if isinstance(module, AvgPool2d):
        return layer.AvgPool2d(module.kernel_size, module.stride, step_mode="m")
    if isinstance(module, Flatten):
        return layer.Flatten(start_dim=1, step_mode="m")
    if isinstance(module, Linear):
        return layer.Linear(module.in_features, module.out_features, bias=module.bias is not None, step_mode="m")
    if isinstance(module, dnmsnn.LIF):
        return lif()
    raise TypeError(f"no SpikingJelly twin for {type(module).__name__}")


def build(model: str, seed: int, x: torch.Tensor) -> tuple[dnmsnn.Network, nn.Module]:
    """dnmsnn's network, calibrated so that every LIF layer fires 5-30 % of the time on ``x`` (at the plain
    initialisation the spiking output is silent, and a check of silent outputs would prove nothing), and its twin."""
    torch.manual_seed(seed)
    ours = dnmsnn.models.create(model, input_shape=(1, 28, 28))
    calibrate_firing(ours, x, 0.05, 0.3)
    theirs = twin(ours)
    functional.set_step_mode(theirs, "m")
    state = ours.state_dict()
    if any(float(v) != 1.0 for k, v in state.items() if k.endswith(".threshold")):
        raise RuntimeError("the twin assumes V_th = 1 everywhere")
    # the module names are the same in both (the twin is built in dnmsnn's order); dnmsnn's neurons also hold
    # their threshold as a buffer, SpikingJelly's as a float
    theirs.load_state_dict({k: v.clone() for k, v in state.items() if not k.endswith(".threshold")}, strict=True)
    return ours, theirs


def leafwise(ours: nn.Module, theirs: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """(SpikingJelly's output, largest leaf-output difference, spikes that differ) with every leaf module of both
    networks given the same input; residual blocks are walked branch by branch."""
    if isinstance(ours, Residual):
        body, w1, f1 = leafwise(ours.body, theirs.body, h)
        short, w2, f2 = (h, 0.0, 0) if ours.shortcut is None else leafwise(ours.shortcut, theirs.shortcut, h)
        return body + short, max(w1, w2), f1 + f2
    if isinstance(ours, (Sequential, dnmsnn.Network)):
        worst, flips = 0.0, 0
        for a, b in zip(ours, theirs, strict=True):
            h, w, f = leafwise(a, b, h)
            worst, flips = max(worst, w), flips + f
        return h, worst, flips
    out_ours, out_theirs = ours(h.contiguous()).float(), theirs(h.contiguous())
    flips = int((out_ours != out_theirs).sum()) if isinstance(ours, dnmsnn.LIF) else 0
    return out_theirs, float((out_ours - out_theirs).abs().max()), flips


def counts_of(net: nn.Module, x: torch.Tensor, sj: bool) -> torch.Tensor:
    if sj:
        functional.reset_net(net)
        return net(x).sum(0)
    return net.classify(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet11_w8", choices=["resnet11_w8", "resnet20_w4"])
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=3)
    ap.add_argument("--out", help="write OUT.jsonl and OUT.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=gen).expand(args.T, -1, -1, -1, -1).contiguous()
    y = torch.randint(0, 10, (args.batch,), generator=gen)

    ours, theirs = build(args.model, 0, x)
    ours.train(), theirs.train()
    with torch.no_grad():
        a, b = counts_of(ours, x, False), counts_of(theirs, x, True)
        first_ours = ours[0](x).float()
        first_theirs = theirs[0](x)
        # layer by layer, every leaf module of both given the SAME input (SpikingJelly's output so far)
        functional.reset_net(theirs)
        _, worst, flips = leafwise(ours, theirs, x)
    check = {"max_count_diff": float((a - b).abs().max()), "count_entries_differing": int((a != b).sum()),
             "output_spikes": float(a.sum()), "first_conv_max_abs_diff": float((first_ours - first_theirs).abs().max()),
             "layerwise_max_abs_diff": worst, "layerwise_spike_flips": flips}

    steps = {}
    for name, sj in (("dnmsnn", False), ("spikingjelly", True)):
        net = build(args.model, 0, x)[1 if sj else 0]
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(net=net, opt=opt, sj=sj) -> None:
            opt.zero_grad(set_to_none=True)
            logits = counts_of(net, x, sj)
            torch.nn.functional.cross_entropy(logits, y).backward()
            opt.step()
        steps[name] = step
    times: dict[str, list[float]] = {k: [] for k in steps}
    order, rng = list(steps), random.Random(0)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for k in order:
            steps[k]()
            for _ in range(args.chunk):
                t0 = time.perf_counter()
                steps[k]()
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [{"model": args.model, "T": args.T, "batch": args.batch, "threads": args.threads, **check,
             **{f"{k}_s": v for k, v in med.items()}, "speedup_vs_spikingjelly": med["spikingjelly"] / med["dnmsnn"]}]
    lines = [f"# {args.model}: dnmsnn against a SpikingJelly twin (same weights), BPTT step, T = {args.T}, "
             f"batch {args.batch}, {args.threads} thread(s)", "",
             f"Same function: output spike counts differ in {check['count_entries_differing']} of "
             f"{a.numel()} entries (largest difference {check['max_count_diff']:g}; {check['output_spikes']:g} "
             f"output spikes in all); first convolution's output differs by at most "
             f"{check['first_conv_max_abs_diff']:.2e}. Leaf module by leaf module, each given the same "
             f"input: largest difference {check['layerwise_max_abs_diff']:.2e}, {check['layerwise_spike_flips']} "
             "spikes differ. So both compute the same "
             "function; end to end, a spike flipped by float rounding (a potential within rounding of the "
             "threshold) changes the batch-norm statistics of every layer after it, and the flips multiply.", "",
             "| library | median step (s) | samples/s |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {args.batch / v:.0f} |" for k, v in med.items()]
    lines += ["", f"dnmsnn is **{rows[0]['speedup_vs_spikingjelly']:.2f}x** SpikingJelly (round-robin, {args.rounds} "
              f"rounds x {args.chunk} steps; torch {torch.__version__})."]
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
