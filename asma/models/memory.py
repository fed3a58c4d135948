"""How training trades memory for time (``pretrain.memory``): :func:`set_memory` and the
activation checkpointing of a whole block (``"min"``)."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

#: ``set_memory`` modes: ``"fast"`` keeps every activation backward needs, ``"low"`` recomputes the
#: cheap ones in backward, ``"min"`` every block's forward (see ``benchmarks/README.md``: peak
#: memory against step time).
MEMORY_MODES = ("fast", "low", "min")


def set_memory(module: nn.Module, mode: str) -> nn.Module:
    """Set how ``module``'s layers trade memory for time in training (same values, gradients and
    running statistics in every mode). For every submodule with a ``recompute`` attribute
    (:class:`~asma.models.spatiotemporal.SpatioTemporalBlock`): ``"fast"`` (the default) stores
    what backward needs; ``"low"`` recomputes the cheap intermediate tensors in backward (for
    ST-GCN the graph convolution's output, about 9% more encoder time); ``"min"`` stores only each
    block's input and recomputes the whole block in backward (:func:`checkpoint_block`: one more
    block forward). Returns ``module``.

    Raises:
        ValueError: ``mode`` is not one of :data:`MEMORY_MODES`.
    """
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {MEMORY_MODES}, got {mode!r}")
    for m in module.modules():
        if hasattr(m, "recompute"):
            m.recompute = mode == "low"
            m.checkpoint = mode == "min"
    return module


class _KeepRunningStats:
    """While a checkpointed block is recomputed in backward, its BatchNorms normalise with the
    batch statistics of the same input as in forward but must not update their running
    statistics a second time: they are saved on entry and put back on exit."""

    def __init__(self, module: nn.Module):
        self._buffers = [b for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                         for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]

    def __enter__(self):
        self._saved = [b.clone() for b in self._buffers]

    def __exit__(self, *exc):
        with torch.no_grad():
            for b, v in zip(self._buffers, self._saved):
                b.copy_(v)
        self._saved = []


def checkpoint_block(fn: Callable[..., Tensor], module: nn.Module, *inputs: Tensor) -> Tensor:
    """``fn(*inputs)`` storing only ``inputs`` for backward, where it is run again
    (non-reentrant :func:`torch.utils.checkpoint.checkpoint`): dropout masks are replayed from the
    saved RNG state and the running statistics of ``module``'s BatchNorms are updated once.

    Shapes: those of ``fn``.
    """
    return torch.utils.checkpoint.checkpoint(fn, *inputs, use_reentrant=False,
                                             context_fn=lambda: (contextlib.nullcontext(), _KeepRunningStats(module)))
