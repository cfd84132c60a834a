"""The ``dnmsnn`` command line: demo, train, eval, mix, reproduce, plot, analyze, export-nir, models, info, explain,
bench.

Every user-fixable problem (bad config, missing data, corrupt checkpoint, bad hyper-parameter) is
printed as one line on stderr with exit code 2; there is no traceback for those.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import ConfigError, DnmsnnError, Interrupted

# one thread: a 9,610-weight network gains nothing from a second, and loses up to 30x when that core is busy
DEMO_OVERRIDES = (
    "model.name=digits_mlp", "data.name=digits", "encoder.T=10", "encoder.eval_T=[1,2,5,10,20]",
    "optim.lr=3e-3", "optim.schedule=cosine", "train.epochs=25", "train.batch_size=32", "train.threads=1",
)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the datasets (e.g. mnist/); default $DNMSNN_DATA_DIR or ./data")
    p.add_argument("--out", default=None, help="run directory (default runs/<config name>-<time>)")
    p.add_argument("--seed", type=int, default=None,
                   help="shorthand for --set train.seed=N (same seed: identical run on CPU)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnmsnn",
                                     description="Train spiking neural networks the way three papers describe.")
    parser.add_argument("--version", action="version", version=f"dnmsnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train a small SNN on the embedded 8x8 digits (no download) and print its accuracy")
    _add_run_options(p)

    p = sub.add_parser("train", help="train from a YAML config")
    p.add_argument("--config", default=None, help="YAML config (see configs/); defaults apply when omitted")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train on N processes of this machine (runs torch.distributed.run; see train.parallel)")
    _add_run_options(p)

    p = sub.add_parser("eval", help="evaluate a trained run's checkpoint (or shipped weights) on the test set")
    p.add_argument("run_dir", nargs="?", default=None, help="run directory written by train/demo")
    p.add_argument("--weights", default=None, metavar="MODEL/TAG",
                   help="evaluate shipped weights instead of a run, e.g. bondarev_mlp/mnist (see dnmsnn weights)")
    p.add_argument("--T", type=int, action="append", default=None, help="sequence length(s) to test at (repeatable)")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: the run's data.json, "
                                                    "$DNMSNN_DATA_DIR, ./data)")

    p = sub.add_parser("mix", help="mix independently trained runs at inference (Cao et al.'s mix module): every "
                                   "network's and every mix mode's test accuracy, better/best_member decided on "
                                   "the runs' shared validation split")
    p.add_argument("run_dirs", nargs="+", help="run directories (single runs, or a cohort run's members)")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: the first run's data.json, "
                                                    "$DNMSNN_DATA_DIR, ./data)")
    p.add_argument("--out", default=None, help="write the results (a cohort run's members / mix format) to this "
                                               "JSON file")

    p = sub.add_parser("reproduce", help="the papers' tables in seconds: evaluate the shipped weights of a "
                                         "reproduction on its test set, our number beside the paper's")
    p.add_argument("paper", choices=["bondarev", "asf", "dnm", "all"], help="which reproduction")
    p.add_argument("--data-dir", default=None, help="dataset folder (default $DNMSNN_DATA_DIR, ./data)")
    sub.add_parser("weights", help="list the shipped trained weights")

    p = sub.add_parser("plot", help="figures of a run: curves, accuracy vs T, raster, membrane, firing rates, ...")
    p.add_argument("run_dir", help="run directory written by train/demo")
    p.add_argument("--out", default=None, help="folder for the figures (default RUN_DIR/plots)")
    p.add_argument("--format", default="png,svg", help="comma-separated formats: png, svg, pdf (default png,svg)")
    p.add_argument("--data-dir", default=None, help="dataset folder for the model-based figures")
    p.add_argument("--sample", type=int, default=0, help="test sample shown in the raster and membrane plots")
    p.add_argument("--T", type=int, default=None, help="sequence length of the model-based figures (default test T)")
    p.add_argument("--tensorboard", default=None, metavar="LOGDIR",
                   help="also write metrics.jsonl as TensorBoard event files into LOGDIR (needs tensorboard)")

    p = sub.add_parser("analyze", help="firing rates, SynOps vs ANN MACs and an energy estimate on test inputs")
    p.add_argument("run_dir", help="run directory written by train/demo")
    p.add_argument("--T", type=int, default=None, help="sequence length (default the run's test T)")
    p.add_argument("--batches", type=int, default=10, help="number of test batches (default 10)")
    p.add_argument("--batch-size", type=int, default=100, help="test images per batch (default 100)")
    p.add_argument("--data-dir", default=None)

    p = sub.add_parser("export-nir", help="write a trained run's network as a NIR graph (needs nir)")
    p.add_argument("run_dir", help="run directory written by train/demo")
    p.add_argument("out", help="output file, e.g. model.nir")
    p.add_argument("--dt", type=float, default=1.0,
                   help="Euler step the NIR time constants are written for (default 1; snnTorch's importer uses 1e-4)")

    sub.add_parser("models", help="list the registered models")
    p = sub.add_parser("info", help="versions, threads, device and kernels; with MODEL: that model's layers, "
                                    "parameters, defaults, paper and shipped weights")
    p.add_argument("model", nargs="?", default=None, help="a registered model (see dnmsnn models)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="ARG=VALUE",
                   help="build the model with this builder argument, e.g. --set width=8 (repeatable)")
    sub.add_parser("kernels", help="build (once) and check the C++ kernels; make demo / make test run it at set-up")
    p = sub.add_parser("explain", help="how a config's network runs: each layer's block, backend, kernel and why")
    p.add_argument("--config", default=None, help="YAML config (see configs/); defaults apply when omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.name=resnet11_w8 (repeatable)")
    p.add_argument("--mode", choices=("sequence", "step", "totals"), default=None,
                   help="how the rule drives the network (default: the config rule's: totals for asf, step for the "
                        "online spatial rule, else sequence)")
    p.add_argument("--batch", type=int, default=2, help="batch size of the example input (default 2)")
    p.add_argument("--no-grad", action="store_true", help="inference (no gradients) instead of training")

    sub.add_parser("bench", add_help=False,
                   help="train speed and memory against snnTorch, SpikingJelly and Norse: runs benchmarks/bench.py "
                        "of this checkout (dnmsnn bench --help for its options)")
    return parser


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_train(args: argparse.Namespace, overrides: Sequence[str] = (), name: str | None = None) -> dict:
    from .train import Trainer, distributed, load_run_config
    from .train.trainer import CONFIG

    config = args.config if hasattr(args, "config") else None
    resume = getattr(args, "resume", False)
    if resume and not args.out:
        raise ConfigError("--resume needs --out: the run folder to continue")
    if config is None and resume:
        if not (Path(args.out) / CONFIG).exists():
            raise ConfigError(f"nothing to resume in {args.out}: it holds no run ({CONFIG} not found); start one with "
                              f"dnmsnn train --config CONFIG --out {args.out}")
        config = str(Path(args.out) / CONFIG)
    seed = [] if args.seed is None else [f"train.seed={args.seed}"]
    cfg = load_run_config(config, [*overrides, *args.overrides, *seed])
    out = Path(args.out) if args.out else _default_out(name or (Path(config).stem if config else "run"))
    if getattr(args, "nproc", 1) < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if getattr(args, "nproc", 1) > 1 and distributed.env_world_size() == 1:
        return {"returncode": launch(args.argv, args.nproc, out)}
    clean = False
    try:
        results = Trainer(cfg, out, data_dir=args.data_dir, resume=resume).fit()
        clean = True
        return results
    except KeyboardInterrupt:
        raise Interrupted(_interrupted_message(out)) from None
    finally:
        distributed.teardown(clean)  # the process group a torchrun launch made (a no-op in one process)


def _interrupted_message(out: Path) -> str:
    """What Ctrl-C left in a run folder, read from the folder itself."""
    from .train import load_checkpoint
    from .train.trainer import CHECKPOINT, RESULTS

    if (out / RESULTS).is_file():
        return f"interrupted after the run finished; everything is in {out}"
    if not (out / CHECKPOINT).is_file():
        return (f"interrupted before the first epoch ended: no checkpoint was written; dnmsnn train --out {out} "
                "--resume starts the run from the beginning")
    try:
        epoch = int(load_checkpoint(out / CHECKPOINT)["epoch"]) + 1
    except DnmsnnError:
        return f"interrupted; the checkpoint in {out} could not be read"
    return (f"interrupted; the checkpoint after epoch {epoch} is kept in {out}: continue with dnmsnn train --out "
            f"{out} --resume")


def launch(argv: Sequence[str], nproc: int, out: Path) -> int:
    """``dnmsnn train --nproc N ...``: the same command on N local processes via ``python -m torch.distributed.run``.

    ``--nproc`` is dropped from the workers' arguments and ``--out`` fixed (all ranks agree on it; rank 0
    alone writes there). Each worker gets cpu_count / N threads unless OMP_NUM_THREADS is set. Returns
    torchrun's exit status.
    """
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    if not any(a == "--out" or a.startswith("--out=") for a in rest):
        rest += ["--out", str(out)]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "dnmsnn", *rest]
    print(f"dnmsnn train: {nproc} processes (torch.distributed.run --standalone) -> {out}", file=sys.stderr)
    return subprocess.call(cmd, env=env)


def cmd_demo(args: argparse.Namespace) -> int:
    res = cmd_train(args, DEMO_OVERRIDES, name="demo")
    sweep = ", ".join(f"T={T}: {acc:.1%}" for T, acc in res["test_acc_by_T"].items())
    print(f"\ndemo: test accuracy {res['test_acc']:.2%} at T={res['test_T']} on the embedded digits ({sweep})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Test accuracy of every member (and, for a cohort, of the mix modes that need no validation data)."""
    if (args.run_dir is None) == (args.weights is None):
        raise ConfigError("give a run directory or --weights MODEL/TAG (one of the two)")
    if args.weights:
        return _eval_weights(args)
    from . import Mix
    from .analysis.runs import load_run_data, load_run_members
    from .train import load_checkpoint
    from .train.evaluate import run_outputs
    from .train.trainer import CHECKPOINT

    cfg, models = load_run_members(args.run_dir)
    epoch = load_checkpoint(Path(args.run_dir) / CHECKPOINT)["epoch"] + 1
    test = load_run_data(args.run_dir, cfg, "test", args.data_dir)
    out: dict[str, dict[str, float]] = {}
    for T in args.T or cfg.eval_T:
        outputs, labels = run_outputs(cfg, models, test, T)
        accs = {f"member{k}" if len(models) > 1 else "model": float((o.argmax(-1) == labels).double().mean())
                for k, o in enumerate(outputs)}
        if len(models) > 1:
            mix = Mix()
            accs.update({f"mix_{m}": float((mix.predict(outputs, m) == labels).double().mean())
                         for m in ("max", "average", "vote")})
        out[str(T)] = accs
        print(f"T={T:4d}  " + "  ".join(f"{k} {v:.2%}" for k, v in accs.items()) + f"  ({len(labels)} samples)")
    summary = {"epoch": epoch, "test_acc_by_T": {T: a.get("model", a.get("member0")) for T, a in out.items()},
               "by_T": out}
    path = Path(args.run_dir) / "eval.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    """Every network of the runs and every mix mode on the test set (dnmsnn.train.mixing)."""
    from .train.mixing import mix_runs

    res = mix_runs(args.run_dirs, args.data_dir)
    for T, accs in res["mix"]["test_acc_by_T"].items():
        members = "  ".join(f"{Path(m['run']).name}[{m['member']}] {m['test_acc_by_T'][T]:.2%}" for m in res["members"])
        mixes = "  ".join(f"{mode} {acc:.2%}" for mode, acc in accs.items())
        print(f"T={int(T):4d}  {members}  |  mix {mixes}")
    mix = res["mix"]
    if mix["decided_on"]:
        print(f"decided on the validation split: better = {mix['better']}, best_member = {mix['best_member']}")
    if args.out:
        from .train.checkpoint import write_atomic

        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(res, indent=2) + "\n").encode())
        print(f"wrote {path}")
    return 0


def _eval_weights(args: argparse.Namespace) -> int:
    from . import weights

    cfg = weights.run_config(args.weights)
    for T in args.T or cfg.eval_T:
        res = weights.evaluate(args.weights, data_dir=args.data_dir, T=T)
        print(f"T={T:4d}  {_accuracy_line(res)}  ({res['samples']} samples)")
    return 0


def _accuracy_line(res: dict) -> str:
    if len(res["members"]) == 1:
        return f"model {res['accuracy']:.2%}"
    return ("  ".join(f"member{k} {a:.2%}" for k, a in enumerate(res["members"])) + "  " +
            "  ".join(f"mix_{m} {a:.2%}" for m, a in res.get("mix", {}).items()))


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Each shipped entry of a reproduction, evaluated now, beside its recorded number, our report's and the
    paper's."""
    from . import weights

    names = [n for n in weights.available() if args.paper in ("all", weights.info(n).reproduces)]
    if not names:
        raise DnmsnnError(f"no shipped weights reproduce {args.paper!r}; shipped: {', '.join(weights.available())}")
    differ = 0
    for name in names:
        meta = weights.info(name).meta
        t0 = time.perf_counter()
        res = weights.evaluate(name, data_dir=args.data_dir)
        took = time.perf_counter() - t0
        recorded = meta["measured"]["test_acc"]
        same = res["accuracy"] == recorded and res.get("mix", {}) == meta["measured"].get("mix", {})
        differ += not same
        paper = meta["paper"]
        print(f"{paper['name']}: shipped weights {name} (seed {meta['trained']['seed']}, "
              f"{meta['trained']['epochs']} epochs; {meta['command']})")
        print(f"  ours, {meta['dataset']} test set ({res['samples']:,} images, T = {res['T']}): {_accuracy_line(res)}"
              f"   [recorded when shipped: {recorded:.2%}: {'identical' if same else 'DIFFERENT'}]")
        print(f"  our report ({meta['report']['path']}): {meta['report']['result']}")
        print(f"  paper: {paper['test_acc']:.2%} ({paper['what']})")
        print(f"  evaluated in {took:.1f} s")
    if differ:
        raise DnmsnnError(f"{differ} shipped entr{'y' if differ == 1 else 'ies'} evaluated differently from the "
                          "number recorded when shipped (other data files, or a numerical change)")
    return 0


