"""``dnmsnn bench`` (= ``python benchmarks/bench.py``): dnmsnn against snnTorch, SpikingJelly and Norse on the
peer_bench yardstick. It lives in ``benchmarks/``, not in the package: it needs this checkout's adapter and the
shared peer_bench, which an installed wheel does not have; ``dnmsnn bench`` finds and runs this file.

Runs ``peer_bench.py`` (the shared CPU benchmark that trains the same canonical spiking networks in
every library, interleaved, each configuration in a fresh process) with the dnmsnn adapter
``benchmarks/peer_bench_dnmsnn.py``, in the interpreter given by ``--python`` (default
``.venv-peers/bin/python`` when it exists: the venv made by peer_bench's ``setup_venv.sh``, with
dnmsnn installed into it by ``pip install --no-deps -e .``). Peers that interpreter cannot import are
left out, so with a plain venv only dnmsnn and the plain-PyTorch references run.

Writes ``OUT.jsonl`` (peer_bench's records, appended), ``OUT_peer_bench.md`` (its tables) and
``OUT.md``: dnmsnn's paired ratios against every peer and the ANN (per run, median over repeats) and
the performance targets of the project. ``--plot`` draws throughput and memory against T
(:func:`plot`). Ratios, not absolute times, are the result: the host is shared and drifts.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from dnmsnn.errors import InputError

REPO = Path(__file__).resolve().parents[1]  # benchmarks/bench.py -> the checkout
PEERS = ("snntorch", "spikingjelly", "norse")
REFERENCES = ("torch-ann", "torch-naive")
DEFAULT_LIBS = ("dnmsnn", *REFERENCES, *PEERS)
ANN = ("torch-ann", "torch-ann-steps")
# the project's targets (issue 7): (workload, T, what, threshold)
TARGETS = (
    ("bondarev-mlp", 20, "train throughput vs spikingjelly", ">=", 2.0),
    ("bondarev-mlp", 20, "train throughput vs ANN", ">=", 0.9),
    ("asf-conv", 20, "train throughput vs fastest peer", ">=", 1.5),
    ("bondarev-mlp", 80, "peak memory vs spikingjelly", "<=", 0.5),
    ("bondarev-mlp", 20, "inference throughput vs fastest peer", ">=", 2.0),
    ("asf-conv", 20, "inference throughput vs fastest peer", ">=", 2.0),
)


def _first_existing(candidates: Iterable[Path]) -> Path | None:
    for c in candidates:
        if c.is_file():
            return c
    return None


def find_peer_bench(path: str | None = None) -> Path:
    """peer_bench.py: ``path``, ``$DNMSNN_PEER_BENCH``, or ``../shared/tools/peer_bench/`` beside the checkout."""
    given = path or os.environ.get("DNMSNN_PEER_BENCH")
    rel = Path("..") / "shared" / "tools" / "peer_bench" / "peer_bench.py"
    found = _first_existing([Path(given)] if given else [Path.cwd() / rel, REPO / rel])
    if found is None:
        raise InputError(f"peer_bench.py not found ({given or rel}); pass --peer-bench PATH or set DNMSNN_PEER_BENCH")
    return found.resolve()


def find_plugin(path: str | None = None) -> Path:
    rel = Path("benchmarks") / "peer_bench_dnmsnn.py"
    found = _first_existing([Path(path)] if path else [Path.cwd() / rel, REPO / rel])
    if found is None:
        raise InputError(f"the dnmsnn adapter {path or rel} was not found (it ships with the source checkout); "
                         "pass --plugin PATH")
    return found.resolve()


def default_python() -> str:
    for root in (Path.cwd(), REPO):
        py = root / ".venv-peers" / "bin" / "python"
        if py.is_file():
            return str(py)
    return sys.executable


def importable(python: str, modules: Sequence[str]) -> dict[str, bool]:
    """Which of ``modules`` the interpreter ``python`` can import (checked in a subprocess)."""
    code = ("import importlib, json, sys\n"
            "def ok(m):\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "        return True\n"
            "    except Exception:\n"
            "        return False\n"
            "print(json.dumps({m: ok(m) for m in sys.argv[1:]}))")
    try:
        out = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"cannot run {python}: {exc}") from None
    if out.returncode != 0:
        raise InputError(f"{python} failed to start: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def choose_libs(python: str, libs: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(libraries to run, libraries left out because ``python`` cannot import them)."""
    wanted = list(libs or DEFAULT_LIBS)
    mods = {"dnmsnn": "dnmsnn", "snntorch": "snntorch", "spikingjelly": "spikingjelly", "norse": "norse"}
    ok = importable(python, ["torch", *sorted({mods[lib] for lib in wanted if lib in mods})])
    if not ok.get("torch"):
        raise InputError(f"{python} cannot import torch")
    if "dnmsnn" in wanted and not ok.get("dnmsnn"):
        raise InputError(f"{python} cannot import dnmsnn; install it there: {Path(python).parent / 'pip'} install "
                         "--no-deps -e .")
    run = [lib for lib in wanted if ok.get(mods.get(lib, "torch"), False)]
    return run, [lib for lib in wanted if lib not in run]


