"""Peak memory of one training step against T, per learning rule, each configuration in a fresh process.

    python benchmarks/memory_vs_T.py                      # bondarev_mlp, every rule below
    python benchmarks/memory_vs_T.py --T 5,10,20,40,80 --iters 5 --out benchmarks/results/memory_vs_T
    python benchmarks/memory_vs_T.py --rules spatial-online,asf-step --T 5,80,200 --iters 3 --min-steps 240

``--min-steps`` gives short-T cells more iterations: glibc's heap reaches its steady-state peak only after
some hundreds of layer calls, so 3 iterations at T=5 (15 steps) under-read the peak a long run sees.

Peak RSS growth = VmHWM at the end of the timed iterations minus the RSS before the first timed
iteration, with the kernel's high-water mark reset (/proc/self/clear_refs <- 5) after the warm-up, the
fused nodes' buffer pool emptied and glibc's free pages returned (malloc_trim) first: the steady-state
peak of a training iteration (autograd tape, saved tensors, gradients, the pool's per-step buffers).
Linux only. Results: JSON lines + a markdown table.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RULES = {
    "bptt": ("bptt", {}),
    "spatial": ("spatial", {}),
    "spatial-online": ("spatial", {"online": True}),
    "asf-layer": ("asf", {"phase1": "layer"}),
    "asf-step": ("asf", {"phase1": "step"}),
}


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def worker(rule_key: str, T: int, iters: int, batch: int, model: str) -> dict:
    import torch

    import dnmsnn

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    net = dnmsnn.models.create(model)
    name, kw = RULES[rule_key]
    rule = dnmsnn.rules.create(name, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    if hasattr(rule, "bind_optimizer"):
        rule.bind_optimizer(opt)
    enc = dnmsnn.PoissonEncoder(T, seed=0)
    images = torch.rand(batch, *net.input_shape)
    labels = torch.randint(0, net.num_classes, (batch,))
    xs = [enc(images) for _ in range(2)]

    def step(x):
        opt.zero_grad(set_to_none=True)
        rule.loss_backward(net, x, labels)
        opt.step()

    step(xs[0])  # warm-up: runtime, Adam state
    step(xs[1])
    # the fused nodes' buffer pool keeps a step's large buffers between steps: empty it, so that they are
    # allocated again inside the measured window and count in the growth (they are per-step memory)
    release = getattr(getattr(dnmsnn, "functional", None), "release_buffers", None)
    if release is not None:
        release()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    base = rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    t0 = time.perf_counter()
    for i in range(iters):
        step(xs[i % 2])
    elapsed = time.perf_counter() - t0
    peak = rss_kb("VmHWM")
    inputs_mb = sum(x.numel() * x.element_size() for x in xs) / 2**20
    return {"model": model, "rule": rule_key, "T": T, "batch": batch, "iters": iters,
            "peak_growth_mb": (peak - base) / 1024, "baseline_rss_mb": base / 1024, "inputs_mb": inputs_mb,
            "samples_per_s": batch * iters / elapsed, "torch": torch.__version__, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bondarev_mlp")
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--T", default="5,10,20,40,80,200")
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--min-steps", type=int, default=0,
                    help="at least this many time steps per cell: iters = max(iters, ceil(min_steps / T)), so that "
                         "short-T cells run as many layer calls as long-T ones (the allocator's steady state)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/memory_vs_T")
    ap.add_argument("--worker", nargs=2, metavar=("RULE", "T"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], int(a.worker[1]), a.iters, a.batch, a.model)))
        return
    rows = []
    for rule in a.rules.split(","):
        for T in map(int, a.T.split(",")):
            iters = max(a.iters, -(-a.min_steps // T))
            cmd = [sys.executable, __file__, "--worker", rule, str(T), "--iters", str(iters),
                   "--batch", str(a.batch), "--model", a.model]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{rule:15s} T={T:3d}  peak growth {r['peak_growth_mb']:8.1f} MB  "
                  f"{r['samples_per_s']:7.0f} samples/s", file=sys.stderr)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    Ts = sorted({r["T"] for r in rows})
    lines = [f"# Peak training-step memory against T ({a.model}, batch {a.batch})", "",
             "Peak RSS growth of a training step in MB (fresh process per cell). The encoded input batches "
             "are allocated before the baseline, so they are not in the growth; their size is listed below "
             "for scale." + (f" Every cell ran at least {a.min_steps} time steps (iterations per T: "
                             + ", ".join(f"{T}: {max(a.iters, -(-a.min_steps // T))}" for T in map(int, a.T.split(",")))
                             + ")." if a.min_steps else f" {a.iters} iterations per cell."), "",
             "| rule | " + " | ".join(f"T={T}" for T in Ts) + " | growth T=" + f"{Ts[0]}->{Ts[-1]}" + " |",
             "|---|" + "---|" * (len(Ts) + 1)]
    for rule in a.rules.split(","):
        cells = {r["T"]: r["peak_growth_mb"] for r in rows if r["rule"] == rule}
        growth = cells[Ts[-1]] / cells[Ts[0]] - 1 if cells[Ts[0]] > 0 else float("nan")
        lines.append(f"| {rule} | " + " | ".join(f"{cells[T]:.1f}" for T in Ts) + f" | {growth:+.0%} |")
    inputs = {T: next(r["inputs_mb"] for r in rows if r["T"] == T) for T in Ts}
    lines += ["", "| T | inputs MB |", "|---|---|"] + [f"| {T} | {inputs[T]:.1f} |" for T in Ts]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
