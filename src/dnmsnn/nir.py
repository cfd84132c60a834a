"""Export to and import from NIR, the Neuromorphic Intermediate Representation (``pip install 'dnmsnn[nir]'``).

``to_nir(network, dt=1.0) -> nir.NIRGraph`` and ``from_nir(graph_or_path) -> dnmsnn.Network``;
``write_nir(network, path)`` saves the graph (HDF5), ``dnmsnn export-nir RUN_DIR model.nir`` does
the same for a trained run.

Time
----
NIR neurons are continuous-time ODEs; dnmsnn neurons are discrete-time maps. A NIR file is read by
integrating the ODEs with **forward Euler at a fixed step ``dt``**, the input ``I[k]`` (the synapse
output of step k) held over the step, then thresholding the updated potential and resetting in the
same step, which is exactly dnmsnn's frame: x[k] enters H[k], which may fire at step k (Cao et al.,
Bondarev, Wu et al.). ``to_nir(..., dt=dt)`` writes the time constants for the reader's ``dt`` (the default
``dt = 1``: one time unit per step; snnTorch's importer assumes ``dt = 1e-4``, Norse's ``from_nir``
takes ``dt=`` and defaults to ``1e-3``). The step of each dnmsnn form, and the NIR node whose Euler
step it is (``v_leak = v_reset`` throughout: dnmsnn neurons leak towards their reset potential):

===================  ===========================================  ===========================================
dnmsnn               discrete step (then fire and reset)          NIR node, Euler at ``dt``
===================  ===========================================  ===========================================
LIF(tau=tau)         H = V + (x - (V - v_reset)) / tau            LIF(tau = tau dt, r = 1, v_leak = v_reset)
LIF(beta=beta<1)     H = v_reset + beta (V - v_reset) + x         LIF(tau = dt / (1 - beta), r = 1 / (1 - beta),
                                                                  v_leak = v_reset)
LIF(beta=1), IF      H = V + x                                    IF(r = 1 / dt)
Integrator()         v = v + x  (never fires)                     I(r = 1 / dt)
Integrator(beta)     v = beta v + x                               LI(tau = dt / (1 - beta), r = 1 / (1 - beta),
                                                                  v_leak = 0)
Linear               W x (+ b)                                    Linear(W)  /  Affine(W, b)
Conv2d               conv(x) (+ b), zero padding                  Conv2d (bias zeros when absent)
AvgPool2d            average pooling, no ceil mode                AvgPool2d(kernel, stride, padding)
Flatten              [T, B, ...] -> [T, B, features]              Flatten(start_dim=0, end_dim=-1), unbatched
Residual(body, sc)   body(x) + sc(x)                              fan-out, both branches' edges into the next node
                                                                  (a Scale of ones where a sum feeds a fork)
Dropout              identity at inference                        (no node)
ParametricLIF        LIF(tau) with tau = 1 / sigmoid(w) learned   LIF with the tau of the moment (as LIF(tau))
AdaptiveLIF          threshold V_th + adapt a (Bellec et al.)     none: NIR has no adaptive threshold (an error)
===================  ===========================================  ===========================================

Derivation: Euler on ``tau dv/dt = (v_leak - v) + r I`` gives
``v[k] = v[k-1] + (dt / tau) (v_leak - v[k-1]) + (dt / tau) r I[k]``. The tau form has leak
fraction ``1 / tau`` and input gain ``1 / tau``: ``dt / tau_NIR = 1 / tau`` and ``r dt / tau_NIR
= 1 / tau`` give ``tau_NIR = tau dt, r = 1``. The beta form has leak fraction ``1 - beta`` and
input gain 1: ``tau_NIR = dt / (1 - beta)``, ``r = tau_NIR / dt = 1 / (1 - beta)`` (independent
of dt). ``dv/dt = r I`` with ``r = 1 / dt`` adds exactly x per step.

What is exact and what is not
-----------------------------
* **Exact** (same spikes, bit for bit, for a reader that follows the semantics above): the charge
  step of every form, weights (float32 as trained), biases, per-neuron and learnable thresholds
  (their current values, float64), v_reset, reset to v_reset (``reset="zero"``, all three papers),
  and the same-step input convention.
* **Threshold comparison**: NIR fires on ``v > v_threshold``; dnmsnn's default is ``H >= threshold``
  (``strict=True`` is NIR's ``>``). The two differ only when the potential lands exactly on the
  threshold (possible with spike inputs and "round" weights, measure zero for trained float
  weights). ``strict=False`` layers are flagged in the graph metadata.
* **Not representable in NIR**: ``reset="subtract"`` (NIR resets to v_reset; a warning is issued),
  the surrogate gradient, ``detach_reset`` and ``learn_threshold`` (training-only), and the
  network's readout. These are kept in per-node and graph metadata (key ``"dnmsnn"``, a JSON
  string), so ``from_nir(to_nir(net))`` is exactly ``net``; other readers ignore them.
* **Not exported**: MaxPool2d and BatchNorm (no NIR node; fold BatchNorm into the synapse
  first), Conv2d padding modes other than zeros, AvgPool2d with ceil_mode or divisor_override.
* **Float rounding**: a reader that derives a decay ``1 - dt / tau`` from the stored ``tau`` gets
  beta up to one rounding of the float64 value, i.e. the same float32 beta in practice.

Import (``from_nir``) of graphs written by other tools takes the NIR parameters at ``dt`` (the
graph's own when it came from dnmsnn, else 1.0): uniform ``tau``, ``r``, ``v_leak = v_reset`` are
required per layer (dnmsnn's constants are scalars; thresholds may be per neuron); an input gain
``r dt / tau != 1`` (or ``r dt != 1`` for IF / I) is folded into the weights of the synapse in
front (exact up to float rounding); ``r = 1`` LIF nodes become the tau form, others the beta form;
NIR's ``>`` makes ``strict=True`` neurons. Supported graph shapes: chains, plus fork/join pairs
(residual blocks), possibly nested.

Peers (checked with snnTorch 1.0.0, Norse 1.1.0, nirtorch 2.6, nir 1.0.8; tests/test_nir.py runs
the agreeing cases when the ``nir-peers`` extra is installed), strict neurons with ``v_reset = 0``:

* snnTorch ``snntorch.import_nir.import_from_nir`` hard-codes ``dt = 1e-4``: the beta and the tau
  form give identical spikes when exported with ``to_nir(net, dt=1e-4)`` (and differ at any other
  dt); it rejects ``v_leak != 0`` and maps NIR's IF to a leaky neuron that asserts ``r == 1``, so IF
  layers do not import. It applies NIR's unbatched ``Flatten(start_dim=0)`` to batched tensors, so
  networks with a Flatten agree only when fed one sample at a time.
* Norse ``norse.torch.from_nir(graph, dt=dt)`` ignores ``r`` and ``v_reset``: the tau form (r = 1)
  and IF agree at any dt given to both sides; the beta form (r = 1 / (1 - beta)) does not.
  Norse 1.1 has no mapping for AvgPool2d.
* ``>=`` vs ``>``: with trained float weights no difference was seen; with "round" weights (0.5)
  ties happen and a ``strict=False`` network differs from every NIR reader, as expected.
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import DnmsnnError, InputError
from .functional.surrogate import get_surrogate
from .graph import Visitor, flow
from .layers import AvgPool2d, Conv2d, Dropout, Flatten, Linear, Residual, Sequential, run_module
from .network import Network
from .neuron_registry import kind_of
from .neurons import IF, LIF, Integrator

META = "dnmsnn"
META_VERSION = 1


Flowing = tuple[torch.Tensor, list[str]]  # what the export carries through the network: the example, open edges


class NIRMappingWarning(UserWarning):
    """A part of the network has no exact NIR equivalent (it is kept in the dnmsnn metadata only)."""


def _nir():
    try:
        import nir
    except ImportError as exc:
        raise DnmsnnError("NIR export/import needs the nir package: pip install 'dnmsnn[nir]'") from exc
    return nir


def _meta(node: Any) -> dict[str, Any]:
    raw = (getattr(node, "metadata", None) or {}).get(META)
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, str):
        try:
            out = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return out if isinstance(out, dict) else {}
    return {}


def _with_meta(node: Any, data: dict[str, Any]) -> Any:
    node.metadata = {META: json.dumps(data)}
    return node


# ----------------------------------------------------------------------------------------------- export
def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _full(shape: tuple[int, ...], v: float) -> np.ndarray:
    return np.full(shape, v, dtype=np.float64)


def _pair(v: int | tuple[int, ...]) -> np.ndarray:
    return np.array([v, v] if isinstance(v, int) else list(v), dtype=np.int64)


class _Exporter(Visitor[Flowing]):
    def __init__(self, nir: Any, dt: float) -> None:
        self.nir, self.dt = nir, dt
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, path: str, kind: str, node: Any, sources: list[str]) -> list[str]:
        base = f"{kind}_{path.replace('.', '_')}" if path else kind
        name, i = base, 1
        while name in self.nodes:
            name, i = f"{base}_{i}", i + 1
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return [name]

    # the graph.Visitor protocol: the value is (the example tensor here, the nodes whose edges end here)
    def leaf(self, path: str, module: nn.Module, value: Flowing) -> Flowing:
        x, sources = value
        if isinstance(module, (Dropout, nn.Dropout, nn.Identity)):
            return run_module(module, x), sources
        y = run_module(module, x)
        node, kind = self.node(module, tuple(x.shape[2:]), tuple(y.shape[2:]), path)
        return y, self.add(path, kind, node, sources)

    def fork(self, path: str, block: Residual, value: Flowing) -> Flowing:
        x, sources = value
        if len(sources) > 1:  # a sum feeding a fork: NIR needs one node to fork from (a Scale of ones)
            junction = self.nir.Scale(scale=_full(tuple(x.shape[2:]), 1.0))
            sources = self.add(path, "sum", _with_meta(junction, {"path": path, "module": "junction"}), sources)
        return x, sources

    def join(self, path: str, block: Residual, body: Flowing, shortcut: Flowing) -> Flowing:
        if set(body[1]) & set(shortcut[1]):
            raise InputError(f"Residual {path!r}: body and shortcut are both empty paths; nothing to export")
        return body[0] + shortcut[0], body[1] + shortcut[1]

    def node(self, m: nn.Module, shape_in: tuple[int, ...], shape_out: tuple[int, ...], path: str) -> tuple[Any, str]:
        nir, meta = self.nir, {"path": path, "module": type(m).__name__}
        if isinstance(m, nn.Linear):
            if m.bias is None:
                return _with_meta(nir.Linear(weight=_f32(m.weight)), meta), "linear"
            return _with_meta(nir.Affine(weight=_f32(m.weight), bias=_f32(m.bias)), meta), "affine"
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                raise InputError(f"layer {path}: Conv2d padding_mode={m.padding_mode!r} has no NIR equivalent")
            bias = _f32(m.bias) if m.bias is not None else np.zeros(m.out_channels, dtype=np.float32)
            padding = m.padding if isinstance(m.padding, str) else tuple(int(p) for p in m.padding)
            node = nir.Conv2d(input_shape=tuple(shape_in[1:]), weight=_f32(m.weight), stride=tuple(m.stride),
                              padding=padding, dilation=tuple(m.dilation), groups=int(m.groups), bias=bias)
            return _with_meta(node, {**meta, "bias": m.bias is not None}), "conv2d"
        if isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or m.divisor_override is not None:
                raise InputError(f"layer {path}: AvgPool2d with ceil_mode or divisor_override has no NIR equivalent")
            node = nir.AvgPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride or m.kernel_size),
                                 padding=_pair(m.padding))
            if np.any(_pair(m.padding)) and not m.count_include_pad:
                self.notes.append(f"{path}: AvgPool2d count_include_pad=False (NIR leaves padded averages open)")
            return _with_meta(node, {**meta, "count_include_pad": bool(m.count_include_pad)}), "avgpool2d"
        if isinstance(m, Flatten):
            return _with_meta(nir.Flatten(input_type={"input": np.array(shape_in)}, start_dim=0, end_dim=-1),
                              meta), "flatten"
        if isinstance(m, (LIF, IF)):
            kind = kind_of(m)
            if kind is not None and kind.nir is not None:
                raise InputError(f"layer {path or '(root)'}: {type(m).__name__} ({kind.name}) cannot be exported: "
                                 f"{kind.nir}")
            return self.neuron(m, shape_out, meta)
        if isinstance(m, Integrator):
            meta["beta"] = m.beta
            if m.beta is None or m.beta == 1.0:
                return _with_meta(nir.I(r=_full(shape_out, 1.0 / self.dt)), meta), "i"
            node = nir.LI(tau=_full(shape_out, self.dt / (1.0 - m.beta)), r=_full(shape_out, 1.0 / (1.0 - m.beta)),
                          v_leak=_full(shape_out, 0.0))
            return _with_meta(node, meta), "li"
        raise InputError(f"layer {path or '(root)'}: {type(m).__name__} has no NIR mapping (supported: Linear, "
                         "Conv2d, AvgPool2d, Flatten, Dropout, Residual, LIF, IF, Integrator)")

    def neuron(self, m: LIF | IF, shape: tuple[int, ...], meta: dict[str, Any]) -> tuple[Any, str]:
        nir, dt = self.nir, self.dt

        def full(v: float) -> np.ndarray:
            return _full(shape, v)

        thr = m.threshold.detach().cpu().to(torch.float64).numpy()
        v_reset = full(m.v_reset)
        meta.update(beta=m.beta, tau=m.tau, v_reset=m.v_reset, reset=m.reset, strict=m.strict,
                    detach_reset=m.detach_reset, learn_threshold=isinstance(m.threshold, nn.Parameter),
                    threshold_shape=list(thr.shape), surrogate=m.surrogate.name,
                    surrogate_param=getattr(m.surrogate, m.surrogate.param))
        thr = np.broadcast_to(thr, shape).copy()
        if m.reset != "zero":
            warnings.warn(f"layer {meta['path']}: reset={m.reset!r} has no NIR equivalent (NIR resets to v_reset); "
                          "other readers will reset to v_reset", NIRMappingWarning, stacklevel=2)
            self.notes.append(f"{meta['path']}: reset={m.reset!r} (NIR resets to v_reset)")
        if not m.strict:
            self.notes.append(f"{meta['path']}: fires on H >= threshold (NIR: v > v_threshold)")
        if m.tau is not None:
            node = nir.LIF(tau=full(m.tau * dt), r=full(1.0), v_leak=v_reset, v_threshold=thr, v_reset=v_reset)
            return _with_meta(node, meta), "lif"
        if m.beta is not None and m.beta < 1.0:
            node = nir.LIF(tau=full(dt / (1.0 - m.beta)), r=full(1.0 / (1.0 - m.beta)), v_leak=v_reset,
                           v_threshold=thr, v_reset=v_reset)
            return _with_meta(node, meta), "lif"
        return _with_meta(nir.IF(r=full(1.0 / dt), v_threshold=thr, v_reset=v_reset), meta), "if"


def to_nir(network: nn.Module, dt: float = 1.0, input_shape: Iterable[int] | None = None) -> Any:
    """The network as a ``nir.NIRGraph`` whose Euler integration at ``dt`` reproduces it (module docstring).

    ``input_shape`` (one sample, no time or batch dims) defaults to ``network.input_shape``.
    """
    nir = _nir()
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise InputError(f"dt must be a finite number > 0, got {dt!r}")
    shape = tuple(input_shape) if input_shape is not None else tuple(getattr(network, "input_shape", ()) or ())
    if not shape:
        raise InputError("to_nir needs the input shape: build the Network with input_shape=... or pass input_shape")
    ex = _Exporter(nir, float(dt))
    ex.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            like = next(network.parameters(), torch.zeros(()))  # trace shapes in the network's dtype / device
            y, tails = flow(network, (torch.zeros((1, 1, *shape), dtype=like.dtype, device=like.device), ["input"]),
                            ex)
    finally:
        network.train(was_training)
    if tails == ["input"]:
        raise InputError("the network has no layer to export")
    ex.add("", "output", nir.Output(output_type={"output": np.array(y.shape[2:])}), tails)
    meta = {"version": META_VERSION, "dt": float(dt), "input_shape": list(shape),
            "readout": getattr(network, "readout", None), "num_classes": getattr(network, "num_classes", None),
            "inexact": ex.notes}
    try:
        return nir.NIRGraph(nodes=ex.nodes, edges=ex.edges, metadata={META: json.dumps(meta)})
    except (ValueError, AssertionError) as exc:  # nir's own type check
        raise InputError(f"NIR rejected the exported graph: {exc}") from None


def write_nir(network: nn.Module, path: str | Path, dt: float = 1.0, input_shape: Iterable[int] | None = None) -> Path:
    """``to_nir`` then ``nir.write`` (HDF5); returns the path."""
    graph = to_nir(network, dt=dt, input_shape=input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _nir().write(path, graph)
    return path


# ----------------------------------------------------------------------------------------------- import
def _uniform(a: Any, what: str, name: str) -> float:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        raise InputError(f"NIR node {name!r}: {what} is empty")
    first = float(arr.flat[0])
    if not np.all(arr == first):
        raise InputError(f"NIR node {name!r}: {what} differs between neurons; dnmsnn needs one value per layer")
    return first


def _load_parameters(layer: Linear | Conv2d, weight: torch.Tensor, node: Any) -> Linear | Conv2d:
    """Copy a NIR node's weight (and bias, when the layer has one) into a freshly built layer."""
    with torch.no_grad():
        layer.weight.copy_(weight)
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
    return layer


