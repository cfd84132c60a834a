"""Where one training step of a spiking network spends its time, by kind of work (torch.profiler, self CPU time).

    python benchmarks/profile_step.py                                   # resnet11_w8 and resnet20_w4, 1 thread
    python benchmarks/profile_step.py --models resnet11_w8 --encoding poisson --out benchmarks/results/profile_x

One BPTT step (forward, backward, Adam) at T = 4, batch 64, MNIST-sized input [1, 28, 28], BatchNorm on,
direct or Poisson input, after warm-up steps. Every profiled operator's *self* time is put into one kind by
its name (:data:`KINDS`, first match wins; ``other`` collects the rest), so the kinds add up to the profiled
total; ``python`` is the step's wall time minus that total (interpreter, autograd engine bookkeeping, and
whatever the profiler does not see). Shares are robust to a busy host; absolute times are not.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from _results import write_results  # benchmarks/ is on sys.path when a script here runs
from torch.profiler import ProfilerActivity, profile

import dnmsnn

KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("convolution backward", ("convolution_backward", "spike_conv", "SpikeConv")),
    ("convolution", ("conv", "mkldnn_convolution")),
    ("batch norm", ("batch_norm",)),
    ("neuron (LIF)", ("lif", "LIF", "Fused", "neuron", "surrogate", "heaviside")),
    ("linear / matmul", ("addmm", "mm", "matmul", "linear", "spike_matmul")),
    ("pooling", ("pool",)),
    ("residual add / elementwise", ("add", "mul", "sub", "div", "where", "copy_", "fill_", "zero_")),
    ("reshape / layout", ("view", "reshape", "permute", "contiguous", "transpose", "expand", "flatten", "stack",
                          "cat", "select", "slice", "unsqueeze", "squeeze", "as_strided", "empty", "clone", "to")),
    ("optimizer (Adam)", ("_foreach", "adam", "Adam", "sqrt", "lerp")),
    ("loss / readout", ("softmax", "nll", "cross_entropy", "sum", "mean")),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k.lower() in low for k in keys):
            return kind
    return "other"


def make_step(model: str, T: int, batch: int, encoding: str, seed: int = 0):
    torch.manual_seed(seed)
    net = dnmsnn.models.create(model, input_shape=(1, 28, 28))
    rule = dnmsnn.rules.create("bptt")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 1, 28, 28, generator=gen)
    x = (dnmsnn.PoissonEncoder(T, seed=seed)(images) if encoding == "poisson"
         else images.expand(T, -1, -1, -1, -1).contiguous())
    y = torch.randint(0, 10, (batch,), generator=gen)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        rule.loss_backward(net, x, y)
        opt.step()
    return step


def profile_model(model: str, T: int, batch: int, encoding: str, steps: int, warmup: int) -> dict:
    step = make_step(model, T, batch, encoding)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - t0) / steps
    by_kind: dict[str, float] = {}
    by_op: dict[str, float] = {}
    for ev in prof.key_averages():
        if ev.self_cpu_time_total <= 0 or ev.key.startswith("ProfilerStep"):
            continue
        s = ev.self_cpu_time_total / 1e6 / steps
        by_kind[kind_of(ev.key)] = by_kind.get(kind_of(ev.key), 0.0) + s
        by_op[ev.key] = by_op.get(ev.key, 0.0) + s
    profiled = sum(by_kind.values())
    by_kind["python / unprofiled"] = max(wall - profiled, 0.0)
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:15]
    return {"model": model, "T": T, "batch": batch, "encoding": encoding, "threads": torch.get_num_threads(),
            "step_s_profiled": wall, "by_kind_s": by_kind, "top_ops_s": dict(top)}


def table(r: dict) -> list[str]:
    total = sum(r["by_kind_s"].values())
    lines = [f"### {r['model']}, {r['encoding']} input, T = {r['T']}, batch {r['batch']}, {r['threads']} thread(s): "
             f"{r['step_s_profiled'] * 1e3:.0f} ms per step under the profiler", "",
             "| kind | ms per step | share |", "|---|---|---|"]
    for k, v in sorted(r["by_kind_s"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {v * 1e3:.1f} | {v / total:.0%} |")
    lines += ["", "Largest operators (self time, ms per step): " +
              ", ".join(f"`{k}` {v * 1e3:.1f}" for k, v in list(r["top_ops_s"].items())[:8]), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet11_w8,resnet20_w4")
    ap.add_argument("--encoding", default="direct,poisson")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", help="write OUT.jsonl and OUT.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [profile_model(m, args.T, args.batch, e, args.steps, args.warmup)
            for m in args.models.split(",") for e in args.encoding.split(",")]
    lines = [f"# Profile of one BPTT training step (torch {torch.__version__}, dnmsnn {dnmsnn.__version__})", ""]
    for r in rows:
        lines += table(r)
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
