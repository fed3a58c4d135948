"""Optimiser and learning-rate schedule of every training stage."""
from __future__ import annotations

from typing import Iterable

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

_FUSED_DEVICES = ("cpu", "cuda")
_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel when every parameter allows it (floating point,
    one device of a kind the fused kernel supports): one kernel over all parameters instead of a
    loop of small ones (650 ms -> 48 ms per step over ASMa's 155.8 M parameters on a CPU), the same
    update up to float round-off. Falls back to the default implementation otherwise."""
    params = [p for p in params]
    fused = bool(params) and len({p.device for p in params}) == 1 and \
        params[0].device.type in _FUSED_DEVICES and all(p.dtype in _FUSED_DTYPES for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0) -> LRScheduler:
    """Per-step schedule: linear warm-up over ``warmup_steps`` steps from ``lr / warmup_steps`` to
    ``lr`` (``LinearLR``), then cosine decay to 0 over the remaining steps (``CosineAnnealingLR``),
    chained with ``SequentialLR``. Step ``s`` of training runs at

    .. math::
        \\eta_s = \\eta \\frac{s + 1}{W} \\;(s < W), \\qquad
        \\eta_s = \\frac{\\eta}{2}\\Big(1 + \\cos \\frac{\\pi (s - W)}{\\max(1, S - W)}\\Big) \\;(s \\geq W)

    for ``W`` warm-up steps out of ``S``. Call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=0.0)
    if warmup_steps <= 0:
        return cosine
    # total_iters counts the steps *after* the first: W - 1 of them reach lr at step W - 1
    warm = LinearLR(optimizer, start_factor=1.0 / warmup_steps, end_factor=1.0,
                    total_iters=max(1, warmup_steps - 1))
    return SequentialLR(optimizer, [warm, cosine], milestones=[warmup_steps])