def cmd_weights(_: argparse.Namespace) -> int:
    from . import weights

    for name in weights.available():
        meta = weights.info(name).meta
        print(f"{name:24s} {meta['paper']['name']}: {meta['measured']['test_acc']:.2%} on {meta['dataset']} at "
              f"T = {meta['measured']['test_T']} ({meta['members']} network{'s' if meta['members'] > 1 else ''}, "
              f"{meta['bytes'] / 1e6:.1f} MB)")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .analysis.plots import PlotsIncomplete, plot_run

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    if args.tensorboard:
        from .analysis.tensorboard import metrics_to_tensorboard

        print(f"TensorBoard event files in {metrics_to_tensorboard(args.run_dir, args.tensorboard)}")
    try:
        files = plot_run(args.run_dir, args.out, formats=formats, data_dir=args.data_dir, sample=args.sample,
                         T=args.T)
    except PlotsIncomplete as exc:  # print what was made, then fail on what was not
        for f in exc.files:
            print(f)
        raise
    for f in files:
        print(f)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis.activity import analyze_run, to_markdown

    report = analyze_run(args.run_dir, T=args.T, batches=args.batches, batch_size=args.batch_size,
                         data_dir=args.data_dir)
    print(to_markdown(report))
    print(f"wrote {Path(args.run_dir) / 'analysis.json'} and {Path(args.run_dir) / 'analysis.md'}")
    return 0


