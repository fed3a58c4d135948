"""Input streams of the 3-stream ensemble: joint, bone and motion (AimCLR/PSTL conventions)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..graph import Skeleton

STREAMS = ("joint", "bone", "motion")


def bone_stream(x: Tensor, bone_pairs: Tensor, num_coords: Optional[int] = None) -> Tensor:
    r"""Bone vectors :math:`b_v = x_{p_v[0]} - x_{p_v[1]}` for the layout's :math:`V` pairs (the
    centre joint's bone is zero). Non-coordinate channels (confidence) become the product of the
    two joints' values.

    Shapes:
        - **x**: :math:`(B, C, T, V, M)`, **bone_pairs**: :math:`(V, 2)` -> same as x
    """
    c = x.shape[1] if num_coords is None else num_coords
    a, b = bone_pairs[:, 0].to(x.device), bone_pairs[:, 1].to(x.device)
    coords = x[:, :c, :, a] - x[:, :c, :, b]
    if c == x.shape[1]:
        return coords
    return torch.cat([coords, x[:, c:, :, a] * x[:, c:, :, b]], dim=1)


def motion_stream(x: Tensor, num_coords: Optional[int] = None) -> Tensor:
    r"""Frame differences :math:`x_{t+1} - x_t`, with a zero last frame.

    Shapes:
        - **x**: :math:`(B, C, T, V, M)` -> same
    """
    c = x.shape[1] if num_coords is None else num_coords
    d = torch.zeros_like(x[:, :c])
    d[:, :, :-1] = x[:, :c, 1:] - x[:, :c, :-1]
    if c == x.shape[1]:
        return d
    conf = x[:, c:].clone()
    conf[:, :, :-1] = x[:, c:, 1:] * x[:, c:, :-1]
    return torch.cat([d, conf], dim=1)


def to_stream(x: Tensor, stream: str, skeleton: Skeleton, num_coords: Optional[int] = None) -> Tensor:
    """Convert joint coordinates to ``stream`` (``joint``, ``bone`` or ``motion``).

    Shapes:
        - **x**: :math:`(B, C, T, V, M)` -> same
    """
    if stream == "joint":
        return x
    if stream == "bone":
        return bone_stream(x, skeleton.bone_pairs, num_coords)
    if stream == "motion":
        return motion_stream(x, num_coords)
    raise ValueError(f"unknown stream {stream!r}; use one of {', '.join(STREAMS)}")
