"""Clips as PyG graphs, for message-passing users.

:func:`to_pyg` turns one clip ``(C, T, V, M)`` into one :class:`SkeletonClipData` per non-empty
person: ``x`` is ``[T, V, C]`` (time first, so PyG layers with the default ``node_dim=-2``
propagate over joints for every frame at once) and ``edge_index`` is the layout's bone graph.
Batching with :class:`torch_geometric.loader.DataLoader` / ``Batch.from_data_list`` concatenates
``x`` along the joint axis (``[T, sum V, C]``, clips of one batch must share ``T``) and offsets
``edge_index`` by ``V`` per graph, so a batch is again one big graph per frame.
"""
from __future__ import annotations

from typing import Any, List, Optional, Union

import numpy as np
import torch
from torch_geometric.data import Data

from ..graph import Skeleton, get_layout


class SkeletonClipData(Data):
    """PyG ``Data`` for one person of a clip: ``x`` ``[T, V, C]``, ``edge_index`` ``[2, E]``,
    ``num_nodes = V``, ``person`` (slot index), optional ``y``. ``x`` is batched along dim 1."""

    def __cat_dim__(self, key: str, value: Any, *args, **kwargs):
        if key == "x":
            return 1
        return super().__cat_dim__(key, value, *args, **kwargs)


def to_pyg(clip: Union[torch.Tensor, np.ndarray], layout: Union[str, Skeleton] = "ntu25",
           y: Optional[int] = None, keep_empty: bool = False) -> List[SkeletonClipData]:
    """One graph per non-empty person of a clip.

    Args:
        clip: ``(C, T, V, M)`` tensor or array.
        layout: layout name or :class:`~asma.graph.Skeleton` (its ``V`` must match the clip).
        y: optional label stored as ``data.y`` (a ``[1]`` long tensor).
        keep_empty: also return all-zero persons.

    Returns:
        list of :class:`SkeletonClipData` with ``x`` ``[T, V, C]`` float, ``edge_index`` ``[2, E]``
        (both directions, from the layout), ``num_nodes = V`` and ``person`` = slot ``m``.

    Raises:
        ValueError: wrong number of dimensions or a joint count that does not match the layout.
    """
    x = torch.as_tensor(clip)
    if x.dim() != 4:
        raise ValueError(f"clip must be (C, T, V, M), got shape {tuple(x.shape)}")
    skel = get_layout(layout)
    C, T, V, M = x.shape
    if V != skel.num_joints:
        raise ValueError(f"clip has V={V} joints but layout {getattr(skel, 'name', 'custom')!r} has {skel.num_joints}")
    out: List[SkeletonClipData] = []
    for m in range(M):
        xm = x[..., m]
        if not keep_empty and not bool(xm.ne(0).any()):
            continue
        d = SkeletonClipData(x=xm.permute(1, 2, 0).contiguous().float(), edge_index=skel.edge_index.clone(),
                             num_nodes=V, person=m)
        if y is not None:
            d.y = torch.tensor([int(y)], dtype=torch.long)
        out.append(d)
    return out
