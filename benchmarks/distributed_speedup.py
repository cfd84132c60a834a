"""Speed-up of 2-process training on this machine, and the cost of the cohort's prediction exchange.

    python benchmarks/distributed_speedup.py                # about 2-3 minutes on 2 cores
    python benchmarks/distributed_speedup.py --epochs 4 --hidden 512,512 --T 20 --out runs/speedup

Training throughput: the real command, ``dnmsnn train`` in one process against ``dnmsnn train --nproc 2``
(torch.distributed.run, gloo), with the same global batch, on the embedded digits (no download). The
number is the trainer's own ``train_samples_per_s`` (training only, every sample of every global batch,
rank 0's clock), the median over the epochs after the first. Two modes:

* data parallel (``train.parallel: data``): one network, each global batch split over the 2 ranks;
* cohort parallel (``train.parallel: cohort``): a DNM-SNN cohort of 2, one member per rank.

One process is measured with 1 thread and with as many threads as the 2 processes have together.

Exchange: a 2-process job times ``all_gather`` of a [batch, classes] float32 tensor (what a cohort member
sends per batch), median of ``--iters`` calls after a warm-up, and, for scale, the ``all_reduce`` of the
network's gradients that data parallel does per batch. Results: JSON lines + a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def train_run(tmp: Path, name: str, sets: list[str], nproc: int, threads: int) -> dict:
    """One `dnmsnn train` run; its training samples/s (median over epochs after the first) and wall time."""
    out = tmp / name
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    args = [x for s in [*sets, f"train.threads={threads}", "train.progress=false"] for x in ("--set", s)]
    cmd = [sys.executable, "-m", "dnmsnn", "train", *args, "--out", str(out)]
    if nproc > 1:
        cmd[4:4] = ["--nproc", str(nproc)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stdout}\n{proc.stderr}")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    sps = [r["train_samples_per_s"] for r in rows[1:]] or [rows[0]["train_samples_per_s"]]
    return {"samples_per_s": statistics.median(sps), "samples_per_s_epochs": [r["train_samples_per_s"] for r in rows],
            "wall_s": wall, "test_acc": rows[-1]["test_acc"]}


def exchange_worker(batches: list[int], classes: int, iters: int, grad_numel: int, result: str) -> None:
    """Run under torchrun: time all_gather of [B, classes] and all_reduce of grad_numel floats."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    def timed(fn) -> float:
        for _ in range(max(5, iters // 10)):
            fn()
        times = []
        for _ in range(iters):
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    rows = []
    for B in batches:
        x = torch.randn(B, classes)
        outs = [torch.empty_like(x) for _ in range(world)]
        t = timed(lambda x=x, outs=outs: dist.all_gather(outs, x))
        nbytes = x.numel() * x.element_size()
        rows.append({"op": "all_gather predictions", "shape": [B, classes], "median_us": t * 1e6,
                     "bytes_sent_per_rank": nbytes, "bytes_received_per_rank": nbytes * (world - 1)})
    g = torch.randn(grad_numel)
    t = timed(lambda: dist.all_reduce(g))
    rows.append({"op": "all_reduce gradients (data parallel)", "shape": [grad_numel], "median_us": t * 1e6,
                 "bytes_sent_per_rank": g.numel() * 4, "bytes_received_per_rank": g.numel() * 4})
    if rank == 0:
        Path(result).write_text(json.dumps(rows))
    dist.destroy_process_group()


def grad_numel(hidden: list[int], inputs: int = 64, classes: int = 10) -> int:
    widths = [inputs, *hidden, classes]
    return sum(a * b for a, b in zip(widths, widths[1:], strict=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", default="512,512", help="hidden widths of the mlp on the 8x8 digits")
    ap.add_argument("--T", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128, help="global batch size")
    ap.add_argument("--iters", type=int, default=200, help="timed exchange calls")
    ap.add_argument("--out", default=str(HERE / "results" / "distributed_speedup"))
    ap.add_argument("--exchange-worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--markdown-only", action="store_true", help="rewrite OUT.md from OUT.jsonl, measure nothing")
    args = ap.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]
    if args.markdown_only:
        meta, *records = [json.loads(x) for x in Path(f"{args.out}.jsonl").read_text().splitlines()]
        Path(f"{args.out}.md").write_text(markdown(meta, records))
        return
    batches = sorted({32, 64, args.batch, 256})
    if args.exchange_worker:
        exchange_worker(batches, 10, args.iters, grad_numel(hidden), args.exchange_worker)
        return

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    common = ["data.name=digits", "model.name=mlp", f"model.args={{hidden: {hidden}}}", f"encoder.T={args.T}",
              f"train.batch_size={args.batch}", f"train.epochs={args.epochs}", "data.test_limit=100"]
    modes = {"data": common, "cohort": [*common, "cohort.size=2", "cohort.weight=1.0", "train.parallel=cohort"]}
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, sets in modes.items():
            for nproc, threads in ((1, 1), (1, 2), (2, 1)):
                name = f"{mode}-{nproc}p{threads}t"
                r = train_run(Path(tmp), name, sets, nproc, threads)
                records.append({"kind": "train", "mode": mode, "processes": nproc, "threads_per_process": threads,
                                **r})
                epochs = [round(x) for x in r["samples_per_s_epochs"]]
                print(f"{name}: {r['samples_per_s']:.0f} samples/s (epochs {epochs}, wall {r['wall_s']:.1f} s)",
                      flush=True)
        result = Path(tmp) / "exchange.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(Path(__file__).resolve()), "--exchange-worker", str(result), "--iters", str(args.iters),
                        "--hidden", args.hidden, "--batch", str(args.batch)], env=env, check=True,
                       capture_output=True)
        exchange = json.loads(result.read_text())
    for row in exchange:
        records.append({"kind": "exchange", **row})
        print(f"{row['op']} {row['shape']}: {row['median_us']:.0f} us, {row['bytes_sent_per_rank']} bytes sent/rank",
              flush=True)
    meta = {"kind": "meta", "date": time.strftime("%Y-%m-%d %H:%M"), "cpu_cores": cores,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "python": platform.python_version(),
            "model": f"mlp 64-{'-'.join(map(str, hidden))}-10 (LIF), rule bptt", "T": args.T,
            "global_batch": args.batch, "epochs": args.epochs}
    import torch

    meta["torch"] = torch.__version__
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [meta, *records]))
    Path(f"{out}.md").write_text(markdown(meta, records))
    print(f"wrote {out}.jsonl and {out}.md")


