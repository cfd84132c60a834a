"""Tables and figures for reports/dnm_resnet.md from the runs of scripts/dnm_resnet_study.sh.

    python scripts/report_dnm_resnet.py --dataset mnist      # runs/dnm_resnet/mnist_{single,dnm,lambda0}_s<S>
    python scripts/report_dnm_resnet.py --runs runs/dnm_resnet_cifar --dataset resnet11_w8 \
        --name cifar_subset_resnet11_w8 --title "CIFAR-10 subset"   # scripts/dnm_resnet_cifar.sh's runs

``--dataset`` is the run folders' prefix (``<prefix>_<group>_s<S>``), ``--name`` (default: the prefix) names
what is written, ``--title`` (default: the prefix) the data in the figures' titles.

Groups (one run per seed each, seed S of every group shares the data order, the validation split and member 0's
initialisation): ``single`` (one network), ``dnm`` (a cohort of 2, kl exchange, lambda 1), ``lambda0`` (the same
cohort with lambda = 0: the same two initialisations trained independently, then mixed -- the control that
separates mutual learning from ensembling). A lambda = 0 folder holding only a results.json is that pair assembled by
``dnmsnn mix`` from the single run of S and the ``partner`` run of S (one network from model seed S + 1; member k of
a lambda = 0 cohort is bitwise the single run with model seed S + k): its curves are those two runs' curves.

Statistics: mean ± sample std over seeds; for each comparison the paired differences over the seeds both groups
finished, their mean, a 95 % t confidence interval and the paired t-test's two-sided p (and Welch's, unpaired).
With 3 seeds an interval is wide: a p above 0.05 means "not shown", not "no effect".

Writes ``reports/figures/dnm_resnet_<dataset>_*.{png,svg}`` and ``..._tables.md``, copies each finished run's
config.yaml, metrics.jsonl and results.json to ``reports/data/dnm_resnet/<dataset>_<group>_s<S>/`` and prints
the tables. Unfinished runs are listed, not used. Exchange designs (``scripts/dnm_resnet_exchange.sh``, runs in
``runs/dnm_resnet_exchange/<dataset>_<variant>_s<S>``) get a table of their own when present, chosen on validation.
"""
from __future__ import annotations

import argparse
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report_dnm import MIX_MODES, member_mean, runs_of
from report_dnm import fmt as fmt_seeds
from scipy import stats

from dnmsnn.analysis.plots import _plt, save
from dnmsnn.analysis.runs import load_metrics, load_results, mean_std

RUN_FILES = ("config.yaml", "metrics.jsonl", "results.json")

GROUPS = {"single": "single network", "dnm": "DNM cohort of 2 (kl, lambda 1)",
          "lambda0": "lambda = 0 pair (independent, mixed)"}
EXCHANGE_DESIGNS = {"kl_steps": "kl_steps (outputs after every step)", "mse_steps": "mse_steps (spike-train distance)",
                    "warmup2": "kl, lambda = 0 for 2 epochs", "ramp5": "kl, lambda rising over 5 epochs"}
Result = dict[str, Any]


def fmt(values: list[float]) -> str:
    """mean ± sample std in %, or the one value and "(1 seed)" (no spread to show)."""
    return f"{100 * values[0]:.2f} (1 seed)" if len(values) == 1 else fmt_seeds(values)


def mix(mode: str, T: int | None = None) -> Callable[[Result], float]:
    """A run's mixed test accuracy in ``mode`` (at test length T, or at the training T)."""
    if T is None:
        return lambda r: float(r["mix"]["test_acc"][mode])
    return lambda r: float(r["mix"]["test_acc_by_T"][str(T)][mode])


def member(k: int) -> Callable[[Result], float]:
    """Member k's own test accuracy (a single network is its own member 0)."""
    return lambda r: float((r.get("members") or [r])[k]["test_acc"])


def member_curves(run: Path) -> list[list[Result]]:
    """Per network of a run, its metrics rows (epoch, val_acc, test_acc, ...): a single run's own rows, a cohort
    run's per-member rows, or for a run assembled by ``dnmsnn mix`` (no metrics.jsonl) the rows of the runs it
    mixed, in member order."""
    if not (run / "metrics.jsonl").is_file():  # the mixed runs as named, else beside it (a copy in reports/data)
        sources = [Path(r) if Path(r).is_dir() else run.parent / Path(r).name for r in load_results(run)["runs"]]
        return [rows for source in sources for rows in member_curves(source)]
    rows = load_metrics(run)
    if not rows[0].get("members"):
        return [rows]
    return [[{"epoch": r["epoch"], **r["members"][k]} for r in rows] for k in range(len(rows[0]["members"]))]


def pvalue(p: float) -> str:
    """A p-value to three decimals, or "< 0.001" (never a bare 0.000)."""
    return "< 0.001" if p < 0.0005 else f"{p:.3f}"