def peer_bench_command(args: argparse.Namespace, python: str, libs: Sequence[str], jsonl: Path) -> list[str]:
    cmd = [python, str(find_peer_bench(args.peer_bench)), "--plugin", str(find_plugin(args.plugin)),
           "--libs", ",".join(libs), "--threads", str(args.threads), "--batch", str(args.batch)]
    if args.check:
        return [*cmd, "--check"]
    cmd += ["--repeat", str(args.repeat), "--json", str(jsonl)]
    for flag, val in (("--workloads", args.workloads), ("--T", args.T), ("--iters", args.iters),
                      ("--warmup", args.warmup), ("--infer-iters", args.infer_iters), ("--chunk", args.chunk)):
        if val is not None:
            cmd += [flag, str(val)]
    return cmd


# ------------------------------------------------------------------ summary of peer_bench records
def load_records(paths: Sequence[str | Path]) -> list[dict]:
    """peer_bench JSON lines of one or more files (``_src`` = file index; records without status 'ok' dropped)."""
    out = []
    for i, p in enumerate(paths):
        for line in Path(p).read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                rec["_src"] = i
                if rec.get("status") == "ok":
                    out.append(rec)
    return out


def _runs(recs: list[dict]) -> dict[tuple, dict[str, dict]]:
    """(workload, T, file, repeat, k) -> {lib: record}: the records measured together (paired).

    Records of one run follow each other in the file; a second invocation appending to the same file
    restarts at repeat 0, so a library seen again under the same key starts a new group (k + 1).
    """
    runs: dict[tuple, dict[str, dict]] = {}
    count: dict[tuple, int] = {}
    for r in recs:
        key = (r["workload"], r["T"], r["_src"], r.get("repeat", 0))
        k = count.setdefault(key, 0)
        if r["lib"] in runs.get((*key, k), {}):
            k = count[key] = k + 1
        runs.setdefault((*key, k), {})[r["lib"]] = r
    return runs


def _train(r: dict) -> float:
    return r["train"]["median_s"]


def _infer(r: dict) -> float:
    return r["infer"]["median_s"]


def _mem(r: dict) -> float:
    return r["train_peak_growth_mb"]


def paired(recs: list[dict], workload: str, T: int, other: str, key, lib: str = "dnmsnn",
           invert: bool = True) -> list[float]:
    """Per run: key(other)/key(lib) (invert, a speed-up of lib) or key(lib)/key(other); 'ann' = faster ANN,
    'peer' = fastest (lowest key) library peer of that run."""
    out = []
    for (wl, t, *_), by_lib in _runs(recs).items():
        if wl != workload or t != T or lib not in by_lib:
            continue
        pool = ANN if other == "ann" else (PEERS if other == "peer" else (other,))
        refs = [key(by_lib[a]) for a in pool if a in by_lib]
        if not refs:
            continue
        ref = min(refs)
        mine = key(by_lib[lib])
        out.append(ref / mine if invert else mine / ref)
    return out


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "-"


