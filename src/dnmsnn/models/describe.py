"""``dnmsnn info MODEL``: what a registered model is -- paper, builder defaults, layers, parameters, weights."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..errors import ConfigError
from .registry import create, info


def describe_model(name: str, overrides: Sequence[str] = ()) -> str:
    """A plain-text page about model ``name`` built with ``overrides`` (``ARG=VALUE``, YAML values)."""
    from .. import weights
    from ..graph import layer_labels
    from ..train.configtools import parse_override

    entry = info(name)
    args = {}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) != 1:
            raise ConfigError(f"--set {text}: name one builder argument of {name}, e.g. --set "
                              f"{next(iter(entry.defaults), 'width')}=...")
        args[path[0]] = value
    net = create(name, **args)
    labels = layer_labels(net)
    params = sum(p.numel() for p in net.parameters())
    lines = [f"{name}: {entry.summary}"]
    if entry.paper:
        lines.append(f"paper: {entry.paper}")
    lines.append(f"input: [T, B, {', '.join(map(str, net.input_shape))}]" if net.input_shape else "input: any shape")
    lines.append(f"readout: {net.readout}" if hasattr(net, "readout") else "")
    lines.append(f"parameters: {params:,}")
    lines.append("builder arguments (defaults; override with --set ARG=VALUE, in a config as model.args.ARG):")
    lines += [f"  {k} = {args.get(k, v)!r}" + ("   (set)" if k in args else "") for k, v in entry.defaults.items()]
    lines.append("layers:")
    for mname, module in net.named_modules():
        if mname and not list(module.children()):
            n = sum(p.numel() for p in module.parameters(recurse=False))
            role = labels.get(mname, "")
            lines.append(f"  {mname:14s} {role:18s} {_short(module):60s} {n:>10,}" if n else
                         f"  {mname:14s} {role:18s} {_short(module)}")
    tags = weights.for_model(name)
    lines.append("shipped weights: " + (", ".join(f"{name}/{t} (models.create({name!r}, weights={t!r}))"
                                                  for t in tags) if tags else "none"))
    return "\n".join(line for line in lines if line)


def _short(module: nn.Module) -> str:
    text = repr(module).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
