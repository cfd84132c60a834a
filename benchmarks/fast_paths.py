"""Which fused-neuron implementation trains fastest: paired, interleaved timings in ONE process.

    python benchmarks/fast_paths.py                          # MLP 784-300-300-10, T=20, batch 64, 2 threads
    python benchmarks/fast_paths.py --T 80 --threads 1 --iters 30 --variants ann,python,cpp
    python benchmarks/fast_paths.py --out benchmarks/results/fast_paths_T20   # + .jsonl / .md

Every variant trains the canonical peer_bench model (see benchmarks/peer_bench_dnmsnn.py: LIF beta
0.8187, threshold 1, zero reset detached, strict, SuperSpike slope 1, leaky Integrator readout
"sum", weights x 2) with Adam on the same pre-generated rate-coded inputs. All variants live in
the same process and are driven round-robin (one untimed re-warm + ``--chunk`` timed iterations
per turn, order shuffled each round), so a slow phase of the shared host hits all of them alike;
the table reports each variant's median time relative to the ANN reference of the same run.

Variants (each adds one fast path to the one above it, except ann / reference / compile):
  ann             torch-ann: the same Linear layers over the [T*B] stack, ReLU for LIF, sum over T
  reference       dnmsnn.functional.reference_path(): step-by-step autograd, literal Integrator trace
  python          fused node, PyTorch loop over T (fused_backend("python")), Integrator trace + sum,
                  LIF and Linear as separate nodes
  cpp             as python with the C++ kernel (fused_backend("cpp"))
  cpp+cf          + closed-form Integrator readout
  cpp+cf+pair     + LIF -> Linear as one node (spikes kept as bytes)
  cpp+cf+pair+spike + the multiplication-free spike matmuls (functional/spike_matmul.py): the default path
  python+cf+pair  the default path without a C++ compiler (so also without spike matmuls)
  compile         LIF layers replaced by a torch.compile'd forward/backward loop (canonical neuron only;
                  needs a compiler, the first call compiles for tens of seconds)

``--memory``: instead of timings, the peak RSS growth of a training step of every variant, each in a
fresh process (median of ``--mem-runs``), as peer_bench measures it (after warm-up, baseline after
runtime priming). Set MALLOC_MMAP_THRESHOLD_=65536 to see live-tensor peaks without glibc's heap reuse.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import dnmsnn
from dnmsnn.functional import fast_path_info, fused_backend, reference_path, spike_matmul

BETA, THR, GAIN = 0.8187, 1.0, 2.0
ALL = ("ann", "reference", "python", "cpp", "cpp+cf", "cpp+cf+pair", "cpp+cf+pair+spike", "python+cf+pair", "compile")


def lif() -> dnmsnn.LIF:
    return dnmsnn.LIF(beta=BETA, threshold=THR, v_reset=0.0, reset="zero", surrogate="fast_sigmoid",
                      surrogate_param=1.0, detach_reset=True, strict=True)


def canonical_weights(sizes: list[int], seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.random.get_rng_state()
    torch.manual_seed(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        m = nn.Linear(a, b)
        out.append((m.weight.detach() * GAIN, m.bias.detach() * GAIN))
    torch.random.set_rng_state(gen)
    return out


def dnmsnn_net(sizes: list[int], weights, closed_form: bool) -> dnmsnn.Network:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(dnmsnn.Linear(a, b))
        layers.append(lif() if i < len(sizes) - 2 else dnmsnn.Integrator(beta=BETA, record=not closed_form))
    net = dnmsnn.Network(*layers, readout="sum", input_shape=(sizes[0],))
    with torch.no_grad():
        for lin, (w, b) in zip([m for m in net if isinstance(m, nn.Linear)], weights, strict=True):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
    return net


class ANN(nn.Module):
    def __init__(self, sizes, weights):
        super().__init__()
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        with torch.no_grad():
            for lin, (w, b) in zip(self.lins, weights, strict=True):
                lin.weight.copy_(w)
                lin.bias.copy_(b)

    def forward(self, x):
        T, B = x.shape[:2]
        h = x.flatten(0, 1)
        for i, lin in enumerate(self.lins):
            h = lin(h)
            if i < len(self.lins) - 1:
                h = F.relu(h)
        return h.unflatten(0, (T, B)).sum(0)


def compiled_lif_module():
    """A LIF layer whose T loop (forward and hand-written backward) is compiled by torch.compile."""

    def fwd(x, beta: float, thr: float):
        v = torch.zeros_like(x[0])
        hs, ss = [], []
        for t in range(x.shape[0]):
            v = beta * v + x[t]
            s = v > thr
            hs.append(v)
            ss.append(s.to(x.dtype))
            v = v.masked_fill(s, 0.0)
        return torch.stack(ss), torch.stack(hs)

    def bwd(gs, h, beta: float, thr: float):
        gv = torch.zeros_like(h[0])
        out = []
        for t in range(h.shape[0] - 1, -1, -1):
            d = 1.0 + (h[t] - thr).abs()
            gh = gs[t] / (d * d) + gv * (h[t] <= thr).to(h.dtype)
            out.append(gh)
            gv = gh * beta
        return torch.stack(out[::-1])

    cf, cb = torch.compile(fwd, dynamic=False), torch.compile(bwd, dynamic=False)

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            s, h = cf(x, BETA, THR)
            ctx.save_for_backward(h)
            return s

        @staticmethod
        def backward(ctx, g):
            (h,) = ctx.saved_tensors
            return cb(g.contiguous(), h, BETA, THR)

    class CompiledLIF(nn.Module):
        def forward(self, x):
            return Fn.apply(x)

    return CompiledLIF()


def make_variant(name: str, sizes, weights):
    ctx = contextlib.nullcontext  # a factory: the library's context managers are single-use
    if name == "ann":
        model = ANN(sizes, weights)
        return model, model, ctx
    cf = "+cf" in name
    net = dnmsnn_net(sizes, weights, closed_form=cf or name == "compile")
    if "+pair" not in name and name != "reference":
        for m in net:  # a (no-op) hook keeps a LIF from fusing with the Linear after it
            if isinstance(m, dnmsnn.LIF):
                m.register_forward_hook(lambda *_: None)
    if name == "reference":
        ctx = reference_path
    elif name.startswith("python"):
        ctx = lambda: fused_backend("python")  # noqa: E731
    elif name.startswith("cpp"):
        ctx = lambda: fused_backend("cpp")  # noqa: E731
    elif name == "compile":
        for i, m in enumerate(net):
            if isinstance(m, dnmsnn.LIF):
                net[i] = compiled_lif_module()
    if name.endswith("+spike"):
        return net, net.classify, ctx
    return net, net.classify, lambda: _both(ctx(), spike_matmul(False))


@contextlib.contextmanager
def _both(a, b):
    with a, b:
        yield


def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def memory_worker(name: str, a) -> dict:
    """Peak RSS growth of one variant's training step in this (fresh) process, peer_bench's way."""
    import ctypes
    import gc

    torch.set_num_threads(a.threads)
    sizes = [784, 300, 300, 10]
    pool = make_pool(a, sizes)
    m = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))  # prime the runtime (OpenMP, autograd, Adam)
    o = torch.optim.Adam(m.parameters())
    F.cross_entropy(m(torch.randn(4, 8)), torch.zeros(4, dtype=torch.long)).backward()
    o.step()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = _rss_mb()
    module, fwd, ctx = make_variant(name, sizes, canonical_weights(sizes, a.seed))
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)
    for i in range(a.warmup + 4):
        if i == a.warmup:
            gc.collect()
            Path("/proc/self/clear_refs").write_text("5")
        with ctx():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(fwd(pool[i % 4][0]), pool[i % 4][1]).backward()
            opt.step()
    return {"variant": name, "peak_growth_mb": _rss_mb("VmHWM") - base}


def make_pool(a, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(a.seed + 1)
    pool = []
    for _ in range(4):
        p = torch.rand(a.batch, sizes[0], generator=g)
        x = torch.bernoulli(p.expand(a.T, *p.shape).contiguous(), generator=g)
        pool.append((x, torch.randint(0, 10, (a.batch,), generator=g)))
    return pool


def run_memory(a, names: list[str]) -> str:
    import subprocess

    res: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(a.mem_runs):
        for n in names:
            cmd = [sys.executable, __file__, "--mem-worker", n, "--T", str(a.T), "--batch", str(a.batch),
                   "--threads", str(a.threads), "--warmup", str(a.warmup), "--seed", str(a.seed)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            res[n].append(json.loads(out.strip().splitlines()[-1])["peak_growth_mb"])
    ref = "ann" if "ann" in names else names[0]
    lines = [f"Peak RSS growth of a training step, MLP 784-300-300-10, T={a.T}, batch {a.batch}, {a.threads} "
             f"thread(s), fresh process per cell, median of {a.mem_runs} (runs in brackets)", "",
             f"| variant | peak growth MB | vs {ref} |", "|---|---|---|"]
    for n in names:
        m = statistics.median(res[n])
        lines.append(f"| {n} | {m:.1f} ({', '.join(f'{v:.0f}' for v in res[n])}) | "
                     f"{m / statistics.median(res[ref]):.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(v for v in ALL if v != "compile"),
                    help=f"comma list of {', '.join(ALL)} (default: all but compile)")
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=40, help="timed iterations per variant")
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write OUT.jsonl (appended) and OUT.md")
    ap.add_argument("--memory", action="store_true", help="peak memory per variant instead of timings")
    ap.add_argument("--mem-runs", type=int, default=3, help="fresh processes per variant for --memory")
    ap.add_argument("--mem-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.mem_worker:
        print(json.dumps(memory_worker(a.mem_worker, a)))
        return 0
    torch.set_num_threads(a.threads)
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in ALL]
    if bad:
        ap.error(f"unknown variants {bad}; known: {', '.join(ALL)}")
    if a.memory:
        text = run_memory(a, names)
        print(text)
        if a.out:
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).with_suffix(".md").write_text(text + "\n")
        return 0
    sizes = [784, 300, 300, 10]
    weights = canonical_weights(sizes, a.seed)
    pool = make_pool(a, sizes)

    runs = {}
    for name in names:
        module, fwd, ctx = make_variant(name, sizes, weights)
        opt = torch.optim.Adam(module.parameters(), lr=1e-4)

        def step(x, y, fwd=fwd, ctx=ctx, opt=opt):
            with ctx():
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(fwd(x), y)
                loss.backward()
                opt.step()
            return float(loss.detach())

        t0 = time.perf_counter()
        for i in range(a.warmup):
            step(*pool[i % 4])
        runs[name] = {"step": step, "times": [], "i": 0, "setup_s": time.perf_counter() - t0}
        print(f"# {name}: set up + {a.warmup} warm-up iterations in {runs[name]['setup_s']:.1f}s", file=sys.stderr)

    rng = random.Random(a.seed)
    done = 0
    while done < a.iters:
        k = min(a.chunk, a.iters - done)
        order = list(names)
        rng.shuffle(order)
        for name in order:
            r = runs[name]
            r["step"](*pool[r["i"] % 4])  # untimed re-warm
            r["i"] += 1
            for _ in range(k):
                t0 = time.perf_counter()
                r["step"](*pool[r["i"] % 4])
                r["times"].append(time.perf_counter() - t0)
                r["i"] += 1
        done += k

    ref = "ann" if "ann" in names else names[0]
    med = {n: statistics.median(runs[n]["times"]) for n in names}
    info = fast_path_info()
    rows = []
    for n in names:
        rows.append({"variant": n, "T": a.T, "batch": a.batch, "threads": a.threads, "iters": a.iters,
                     "median_s": med[n], "samples_per_s": a.batch / med[n], "time_vs_" + ref: med[n] / med[ref],
                     "times_s": [round(t, 6) for t in runs[n]["times"]], "torch": torch.__version__, **info,
                     "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    lines = [f"MLP 784-300-300-10, T={a.T}, batch {a.batch}, {a.threads} thread(s), {a.iters} timed iterations "
             f"per variant, interleaved in one process; C++ kernel: {info['cpp_kernel']}", "",
             f"| variant | ms/iter (median) | samples/s | time / {ref} | throughput vs {ref} |",
             "|---|---|---|---|---|"]
    for r in rows:
        ratio = r["time_vs_" + ref]
        lines.append(f"| {r['variant']} | {r['median_s'] * 1e3:.1f} | {r['samples_per_s']:.0f} | {ratio:.2f} | "
                     f"{1 / ratio:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.with_suffix(".jsonl"), "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
