"""Every switch that chooses *how* dnmsnn computes -- never *what* -- in one object.

The environment is read once, at import:

* ``backend`` -- ``"auto"`` (default), ``"cpu-kernels"``, ``"torch"``, ``"reference"``; ``DNMSNN_BACKEND``.
  ``auto``: each fast path where it applies (C++ kernels where they apply and are built); ``cpu-kernels``: as
  auto, but a neuron layer the C++ kernel cannot run is an error instead of a fallback; ``torch``: fused neuron
  nodes in pure PyTorch, no C++ code at all (no kernel, no spike kernels, no neuron + pooling node);
  ``reference``: the step-by-step autograd loop of the equations, the Integrator's literal trace, and every
  fast path below off.
* ``spike_kernels`` -- ``None`` (default: this machine's measured verdict), ``True``, ``False``;
  ``DNMSNN_SPIKE_MATMUL=auto|on|off`` (``DNMSNN_NO_SPIKE_MATMUL=1``: off). Multiplication-free products for
  0/1 inputs (:mod:`dnmsnn.functional.spike_matmul`).
* ``stacked_conv`` -- ``True`` (default), ``False``; ``DNMSNN_NO_STACKED_CONV=1``. Chunked channels-last
  convolutions and pooling over the ``[T*B]`` stack (:mod:`dnmsnn.functional.conv`).
* ``buffer_pool`` -- ``True`` (default), ``False``; ``DNMSNN_NO_BUFFER_POOL=1``. Reuse of large per-step
  buffers (:mod:`dnmsnn.functional.buffers`).

``DNMSNN_NO_CPP=1`` (read when the kernels are first loaded) means no C++ extension at all, whatever the
backend says. Every path computes the same equations; they differ by float rounding at most (see
docs/concepts/speed.md for what each keeps bitwise).

    import dnmsnn
    with dnmsnn.use_backend("reference"):          # the literal equations, nothing fused
        y = net(x)
    with dnmsnn.settings.use(spike_kernels=False, buffer_pool=False):
        y = net(x)
    dnmsnn.settings.current()                      # Settings(backend='auto', ...)

The older helpers -- :func:`~dnmsnn.functional.reference_path`, :func:`~dnmsnn.functional.fused_backend`,
:func:`~dnmsnn.functional.spike_matmul`, :func:`~dnmsnn.functional.stacked_conv`,
:func:`~dnmsnn.functional.buffer_pool` -- are thin wrappers over :func:`use`.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InputError

BACKENDS = ("auto", "cpu-kernels", "torch", "reference")


@dataclass(frozen=True)
class Settings:
    """How dnmsnn computes (see the module docstring's table)."""

    backend: str = "auto"
    spike_kernels: bool | None = None
    stacked_conv: bool = True
    buffer_pool: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.spike_kernels not in (None, True, False):
            raise InputError(f"spike_kernels must be None (this machine's verdict), True or False, got "
                             f"{self.spike_kernels!r}")
        for name in ("stacked_conv", "buffer_pool"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def fused(self) -> bool:
        """Fused neuron nodes, closed-form readouts and fused layer pairs (everything but ``reference``)."""
        return self.backend != "reference"

    @property
    def cpp(self) -> bool:
        """Whether C++ code may run (``auto`` and ``cpu-kernels``)."""
        return self.backend in ("auto", "cpu-kernels")


def from_environment(environ: dict[str, str] | None = None) -> Settings:
    """The settings the environment variables of the table ask for (unknown values: an error naming them)."""
    env = os.environ if environ is None else environ
    backend = env.get("DNMSNN_BACKEND", "auto").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise InputError(f"DNMSNN_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    spike = env.get("DNMSNN_SPIKE_MATMUL", "auto").strip().lower() or "auto"
    spike_values = {"auto": None, "on": True, "1": True, "off": False, "0": False}
    if spike not in spike_values:
        raise InputError(f"DNMSNN_SPIKE_MATMUL must be auto, on or off, got {spike!r}")
    return Settings(
        backend=backend,
        spike_kernels=False if env.get("DNMSNN_NO_SPIKE_MATMUL") else spike_values[spike],
        stacked_conv=not env.get("DNMSNN_NO_STACKED_CONV"),
        buffer_pool=not env.get("DNMSNN_NO_BUFFER_POOL"),
    )


_FROM_ENVIRONMENT = from_environment()
_CURRENT: contextvars.ContextVar[Settings] = contextvars.ContextVar("dnmsnn_settings", default=_FROM_ENVIRONMENT)


def current() -> Settings:
    """The settings in force here (the environment's, changed by the :func:`use` blocks around this call)."""
    return _CURRENT.get()


@contextlib.contextmanager
def use(**changes: object) -> Iterator[Settings]:
    """Within the block, the current settings with ``changes`` (field=value) applied; restored afterwards."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise InputError(f"unknown setting(s) {', '.join(sorted(unknown))}; the settings are "
                         f"{', '.join(f.name for f in dataclasses.fields(Settings))}")
    new = dataclasses.replace(current(), **changes)  # type: ignore[arg-type]
    token = _CURRENT.set(new)
    try:
        yield new
    finally:
        _CURRENT.reset(token)


def use_backend(name: str) -> contextlib.AbstractContextManager[Settings]:
    """Within the block, compute with backend ``name`` (``auto``, ``cpu-kernels``, ``torch``, ``reference``)."""
    return use(backend=name)
