"""Tables and figures for reports/dnm_<dataset>.md from finished DNM run directories.

    python scripts/report_dnm.py --dataset mnist          # runs/dnm/mnist/size{K}_s{S} from scripts/run_dnm.sh

Optional groups, used when present: ``runs/dnm/<dataset>_independent/size2_s<S>`` (a cohort of 2 with
lambda = 0: the same two networks trained independently, i.e. a plain ensemble -- the control that separates
mutual learning from ensembling) and ``runs/dnm/<dataset>_exchange/<exchange>_s<S>`` (cohorts of 2 with
another exchange loss). Writes ``reports/figures/dnm_<dataset>_*.{png,svg}``, copies every results.json and
metrics.jsonl to ``reports/data/dnm_<dataset>/`` and prints the markdown tables (also saved as
``reports/figures/dnm_<dataset>_tables.md``).

Significance: Welch's t-test (unequal variances) between the seeds of two groups, and a paired t-test over
seeds (run seed S of both groups shares the data order, validation split and encoder stream).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from scipy import stats

from dnmsnn.analysis.plots import _plt, save
from dnmsnn.analysis.runs import load_metrics, load_results, mean_std

MIX_MODES = ("max", "average", "better", "vote", "best_member")


def runs_of(folder: Path, prefix: str) -> dict[int, Path]:
    """seed -> run directory for ``<folder>/<prefix>_s<seed>`` runs that finished."""
    found = {}
    for p in folder.glob(f"{prefix}_s*"):
        if (p / "results.json").is_file():
            found[int(p.name.rsplit("_s", 1)[1])] = p
    return dict(sorted(found.items()))


def member_mean(results: dict[str, Any], key: str = "test_acc") -> float:
    """Mean over a run's members (the run itself for a single network)."""
    members = results.get("members") or [results]
    return sum(float(m[key]) for m in members) / len(members)


def fmt(values: list[float]) -> str:
    if not values:
        return "--"
    m, sd = mean_std(values)
    return f"{100 * m:.2f} ± {100 * sd:.2f}"


