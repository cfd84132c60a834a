"""The ``dnmsnn`` command line: demo, train, eval, plot, analyze, export-nir, models, info.

Every user-fixable problem (bad config, missing data, corrupt checkpoint, bad hyper-parameter) is
printed as one line on stderr with exit code 2; there is no traceback for those.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import DnmsnnError

DEMO_OVERRIDES = (
    "model.name=digits_mlp", "data.name=digits", "encoder.T=10", "encoder.eval_T=[1,2,5,10,20]",
    "optim.lr=3e-3", "optim.schedule=cosine", "train.epochs=25", "train.batch_size=32",
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
    _add_run_options(p)

    p = sub.add_parser("eval", help="evaluate a trained run's checkpoint on its test set")
    p.add_argument("run_dir", help="run directory written by train/demo")
    p.add_argument("--T", type=int, action="append", default=None, help="sequence length(s) to test at (repeatable)")
    p.add_argument("--data-dir", default=None)

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
    sub.add_parser("info", help="versions, threads and device")
    return parser


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_train(args: argparse.Namespace, overrides: Sequence[str] = (), name: str | None = None) -> dict:
    from .train import Trainer, load_run_config
    from .train.trainer import CONFIG

    config = args.config if hasattr(args, "config") else None
    if config is None and getattr(args, "resume", False) and args.out and (Path(args.out) / CONFIG).exists():
        config = str(Path(args.out) / CONFIG)
    seed = [] if args.seed is None else [f"train.seed={args.seed}"]
    cfg = load_run_config(config, [*overrides, *args.overrides, *seed])
    out = Path(args.out) if args.out else _default_out(name or (Path(config).stem if config else "run"))
    trainer = Trainer(cfg, out, data_dir=args.data_dir, resume=getattr(args, "resume", False))
    return trainer.fit()


def cmd_demo(args: argparse.Namespace) -> int:
    res = cmd_train(args, DEMO_OVERRIDES, name="demo")
    sweep = ", ".join(f"T={T}: {acc:.1%}" for T, acc in res["test_acc_by_T"].items())
    print(f"\ndemo: test accuracy {res['test_acc']:.2%} at T={res['test_T']} on the embedded digits ({sweep})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Test accuracy of every member (and, for a cohort, of the mix modes that need no validation data)."""
    from . import Mix, create_encoder, rules
    from .analysis.runs import load_run_members
    from .data import load_dataset
    from .train import collect_outputs, load_checkpoint
    from .train.trainer import CHECKPOINT

    cfg, models = load_run_members(args.run_dir)
    epoch = load_checkpoint(Path(args.run_dir) / CHECKPOINT)["epoch"] + 1
    test = load_dataset(cfg.data.name, "test", args.data_dir or cfg.data.dir, limit=cfg.data.test_limit)
    member_rules = [rules.create(cfg.rule.name, loss=cfg.rule.loss, **cfg.rule.args) for _ in models]
    encoder = create_encoder(cfg.encoder.name, cfg.encoder.T, seed=cfg.train.seed)
    out: dict[str, dict[str, float]] = {}
    for T in args.T or cfg.eval_T:
        outputs, labels = collect_outputs(models, member_rules, encoder, test, T, cfg.train.eval_batch_size,
                                          cfg.encoder.eval_seed)
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
    (Path(args.run_dir) / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .analysis.plots import plot_run

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    files = plot_run(args.run_dir, args.out, formats=formats, data_dir=args.data_dir, sample=args.sample, T=args.T,
                     echo=lambda msg: print(f"dnmsnn plot: {msg}", file=sys.stderr))
    if args.tensorboard:
        from .analysis.tensorboard import metrics_to_tensorboard

        print(f"TensorBoard event files in {metrics_to_tensorboard(args.run_dir, args.tensorboard)}")
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


def cmd_info(_: argparse.Namespace) -> int:
    import numpy
    import torch

    print(f"dnmsnn  {__version__}\npython  {platform.python_version()} ({platform.machine()})\n"
          f"torch   {torch.__version__}  threads={torch.get_num_threads()}  "
          f"cuda={'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}\n"
          f"numpy   {numpy.__version__}")
    return 0


COMMANDS = {"demo": cmd_demo, "train": lambda a: (cmd_train(a), 0)[1], "eval": cmd_eval,
            "plot": cmd_plot, "analyze": cmd_analyze, "export-nir": cmd_export_nir,
            "models": cmd_models, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except DnmsnnError as exc:
        print(f"dnmsnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dnmsnn {args.command}: interrupted; the last epoch checkpoint is kept (continue with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
