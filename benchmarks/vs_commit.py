"""Training speed of this checkout against an older commit of dnmsnn, side by side on the same machine.

    git worktree add ../dnmsnn-26aa99b 26aa99b
    python benchmarks/vs_commit.py --baseline ../dnmsnn-26aa99b --out benchmarks/results/vs_26aa99b_resnet

Each measurement is a fresh process (``PYTHONPATH=<checkout>/src``) that builds the model, warms up, and
times ``--steps`` training steps (``--rule``, default BPTT; forward, backward, Adam; T = 4, batch 64, MNIST-sized
direct input, BatchNorm on) of one network and of a cohort of 2 (``dnmsnn.Cohort``, exchange ``kl``); the two checkouts
alternate for ``--rounds`` rounds, so a slow phase of the host hits both. The table gives medians over the
rounds and the ratios (speed-up = baseline time / this checkout's time; cohort cost = cohort time / single
time within one checkout); peak MB is the process's peak resident memory above what it held before the first
network was built (the cohort's includes the single network's run before it). Both checkouts use the C++
kernels of the same cache when their sources match.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _results import write_results  # benchmarks/ is on sys.path when a script here runs

CHILD = r"""
import json, sys, time, torch, dnmsnn
model, T, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rule = sys.argv[6]
torch.set_num_threads(threads)
def trainer(size):
    nets = []
    for k in range(size):
        torch.manual_seed(k)
        nets.append(dnmsnn.models.create(model, input_shape=(1, 28, 28)))
    cohort = dnmsnn.Cohort(nets, rule, exchange="kl", weight=1.0, seeds=list(range(size)))
    opts = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=g).expand(T, -1, -1, -1, -1).contiguous()
    y = torch.randint(0, 10, (batch,), generator=g)
    def step():
        for o in opts:
            o.zero_grad(set_to_none=True)
        cohort.loss_backward(x, y)
        for o in opts:
            o.step()
    return step
import resource
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6
out = {}
base_mb = rss_mb()
for size in (1, 2):
    step = trainer(size)
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    times.sort()
    out["single" if size == 1 else "cohort2"] = times[len(times) // 2]
    # the process's peak resident memory so far, above what it held before the first network was built
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3 - base_mb  # ru_maxrss: kB on Linux
    out["peak_mb_" + ("single" if size == 1 else "cohort2")] = peak
print(json.dumps(out))
"""


def measure(src: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src / "src"), "OMP_NUM_THREADS": str(args.threads)}
    res = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.T), str(args.batch), str(args.steps),
                          str(args.threads), args.rule], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="a checkout (git worktree) of the older commit")
    ap.add_argument("--model", default="resnet11_w8")
    ap.add_argument("--rule", default="bptt", help="bptt, spatial or asf (default arguments)")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="write OUT.jsonl and OUT.md")
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parents[1]
    base = Path(args.baseline).resolve()
    commit = subprocess.run(["git", "-C", str(base), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or base.name
    head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    rows = []
    for r in range(args.rounds):
        for name, src in (("baseline", base), ("this", here)) if r % 2 == 0 else (("this", here), ("baseline", base)):
            rows.append({"round": r, "code": name, **measure(src, args)})
            print(json.dumps(rows[-1]), flush=True)
    keys = ("single", "cohort2", "peak_mb_single", "peak_mb_cohort2")
    med = {name: {k: statistics.median(row[k] for row in rows if row["code"] == name) for k in keys}
           for name in ("baseline", "this")}
    b = args.batch
    lines = [f"# {args.model}: this checkout ({head}) against {commit}", "",
             f"{args.rule} training step, T = {args.T}, batch {b}, direct input [1, 28, 28], {args.threads} thread(s); "
             f"median of {args.rounds} alternating rounds x {args.steps} steps, each round a fresh process per "
             "checkout.", "",
             "| code | single: s per step | samples/s | cohort of 2: s per step | cohort / single | peak MB: single | "
             "peak MB: cohort |", "|---|---|---|---|---|---|---|"]
    for name, label in (("baseline", commit), ("this", head)):
        m = med[name]
        lines.append(f"| {label} | {m['single']:.3f} | {b / m['single']:.0f} | {m['cohort2']:.3f} | "
                     f"{m['cohort2'] / m['single']:.2f} | {m['peak_mb_single']:.0f} | {m['peak_mb_cohort2']:.0f} |")
    lines += ["", f"Speed-up of one network: **{med['baseline']['single'] / med['this']['single']:.2f}x**; of a cohort "
              f"of 2: **{med['baseline']['cohort2'] / med['this']['cohort2']:.2f}x**."]
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
