r"""Asymmetric spatio-temporal masking (paper §3.2): degree-guided joint masks (HDSM / LDSM),
motion-guided frame masks (HMTM / LMTM) and random baselines, per sample and vectorised.

All samplers take an explicit :class:`torch.Generator` so runs are reproducible. The uniform
draws are made on the generator's device and moved to the data's, so a CPU generator (the
trainer's per-epoch one) also masks CUDA batches, with the same masks as on the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Tuple

import torch
from torch import Tensor

SpatialStrategy = Literal["high", "low", "random", "none"]
TemporalStrategy = Literal["high", "low", "random", "none"]


def _uniform(shape: Tuple[int, ...], generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    # torch.rand refuses a generator of another device; draw where the generator lives, then move
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device, non_blocking=True)


def joint_mask_probs(degree: Tensor, strategy: SpatialStrategy) -> Tensor:
    r"""Per-joint masking probabilities.

    * ``"high"`` (HDSM, Eq. 1): :math:`p^{(H)}_v = d_v / \sum_u d_u`
    * ``"low"`` (LDSM, Eq. 2): :math:`p^{(L)}_v \propto 1 - p^{(H)}_v`, renormalised to sum to one
    * ``"random"``: uniform.

    Args:
        degree: :math:`(V,)` degree centrality (``Skeleton.degree()``).

    Shapes:
        - **output**: :math:`(V,)`, sums to one.
    """
    d = degree.double()
    V = d.numel()
    if strategy == "random" or float(d.sum()) == 0.0:
        p = torch.full((V,), 1.0 / V, dtype=torch.float64)
    elif strategy == "high":
        p = d / d.sum()
    elif strategy == "low":
        q = 1.0 - d / d.sum()
        p = q / q.sum()
    else:
        raise ValueError(f"unknown spatial masking strategy {strategy!r}; use high, low or random")
    return p.float()


def sample_joint_mask(batch_size: int, probs: Tensor, n: int,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Draw :math:`n` distinct joints per sample without replacement, with probabilities ``probs``
    (successive sampling, done in one shot with the Gumbel-top-:math:`k` trick). Joints with zero
    probability are only picked once every positive-probability joint is taken (then uniformly).

    Shapes:
        - **probs**: :math:`(V,)`
        - **output**: bool :math:`(B, V)`, exactly :math:`n` ``True`` per row.
    """
    V = probs.numel()
    if not 0 <= n < V:
        raise ValueError(f"number of masked joints n={n} must be in [0, V) with V={V}")
    mask = torch.zeros(batch_size, V, dtype=torch.bool, device=probs.device)
    if n == 0:
        return mask
    u = _uniform((batch_size, V), generator, probs.device).clamp_(1e-12, 1 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    logp = torch.where(probs > 0, probs.clamp(min=1e-30).log(), torch.full_like(probs, -1e4))
    idx = (logp.unsqueeze(0) + gumbel).topk(n, dim=1).indices
    return mask.scatter_(1, idx, True)


def motion_scores(x: Tensor, num_coords: Optional[int] = None) -> Tensor:
    r"""Per-frame motion score :math:`a_t` (Eqs. 3-4): the mean absolute displacement
    :math:`\frac{1}{C V M}\sum_{c,v,m} |x_{c,t+1,v,m} - x_{c,t,v,m}|` over coordinate channels.
    The last frame has no successor; it takes the score of the one before it (so it is neither
    always "low motion" nor a special case).

    Shapes:
        - **x**: :math:`(B, C, T, V, M)`
        - **output**: :math:`(B, T)`
    """
    c = x.shape[1] if num_coords is None else num_coords
    d = (x[:, :c, 1:] - x[:, :c, :-1]).abs().mean(dim=(1, 3, 4))
    if d.shape[1] == 0:
        return torch.zeros(x.shape[0], x.shape[2], device=x.device, dtype=x.dtype)
    return torch.cat([d, d[:, -1:]], dim=1)


def sample_frame_mask(scores: Tensor, k: int, strategy: TemporalStrategy,
                      generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Choose :math:`k` frames per sample: ``"high"`` = TopK(a, k) (HMTM), ``"low"`` = BottomK(a, k)
    (LMTM), ``"random"`` = uniform. Ties (e.g. a zero-motion clip) are broken uniformly at random.

    Shapes:
        - **scores**: :math:`(B, T)`
        - **output**: bool :math:`(B, T)`, exactly :math:`k` ``True`` per row.
    """
    B, T = scores.shape
    if not 0 <= k < T:
        raise ValueError(f"number of masked frames k={k} must be in [0, T) with T={T}")
    mask = torch.zeros(B, T, dtype=torch.bool, device=scores.device)
    if k == 0:
        return mask
    # A random permutation before topk makes tie-breaking uniform instead of index-ordered.
    perm = _uniform((B, T), generator, scores.device).argsort(dim=1)
    if strategy == "high":
        key = scores.gather(1, perm)
    elif strategy == "low":
        key = -scores.gather(1, perm)
    elif strategy == "random":
        key = torch.zeros(B, T, device=scores.device)
    else:
        raise ValueError(f"unknown temporal masking strategy {strategy!r}; use high, low or random")
    chosen = perm.gather(1, key.topk(k, dim=1).indices)
    return mask.scatter_(1, chosen, True)


def apply_joint_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the masked joints (all channels, frames and persons).

    Shapes:
        - **x**: :math:`(B, C, T, V, M)`, **mask**: bool :math:`(B, V)`
        - **output**: :math:`(B, C, T, V, M)`
    """
    return x * (~mask).to(x.dtype)[:, None, None, :, None]


def apply_frame_mask(x: Tensor, mask: Tensor, mode: Literal["drop", "zero"] = "drop") -> Tensor:
    """Remove (``"drop"``, keeping the other frames in time order, as PSTL does) or zero the
    masked frames.

    Shapes:
        - **x**: :math:`(B, C, T, V, M)`, **mask**: bool :math:`(B, T)` with :math:`k` per row
        - **output**: :math:`(B, C, T-k, V, M)` for ``"drop"``, else :math:`(B, C, T, V, M)`
    """
    if mode == "zero":
        return x * (~mask).to(x.dtype)[:, None, :, None, None]
    if mode != "drop":
        raise ValueError(f"frame mask mode must be 'drop' or 'zero', got {mode!r}")
    B, C, T, V, M = x.shape
    keep = T - int(mask[0].sum())
    # stable argsort of the mask puts kept frames (False) first, in their original order
    idx = mask.to(torch.int8).argsort(dim=1, stable=True)[:, :keep]
    return x.gather(2, idx[:, None, :, None, None].expand(B, C, keep, V, M))


@dataclass
class MaskSpec:
    """One encoder's masking: a spatial and a temporal strategy, ``n`` joints and ``k`` frames.

    ASMa's two encoders are ``MaskSpec("high", "low")`` (:math:`f_\\theta`: HDSM + LMTM) and
    ``MaskSpec("low", "high")`` (:math:`f_\\phi`: LDSM + HMTM).
    """

    spatial: SpatialStrategy = "high"
    temporal: TemporalStrategy = "low"
    n_joints: int = 9
    n_frames: int = 10
    frame_mode: Literal["drop", "zero"] = "drop"

    def validate(self, num_joints: int, num_frames: int) -> "MaskSpec":
        for what, val in (("spatial", self.spatial), ("temporal", self.temporal)):
            if val not in ("high", "low", "random", "none"):
                raise ValueError(f"{what} masking must be high, low, random or none, got {val!r}")
        if self.spatial != "none" and not 0 < self.n_joints < num_joints:
            raise ValueError(f"n_joints={self.n_joints} must be in [1, V) for a layout with V={num_joints} joints")
        if self.temporal != "none" and not 0 < self.n_frames < num_frames:
            raise ValueError(f"n_frames={self.n_frames} must be in [1, T) for clips of T={num_frames} frames")
        if self.frame_mode not in ("drop", "zero"):
            raise ValueError(f"frame_mode must be 'drop' or 'zero', got {self.frame_mode!r}")
        return self


THETA = MaskSpec("high", "low")
PHI = MaskSpec("low", "high")


class Masker:
    """Makes the joint-masked and frame-masked views of a batch for one :class:`MaskSpec`.

    Args:
        spec: the masking strategies and counts.
        degree: :math:`(V,)` degree centrality of the layout.
        num_coords: coordinate channels used for the motion score (default: all).
    """

    def __init__(self, spec: MaskSpec, degree: Tensor, num_coords: Optional[int] = None):
        self.spec = spec
        self.num_coords = num_coords
        self.probs = joint_mask_probs(degree, spec.spatial if spec.spatial != "none" else "random")

    def joint_view(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """``(masked x, mask (B, V))``; shapes as :func:`apply_joint_mask`."""
        if self.spec.spatial == "none":
            return x, torch.zeros(x.shape[0], x.shape[3], dtype=torch.bool, device=x.device)
        mask = sample_joint_mask(x.shape[0], self.probs.to(x.device), self.spec.n_joints, generator)
        return apply_joint_mask(x, mask), mask

    def frame_view(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """``(masked x, mask (B, T))``; shapes as :func:`apply_frame_mask`."""
        if self.spec.temporal == "none":
            return x, torch.zeros(x.shape[0], x.shape[2], dtype=torch.bool, device=x.device)
        scores = motion_scores(x, self.num_coords)
        mask = sample_frame_mask(scores, self.spec.n_frames, self.spec.temporal, generator)
        return apply_frame_mask(x, mask, self.spec.frame_mode), mask
