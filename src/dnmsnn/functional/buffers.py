"""Reuse of the large buffers the fused neuron nodes allocate (H, spikes, gradients, chunk buffers).

glibc hands tensors above its mmap threshold (at most 32 MB) straight to ``mmap`` and returns them to
the kernel on free, so every training step pays page faults for them again (on the VMs we measured, more
than the LIF arithmetic itself: reports/performance.md). The pool keeps the storage of the buffers it
handed out and gives a storage back out once nothing else refers to it (its use count is the pool's
own reference only), for a request of exactly the same byte size. So a tensor a user still holds
(``v_trace``, returned spikes, a saved tensor awaiting backward) is never reused.

Only CPU buffers of at least ``min_bytes`` are pooled; the pool holds at most ``max_bytes`` (idle
buffers are dropped oldest first to make room; beyond that requests are served unpooled).
:func:`release_buffers` empties it; :func:`buffer_pool` (False) or ``DNMSNN_NO_BUFFER_POOL=1`` turns it off.
"""
from __future__ import annotations

import contextlib
import threading
from math import prod

import torch

from .. import settings

_use_count = getattr(torch._C, "_storage_Use_Count", None)
def buffer_pool(enabled: bool) -> contextlib.AbstractContextManager[object]:
    """Within the block the fused nodes allocate fresh buffers (False) or reuse pooled ones (True, default):
    the setting ``buffer_pool`` of :mod:`dnmsnn.settings`."""
    return settings.use(buffer_pool=bool(enabled))


class BufferPool:
    def __init__(self, min_bytes: int = 1 << 20, max_bytes: int = 2 << 30) -> None:
        self.min_bytes, self.max_bytes = min_bytes, max_bytes
        self.enabled = _use_count is not None  # and the setting buffer_pool, checked at each request
        self._storages: list[torch.UntypedStorage] = []  # least recently handed out first
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _idle(st: torch.UntypedStorage) -> bool:
        return _use_count(st._cdata) == 1  # only the pool refers to it

    def empty(self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
              device: torch.device | str = "cpu") -> torch.Tensor:
        """An uninitialised contiguous tensor, on reused memory when possible."""
        device = torch.device(device)
        nbytes = prod(shape) * torch.empty((), dtype=dtype).element_size()
        if not (self.enabled and settings.current().buffer_pool) or device.type != "cpu" or nbytes < self.min_bytes:
            return torch.empty(shape, dtype=dtype, device=device)
        with self._lock:
            for i, st in enumerate(self._storages):
                if st.nbytes() == nbytes and self._idle(st):
                    self._storages.append(self._storages.pop(i))
                    return torch.empty(0, dtype=dtype).set_(st, 0, tuple(shape))
            while self._bytes + nbytes > self.max_bytes:
                idle = next((i for i, st in enumerate(self._storages) if self._idle(st)), None)
                if idle is None:
                    return torch.empty(shape, dtype=dtype, device=device)
                self._bytes -= self._storages.pop(idle).nbytes()
            t = torch.empty(shape, dtype=dtype, device=device)
            self._storages.append(t.untyped_storage())
            self._bytes += nbytes
            return t

    def clear(self) -> None:
        """Forget every pooled buffer (memory still referenced elsewhere is freed when that goes)."""
        with self._lock:
            self._storages.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            idle = [st.nbytes() for st in self._storages if self._idle(st)]
            return {"buffers": len(self._storages), "bytes": self._bytes, "idle_buffers": len(idle),
                    "idle_bytes": sum(idle)}


POOL = BufferPool()


def release_buffers() -> None:
    """Drop the fused neuron nodes' pooled buffers (e.g. after training, before a memory-hungry step)."""
    POOL.clear()
