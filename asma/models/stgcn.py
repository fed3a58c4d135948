"""ST-GCN (Yan et al., 2018) as used by the AimCLR / PSTL / ASMa lineage, with a dense graph einsum."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..graph import Skeleton, partition_adjacency
from .registry import Backbone, register_backbone


class GraphConv(nn.Module):
    r"""Spatial graph convolution over :math:`K` partition matrices (ST-GCN's
    ``ConvTemporalGraphical`` with temporal kernel 1):

    .. math::
        \mathbf{Y}_{:, t, w} = \sum_{k=1}^{K} \sum_{v=1}^{V} (\mathbf{W}_k \mathbf{X}_{:, t, v} + \mathbf{b}_k)\,
        \mathbf{A}_{k, v, w}

    computed as one :math:`1\times1` convolution to :math:`K \cdot C_{out}` channels and a dense
    einsum (faster than sparse message passing on 17-33 joints).

    Args:
        in_channels (int): :math:`C_{in}`.
        out_channels (int): :math:`C_{out}`.
        num_partitions (int): :math:`K`.

    Shapes:
        - **x**: :math:`(N, C_{in}, T, V)`, **A**: :math:`(K, V, V)`
        - **output**: :math:`(N, C_{out}, T, V)`
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int):
        super().__init__()
        self.out_channels = out_channels
        self.num_partitions = num_partitions
        self.conv = nn.Conv2d(in_channels, out_channels * num_partitions, kernel_size=1)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor, A: Tensor) -> Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.num_partitions, self.out_channels, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, A)


class STGCNBlock(nn.Module):
    r"""One ST-GCN unit: graph conv, then BN-ReLU-temporal conv (kernel :math:`k_t`, stride
    :math:`s`)-BN-Dropout, plus a residual, then ReLU.

    Residual: none (``residual=False``), identity when shapes match, else a strided
    :math:`1\times1` conv + BN.

    Shapes:
        - **x**: :math:`(N, C_{in}, T, V)`, **A**: :math:`(K, V, V)`
        - **output**: :math:`(N, C_{out}, \lceil T/s \rceil, V)`
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int, stride: int = 1,
                 temporal_kernel: int = 9, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        pad = (temporal_kernel - 1) // 2
        self.gcn = GraphConv(in_channels, out_channels, num_partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels), nn.Dropout(dropout, inplace=True))
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, A: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x, A))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


def _paper_plan(hidden: int, out: int) -> Tuple[Sequence[int], Sequence[int]]:
    # The lineage's 10 blocks: 4 at h, 3 at 2h (first strided), 2 at 4h (first strided), 1 to out.
    return ([hidden] * 4 + [2 * hidden] * 3 + [4 * hidden] * 2 + [out],
            [1, 1, 1, 1, 2, 1, 1, 2, 1, 1])


class STGCN(Backbone):
    r"""ST-GCN encoder: data BatchNorm, a stack of :class:`STGCNBlock` with learnable edge
    importance, global average pooling over joints (tokens per frame) and frames (pooled), persons
    folded into the batch and averaged.

    With the defaults (``hidden_channels=16``, ``out_channels=256``, 10 blocks, spatial partition,
    edge importance) on ``ntu25`` and 3 channels it has exactly 821,380 parameters, the encoder of
    PSTL/ASMa, and costs about 1.22 GFLOPs per :math:`(3, 50, 25, 2)` clip.

    Args:
        layout: layout name or :class:`~asma.graph.Skeleton`.
        in_channels: :math:`C`.
        hidden_channels: width :math:`h` of the first stage (paper: 16).
        out_channels: :math:`D` (paper: 256).
        channels / strides: explicit per-block widths and temporal strides (override the paper plan).
        temporal_kernel: temporal kernel size (9).
        dropout: dropout inside blocks 2.. (the lineage's configs use 0.5).
        edge_importance: learnable per-block mask on the adjacency, initialised to ones.
        partition / max_hop / center_distance: see :func:`asma.graph.partition_adjacency`.
        data_bn: BatchNorm1d over :math:`V \cdot C` input channels.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)` with
          :math:`T' = \lceil T / \prod s \rceil`
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                 hidden_channels: int = 16, out_channels: int = 256,
                 channels: Optional[Sequence[int]] = None, strides: Optional[Sequence[int]] = None,
                 temporal_kernel: int = 9, dropout: float = 0.5, edge_importance: bool = True,
                 partition: str = "spatial", max_hop: int = 1, center_distance: str = "truncated",
                 data_bn: bool = True):
        super().__init__(layout, in_channels)
        if channels is None:
            channels, default_strides = _paper_plan(hidden_channels, out_channels)
            strides = list(strides) if strides is not None else default_strides
        channels = list(channels)
        strides = list(strides) if strides is not None else [1] * len(channels)
        if len(strides) != len(channels) or not channels:
            raise ValueError(f"channels ({len(channels)}) and strides ({len(strides)}) must be non-empty and equal length")
        A = partition_adjacency(self.layout, partition, max_hop, center_distance)
        self.register_buffer("A", A, persistent=False)
        V, K = self.layout.num_joints, A.size(0)
        self.data_bn = nn.BatchNorm1d(in_channels * V) if data_bn else nn.Identity()
        blocks = []
        c_in = in_channels
        for i, (c, s) in enumerate(zip(channels, strides)):
            blocks.append(STGCNBlock(c_in, c, K, stride=s, temporal_kernel=temporal_kernel,
                                     dropout=0.0 if i == 0 else dropout, residual=i > 0))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        if edge_importance:
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones_like(A)) for _ in blocks])
        else:
            self.edge_importance = None
        self.out_dim = channels[-1]
        self.temporal_stride = int(torch.tensor(strides).prod())

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        if self.edge_importance is not None:
            for p in self.edge_importance:
                nn.init.ones_(p)

    def embed(self, x: Tensor) -> Tensor:
        """Per-person feature maps before pooling, ``(N*M, D, T', V)``."""
        self.check_input(x)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n * m, v, c, t).permute(0, 2, 3, 1)
        for i, block in enumerate(self.blocks):
            A = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, A)
        return x

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        n, m = x.shape[0], x.shape[-1]
        y = self.embed(x)
        d, t = y.shape[1], y.shape[2]
        tokens = y.mean(dim=3).view(n, m, d, t).mean(dim=1).transpose(1, 2)
        return tokens.mean(dim=1), tokens


@register_backbone("stgcn")
def stgcn(layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3, **cfg) -> STGCN:
    """The paper's teacher encoder (ST-GCN, 16 hidden channels, 10 blocks, 256-d output)."""
    return STGCN(layout, in_channels, **cfg)
