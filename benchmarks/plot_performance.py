"""Throughput and memory against T from peer_bench records (``dnmsnn bench`` output), as PNG figures.

    python benchmarks/plot_performance.py benchmarks/results/peer_bench-final.jsonl
    python benchmarks/plot_performance.py RUN1.jsonl RUN2.jsonl --out reports/figures/performance --format png,svg

Writes OUT_throughput (training and inference samples/s against T, bondarev-mlp), OUT_memory (peak RSS
growth of a training step against T) and OUT_lenet (asf-conv bars, when measured); every point is the
median over the runs in the files. Same as ``dnmsnn bench --summarize FILES --plot OUT``.
"""
from __future__ import annotations

import argparse
import sys

from bench import load_records, plot  # benchmarks/bench.py (this folder is on sys.path when run as a script)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl", nargs="+", help="peer_bench JSON-lines files")
    ap.add_argument("--out", default="reports/figures/performance", help="output prefix (default %(default)s)")
    ap.add_argument("--format", default="png", help="comma list of png, svg, pdf (default png)")
    ap.add_argument("--note", default="", help="a line printed under every figure (e.g. 'preliminary')")
    a = ap.parse_args(argv)
    recs = load_records(a.jsonl)
    if not recs:
        print("no successful records in " + ", ".join(a.jsonl), file=sys.stderr)
        return 1
    for f in plot(recs, a.out, [x.strip() for x in a.format.split(",") if x.strip()], note=a.note):
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