def _ints(v: Any) -> int | tuple[int, ...] | str:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        return v
    arr = np.atleast_1d(np.asarray(v)).astype(np.int64).tolist()
    return (arr[0], arr[0]) if len(arr) == 1 else tuple(arr)


def _threshold(v_threshold: Any, meta: dict[str, Any]) -> float | torch.Tensor:
    full = np.asarray(v_threshold, dtype=np.float64)
    shape = meta.get("threshold_shape")
    if isinstance(shape, list) and len(shape) <= full.ndim:  # undo the broadcast of a dnmsnn threshold
        t = full[(0,) * (full.ndim - len(shape))] if full.ndim > len(shape) else full
        t = t[tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)]
        if list(t.shape) == shape:
            return float(t) if not shape else torch.from_numpy(t.copy())
    if full.size and np.all(full == full.flat[0]):
        return float(full.flat[0])
    return torch.from_numpy(full.copy())


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


class _Importer:
    def __init__(self, nir: Any, graph: Any, dt: float) -> None:
        self.nir, self.graph, self.dt = nir, graph, dt
        self.succ: dict[str, set[str]] = {k: set() for k in graph.nodes}
        self.pred: dict[str, set[str]] = {k: set() for k in graph.nodes}
        for a, b in graph.edges:
            self.succ[a].add(b)
            self.pred[b].add(a)
        self.order = self._topological()
        self.done: set[str] = set()  # nodes already converted

    def _topological(self) -> dict[str, int]:
        indeg = {k: len(v) for k, v in self.pred.items()}
        ready = sorted(k for k, d in indeg.items() if d == 0)
        order: dict[str, int] = {}
        while ready:
            k = ready.pop(0)
            order[k] = len(order)
            for s in sorted(self.succ[k]):
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        if len(order) != len(indeg):
            raise InputError("the NIR graph has a cycle (recurrent connections are not supported by dnmsnn)")
        return order

    def _reach(self, start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            k = todo.pop()
            if k not in seen:
                seen.add(k)
                todo += list(self.succ[k])
        return seen

    def parse(self, tails: frozenset[str], stop: str, layers: list[nn.Module]) -> tuple[list[nn.Module], frozenset]:
        while True:
            nexts = {frozenset(self.succ[t] - self.done) for t in tails}  # a fork's source also feeds its branches
            if len(nexts) != 1:
                raise InputError(f"unsupported NIR graph shape: nodes {sorted(tails)} feed different nodes")
            nxt = next(iter(nexts))
            if nxt == {stop}:
                return layers, tails
            if not nxt or (stop in nxt and len(nxt) != 2):
                raise InputError(f"unsupported NIR graph shape after nodes {sorted(tails)}")
            if len(nxt) == 1:
                (name,) = nxt
                if self.pred[name] != tails:
                    raise InputError(f"unsupported NIR graph shape: node {name!r} has inputs {sorted(self.pred[name])}")
                layer = self.convert(name, layers)
                if layer is not None:
                    layers.append(layer)
                tails = frozenset([name])
                continue
            if len(nxt) != 2:
                raise InputError(f"unsupported NIR graph shape: a {len(nxt)}-way fork after {sorted(tails)} "
                                 "(dnmsnn imports chains and two-way residual forks)")
            a, b = sorted(nxt, key=self.order.__getitem__)
            common = self._reach(a) & self._reach(b)
            if not common:
                raise InputError(f"unsupported NIR graph shape: the branches {a!r} and {b!r} never join")
            join = min(common, key=self.order.__getitem__)
            branches = []
            for start in (a, b):
                if start == join:
                    branches.append((start, [], tails))
                    continue
                if self.pred[start] != tails:
                    raise InputError(f"unsupported NIR graph shape: node {start!r} has inputs "
                                     f"{sorted(self.pred[start])}")
                blayers = [layer for layer in [self.convert(start, [])] if layer is not None]
                blayers, btails = self.parse(frozenset([start]), join, blayers)
                branches.append((start, blayers, btails))
            summed = frozenset().union(*(t for _, _, t in branches))
            # the join is exactly the two branches' sum, or (a block ending where the enclosing one ends) part of it
            if not (self.pred[join] == summed or (join == stop and summed <= self.pred[join])):
                raise InputError(f"unsupported NIR graph shape: node {join!r} joins more than the two branches")

            def is_shortcut(branch: tuple[str, list, frozenset]) -> bool:
                return not branch[1] or ".shortcut" in f".{_meta(self.graph.nodes[branch[0]]).get('path', '')}"

            body, short = sorted(branches, key=is_shortcut)
            if not body[1]:
                raise InputError(f"unsupported NIR graph shape: both branches after {sorted(tails)} are empty")
            layers.append(Residual(Sequential(*body[1]), Sequential(*short[1]) if short[1] else None))
            tails = summed

    # one node -> one dnmsnn layer
    def convert(self, name: str, layers: list[nn.Module]) -> nn.Module | None:
        """The layer of one node (None for a junction: a Scale of ones, where a sum forks)."""
        nir, node = self.nir, self.graph.nodes[name]
        meta = _meta(node)
        self.done.add(name)
        if isinstance(node, nir.Scale) and np.all(np.asarray(node.scale) == 1.0):
            return None
        if isinstance(node, (nir.Linear, nir.Affine)):
            w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
            if w.dim() != 2:
                raise InputError(f"NIR node {name!r}: only 2-D Linear / Affine weights are supported")
            layer = Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
            return _load_parameters(layer, w, node)
        if isinstance(node, nir.Conv2d):
            w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
            groups = int(np.asarray(node.groups))
            bias = bool(meta.get("bias", True))
            layer = Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride),
                           padding=_ints(node.padding), dilation=_ints(node.dilation), groups=groups, bias=bias)
            return _load_parameters(layer, w, node)
        if isinstance(node, nir.AvgPool2d):
            return AvgPool2d(_ints(node.kernel_size), stride=_ints(node.stride), padding=_ints(node.padding),
                             count_include_pad=bool(meta.get("count_include_pad", True)))
        if isinstance(node, nir.Flatten):
            shape = node.input_type.get("input") if isinstance(node.input_type, dict) else None
            nd = None if shape is None else len(np.atleast_1d(shape))
            start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))
            if start != 0 or end not in (-1, (nd or 0) - 1):
                raise InputError(f"NIR node {name!r}: Flatten(start_dim={start}, end_dim={end}) does not flatten all "
                                 "feature dims (NIR shapes exclude the batch: dnmsnn imports start_dim=0, end_dim=-1)")
            return Flatten()
        if isinstance(node, (nir.LIF, nir.IF, nir.I, nir.LI)):
            return self.neuron(name, node, meta, layers)
        raise InputError(f"NIR node {name!r} of type {type(node).__name__} has no dnmsnn equivalent (supported: "
                         "Linear, Affine, Conv2d, AvgPool2d, Flatten, LIF, IF, I, LI)")

    def neuron(self, name: str, node: Any, meta: dict[str, Any], layers: list[nn.Module]) -> nn.Module:
        nir, dt = self.nir, self.dt
        if isinstance(node, (nir.I, nir.LI)):
            if isinstance(node, nir.I):
                beta, gain = None, _uniform(node.r, "r", name) * dt
            else:
                if _uniform(node.v_leak, "v_leak", name) != 0.0:
                    raise InputError(f"NIR node {name!r}: LI with v_leak != 0 has no dnmsnn equivalent")
                a = dt / _uniform(node.tau, "tau", name)
                beta, gain = 1.0 - a, _uniform(node.r, "r", name) * a
                if not 0.0 < beta <= 1.0:
                    raise InputError(f"NIR node {name!r}: dt / tau = {a:g} gives a decay outside (0, 1]; lower dt")
                beta = meta["beta"] if _close(meta.get("beta"), beta) else beta
            self._fold(name, gain, layers)
            return Integrator(beta)
        v_reset = _uniform(node.v_reset, "v_reset", name) if node.v_reset is not None else 0.0
        threshold = _threshold(node.v_threshold, meta)
        kw: dict[str, Any] = dict(threshold=threshold, v_reset=v_reset, strict=True)
        if meta.get("module") in ("LIF", "IF"):
            surrogate = meta.get("surrogate", "exp")
            try:
                get_surrogate(surrogate)
            except DnmsnnError:
                surrogate = "exp"
            else:
                kw["surrogate_param"] = meta.get("surrogate_param")
            kw.update(reset=meta.get("reset", "zero"), strict=bool(meta.get("strict", True)), surrogate=surrogate,
                      detach_reset=bool(meta.get("detach_reset", False)),
                      learn_threshold=bool(meta.get("learn_threshold", False)))
        if isinstance(node, nir.IF):
            self._fold(name, _uniform(node.r, "r", name) * dt, layers)
            if meta.get("module") == "LIF" and meta.get("beta") == 1.0:
                return LIF(beta=1.0, **kw)
            return IF(**kw)
        if not _close(_uniform(node.v_leak, "v_leak", name), v_reset):
            raise InputError(f"NIR node {name!r}: v_leak != v_reset; dnmsnn neurons leak towards their reset potential")
        a = dt / _uniform(node.tau, "tau", name)
        r = _uniform(node.r, "r", name)
        if r == 1.0 and meta.get("beta") is None and 0.0 < a <= 1.0:  # the tau form: input gain 1/tau
            tau = 1.0 / a
            return LIF(tau=meta["tau"] if _close(meta.get("tau"), tau) else tau, **kw)
        beta = 1.0 - a
        if not 0.0 < beta <= 1.0:
            raise InputError(f"NIR node {name!r}: dt / tau = {a:g} gives a decay outside (0, 1]; lower dt")
        self._fold(name, r * a, layers)
        return LIF(beta=meta["beta"] if _close(meta.get("beta"), beta) else beta, **kw)

    def _fold(self, name: str, gain: float, layers: list[nn.Module]) -> None:
        """Fold an input gain into the synapse in front (through Flatten / pooling / dropout)."""
        if math.isclose(gain, 1.0, rel_tol=1e-9, abs_tol=0.0):
            return
        for layer in reversed(layers):
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                with torch.no_grad():
                    layer.weight.mul_(gain)
                    if layer.bias is not None:
                        layer.bias.mul_(gain)
                return
            if not isinstance(layer, (Flatten, AvgPool2d, Dropout)):
                break
        raise InputError(f"NIR node {name!r}: its input gain (r dt / tau = {gain:g}) needs a Linear or Conv2d in "
                         "front to fold into; dnmsnn neurons take their input unscaled")


