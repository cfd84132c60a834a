"""What a DNM cohort costs against one network: paired, interleaved timings in ONE process.

    python benchmarks/cohort_cost.py                                   # resnet11_w8, MNIST-sized input, 1 thread
    python benchmarks/cohort_cost.py --model mlp --threads 2 --out benchmarks/results/cohort_cost_mlp

Variants, each one training step (forward, backward, Adam) on the same direct-coded batch of shape
[T, B, 1, 28, 28] (BPTT, cross-entropy, exchange ``kl`` with lambda = 1):
  single      one network
  cohort      a cohort of 2, the predictions exchanged taken from the members' training forwards (default)
  separate    a cohort of 2 with ``separate_predictions=True``: an extra no-grad prediction pass per member
              (the only way before 2026-12-07)
All variants live in the same process and are driven round-robin (one untimed re-warm + ``--chunk`` timed
steps per turn, order shuffled each round), so a slow phase of the shared host hits all of them alike; the
table reports each variant's median step time relative to ``single`` of the same run. Peak memory is not
measured here (the cohort keeps both members' graphs alive together: see fast_paths.py --memory for how).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import torch
from _results import write_results  # benchmarks/ is on sys.path when a script here runs

import dnmsnn

VARIANTS = ("single", "cohort", "separate")


def build(variant: str, model: str, T: int, batch: int, seed: int):
    """A closure running one training step of the variant."""
    size = 1 if variant == "single" else 2
    nets = []
    for k in range(size):
        torch.manual_seed(seed + k)
        nets.append(dnmsnn.models.create(model, input_shape=(1, 28, 28)))
    cohort = dnmsnn.Cohort(nets, "bptt", exchange="kl", weight=1.0, seeds=list(range(size)),
                           separate_predictions=variant == "separate")
    optimizers = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 28, 28, generator=gen).expand(T, -1, -1, -1, -1).contiguous()
    y = torch.randint(0, 10, (batch,), generator=gen)

    def step() -> None:
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        cohort.loss_backward(x, y)
        for o in optimizers:
            o.step()
    return step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet11_w8")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--chunk", type=int, default=3)
    ap.add_argument("--out", help="write OUT.jsonl and OUT.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {v: build(v, args.model, args.T, args.batch, 0) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    rng = random.Random(0)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for v in order:
            steps[v]()  # re-warm after the other variants ran
            for _ in range(args.chunk):
                t0 = time.perf_counter()
                steps[v]()
                times[v].append(time.perf_counter() - t0)
    base = statistics.median(times["single"])
    rows = [{"variant": v, "model": args.model, "T": args.T, "batch": args.batch, "threads": args.threads,
             "median_s": statistics.median(times[v]), "ratio_to_single": statistics.median(times[v]) / base,
             "samples_per_s": args.batch / statistics.median(times[v]), "n": len(times[v])} for v in VARIANTS]
    lines = [f"# Cohort cost: {args.model}, T = {args.T}, batch {args.batch}, {args.threads} thread(s), BPTT",
             "", "| variant | median step (s) | x single | samples/s (per member) | steps |", "|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['median_s']:.4f} | {r['ratio_to_single']:.2f} | {r['samples_per_s']:.0f} | "
              f"{r['n']} |" for r in rows]
    lines += ["", f"torch {torch.__version__}, dnmsnn {dnmsnn.__version__}; interleaved round-robin, "
              f"{args.rounds} rounds x {args.chunk} steps."]
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