def markdown(meta: dict, records: list[dict]) -> str:
    train = [r for r in records if r["kind"] == "train"]
    base = {r["mode"]: r["samples_per_s"] for r in train if r["processes"] == 1 and r["threads_per_process"] == 1}
    same_cores = {r["mode"]: r["samples_per_s"] for r in train if r["processes"] == 1 and r["threads_per_process"] == 2}
    lines = [
        "# Distributed training: 2-process speed-up and prediction-exchange cost",
        "",
        f"Measured {meta['date']} with `python benchmarks/distributed_speedup.py` on a machine with "
        f"**{meta['cpu_cores']} CPU cores shared with other jobs running at the same time** (load average "
        f"{meta['loadavg_before'][0]:.1f} before, {meta['loadavg_after'][0]:.1f} after): the numbers are noisy "
        "and say more about overheads than about what 2 free cores or 2 machines would give. "
        f"torch {meta['torch']}, gloo backend, Python {meta['python']}.",
        "",
        f"Training: {meta['model']}, T = {meta['T']}, global batch {meta['global_batch']}, embedded digits "
        f"(1,437 training images), {meta['epochs']} epochs; samples/s is the trainer's `train_samples_per_s` "
        "(training only, all samples of the global batch), median over the epochs after the first. "
        "Same global batch in every row.",
        "",
        "| mode | processes x threads | samples/s | vs 1 process x 1 thread | vs 1 process x 2 threads | wall (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in train:
        lines.append(f"| {r['mode']} | {r['processes']} x {r['threads_per_process']} | {r['samples_per_s']:.0f} | "
                     f"{r['samples_per_s'] / base[r['mode']]:.2f}x | "
                     f"{r['samples_per_s'] / same_cores[r['mode']]:.2f}x | {r['wall_s']:.1f} |")
    lines += [
        "",
        "`data`: one network, each global batch split over the ranks, gradients summed by DDP every batch. "
        "`cohort`: a DNM-SNN cohort of 2 (`cohort.size: 2`), in one process both members in turn, with "
        "`train.parallel: cohort` one member per rank exchanging predictions. Wall time includes process start, "
        "data loading and the per-epoch evaluation (rank 0 only).",
        "",
        "Exchange cost (2 processes, gloo over loopback, median of the timed calls):",
        "",
        "| operation | tensor | median time (us) | payload sent per rank (bytes) | payload received per rank (bytes) |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        if r["kind"] == "exchange":
            lines.append(f"| {r['op']} | {' x '.join(map(str, r['shape']))} float32 | {r['median_us']:.0f} | "
                         f"{r['bytes_sent_per_rank']:,} | {r['bytes_received_per_rank']:,} |")
    cohort2 = next(r for r in train if r["mode"] == "cohort" and r["processes"] == 2)
    gather = next((r for r in records if r["kind"] == "exchange" and r["shape"][0] == meta["global_batch"]), None)
    per_batch_ms = 1e3 * meta["global_batch"] / cohort2["samples_per_s"]
    lines += [
        "",
        "A cohort member sends its [batch, classes] predictions once per batch (the only per-batch traffic "
        "of cohort parallel with one rank per member) and receives its peers'; data parallel all-reduces the "
        "whole gradient every batch (last row, this network's size; ring all-reduce moves about 2(N-1)/N times "
        "the payload).",
    ]
    if gather is not None:
        lines += ["", f"Per batch of {meta['global_batch']} the cohort run on 2 processes took "
                      f"{per_batch_ms:.0f} ms; the prediction exchange is {gather['median_us'] / 1e3:.2f} ms of "
                      f"it ({gather['median_us'] / 1e3 / per_batch_ms:.1%}), mostly latency: the time hardly "
                      "grows from 32 to 256 samples."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