def cmd_export_nir(args: argparse.Namespace) -> int:
    import warnings

    from .analysis.runs import load_run_model
    from .nir import write_nir

    _, model = load_run_model(args.run_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_nir(model, args.out, dt=args.dt)
    for w in caught:
        print(f"dnmsnn export-nir: warning: {w.message}", file=sys.stderr)
    print(f"wrote {path} (NIR graph, dt={args.dt:g}; read it back with dnmsnn.nir.from_nir)")
    return 0


def cmd_models(_: argparse.Namespace) -> int:
    from . import models

    for name in models.available():
        entry = models.info(name)
        print(f"{name:16s} {entry.summary}" + (f"  [{entry.paper}]" if entry.paper else ""))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import numpy
    import torch

    if args.model:
        from .models.describe import describe_model

        print(describe_model(args.model, args.overrides))
        return 0
    from .functional import cpp

    print(f"dnmsnn  {__version__}\npython  {platform.python_version()} ({platform.machine()})\n"
          f"torch   {torch.__version__}  threads={torch.get_num_threads()}  "
          f"cuda={'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}\n"
          f"numpy   {numpy.__version__}\n"
          f"kernels {cpp.status() if cpp.is_built() else 'not built yet (dnmsnn kernels builds them, about a minute)'}")
    from .neuron_registry import available, neuron_kind

    print("neurons " + "; ".join(f"{n}: {neuron_kind(n).summary.split(':')[0].split(',')[0]}" for n in available()))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    import torch

    from .data.datasets import dataset_info
    from .encoders import create_encoder
    from .plan import explain
    from .train import load_run_config
    from .train.trainer import build_model

    cfg = load_run_config(args.config, args.overrides)
    info = dataset_info(cfg.data.name)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, info.shape, len(info.classes))
    if args.batch < 1:
        raise DnmsnnError(f"--batch must be >= 1, got {args.batch}")
    images = torch.rand(args.batch, *info.shape)
    x = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=0)(images)
    mode = args.mode or ("totals" if cfg.rule.name == "asf" else
                         "step" if cfg.rule.name == "spatial" and cfg.rule.args.get("online") else "sequence")
    model.train(not args.no_grad)
    print(f"{cfg.model.name} on {info.name} inputs, rule {cfg.rule.name}, T = {cfg.encoder.T} ({cfg.encoder.name})")
    spatial = cfg.rule.name == "spatial"  # the spatial rule runs without temporal gradient (Bondarev eq. 8)
    print(explain(model, x, mode=mode, grad=not args.no_grad, temporal_grad=not spatial))
    return 0


