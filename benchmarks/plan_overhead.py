"""What choosing the execution plan costs per training step: the time spent in :mod:`dnmsnn.plan`'s choice
functions and in the run's dispatch, as a share of the step.

    python benchmarks/plan_overhead.py --out benchmarks/results/plan_overhead

The plan is chosen anew at every call (:mod:`dnmsnn.plan`), not compiled once and cached. This measures what a
cache could save at most: one BPTT step (forward, backward, Adam) of each model, direct input, batch 64, one
thread, under :mod:`cProfile`; the share is the cumulative time of every function of ``dnmsnn/plan.py`` called
from outside that module (so nested calls count once), plus the run's dispatch helpers (``run_module``,
``step_module``, ``totals_module``, ``takes_run``, ``check_runs_as_told``), over the profiled step's total.
cProfile slows Python code, not the kernels, so the share is an upper bound of the share without it.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys

import torch
from _results import write_results  # benchmarks/ is on sys.path when a script here runs
from profile_step import make_step

MODELS = {"bondarev_mlp": 20, "asf_lenet": 20, "resnet11_w8": 4}  # model: T (MNIST-sized input [1, 28, 28])
DISPATCH = {"run_module", "step_module", "totals_module", "takes_run", "check_runs_as_told"}


def shares(stats: pstats.Stats) -> tuple[float, float, float]:
    """(total s, plan s, dispatch s) of a profile: a plan function counts only where called from outside plan.py."""
    plan = dispatch = 0.0
    for (file, line, name), (_, _, _, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if file.endswith("dnmsnn/plan.py"):
            outside = sum(c[3] for (cf, _, _), c in callers.items() if not cf.endswith("dnmsnn/plan.py"))
            plan += outside
        elif name in DISPATCH and (file.endswith("dnmsnn/module.py") or file.endswith("dnmsnn/layers.py")):
            dispatch += stats.stats[(file, line, name)][2]  # type: ignore[attr-defined]  # self time: the dispatch, not the layer it calls
    total = stats.total_tt  # type: ignore[attr-defined]
    return total, plan, dispatch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for model in args.models:
        T = MODELS[model]
        step = make_step(model, T, args.batch, "direct")
        for _ in range(2):
            step()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.steps):
            step()
        prof.disable()
        total, plan, dispatch = shares(pstats.Stats(prof))
        rows.append({"model": model, "T": T, "batch": args.batch, "steps": args.steps, "step_s": total / args.steps,
                     "plan_s": plan / args.steps, "dispatch_s": dispatch / args.steps})
        print(rows[-1], flush=True)
    lines = ["# What choosing the plan at every call costs", "",
             f"One BPTT training step (forward, backward, Adam), direct input, batch {args.batch}, 1 thread, under "
             f"cProfile (mean of {args.steps} steps; cProfile slows Python, so the shares are upper bounds).", "",
             "| model | T | step: s (profiled) | plan choices: ms | share | run dispatch: ms | share |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['T']} | {r['step_s']:.3f} | {1e3 * r['plan_s']:.2f} | "
                     f"{r['plan_s'] / r['step_s']:.2%} | {1e3 * r['dispatch_s']:.2f} | "
                     f"{r['dispatch_s'] / r['step_s']:.2%} |")
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
