"""In-memory (or memory-mapped) skeleton clip collections and the torch Dataset over them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..graph import Skeleton, get_layout


@dataclass
class SkeletonArrays:
    """A set of clips with labels and per-sample metadata.

    Attributes:
        data: ``(N, C, T, V, M)`` float32 array (may be a ``np.memmap``).
        labels: ``(N,)`` int64 class indices.
        layout: layout name (see :func:`asma.graph.list_layouts`) or a custom :class:`Skeleton`.
        class_names: one name per class.
        meta: per-sample integer metadata, each ``(N,)`` (e.g. ``subject``, ``camera``, ``setup``,
            ``replication``, ``length`` = original frame count).
        names: optional per-sample names (file stems).
        source: where the arrays came from (a store path or a generator description), for errors.
    """

    data: np.ndarray
    labels: np.ndarray
    layout: object = "ntu25"
    class_names: List[str] = field(default_factory=list)
    meta: Dict[str, np.ndarray] = field(default_factory=dict)
    names: Optional[List[str]] = None
    source: str = "arrays"
    coord_channels: Optional[int] = None

    @property
    def num_coords(self) -> int:
        """How many leading channels are coordinates (the rest, e.g. confidence, are not
        rotated, sheared or differenced). Defaults to ``min(C, 3)``."""
        return int(self.coord_channels) if self.coord_channels is not None else min(self.data.shape[1], 3)

    def __post_init__(self):
        if self.data.ndim != 5:
            raise ValueError(f"{self.source}: data must be (N, C, T, V, M), got shape {tuple(self.data.shape)}")
        n = self.data.shape[0]
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.labels.shape[0] != n:
            raise ValueError(f"{self.source}: {n} clips but {self.labels.shape[0]} labels")
        for k, v in self.meta.items():
            if len(v) != n:
                raise ValueError(f"{self.source}: metadata {k!r} has {len(v)} entries for {n} clips")
        if not self.class_names:
            k = int(self.labels.max()) + 1 if n else 0
            self.class_names = [f"class_{i}" for i in range(k)]
        skel = self.skeleton
        if self.data.shape[3] != skel.num_joints:
            raise ValueError(
                f"{self.source}: data has V={self.data.shape[3]} joints but layout "
                f"{getattr(skel, 'name', 'custom')!r} has V={skel.num_joints}")

    @property
    def skeleton(self) -> Skeleton:
        return get_layout(self.layout)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self):
        return tuple(self.data.shape)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> "SkeletonArrays":
        """A new SkeletonArrays holding the clips at ``index`` (copies them into memory)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SkeletonArrays(
            data=np.ascontiguousarray(self.data[idx]), labels=self.labels[idx], layout=self.layout,
            class_names=list(self.class_names), meta={k: np.asarray(v)[idx] for k, v in self.meta.items()},
            names=[self.names[i] for i in idx] if self.names is not None else None, source=self.source,
            coord_channels=self.coord_channels)


class ClipDataset(Dataset):
    """``torch.utils.data.Dataset`` over :class:`SkeletonArrays`: yields ``(clip, label)`` with
    ``clip`` a float32 tensor ``(C, T, V, M)``. Works with workers and pinned memory."""

    def __init__(self, arrays: SkeletonArrays):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int):
        x = torch.from_numpy(np.array(self.arrays.data[i], dtype=np.float32, copy=True))
        return x, int(self.arrays.labels[i])
