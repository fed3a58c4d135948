"""Batched, per-sample random augmentations on ``(B, C, T, V, M)`` tensors (vectorised, no loop
over samples). Every function takes an explicit :class:`torch.Generator`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


def resample_time(x: Tensor, start: Tensor, length: Tensor, out_frames: int) -> Tensor:
    r"""Linearly resample the window ``[start, start + length)`` of every sample to ``out_frames``
    frames (half-pixel centres, i.e. ``align_corners=False`` linear interpolation).

    Shapes:
        - **x**: :math:`(B, C, T, V, M)`, **start**, **length**: :math:`(B,)` float
        - **output**: :math:`(B, C, T_{out}, V, M)`
    """
    B, C, T, V, M = x.shape
    grid = torch.arange(out_frames, device=x.device, dtype=x.dtype)
    pos = start[:, None] + (grid[None, :] + 0.5) * (length[:, None] / out_frames) - 0.5
    pos = pos.clamp(0, T - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=T - 1)
    w = (pos - lo.to(x.dtype))[:, None, :, None, None]
    idx = lambda i: i[:, None, :, None, None].expand(B, C, out_frames, V, M)  # noqa: E731
    return x.gather(2, idx(lo)) * (1 - w) + x.gather(2, idx(hi)) * w


def temporal_crop_resize(x: Tensor, min_ratio: float, out_frames: Optional[int] = None,
                         generator: Optional[torch.Generator] = None) -> Tensor:
    """Crop a random window covering a fraction ``U(min_ratio, 1)`` of the clip at a random
    position, and resize it back to ``out_frames`` (default: ``T``) frames.

    Shapes:
        - **x**: :math:`(B, C, T, V, M)` -> **output**: :math:`(B, C, T_{out}, V, M)`
    """
    B, T = x.shape[0], x.shape[2]
    out_frames = out_frames or T
    if min_ratio >= 1.0:
        ones = torch.ones(B, device=x.device, dtype=x.dtype)
        return x if out_frames == T else resample_time(x, 0 * ones, T * ones, out_frames)
    u = torch.rand(B, 2, generator=generator, device=x.device, dtype=x.dtype)
    length = T * (min_ratio + (1 - min_ratio) * u[:, 0])
    start = (T - length) * u[:, 1]
    return resample_time(x, start, length, out_frames)


def _apply_matrix(x: Tensor, R: Tensor, num_coords: int) -> Tensor:
    # R: (B, c, c) applied to the coordinate vector of every joint; other channels untouched.
    coords = torch.einsum("bij,bjtvm->bitvm", R, x[:, :num_coords])
    if num_coords == x.shape[1]:
        return coords
    return torch.cat([coords, x[:, num_coords:]], dim=1)


def shear(x: Tensor, amplitude: float, num_coords: int = 3,
          generator: Optional[torch.Generator] = None) -> Tensor:
    """Random shear: identity plus off-diagonal entries ``U(-a, a)``, one matrix per sample (AimCLR
    draws 0.5, PSTL 1.0).

    Shapes:
        - **x**: :math:`(B, C, T, V, M)` -> same
    """
    B, c = x.shape[0], num_coords
    R = (torch.rand(B, c, c, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * amplitude
    eye = torch.eye(c, device=x.device, dtype=x.dtype)
    R = R * (1 - eye) + eye
    return _apply_matrix(x, R, c)


def _axis_rotation(angle: Tensor, axis: int) -> Tensor:
    c, s = angle.cos(), angle.sin()
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == 0:
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == 1:
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rotate(x: Tensor, max_degrees: float, num_coords: int = 3,
           generator: Optional[torch.Generator] = None) -> Tensor:
    """Random rotation per sample. 3D: one main axis (uniform over x, y, z) gets ``U(-a, a)``
    degrees and the other two ``U(-1, 1)`` (the AimCLR scheme); 2D: an in-plane rotation ``U(-a, a)``.

    Shapes:
        - **x**: :math:`(B, C, T, V, M)` -> same
    """
    B = x.shape[0]
    dev, dt = x.device, x.dtype
    if num_coords == 2:
        ang = (torch.rand(B, generator=generator, device=dev, dtype=dt) * 2 - 1) * math.radians(max_degrees)
        R = _axis_rotation(ang, 2)[:, :2, :2]
        return _apply_matrix(x, R, 2)
    if num_coords != 3:
        raise ValueError(f"rotation needs 2 or 3 coordinate channels, got {num_coords}")
    main = torch.randint(0, 3, (B,), generator=generator, device=dev)
    small = (torch.rand(B, 3, generator=generator, device=dev, dtype=dt) * 2 - 1) * math.radians(1.0)
    big = (torch.rand(B, 3, generator=generator, device=dev, dtype=dt) * 2 - 1) * math.radians(max_degrees)
    ang = torch.where(torch.nn.functional.one_hot(main, 3).bool(), big, small)
    R = _axis_rotation(ang[:, 0], 0) @ _axis_rotation(ang[:, 1], 1) @ _axis_rotation(ang[:, 2], 2)
    return _apply_matrix(x, R, 3)


def flip(x: Tensor, perm: Tensor, p: float = 0.5, generator: Optional[torch.Generator] = None) -> Tensor:
    """Swap left and right joint labels with probability ``p`` per sample (coordinates are not
    negated, as in AimCLR/PSTL).

    Shapes:
        - **x**: :math:`(B, C, T, V, M)`, **perm**: :math:`(V,)` -> same as x
    """
    B = x.shape[0]
    do = torch.rand(B, generator=generator, device=x.device) < p
    return torch.where(do[:, None, None, None, None], x[:, :, :, perm.to(x.device)], x)


@dataclass
class AugmentConfig:
    """Pretraining augmentations (all per sample). Set a field to 0 (or ``crop_min=1``) to disable."""

    crop_min: float = 0.7
    shear: float = 0.5
    rotate: float = 30.0
    flip_p: float = 0.5


class Augment:
    """Crop+resize -> shear -> rotate -> flip, each with its own per-sample random draw.

    Shapes:
        - **input**: :math:`(B, C, T, V, M)` -> **output**: same shape
    """

    def __init__(self, config: AugmentConfig, flip_perm: Tensor, num_coords: int = 3):
        self.config = config
        self.flip_perm = flip_perm
        self.num_coords = num_coords

    def __call__(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        c = self.config
        if c.crop_min < 1.0:
            x = temporal_crop_resize(x, c.crop_min, generator=generator)
        if c.shear > 0:
            x = shear(x, c.shear, self.num_coords, generator)
        if c.rotate > 0 and self.num_coords in (2, 3):
            x = rotate(x, c.rotate, self.num_coords, generator)
        if c.flip_p > 0:
            x = flip(x, self.flip_perm, c.flip_p, generator)
        return x