def paired(a: dict[int, float], b: dict[int, float]) -> str:
    """'n | mean diff [95 % CI] | paired p | Welch p' of b - a in percentage points, over the common seeds."""
    common = sorted(set(a) & set(b))
    d = [100 * (b[s] - a[s]) for s in common]
    if len(d) < 2:
        return f"{len(d)} | " + (f"{d[0]:+.2f}" if d else "--") + " | -- | --"
    m, sd = mean_std(d)
    half = stats.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))
    welch = stats.ttest_ind(list(b.values()), list(a.values()), equal_var=False).pvalue
    if sd < 1e-6:  # the same difference in every seed (to float rounding): the paired t is undefined, not 0
        return f"{len(d)} | {m:+.2f} (every seed) | n/a (no spread) | {pvalue(welch)}"
    p = stats.ttest_rel([b[s] for s in common], [a[s] for s in common]).pvalue
    return f"{len(d)} | {m:+.2f} [{m - half:+.2f}, {m + half:+.2f}] | {pvalue(p)} | {pvalue(welch)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True, help="the run folders' prefix: <prefix>_<group>_s<S>")
    ap.add_argument("--name", help="names the figures, tables and data copies (default: --dataset)")
    ap.add_argument("--title", help="the data as the figures' titles name it (default: --dataset)")
    ap.add_argument("--runs", default="runs/dnm_resnet")
    ap.add_argument("--figures", default="reports/figures")
    ap.add_argument("--exchange-runs", default="runs/dnm_resnet_exchange")
    ap.add_argument("--data-out", default="reports/data/dnm_resnet")
    a = ap.parse_args()
    root, figs, ds = Path(a.runs), Path(a.figures), a.dataset
    out_name, title = a.name or ds, a.title or ds
    runs = {g: runs_of(root, f"{ds}_{g}") for g in GROUPS}
    res = {g: {s: load_results(p) for s, p in rs.items()} for g, rs in runs.items()}
    if not any(res.values()):
        raise SystemExit(f"no finished run under {root}/{ds}_*")
    unfinished = sorted(p.name for p in root.glob(f"{ds}_*_s*") if not (p / "results.json").is_file())

    def col(g: str, fn: Callable[[Result], float]) -> dict[int, float]:
        return {s: fn(r) for s, r in res[g].items()}

    def vals(g: str, fn: Callable[[Result], float]) -> list[float]:
        return list(col(g, fn).values())

    any_run = next(r for g in GROUPS for r in res[g].values())
    out = [f"Model {any_run['model']} ({any_run['parameters']:,} parameters per network), rule {any_run['rule']}, "
           f"{any_run['epochs']} epochs, train T = {any_run['train_T']}, test T = {any_run['test_T']}. Finished "
           "seeds: " + "; ".join(f"{g} {sorted(res[g])}" for g in GROUPS)
           + (f". Unfinished (not used): {', '.join(unfinished)}" if unfinished else "") + ".", ""]

    # 1. every network and every mix mode
    out += ["| group | n | single network / member mean | member 0 | member 1 | " + " | ".join(MIX_MODES) + " |",
            "|---|---|---|---|---|" + "---|" * len(MIX_MODES)]
    for g, label in GROUPS.items():
        if not res[g]:
            continue
        pair = g != "single"
        cells = [fmt(vals(g, mix(m))) if pair else "--" for m in MIX_MODES]
        out.append(f"| {label} | {len(res[g])} | {fmt(vals(g, member_mean))} | {fmt(vals(g, member(0)))} | "
                   f"{fmt(vals(g, member(1))) if pair else '--'} | " + " | ".join(cells) + " |")
    out += ["", "Test accuracy (%) at the training T, mean ± sample std over seeds; `better` and `best_member` were "
            "decided on the validation split.", ""]

    # 2. paired comparisons
    out += ["| comparison (B − A) | seeds | mean difference, pp [95 % CI] | paired p | Welch p |",
            "|---|---|---|---|---|"]
    comparisons = [
        ("DNM member mean − single", "single", member_mean, "dnm", member_mean),
        ("DNM member 0 − single (same initialisation)", "single", member(0), "dnm", member(0)),
        *[(f"DNM mix {m} − single", "single", member_mean, "dnm", mix(m)) for m in MIX_MODES],
        ("λ = 0 member mean − single", "single", member_mean, "lambda0", member_mean),
        ("λ = 0 mix better − single", "single", member_mean, "lambda0", mix("better")),
        ("DNM member mean − λ = 0 member mean", "lambda0", member_mean, "dnm", member_mean),
        *[(f"DNM mix {m} − λ = 0 mix {m}", "lambda0", mix(m), "dnm", mix(m)) for m in MIX_MODES],
    ]
    for name, ga, fa, gb, fb in comparisons:
        if res[ga] and res[gb]:
            out.append(f"| {name} | {paired(col(ga, fa), col(gb, fb))} |")
    out += ["", "Paired over seeds (seed S of both groups shares data order, split and member 0's initialisation).",
            ""]

    # 3. test length
    Ts = sorted(int(t) for t in any_run["test_acc_by_T"])
    out += ["| group | " + " | ".join(f"T={T}" for T in Ts) + " |", "|---|" + "---|" * len(Ts)]
    for g, label in GROUPS.items():
        if not res[g]:
            continue
        out.append(f"| {label}, member mean | " + " | ".join(fmt(vals(g, lambda r, T=T: sum(
            float(m["test_acc_by_T"][str(T)]) for m in (r.get("members") or [r])) / len(r.get("members") or [r])))
            for T in Ts) + " |")
        if g != "single":
            out.append(f"| {label}, mix better | " + " | ".join(fmt(vals(g, mix("better", T))) for T in Ts) + " |")
    out += [""]

    # 4. lambda = 0 member 0 against the single run of the same seed (same initialisation, same data order)
    same = []
    for s in sorted(set(res["single"]) & set(res["lambda0"])):
        if "runs" in res["lambda0"][s]:
            same.append(f"seed {s}: assembled by dnmsnn mix (member 0 is the single run)")
            continue
        single_rows, member0_rows = member_curves(runs["single"][s])[0], member_curves(runs["lambda0"][s])[0]
        gaps = [abs(x["val_acc"] - y["val_acc"]) for x, y in zip(single_rows, member0_rows, strict=False)]
        same.append(f"seed {s}: largest per-epoch |val acc gap| {100 * max(gaps):.2f} pp")
    if same:
        out += ["λ = 0 member 0 against the single run of its seed (same initialisation and data): "
                + "; ".join(same) + ".", ""]

    # 5. exchange designs (scripts/dnm_resnet_exchange.sh), chosen on the validation split only
    ex_root = Path(a.exchange_runs)
    designs = {"kl (the study's DNM pair)": {s: r for s, r in res["dnm"].items()}}
    for variant, label in EXCHANGE_DESIGNS.items():
        found = runs_of(ex_root, f"{ds}_{variant}")
        if found:
            designs[label] = {s: load_results(p) for s, p in found.items()}
            runs[f"exchange_{variant}"] = found
    if len(designs) > 1:
        out += ["| exchange design | seeds | val: member mean | val: mix better | test: member mean | "
                "test: mix better |", "|---|---|---|---|---|---|"]
        for label, rs in designs.items():
            if rs:
                vs = list(rs.values())
                val_mix = fmt([r["mix"]["val_acc"]["better"] for r in vs])
                out.append(f"| {label} | {sorted(rs)} | {fmt([member_mean(r, 'val_acc') for r in vs])} | {val_mix} | "
                           f"{fmt([member_mean(r) for r in vs])} | {fmt([mix('better')(r) for r in vs])} |")
        out += ["", "The design is chosen by the validation columns only; the test columns are reported, not used.",
                ""]

    # figures: per-member validation curves; bars of every group and mode
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    styles = {"single": ("C0", "-"), "dnm": ("C1", "-"), "lambda0": ("C2", "--")}
    for key, ax in zip(("val_acc", "test_acc"), axes, strict=True):
        for g, rs in ((g, runs[g]) for g in GROUPS):
            color, ls = styles[g]
            for i, (_s, p) in enumerate(rs.items()):
                for k, rows in enumerate(member_curves(p)):
                    ax.plot([r["epoch"] for r in rows], [100 * r[key] for r in rows], color=color,
                            ls=ls if k == 0 else ":", alpha=0.8, label=f"{g} member {k}" if i == 0 else None)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " "))
    axes[0].set_ylabel("accuracy (%) of each network")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"DNM on {any_run['model']}, {title}: every network of every seed")
    fig.tight_layout()
    save(fig, figs / f"dnm_resnet_{out_name}_curves")
    bars = [("single", vals("single", member_mean), "C0")]
    for g, short, color in (("dnm", "DNM", "C1"), ("lambda0", "λ=0", "C2")):
        if res[g]:
            bars.append((f"{short} members", vals(g, member_mean), color))
            bars += [(f"{short} {m}", vals(g, mix(m)), color) for m in ("max", "average", "better")]
    bars = [b for b in bars if b[1]]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (_name, v, color) in enumerate(bars):
        m, sd = mean_std(v)
        ax.bar(i, 100 * m, yerr=100 * sd, color=color, capsize=3)
        ax.scatter([i] * len(v), [100 * x for x in v], color="k", s=8, zorder=3)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=60, ha="right", fontsize=8)
    lo, hi = min(min(b[1]) for b in bars), max(max(b[1]) for b in bars)
    ax.set_ylim(100 * lo - 0.5, min(100.0, 100 * hi + 0.3))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"DNM on {any_run['model']}, {title}: mean ± std over seeds (dots: seeds)")
    fig.tight_layout()
    save(fig, figs / f"dnm_resnet_{out_name}_accuracy")

    runs["partner"] = runs_of(root, f"{ds}_partner")
    for g, rs in runs.items():
        for s, p in rs.items():
            d = Path(a.data_out) / f"{out_name}_{g}_s{s}"
            d.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                if (p / name).is_file():
                    shutil.copy(p / name, d / name)
    text = "\n".join(out)
    (figs / f"dnm_resnet_{out_name}_tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
