"""Tables and figures for reports/asf_mnist.md from finished ASF run directories and benchmark files.

    python scripts/report_asf.py --runs runs/asf --probes runs/probe

Reads (each optional): ``<runs>/if_b32_s<N>``, ``lif_s*``, ``cifar_s*`` (configs/asf_*.yaml), ``if_s<N>`` (the
IF config at batch 64, before batch 32), ``if_e15_s*`` (batch 64 for 15 epochs), ``if_T20_s*`` (batch 64 with
T = 20 in training, 8 epochs), ``if_shift2_s*`` (batch 64 with ``data.shift=2``, 15 epochs), ``if_silent_s*``
and ``if_inhibited_s*`` (the earlier IF runs at lr 3e-3 with ``mask: silent`` / ``inhibited``), ``if_batch_s*``
and ``lif_batch_s*`` (the earlier runs with one shared slope per layer), ``cmp_asf`` and ``cmp_bptt`` (the same
LeNet and budget trained by asf and by bptt; ``_lr3e-3`` and ``cmp_asf_batch``: earlier pairs),
``<probes>/<name>`` (1-epoch probes on 6,000 images that chose the defaults) and
``benchmarks/results/memory_vs_T_*.jsonl``. Writes ``reports/figures/asf_*.{png,svg}``, copies each run's
config/metrics/results to ``reports/data/asf/`` and prints the markdown tables (also saved as
``reports/figures/asf_tables.md``).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dnmsnn.analysis.plots import _plt, plot_acc_vs_T, plot_curves, save
from dnmsnn.analysis.runs import load_metrics, load_results


def finished(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if (p / "results.json").is_file())


def epoch_table(label: str, run: Path) -> list[str]:
    rows = load_metrics(run)
    out = [f"**{label}** (`{run.name}`)", "", "| epoch | lr | train (running) | test | s/epoch | samples/s |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['epoch']} | {r['lr']:.2e} | {100 * r['train_acc']:.2f} | {100 * r['test_acc']:.2f} | "
                   f"{r['train_time_s']:.0f} | {r['train_samples_per_s']:.0f} |")
    res = load_results(run)
    by_T = ", ".join(f"T={t}: {100 * v:.2f} %"
                     for t, v in sorted(res["test_acc_by_T"].items(), key=lambda kv: int(kv[0])))
    return out + ["", f"Final test accuracy by test length: {by_T}.", ""]


def seed_summary(label: str, runs: list[Path]) -> str:
    """Mean and sample standard deviation of the final test accuracy over the seeds of one configuration."""
    import statistics

    accs = [100 * load_results(r)["test_acc"] for r in runs]
    return (f"{label}: {statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f} % over {len(accs)} seeds "
            f"({', '.join(f'{a:.2f}' for a in accs)}).")


def memory_table(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    Ts = sorted({r["T"] for r in rows})
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    out = [f"Peak training-step memory growth (MB) and speed, `{rows[0]['model']}`, batch {rows[0]['batch']}, "
           f"{rows[0]['threads']} thread(s):", "",
           "| rule | " + " | ".join(f"T={T}" for T in Ts) + " | samples/s at T=" + str(Ts[0]) + " |",
           "|---|" + "---|" * (len(Ts) + 1)]
    for rule in rules:
        cells = {r["T"]: r for r in rows if r["rule"] == rule}
        out.append(f"| {rule} | " + " | ".join(f"{cells[T]['peak_growth_mb']:.1f}" if T in cells else "--" for T in Ts)
                   + f" | {cells[Ts[0]]['samples_per_s']:.0f} |")
    return out + [""]


def plot_memory(paths: list[Path], dest: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for path in paths:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for rule in dict.fromkeys(r["rule"] for r in rows):
            pts = sorted((r["T"], r["peak_growth_mb"]) for r in rows if r["rule"] == rule)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"{rows[0]['model']}: {rule}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("T (time steps)")
    ax.set_ylabel("peak memory growth of a training step (MB)")
    ax.legend(fontsize=7)
    save(fig, dest)


def copy_run(run: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "metrics.jsonl", "results.json"):
        if (run / name).is_file():
            shutil.copy(run / name, dest / name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/asf")
    ap.add_argument("--probes", default="runs/probe")
    ap.add_argument("--figures", default="reports/figures")
    ap.add_argument("--data-out", default="reports/data/asf")
    a = ap.parse_args()
    root, figs, data = Path(a.runs), Path(a.figures), Path(a.data_out)
    out: list[str] = []
    groups = {"IF, batch 32 (the config)": finished(root, "if_b32_s*"),
              "IF, batch 64": finished(root, "if_s[0-9]*"), "IF, batch 64, 15 epochs": finished(root, "if_e15_s*"),
              "IF, batch 64, T = 20 in training, 8 epochs": finished(root, "if_T20_s*"),
              "IF, batch 64, random shifts of up to 2 px, 15 epochs": finished(root, "if_shift2_s*"),
              "IF, silent mask, lr 3e-3": finished(root, "if_silent_s*"),
              "IF, inhibited mask, lr 3e-3": finished(root, "if_inhibited_s*"),
              "IF, shared slope": finished(root, "if_batch_s*"),
              "LIF": finished(root, "lif_s*"), "LIF, shared slope": finished(root, "lif_batch_s*"),
              "CIFAR-10 subset, IF": finished(root, "cifar_*")}
    for label, runs in groups.items():
        for run in runs:
            out += epoch_table(f"MNIST, {label}" if "CIFAR" not in label else label, run)
            copy_run(run, data / run.name)
        if len(runs) > 1 and "CIFAR" not in label:  # the two CIFAR runs differ in lr, not seed
            out += [seed_summary(label, runs), ""]
    mnist = {k: v for k, v in groups.items() if v and "CIFAR" not in k}
    if mnist:
        plot_curves(mnist, figs / "asf_accuracy_per_epoch", keys=("test_acc",))
        plot_acc_vs_T(mnist, figs / "asf_accuracy_vs_T")

    cmp = {r: root / f"cmp_{r}" for r in ("asf", "bptt", "asf_silent_lr3e-3", "bptt_lr3e-3", "asf_batch")}
    cmp = {r: p for r, p in cmp.items() if (p / "results.json").is_file()}
    if len(cmp) > 1:
        out += ["| rule (same LeNet, same budget) | test accuracy | train time (s) | train samples/s |",
                "|---|---|---|---|"]
        for p in cmp.values():
            res, rows = load_results(p), load_metrics(p)
            cfg = _config(p)
            args = cfg["rule"]["args"]
            asf = cfg["rule"]["name"] == "asf"
            slope = f", slope {args.get('slope')}, mask {args.get('mask', 'none')}" if asf else ""
            out.append(f"| {cfg['rule']['name']} (loss {cfg['rule']['loss']}{slope}, lr {cfg['optim']['lr']:g}) | "
                       f"{100 * res['test_acc']:.2f} % | {sum(x['train_time_s'] for x in rows):.0f} | "
                       f"{res['train_samples_per_s_median']:.0f} |")
            copy_run(p, data / p.name)
        out += [""]

    probes = sorted(p for p in Path(a.probes).glob("*") if (p / "results.json").is_file())
    if probes:
        out += ["| probe (1 epoch, 6,000 images, T = 10) | overrides | test accuracy (2,000 images) |", "|---|---|---|"]
        for p in probes:
            res = load_results(p)
            out.append(f"| {p.name} | {res['rule']}, {_short(p)} | {100 * res['test_acc']:.2f} % |")
            copy_run(p, data / "probes" / p.name)
        out += [""]

    mems = sorted(Path("benchmarks/results").glob("memory_vs_T_*.jsonl"))
    for m in mems:
        out += memory_table(m)
    if mems:
        plot_memory(mems, figs / "asf_memory_vs_T")
    text = "\n".join(out)
    figs.mkdir(parents=True, exist_ok=True)
    (figs / "asf_tables.md").write_text(text + "\n")
    print(text)


def _config(run: Path) -> dict:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


def _short(run: Path) -> str:
    """The model args and rule args of a run's config.yaml, on one line."""
    cfg = _config(run)
    return (f"model {cfg['model']['args']}, rule {cfg['rule']['args']}, loss {cfg['rule']['loss']}, "
            f"lr {cfg['optim']['lr']}")


if __name__ == "__main__":
    main()
