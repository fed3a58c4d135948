"""Evaluation splits of a synthetic dataset: cross-subject (xsub) and cross-view (xview)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..arrays import SkeletonArrays


SPLIT_PROTOCOLS = ("xsub", "xview")


def split(arrays: SkeletonArrays, protocol: str = "xsub") -> Tuple[SkeletonArrays, SkeletonArrays]:
    """Train / test split of a synthetic dataset.

    Protocols:
        - ``"xsub"`` (cross-subject): train on the odd-numbered subjects 1, 3, 5, ..., test on
          the even-numbered ones.
        - ``"xview"`` (cross-view, NTU convention): test on camera 1, train on all other cameras
          (cameras 2 and 3 by default).

    Args:
        arrays: clips with ``meta["subject"]`` (xsub) or ``meta["camera"]`` (xview).
        protocol: ``"xsub"`` or ``"xview"``.

    Returns:
        ``(train, test)``, each a :class:`SkeletonArrays` (copies).

    Shapes:
        - **train.data**: :math:`(N_{train}, C, T, V, M)`, **test.data**:
          :math:`(N_{test}, C, T, V, M)` with :math:`N_{train} + N_{test} = N`.

    Raises:
        ValueError: unknown protocol, missing metadata, or a split with an empty side.
    """
    if protocol == "xsub":
        key, what = "subject", "subjects"
    elif protocol == "xview":
        key, what = "camera", "cameras"
    else:
        raise ValueError(f"unknown split protocol {protocol!r}; known: {', '.join(SPLIT_PROTOCOLS)}")
    if key not in arrays.meta:
        raise ValueError(f"{arrays.source}: protocol {protocol!r} needs meta[{key!r}], "
                         "which is missing")
    ids = np.asarray(arrays.meta[key])
    train = ids % 2 == 1 if protocol == "xsub" else ids != 1
    if train.all() or not train.any():
        raise ValueError(f"{arrays.source}: protocol {protocol!r} leaves one side empty "
                         f"({what} present: {sorted(set(ids.tolist()))})")
    return arrays.subset(np.flatnonzero(train)), arrays.subset(np.flatnonzero(~train))