def from_nir(graph: Any, dt: float | None = None) -> Network:
    """A :class:`dnmsnn.Network` from a ``nir.NIRGraph`` or a ``.nir`` file (see the module docstring).

    ``dt`` is the Euler step the NIR time constants are read at: by default the one the graph was
    exported with by dnmsnn, else 1.0.
    """
    nir = _nir()
    if isinstance(graph, (str, Path)):
        path = Path(graph)
        if not path.is_file():
            raise DnmsnnError(f"no NIR file at {path}")
        try:
            graph = nir.read(path)
        except (OSError, KeyError, ValueError, AssertionError, TypeError) as exc:
            raise DnmsnnError(f"{path} is not a readable NIR file: {exc}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise InputError(f"from_nir expects a nir.NIRGraph or a path, got {type(graph).__name__}")
    gmeta = _meta(graph)
    dt = float(gmeta.get("dt", 1.0)) if dt is None else dt
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise InputError(f"dt must be a finite number > 0, got {dt!r}")
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"dnmsnn imports graphs with one Input and one Output node, got {len(inputs)} and "
                         f"{len(outputs)}")
    for k, n in graph.nodes.items():
        if isinstance(n, nir.NIRGraph):
            raise InputError(f"NIR node {k!r} is a nested graph (e.g. a recurrent block); dnmsnn imports flat graphs")
    imp = _Importer(nir, graph, float(dt))
    layers, _ = imp.parse(frozenset(inputs), outputs[0], [])
    if not layers:
        raise InputError("the NIR graph has no layer between its Input and Output")
    shape = tuple(int(d) for d in np.atleast_1d(graph.nodes[inputs[0]].input_type["input"]))
    out_shape = np.atleast_1d(graph.nodes[outputs[0]].output_type["output"])
    readout = gmeta.get("readout") or ("final" if isinstance(layers[-1], Integrator) else "sum")
    num_classes = gmeta.get("num_classes") or int(np.prod(out_shape))
    return Network(*layers, readout=readout, input_shape=shape, num_classes=int(num_classes))