def cmd_kernels(_: argparse.Namespace) -> int:
    """Build the C++ kernels if they are not cached yet, and say so in one line with the time it took."""
    from .functional import cpp

    built_before = cpp.is_built()
    mod = cpp.load()  # a build says so itself: "compiling ... (about a minute)", then "compiled in N s"
    if mod is None:
        print(f"dnmsnn kernels: not used ({cpp.status()}); dnmsnn runs its PyTorch paths instead (same results, "
              "slower)")
    else:  # a build said so itself; the verdict is measured once per machine (about a second), then cached
        from .functional.spike_matmul import explain_choice

        print(f"dnmsnn kernels: {'ready' if built_before else 'built'} (cached in {cpp.cache_dir()}); on 0/1 "
              f"inputs: {explain_choice()}")
    return 0


def find_checkout_file(relative: str, start: Path | None = None) -> Path | None:
    """``relative`` (e.g. ``benchmarks/bench.py``) in the working directory or a folder above it, else in the
    source tree the package runs from (an editable install); None outside a clone of the repository."""
    here = (start or Path.cwd()).resolve()
    candidates = [d / relative for d in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parents[2] / relative)
    return next((c for c in candidates if c.is_file()), None)


def cmd_bench(argv: Sequence[str]) -> int:
    """``benchmarks/bench.py`` of this checkout with ``argv`` (peer_bench with the dnmsnn adapter against the
    peers; summary, ratios and targets)."""
    import importlib.util

    script = find_checkout_file("benchmarks/bench.py")
    if script is None:
        raise DnmsnnError("dnmsnn bench runs benchmarks/bench.py of a clone of the repository (with ../shared beside "
                          "it for peer_bench); run it from the clone")
    spec = importlib.util.spec_from_file_location("dnmsnn_bench_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.main(list(argv))


COMMANDS = {"demo": cmd_demo, "train": lambda a: cmd_train(a).get("returncode", 0), "eval": cmd_eval,
            "mix": cmd_mix, "reproduce": cmd_reproduce, "weights": cmd_weights,
            "plot": cmd_plot, "analyze": cmd_analyze, "export-nir": cmd_export_nir,
            "models": cmd_models, "info": cmd_info, "kernels": cmd_kernels, "explain": cmd_explain}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # its options are the script's own (benchmarks/bench.py)
        try:
            return cmd_bench(argv[1:])
        except DnmsnnError as exc:
            print(f"dnmsnn bench: error: {exc}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    args.argv = argv  # what `dnmsnn train --nproc N` hands on to its workers
    try:
        return COMMANDS[args.command](args)
    except DnmsnnError as exc:
        print(f"dnmsnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"dnmsnn {args.command}: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"dnmsnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
