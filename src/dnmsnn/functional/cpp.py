"""The optional C++ kernels (``lif_kernel.cpp``: the fused neuron node; ``spike_matmul.cpp``: products
with 0/1 spike operands), built on first use into one extension.

``load()`` returns the compiled extension module, or None when it cannot be had (no C++ compiler,
a failed build, ``DNMSNN_NO_CPP=1`` in the environment); the fused node then runs its PyTorch loop
(same results, slower). The build happens once per (kernel source, torch, Python) combination and is
cached under ``$DNMSNN_CACHE_DIR`` or ``$XDG_CACHE_HOME/dnmsnn`` (default ``~/.cache/dnmsnn``); later
processes import the cached library directly, without torch.utils.cpp_extension. Building takes
about a minute the first time; :func:`dnmsnn.functional.fast_path_info` (or :func:`status`) does it
ahead of time and reports the outcome.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("lif_kernel.cpp")
SOURCES = (SOURCE, Path(__file__).with_name("spike_matmul.cpp"))
# -ffp-contract=off: no fused multiply-add, so the forward rounds like PyTorch's element-wise kernels;
# -march=native: the widest vectors of this CPU (the build is per machine and cached under its identity)
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
if platform.machine() in ("x86_64", "AMD64"):
    CFLAGS.append("-march=native")
LDFLAGS: list[str] = []


def _torch_runs_libgomp() -> bool:
    """Whether this process's torch runs on GNU OpenMP (libgomp.so.1 mapped; Linux only). Then the kernels are
    built with -fopenmp: their DT_NEEDED libgomp.so.1 resolves to the copy torch already loaded (same soname),
    so at::parallel_for shares torch's thread pool. Any other runtime: no OpenMP (a second runtime would fight
    torch's spinning threads for the cores), the kernels then split work with std::thread."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(Path(line.split()[-1]).name.startswith("libgomp") for line in maps.splitlines() if "/" in line)


if _torch_runs_libgomp():
    CFLAGS.append("-fopenmp")
    LDFLAGS.append("-fopenmp")

_lock = threading.Lock()
_state: dict[str, object] = {}


def cache_dir() -> Path:
    """Folder of the compiled kernels (``$DNMSNN_CACHE_DIR``, else the user's cache dir)."""
    env = os.environ.get("DNMSNN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dnmsnn"


def _cpu_identity() -> str:
    """The CPU's model and feature flags (Linux), so a cache shared between machines never mixes builds."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "|".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags", "Features"))}))


def module_name() -> str:
    """Extension name, unique per kernel sources, flags, torch and Python version, and CPU."""
    key = hashlib.sha256()
    for src in SOURCES:
        key.update(src.read_bytes())
    key.update(_cpu_identity().encode())
    key.update(" ".join(CFLAGS + LDFLAGS).encode())
    key.update(f"{torch.__version__}|{sys.version_info[:2]}|{platform.machine()}|{sys.platform}".encode())
    return f"dnmsnn_lif_{key.hexdigest()[:16]}"


def _built_file(name: str, folder: Path) -> Path | None:
    """The compiled extension of ``name`` in ``folder``, if there is one."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES + [".so"]:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _import_built(name: str, folder: Path) -> ModuleType | None:
    path = _built_file(name, folder)
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build(name: str, folder: Path) -> ModuleType:
    from torch.utils import cpp_extension

    folder.mkdir(parents=True, exist_ok=True)
    print(f"dnmsnn: compiling the C++ kernels once (about a minute; cached in {folder}; "
          "DNMSNN_NO_CPP=1 skips it)", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    mod = cpp_extension.load(name=name, sources=[str(src) for src in SOURCES], build_directory=str(folder),
                             extra_cflags=CFLAGS, extra_ldflags=LDFLAGS,
                             verbose=bool(os.environ.get("DNMSNN_CPP_VERBOSE")))
    print(f"dnmsnn: C++ kernels compiled in {time.perf_counter() - t0:.0f} s (once; cached)", file=sys.stderr,
          flush=True)
    return mod


def is_built() -> bool:
    """Whether the kernels are loaded in this process or compiled in the cache (so :func:`load` will not build)."""
    if _state.get("module") is not None:
        return True
    name = module_name()
    return _built_file(name, cache_dir() / name) is not None


def load() -> ModuleType | None:
    """The compiled kernel module, or None (the reason is in :func:`status`). Thread-safe, cached."""
    if "module" in _state:
        return _state["module"]  # type: ignore[return-value]
    with _lock:
        if "module" in _state:
            return _state["module"]  # type: ignore[return-value]
        mod, why = None, "ok"
        if os.environ.get("DNMSNN_NO_CPP"):
            why = "disabled by DNMSNN_NO_CPP"
        elif not all(src.is_file() for src in SOURCES):
            why = "kernel sources not installed"
        else:
            name = module_name()
            folder = cache_dir() / name
            try:
                mod = _import_built(name, folder)
                if mod is None:
                    if shutil.which(os.environ.get("CXX", "c++")) is None:
                        why = "no C++ compiler found"
                    else:
                        mod = _build(name, folder)
            except Exception as exc:  # noqa: BLE001 - any build/import failure means: use the PyTorch loop
                mod, why = None, f"build failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}"
        _state["module"], _state["why"] = mod, why
        return mod


def status() -> str:
    """'ok', or why the C++ kernel is not used (loads it if that has not been tried yet)."""
    load()
    return str(_state["why"])
