"""Make a shipped weight entry (src/dnmsnn/weights/MODEL--TAG.{pt,json}) from a finished run.

    python scripts/ship_weights.py runs/weights/bondarev-s0 bondarev_mlp/mnist --reproduces bondarev \
        --paper "Bondarev" --paper-result 0.9814 --paper-what "784-300-300-10, T = 5" \
        --report reports/bondarev_mnist.md --report-result "98.12 +- 0.03 % (3 seeds)" \
        --command "dnmsnn train --config configs/bondarev_mnist.yaml --data-dir ../shared/data --seed 0" \
        --data-dir ../shared/data

Only the members' weights are kept (no optimizer state). The entry's accuracy is measured on the test set
with ``dnmsnn.weights.evaluate`` -- the function ``dnmsnn reproduce`` runs -- and must equal the run's own
``results.json`` (same encoder stream, batch size and T), else nothing is written.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import dnmsnn
from dnmsnn import weights
from dnmsnn.data.datasets import DATASETS, _canonical_name
from dnmsnn.train import load_checkpoint, load_run_config
from dnmsnn.train.config import config_dict


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("name", help="MODEL/TAG, e.g. bondarev_mlp/mnist")
    p.add_argument("--reproduces", required=True, help="bondarev, asf or dnm (the key of dnmsnn reproduce)")
    p.add_argument("--paper", required=True)
    p.add_argument("--paper-result", type=float, required=True, help="the paper's test accuracy, a fraction")
    p.add_argument("--paper-what", required=True, help="what the paper's number is of")
    p.add_argument("--report", required=True)
    p.add_argument("--report-result", required=True, help="our number over seeds, as the report gives it")
    p.add_argument("--command", required=True, help="the command that trained the run")
    p.add_argument("--commit", default=None, help="the commit whose code trained the run (default HEAD)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--folder", default=str(weights.FOLDER))
    args = p.parse_args()

    run = Path(args.run_dir)
    model_name, tag = args.name.split("/", 1)
    cfg = load_run_config(run / "config.yaml")
    if cfg.model.name != model_name:
        sys.exit(f"{run} trained {cfg.model.name!r}, not {model_name!r}")
    ckpt = load_checkpoint(run / "checkpoint.pt")
    states = [m["model"] for m in ckpt["members"]] if "members" in ckpt else [ckpt["model"]]
    info = DATASETS[_canonical_name(cfg.data.name)]
    defaults = dnmsnn.models.info(model_name).defaults
    builder_args = {**defaults, **cfg.model.args}  # what build_model gives the builder: the dataset's shape
    if "input_shape" in defaults and "input_shape" not in cfg.model.args:
        builder_args["input_shape"] = info.shape
    if "num_classes" in defaults and "num_classes" not in cfg.model.args:
        builder_args["num_classes"] = info.num_classes
    builder_args = {k: list(v) if isinstance(v, tuple) else v for k, v in builder_args.items()}
    results = json.loads((run / "results.json").read_text())

    buf = io.BytesIO()
    torch.save({"members": [{k: v.clone() for k, v in s.items()} for s in states]}, buf)
    raw = buf.getvalue()
    key = args.name.replace("/", "--")
    folder = Path(args.folder)
    meta = {
        "name": args.name,
        "model": model_name,
        "model_args": builder_args,
        "members": len(states),
        "file": f"{key}.pt",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "bytes": len(raw),
        "reproduces": args.reproduces,
        "paper": {"name": args.paper, "test_acc": args.paper_result, "what": args.paper_what},
        "dataset": cfg.data.name,
        "config": config_dict(cfg),
        "command": args.command,
        "commit": args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                text=True, check=False).stdout.strip(),
        "trained": {"epochs": results["epochs"], "seed": results["seed"], "threads": results.get("threads"),
                    "versions": results.get("versions")},
        "report": {"path": args.report, "result": args.report_result},
        "measured": {"test_T": results["test_T"], "run_test_acc": results["test_acc"]},
    }
    if "mix" in results:
        meta["measured"]["mix_choice"] = {"better": results["mix"]["better"],
                                          "best_member": results["mix"]["best_member"]}
    with tempfile.TemporaryDirectory() as tmp:  # evaluate the entry exactly as it will be shipped
        (Path(tmp) / f"{key}.pt").write_bytes(raw)
        (Path(tmp) / f"{key}.json").write_text(json.dumps(meta))
        got = weights.evaluate(args.name, data_dir=args.data_dir, folder=tmp)
    if got["accuracy"] != results["test_acc"]:
        sys.exit(f"the entry evaluates to {got['accuracy']!r}, the run recorded {results['test_acc']!r}: not shipped")
    meta["measured"].update(test_acc=got["accuracy"], members=got["members"], samples=got["samples"])
    if "mix" in got:
        meta["measured"]["mix"] = got["mix"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.pt").write_bytes(raw)
    (folder / f"{key}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"shipped {args.name}: {len(raw) / 1e6:.2f} MB, test accuracy {100 * got['accuracy']:.2f} % at "
          f"T = {got['T']} ({folder / key}.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
