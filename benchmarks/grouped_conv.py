"""Would a cohort gain from running its members' convolutions together? Grouped against separate convolutions.

    python benchmarks/grouped_conv.py --out benchmarks/results/grouped_conv_resnet11_w8

A cohort of K identical networks could run as one network of K channel groups (each member's convolution one
group of a grouped convolution, its BatchNorm and neurons on its own channels): one call per layer instead of K.
That pays only if oneDNN runs a ``groups=K`` convolution faster than K separate ones. This times, at the
3x3 convolution shapes of ``resnet11_w8`` on MNIST (T = 4, batch 64: 256 images per call; channels-last, as the
stacked Conv2d runs them), forward + backward of K = 2 separate convolutions against one with ``groups=2`` on
the concatenated input, median of ``--repeats`` calls, one thread by default.
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F
from _results import write_results  # benchmarks/ is on sys.path when a script here runs

from dnmsnn.functional.spike_matmul import median_time

SHAPES = [(256, 16, 28, 16), (256, 32, 14, 32), (256, 64, 7, 64)]  # images, channels in, size, channels out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--out", help="write OUT.jsonl and OUT.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    rows = []
    for n, c, size, co in SHAPES:
        x = torch.rand(n, c, size, size, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
        x2 = torch.rand(n, 2 * c, size, size, generator=g).contiguous(memory_format=torch.channels_last)
        x2.requires_grad_()
        w1, w2 = (torch.randn(co, c, 3, 3, generator=g).requires_grad_() for _ in range(2))

        def separate(x=x, w1=w1, w2=w2) -> None:
            (F.conv2d(x, w1, padding=1).sum() + F.conv2d(x, w2, padding=1).sum()).backward()

        def grouped(x2=x2, w1=w1, w2=w2) -> None:
            F.conv2d(x2, torch.cat([w1, w2]), padding=1, groups=2).sum().backward()

        rows.append({"images": n, "channels": c, "size": size, "out": co, "threads": args.threads,
                     "separate_s": median_time(separate, args.repeats, warmup=2),
                     "grouped_s": median_time(grouped, args.repeats, warmup=2)})
    lines = ["# Grouped (groups = 2) against two separate 3x3 convolutions, forward + backward", "",
             f"channels-last, {args.threads} thread(s), median of {args.repeats} calls; the shapes of resnet11_w8's "
             "3x3 convolutions at T = 4, batch 64.", "",
             "| images x channels x size -> out | 2 separate: s | grouped: s | separate / grouped |",
             "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['images']} x {r['channels']} x {r['size']}^2 -> {r['out']} | {r['separate_s']:.4f} | "
                     f"{r['grouped_s']:.4f} | {r['separate_s'] / r['grouped_s']:.2f} |")
    write_results(args.out, rows, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