def test_pair(a: list[float], b: list[float], seeds_a: list[int], seeds_b: list[int]) -> str:
    """'diff, Welch p, paired p' of b - a in percentage points."""
    if len(a) < 2 or len(b) < 2:
        return "-- | -- | --"
    diff = 100 * (mean_std(b)[0] - mean_std(a)[0])
    welch = stats.ttest_ind(b, a, equal_var=False).pvalue
    common = sorted(set(seeds_a) & set(seeds_b))
    paired = "--"
    if len(common) >= 2:
        pa = [a[seeds_a.index(s)] for s in common]
        pb = [b[seeds_b.index(s)] for s in common]
        paired = f"{stats.ttest_rel(pb, pa).pvalue:.3f}" if pa != pb else "1.000"
    return f"{diff:+.2f} | {welch:.3f} | {paired}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--runs", default="runs/dnm")
    ap.add_argument("--figures", default="reports/figures")
    ap.add_argument("--data-out", default="reports/data")
    a = ap.parse_args()
    root, figs = Path(a.runs), Path(a.figures)
    ds = a.dataset
    groups: dict[str, dict[int, Path]] = {}
    for K in (1, 2, 3):
        groups[f"size{K}"] = runs_of(root / ds, f"size{K}")
    groups["independent2"] = runs_of(root / f"{ds}_independent", "size2")
    exchanges = {}
    for ex in ("mse", "ce"):
        exchanges[ex] = runs_of(root / f"{ds}_exchange", ex)
    res = {g: {s: load_results(p) for s, p in runs.items()} for g, runs in groups.items()}
    out: list[str] = []

    def seeds(g: str) -> list[int]:
        return list(res[g])

    def col(g: str, fn) -> list[float]:
        return [fn(r) for r in res[g].values()]

    any_run = next(iter(next(iter(res.values())).values()))
    out += [f"Model {any_run['model']}, rule {any_run['rule']}, {any_run['epochs']} epochs, train T = "
            f"{any_run['train_T']}, test T = {any_run['test_T']}. Seeds per group: "
            + ", ".join(f"{g} {seeds(g)}" for g in res if res[g]) + ".", ""]

    # 1. accuracy of every member and every mix mode
    out += ["| group | n | single network / member mean | " + " | ".join(MIX_MODES) + " |",
            "|---|---|---|" + "---|" * len(MIX_MODES)]
    labels = {"size1": "single network", "size2": "cohort of 2 (DNM)", "size3": "cohort of 3 (DNM)",
              "independent2": "2 independent (lambda = 0)"}
    for g, label in labels.items():
        if not res[g]:
            continue
        cells = [fmt(col(g, lambda r, m=m: r["mix"]["test_acc"][m])) if g != "size1" else "--" for m in MIX_MODES]
        out.append(f"| {label} | {len(res[g])} | {fmt(col(g, member_mean))} | " + " | ".join(cells) + " |")
    out += ["", "Test accuracy (%) at the training T, mean ± sample std over seeds. For a cohort, the third column "
            "is the mean of its members (each network on its own); `better` and `best_member` were decided on the "
            "validation split.", ""]
    chosen = {g: [r["mix"]["better"] for r in res[g].values()] for g in ("size2", "size3", "independent2") if res[g]}
    if chosen:
        out += ["`better` chose: " + "; ".join(f"{labels[g]}: {', '.join(v)}" for g, v in chosen.items()), ""]

    # 2. significance
    out += ["| comparison (B vs A) | B − A (pp) | Welch p | paired p |", "|---|---|---|---|"]
    single = col("size1", member_mean)

    def row(name: str, ga: str, fa, gb: str, fb) -> None:
        if res[ga] and res[gb]:
            out.append(f"| {name} | " + test_pair(col(ga, fa), col(gb, fb), seeds(ga), seeds(gb)) + " |")

    for K in (2, 3):
        g = f"size{K}"
        row(f"cohort of {K}, member mean vs single", "size1", member_mean, g, member_mean)
        row(f"cohort of {K}, mix better vs single", "size1", member_mean, g, lambda r: r["mix"]["test_acc"]["better"])
    row("cohort of 2 member mean vs independent pair member mean", "independent2", member_mean, "size2", member_mean)
    row("cohort of 2 mix better vs independent pair mix better", "independent2",
        lambda r: r["mix"]["test_acc"]["better"], "size2", lambda r: r["mix"]["test_acc"]["better"])
    out += ["", "p-values are two-sided; with 3 seeds per group a t-test has little power, so a p above 0.05 "
            "means 'not shown', not 'no effect'.", ""]

    # 3. accuracy against test T
    Ts = sorted(int(t) for t in any_run["test_acc_by_T"])
    out += ["| group | " + " | ".join(f"T={T}" for T in Ts) + " |", "|---|" + "---|" * len(Ts)]
    for g, label in labels.items():
        if res[g]:
            out.append(f"| {label}, member mean | " + " | ".join(
                fmt(col(g, lambda r, T=T: sum(m["test_acc_by_T"][str(T)] for m in (r.get("members") or [r]))
                        / len(r.get("members") or [r]))) for T in Ts) + " |")
            if g != "size1":
                out.append(f"| {label}, mix better | " + " | ".join(
                    fmt(col(g, lambda r, T=T: r["mix"]["test_acc_by_T"][str(T)]["better"])) for T in Ts) + " |")
    out += [""]

    # 4. exchange losses (validation accuracy decides)
    ex_res = {"kl": res["size2"],
              **{ex: {s: load_results(p) for s, p in runs.items()} for ex, runs in exchanges.items()}}
    if any(ex_res[ex] for ex in ("mse", "ce")):
        out += ["| exchange | n | val member mean | val mix better | test member mean | test mix better |",
                "|---|---|---|---|---|---|"]
        for ex, rs in ex_res.items():
            if rs:
                vals = list(rs.values())
                out.append(f"| {ex} | {len(vals)} | {fmt([member_mean(r, 'val_acc') for r in vals])} | "
                           f"{fmt([r['mix']['val_acc']['better'] for r in vals])} | "
                           f"{fmt([member_mean(r) for r in vals])} | "
                           f"{fmt([r['mix']['test_acc']['better'] for r in vals])} |")
        out += [""]

    # figures: validation accuracy per epoch (single vs cohort members), and the bar chart
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"size1": "C0", "size2": "C1", "size3": "C2", "independent2": "C3"}
    for g, runs in groups.items():
        for i, (_s, p) in enumerate(runs.items()):
            rows = load_metrics(p)
            ep = [r["epoch"] for r in rows]
            ax.plot(ep, [100 * r["val_acc"] for r in rows], color=colors[g], alpha=0.8,
                    label=labels[g] if i == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%) of member 0")
    ax.legend()
    ax.set_title(f"DNM on {ds}: member 0 of each run")
    save(fig, figs / f"dnm_{ds}_curves")
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = [("single", single)]
    for g in ("size2", "size3", "independent2"):
        if res[g]:
            short = {"size2": "DNM-2", "size3": "DNM-3", "independent2": "indep-2"}[g]
            bars.append((f"{short} member", col(g, member_mean)))
            bars += [(f"{short} {m}", col(g, lambda r, m=m: r["mix"]["test_acc"][m]))
                     for m in ("max", "average", "better")]
    for i, (name, vals) in enumerate(bars):
        m, sd = mean_std(vals)
        ax.bar(i, 100 * m, yerr=100 * sd, color="C0" if name == "single" else "C1", capsize=3)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=60, ha="right", fontsize=8)
    lo = min(min(v) for _, v in bars)
    ax.set_ylim(100 * lo - 1.0, None)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"DNM on {ds}: mean ± std over seeds")
    fig.tight_layout()
    save(fig, figs / f"dnm_{ds}_accuracy")

    # data copy
    dest = Path(a.data_out) / f"dnm_{ds}"
    for g, runs in list(groups.items()) + [(f"exchange_{ex}", r) for ex, r in exchanges.items()]:
        for s, p in runs.items():
            d = dest / f"{g}_s{s}"
            d.mkdir(parents=True, exist_ok=True)
            for name in ("results.json", "metrics.jsonl", "config.yaml"):
                if (p / name).is_file():
                    shutil.copy(p / name, d / name)
    text = "\n".join(out)
    (figs / f"dnm_{ds}_tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