def summarize(recs: list[dict], lib: str = "dnmsnn") -> str:
    """Markdown: per (workload, T), lib's paired ratios against every other library and the targets."""
    if not recs:
        return "No successful records.\n"
    any_r = recs[0]
    others = [x for x in dict.fromkeys(r["lib"] for r in recs) if x != lib]
    n_runs = max(len([k for k in _runs(recs) if k[:2] == wt]) for wt in {(r["workload"], r["T"]) for r in recs})
    lines = ["# dnmsnn on the peer_bench yardstick", "",
             f"CPU {any_r.get('cpu', '?')}, {any_r.get('threads', '?')} threads, batch {any_r.get('batch', '?')}, "
             f"torch {any_r.get('versions', {}).get('torch', '?')}; up to {n_runs} run(s) per configuration. "
             "Every ratio is paired (both libraries measured in the same interleaved run) and the median over runs; "
             "speed-up = time(other) / time(dnmsnn), so > 1 means dnmsnn is faster; memory ratio = peak RSS "
             "growth(dnmsnn) / growth(other), < 1 means dnmsnn needs less. 'ANN' is the faster of torch-ann / "
             "torch-ann-steps of the run, 'fastest peer' the fastest of snntorch / spikingjelly / norse (in the memory "
             "column: the peer needing the least memory).", ""]
    keys = sorted({(r["workload"], r["T"]) for r in recs}, key=lambda k: (k[0] != "bondarev-mlp", k[0], k[1]))
    lines += ["| workload | T | vs | train speed-up | inference speed-up | memory ratio | dnmsnn train samples/s "
              "| other train samples/s | n |", "|---|---|---|---|---|---|---|---|---|"]
    for wl, T in keys:
        mine = [r for r in recs if r["workload"] == wl and r["T"] == T and r["lib"] == lib]
        if not mine:
            continue
        sps = statistics.median(r["train_samples_per_s"] for r in mine)
        for other in [*others, "ann", "peer"]:
            tr = paired(recs, wl, T, other, _train)
            if not tr:
                continue
            inf = paired(recs, wl, T, other, _infer)
            mem = paired(recs, wl, T, other, _mem, invert=False)
            theirs = [r["train_samples_per_s"] for r in recs if r["workload"] == wl and r["T"] == T
                      and r["lib"] == other]
            label = {"ann": "ANN", "peer": "fastest peer"}.get(other, other)
            theirs = f"{statistics.median(theirs):.0f}" if theirs else "-"
            lines.append(f"| {wl} | {T} | {label} | {_med(tr)} | {_med(inf)} | {_med(mem)} | {sps:.0f} | {theirs} "
                         f"| {len(tr)} |")
    lines += ["", "## Targets", "", "| target | measured (median of paired runs) | runs | met |", "|---|---|---|---|"]
    for wl, T, what, op, thr in TARGETS:
        other = "spikingjelly" if "spikingjelly" in what else ("ann" if "ANN" in what else "peer")
        key = _mem if "memory" in what else (_infer if "inference" in what else _train)
        xs = paired(recs, wl, T, other, key, invert=key is not _mem)
        if not xs:
            lines.append(f"| {wl} T={T}: {what} {op} {thr} | not measured | 0 | - |")
            continue
        m = statistics.median(xs)
        met = m >= thr if op == ">=" else m <= thr
        lines.append(f"| {wl} T={T}: {what} {op} {thr} | {m:.2f} (runs: {', '.join(f'{x:.2f}' for x in xs)}) "
                     f"| {len(xs)} | {'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ figures
def plot(recs: list[dict], out_prefix: str | Path, formats: Sequence[str] = ("png",), note: str = "") -> list[Path]:
    """performance_throughput / performance_memory figures: median over runs against T (bondarev-mlp),
    plus the asf-conv bars when measured; ``note`` is printed under every figure. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib (pip install matplotlib)") from None
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    libs = list(dict.fromkeys(r["lib"] for r in recs))
    style = {"dnmsnn": dict(color="C3", lw=2.5, marker="o"), "torch-ann": dict(color="0.3", ls="--", marker="."),
             "torch-ann-steps": dict(color="0.5", ls=":", marker="."), "torch-naive": dict(color="0.6", marker="x")}

    def series(wl: str, lib: str, key) -> tuple[list[int], list[float]]:
        Ts = sorted({r["T"] for r in recs if r["workload"] == wl and r["lib"] == lib})
        return Ts, [statistics.median(key(r) for r in recs if r["workload"] == wl and r["lib"] == lib
                                      and r["T"] == T) for T in Ts]

    files = []
    mlp = [r for r in recs if r["workload"] == "bondarev-mlp"]
    if mlp:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, key, title in ((axes[0], lambda r: r["train_samples_per_s"], "training (BPTT)"),
                               (axes[1], lambda r: r["infer_samples_per_s"], "inference (no gradients)")):
            for lib in libs:
                Ts, ys = series("bondarev-mlp", lib, key)
                if Ts:
                    ax.plot(Ts, ys, label=lib, **style.get(lib, dict(marker="s")))
            ax.set(xscale="log", yscale="log", xlabel="time steps T", ylabel="samples / s",
                   title=f"bondarev-mlp 784-300-300-10, {title}")
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xticks(sorted({r["T"] for r in mlp}), [str(t) for t in sorted({r["T"] for r in mlp})])
            ax.grid(alpha=0.3, which="both")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        files += _save(fig, prefix.parent / f"{prefix.name}_throughput", formats, note)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for lib in libs:
            Ts, ys = series("bondarev-mlp", lib, _mem)
            if Ts:
                ax.plot(Ts, ys, label=lib, **style.get(lib, dict(marker="s")))
        ax.set(xlabel="time steps T", ylabel="peak RSS growth of a training step (MB)",
               title="bondarev-mlp, BPTT memory")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        files += _save(fig, prefix.parent / f"{prefix.name}_memory", formats, note)
        plt.close(fig)
    conv = [r for r in recs if r["workload"] == "asf-conv"]
    if conv:
        T = max(r["T"] for r in conv)
        names = [lib for lib in libs if any(r["lib"] == lib and r["T"] == T for r in conv)]
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        xs = range(len(names))
        tr = [statistics.median(r["train_samples_per_s"] for r in conv if r["lib"] == n and r["T"] == T) for n in names]
        inf = [statistics.median(r["infer_samples_per_s"] for r in conv if r["lib"] == n and r["T"] == T)
               for n in names]
        ax.bar([x - 0.2 for x in xs], tr, width=0.4, label="training")
        ax.bar([x + 0.2 for x in xs], inf, width=0.4, label="inference")
        ax.set_xticks(list(xs), names, rotation=20)
        ax.set(yscale="log", ylabel="samples / s", title=f"asf-conv (LeNet), T={T}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        files += _save(fig, prefix.parent / f"{prefix.name}_lenet", formats, note)
        plt.close(fig)
    return files


def _save(fig, stem: Path, formats: Sequence[str], note: str = "") -> list[Path]:
    if note:
        import textwrap

        lines = textwrap.wrap(note, width=int(fig.get_figwidth() * 15))
        fig.text(0.5, 0.005, "\n".join(lines), ha="center", va="bottom", fontsize=8, color="0.35")
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, 0.12 + 0.045 * len(lines)))
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=130)
        out.append(path)
    return out


# ------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", default=None,
                   help="interpreter that runs peer_bench (default .venv-peers/bin/python if present, else this one)")
    p.add_argument("--libs", default=None,
                   help=f"comma list (default {','.join(DEFAULT_LIBS)}; those --python cannot import are left out)")
    p.add_argument("--workloads", default=None, help="bondarev-mlp, asf-conv (default both)")
    p.add_argument("--T", default=None, help="comma list of time steps (default 5,10,20,40,80 mlp / 20 conv)")
    p.add_argument("--repeat", type=int, default=1, help="interleaved runs of every configuration (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch threads per process (default 2)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=None, help="timed training iterations (default 40 mlp / 15 conv)")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--infer-iters", type=int, default=None)
    p.add_argument("--chunk", type=int, default=None,
                   help="timed iterations per interleaved turn (default 4 mlp / 2 conv; smaller = more turns)")
    p.add_argument("--out", default=None,
                   help="output prefix (default benchmarks/results/peer_bench-<time>): OUT.jsonl, OUT.md, "
                        "OUT_peer_bench.md")
    p.add_argument("--plot", nargs="?", const="reports/figures/performance", default=None, metavar="PREFIX",
                   help="also draw PREFIX_throughput/_memory/_lenet.png (default reports/figures/performance)")
    p.add_argument("--summarize", nargs="+", default=None, metavar="JSONL",
                   help="only (re)write the summary (and --plot) from saved records, run nothing")
    p.add_argument("--check", action="store_true", help="run peer_bench's numerical equivalence check only")
    p.add_argument("--dry-run", action="store_true", help="print the peer_bench command and exit")
    p.add_argument("--peer-bench", default=None, help="path of peer_bench.py (default ../shared/tools/peer_bench/)")
    p.add_argument("--plugin", default=None, help="the dnmsnn adapter (default benchmarks/peer_bench_dnmsnn.py)")


def run(args: argparse.Namespace, echo=print) -> int:
    if args.summarize:
        return _write_summary(args, [Path(p) for p in args.summarize], None, echo)
    python = args.python or default_python()
    wanted = [x.strip() for x in args.libs.split(",") if x.strip()] if args.libs else None
    libs, missing = choose_libs(python, wanted)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prefix = Path(args.out) if args.out else Path("benchmarks") / "results" / f"peer_bench-{stamp}"
    jsonl = prefix.with_name(prefix.name + ".jsonl")
    cmd = peer_bench_command(args, python, libs, jsonl)
    if missing:
        echo(f"dnmsnn bench: {python} cannot import {', '.join(missing)}: left out", file=sys.stderr)
    if args.dry_run:
        echo(" ".join(cmd))
        return 0
    if not args.check:
        prefix.parent.mkdir(parents=True, exist_ok=True)
    echo(f"dnmsnn bench: {' '.join(cmd)}", file=sys.stderr)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)  # progress (stderr) streams through
    echo(proc.stdout)
    if args.check or proc.returncode != 0:
        return proc.returncode
    prefix.with_name(prefix.name + "_peer_bench.md").write_text(proc.stdout)
    return _write_summary(args, [jsonl], prefix, echo)


def _write_summary(args: argparse.Namespace, files: list[Path], prefix: Path | None, echo) -> int:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"no such result file: {', '.join(missing)}")
    recs = load_records(files)
    text = summarize(recs)
    if prefix is None and args.out:
        prefix = Path(args.out)
    if prefix is not None:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        prefix.with_name(prefix.name + ".md").write_text(text)
        echo(f"wrote {prefix.with_name(prefix.name + '.md')}", file=sys.stderr)
    echo(text)
    if args.plot and recs:
        for f in plot(recs, args.plot):
            echo(f"wrote {f}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dnmsnn bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except InputError as exc:
        print(f"dnmsnn bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
