"""The compact ST-GCN student of ASMa-Distill (registered as ``stgcn-student``).

The paper fixes only the depth (5 ST-GCN layers), the spatial kernel (3: the spatial partition)
and the temporal kernel (9), and reports 0.54M parameters / 1.26 GFLOPs for *3s*-ASMa-Distill,
i.e. three per-stream students (joint, motion, bone), as the teacher's 6.3M / 4.5G is three
streams too. Widths and strides are not given. The default plan here,
``(24, 24, 48, 48, 96)`` with strides ``(1, 1, 2, 1, 2)``, follows the teacher's design rules
(width doubles whenever time is halved, total stride 4 so :math:`T'` matches the teacher's 13
tokens for 50 frames) and lands on the paper's budget: 178,557 parameters and 0.414 GFLOPs per
:math:`(3, 50, 25, 2)` clip counted in the lineage's convolution-first order (0.388 as computed
here, aggregate first), i.e. 0.536M / 1.24G for three streams (paper: 0.54M / 1.26G).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..graph import Skeleton
from .registry import register_backbone
from .stgcn import STGCN

#: Depth of the paper's student.
DEFAULT_NUM_LAYERS = 5
#: Width :math:`h` of the first stage of the default plans.
DEFAULT_WIDTH = 24


def student_plan(num_layers: int = DEFAULT_NUM_LAYERS, width: int = DEFAULT_WIDTH
                 ) -> Tuple[List[int], List[int]]:
    r"""Widths and temporal strides of a ``num_layers``-block student (:math:`L \ge 2`).

    Three stages like the teacher: :math:`\lfloor (L-1)/2 \rfloor` blocks of width :math:`h`,
    :math:`\lceil (L-1)/2 \rceil` blocks of width :math:`2h` (the first with stride 2) and one
    output block of width :math:`4h` (stride 2), so every depth has total stride 4 and output
    dimension :math:`D = 4h`; depth changes only the capacity of the cheap early stages:

    ====  ==================================  ======================
    L     channels (h = 24)                   strides
    ====  ==================================  ======================
    2     48, 96                              2, 2
    3     24, 48, 96                          1, 2, 2
    4     24, 48, 48, 96                      1, 2, 1, 2
    5     24, 24, 48, 48, 96   (default)      1, 1, 2, 1, 2
    6     24, 24, 48, 48, 48, 96              1, 1, 2, 1, 1, 2
    7     24, 24, 24, 48, 48, 48, 96          1, 1, 1, 2, 1, 1, 2
    ====  ==================================  ======================

    Shapes:
        - **output**: two lists of length :math:`L`
    """
    num_layers, width = int(num_layers), int(width)
    if num_layers < 2:
        raise ValueError(f"num_layers must be >= 2 (one block per stride-2 stage), got {num_layers}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    n1 = (num_layers - 1) // 2
    n2 = num_layers - 1 - n1
    channels = [width] * n1 + [2 * width] * n2 + [4 * width]
    strides = [1] * n1 + [2] + [1] * (n2 - 1) + [2]
    return channels, strides


#: The plans of the depth sweep (paper Fig. 4, right): ``{L: (channels, strides)}`` for L = 2..7.
STUDENT_PLANS: Dict[int, Tuple[List[int], List[int]]] = {L: student_plan(L) for L in range(2, 8)}


class STGCNStudent(STGCN):
    r"""Compact ST-GCN student: :class:`~asma.models.STGCN` (same blocks, same pooling, data BN,
    edge importance, 3-partition spatial kernel, temporal kernel 9) with a short plan from
    :func:`student_plan`. Block :math:`l` computes, as in the teacher,

    .. math::
        \mathbf{H}^{l} = \mathrm{ReLU}\Big(\mathrm{TCN}\big(\textstyle\sum_{k=1}^{3}
        \mathbf{W}_k \mathbf{H}^{l-1} (\mathbf{A}_k \odot \mathbf{M}^l_k)\big)
        + \mathrm{R}(\mathbf{H}^{l-1})\Big)

    Args:
        layout: layout name or :class:`~asma.graph.Skeleton`.
        in_channels: :math:`C`.
        num_layers: number of ST-GCN blocks :math:`L` (default 5, the paper's student); ignored
            if ``channels`` is given (then it must equal ``len(channels)`` when set).
        width: first-stage width :math:`h` of the plan (default 24, :math:`D = 4h`).
        channels / strides: explicit per-block widths / temporal strides (override the plan).
        **kwargs: any other :class:`~asma.models.STGCN` option (``temporal_kernel``,
            ``dropout``, ``edge_importance``, ``partition``, ...).

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`,
          :math:`T' = \lceil T/4 \rceil` for the default plans
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                 num_layers: Optional[int] = None, width: int = DEFAULT_WIDTH,
                 channels: Optional[Sequence[int]] = None, strides: Optional[Sequence[int]] = None,
                 **kwargs):
        if channels is None:
            channels, default_strides = student_plan(
                DEFAULT_NUM_LAYERS if num_layers is None else num_layers, width)
            if strides is None:
                strides = default_strides
        elif num_layers is not None and int(num_layers) != len(channels):
            raise ValueError(f"num_layers={num_layers} does not match len(channels)={len(channels)}")
        if strides is not None and len(strides) != len(channels):
            raise ValueError(f"strides ({len(strides)}) and channels ({len(channels)}) must have equal length")
        super().__init__(layout, in_channels, channels=list(channels),
                         strides=None if strides is None else list(strides), **kwargs)
        self.num_layers = len(self.blocks)


@register_backbone("stgcn-student")
def stgcn_student(layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                  num_layers: Optional[int] = None, **cfg) -> STGCNStudent:
    r"""ASMa-Distill student (:class:`STGCNStudent`): ``num_layers`` ST-GCN blocks (default 5) on
    the 3-partition spatial kernel, temporal kernel 9, widths/strides from :func:`student_plan`
    unless ``channels`` / ``strides`` are given.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """
    return STGCNStudent(layout, in_channels, num_layers=num_layers, **cfg)
