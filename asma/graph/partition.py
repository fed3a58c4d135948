"""ST-GCN partition adjacencies derived from a :class:`~asma.graph.Skeleton`."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .skeleton import Skeleton

Strategy = Literal["uniform", "distance", "spatial"]


def normalize_columns(A: Tensor) -> Tensor:
    r"""Column normalisation :math:`A D^{-1}` (ST-GCN's ``normalize_digraph``): every non-empty
    column sums to one, so :math:`\sum_v X_v A_{vw}` is a mean over the neighbours of :math:`w`."""
    col = A.sum(0)
    inv = torch.where(col > 0, 1.0 / col.clamp(min=1e-12), torch.zeros_like(col))
    return A * inv.unsqueeze(0)


def partition_adjacency(skeleton: Skeleton, strategy: Strategy = "spatial", max_hop: int = 1,
                        center_distance: Literal["truncated", "bfs"] = "truncated") -> Tensor:
    r"""Stack of :math:`K` normalised adjacency matrices, as in ST-GCN's ``Graph``.

    Convention: ``A[k, v, w]`` is the weight of source joint ``v`` in the aggregation at target
    joint ``w``; a graph convolution computes :math:`Y_w = \sum_k \sum_v X_{k,v} A_{k,v,w}`.

    Args:
        skeleton: the layout.
        strategy: ``"uniform"`` (:math:`K=1`), ``"distance"`` (:math:`K=` ``max_hop`` :math:`+1`) or
            ``"spatial"`` (root / centripetal / centrifugal, :math:`K=` ``2 max_hop`` :math:`+1`).
        max_hop: neighbourhood radius.
        center_distance: how ``"spatial"`` measures distance to the centre joint.
            ``"truncated"`` reproduces the ST-GCN/AimCLR/PSTL code: distances come from the same
            ``max_hop``-truncated hop matrix (``inf`` beyond ``max_hop``, and ``inf == inf`` counts as
            "root"), so with ``max_hop=1`` almost every edge lands in the centripetal matrix (on
            ``ntu25``: 40 and 8 non-zeros). ``"bfs"`` uses true shortest-path distances, the
            textbook partition (24 and 24 on ``ntu25``).

    Shapes:
        - **output**: :math:`(K, V, V)`
    """
    if max_hop < 1:
        raise ValueError(f"max_hop must be >= 1, got {max_hop}")
    hop = skeleton.hop_distance(max_hop)
    V = skeleton.num_joints
    adj = (hop <= max_hop).float()
    norm = normalize_columns(adj)
    hops = range(max_hop + 1)
    if strategy == "uniform":
        return norm.unsqueeze(0)
    if strategy == "distance":
        return torch.stack([norm * (hop == h).float() for h in hops])
    if strategy != "spatial":
        raise ValueError(f"unknown partition strategy {strategy!r}; use uniform, distance or spatial")
    if center_distance == "truncated":
        dc = hop[:, skeleton.center]
    elif center_distance == "bfs":
        dc = skeleton.hop_distance(None)[:, skeleton.center]
    else:
        raise ValueError(f"center_distance must be 'truncated' or 'bfs', got {center_distance!r}")
    # rows j (source), columns i (target); compare each endpoint's distance to the centre
    dj = dc.view(V, 1).expand(V, V)
    di = dc.view(1, V).expand(V, V)
    equal = (dj == di)  # inf == inf is True, as in the reference code
    closer_src = (dj < di) & ~equal
    mats = []
    for h in hops:
        on = (hop == h).float() * norm
        if h == 0:
            mats.append(on)
            continue
        root = on * equal.float()
        close = on * ((dj > di) & ~equal).float()
        further = on * closer_src.float()
        mats.append(root + close)
        mats.append(further)
    return torch.stack(mats)
