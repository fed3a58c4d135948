"""ST-GCN (Yan et al., 2018) as used by the AimCLR / PSTL / ASMa lineage, with a dense graph einsum."""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..graph import Skeleton, get_layout, partition_adjacency
from .registry import register_backbone
from .spatiotemporal import SpatioTemporalEncoder


class GraphConv(nn.Module):
    r"""Spatial graph convolution over :math:`K` partition matrices (ST-GCN's
    ``ConvTemporalGraphical`` with temporal kernel 1):

    .. math::
        \mathbf{Y}_{:, t, w} = \sum_{k=1}^{K} \sum_{v=1}^{V} (\mathbf{W}_k \mathbf{X}_{:, t, v} + \mathbf{b}_k)\,
        \mathbf{A}_{k, v, w}

    computed aggregate-first: a dense product of the input with the :math:`K` matrices
    (:func:`aggregate`, :math:`\mathbf{Z}_{k,:,t,w} = \sum_v \mathbf{X}_{:,t,v} \mathbf{A}_{k,v,w}`, on the
    :math:`C_{in}` channels), then one :math:`1\times1` convolution from :math:`K \cdot C_{in}` to
    :math:`C_{out}` channels, plus the bias term :math:`\sum_k \mathbf{b}_k \sum_v \mathbf{A}_{k,v,w}`.
    The same value as convolving first (ST-GCN's order, the parameters are stored as its
    :math:`1\times1` convolution to :math:`K \cdot C_{out}` channels, so lineage checkpoints load),
    with no more FLOPs (fewer in widening blocks) and a faster forward + backward on CPU
    (``benchmarks/graph_conv.py``); dense einsums beat sparse message passing on 17-33 joints.

    Args:
        in_channels (int): :math:`C_{in}`.
        out_channels (int): :math:`C_{out}`.
        num_partitions (int): :math:`K`.

    :meth:`recomputable` gives the layer as a function of its input and tensors, which a training
    block in ``"low"`` memory mode (:func:`~asma.models.memory.set_memory`) recomputes in
    backward instead of storing the aggregated :math:`K \cdot C_{in}`-channel tensor and the output.

    ``affine=(scale, shift)`` returns :math:`s_o \mathbf{Y}_o + t_o` per output channel, folded
    into the :math:`1\times1` weight and the bias (an eval BatchNorm after the layer; see
    :meth:`~asma.models.spatiotemporal.SpatioTemporalBlock.forward_folded`).

    Shapes:
        - **x**: :math:`(N, C_{in}, T, V)`, **A**: :math:`(K, V, V)`, **affine**: two :math:`(C_{out},)`
        - **output**: :math:`(N, C_{out}, T, V)`
    """

    folds_affine = True

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int):
        super().__init__()
        self.out_channels = out_channels
        self.num_partitions = num_partitions
        self.conv = nn.Conv2d(in_channels, out_channels * num_partitions, kernel_size=1)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor, A: Tensor, affine: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
        scale, shift = affine if affine is not None else (None, None)
        return graph_conv(x, A, self.conv.weight, self.conv.bias, self._sizes, scale, shift)

    def recomputable(self, A: Tensor) -> Tuple[Callable[..., Tensor], Tuple[Tensor, ...]]:
        """``(fn, tensors)`` with ``fn(x, *tensors) == self(x, A)``, for recomputation in backward."""
        return partial(graph_conv, sizes=self._sizes), (A, self.conv.weight, self.conv.bias)

    @property
    def _sizes(self) -> Tuple[int, int, int]:
        # Python ints (not from a tensor's shape), so an ONNX trace keeps the weight shape static
        return self.num_partitions, self.out_channels, self.conv.in_channels


def graph_conv(x: Tensor, A: Tensor, weight: Tensor, bias: Tensor, sizes: Tuple[int, int, int],
               scale: Optional[Tensor] = None, shift: Optional[Tensor] = None) -> Tensor:
    r""":class:`GraphConv`'s value with its :math:`1\times1` convolution's ``weight``
    :math:`(K C_{out}, C_{in}, 1, 1)` and ``bias`` :math:`(K C_{out},)`, aggregate-first;
    ``sizes`` is :math:`(K, C_{out}, C_{in})`; with ``scale``/``shift`` :math:`(C_{out},)` an affine
    map per output channel folded in.

    Shapes:
        - **x**: :math:`(N, C_{in}, T, V)`, **A**: :math:`(K, V, V)` -> :math:`(N, C_{out}, T, V)`
    """
    n, _, t, v = x.shape
    K, o, c = sizes
    z = aggregate(x, A)
    # conv.weight[k * C_out + o, c] -> weight[o, k * C_in + c]
    w = weight.view(K, o, c).transpose(0, 1).reshape(o, K * c, 1, 1)
    b = torch.einsum("ko,kw->ow", bias.view(K, o), A.sum(dim=1))
    if scale is not None:
        w, b = w * scale.view(o, 1, 1, 1), b * scale[:, None] + shift[:, None]
    return nn.functional.conv2d(z, w) + b.unsqueeze(1)


def aggregate(x: Tensor, A: Tensor) -> Tensor:
    r"""The graph product of :func:`graph_conv`,
    :math:`\mathbf{Z}_{n, k C + c, t, w} = \sum_v \mathbf{X}_{n,c,t,v} \mathbf{A}_{k,v,w}`.

    With gradients on (training; not under ``torch.jit`` tracing) it runs as one :math:`1\times1`
    convolution over the vertex axis (``x`` viewed channels-last as :math:`(N C, V, T, 1)`, weight
    :math:`(K V, V, 1, 1)` from ``A``): oneDNN computes this skinny product (a contraction over only
    :math:`V` = 17-33 joints) forward and backward 1.4-2.4x faster than the einsum's ``bmm``, which
    was the one step operator running far below the convolution rate (0.26 of it,
    ``benchmarks/pretrain_speed.py --ops``). Otherwise (inference, ONNX export) the einsum: the
    exported graph keeps its MatMul. Same value either way up to float rounding.

    Shapes:
        - **x**: :math:`(N, C, T, V)`, **A**: :math:`(K, V, V)` -> :math:`(N, K C, T, V)`
    """
    n, c, t, v = x.shape
    K = A.shape[0]
    if not torch.is_grad_enabled() or torch.jit.is_tracing():
        return torch.einsum("nctv,kvw->nkctw", x, A).reshape(n, K * c, t, v)
    xv = x.reshape(n * c, t, 1, v).permute(0, 3, 1, 2)  # (N C, V, T, 1) with channels-last strides: a view
    w = A.transpose(1, 2).reshape(K * v, v, 1, 1)  # output channel k V + w, input channel v
    z = nn.functional.conv2d(xv, w.contiguous(memory_format=torch.channels_last))  # (N C, K V, T, 1), channels-last
    # reshape, not view: a view whenever the convolution returns channels-last (as oneDNN does)
    return z.permute(0, 2, 3, 1).reshape(n, c, t, K, v).permute(0, 3, 1, 2, 4).reshape(n, K * c, t, v)


class STGCN(SpatioTemporalEncoder):
    r"""ST-GCN encoder: the :class:`~asma.models.spatiotemporal.SpatioTemporalEncoder` (data BN,
    blocks of spatial layer + temporal unit + residual, pooling to tokens and one feature) with
    :class:`GraphConv` spatial layers on the layout's :math:`K` partition matrices, each block
    multiplying them by its learnable edge importance :math:`\mathbf{M}^l` (initialised to ones):

    .. math::
        \mathbf{H}^{l} = \mathrm{ReLU}\Big(\mathrm{TCN}\big(\textstyle\sum_{k=1}^{K}
        \mathbf{W}_k \mathbf{H}^{l-1} (\mathbf{A}_k \odot \mathbf{M}^l_k)\big)
        + \mathrm{R}(\mathbf{H}^{l-1})\Big)

    With the defaults (``hidden_channels=16``, ``out_channels=256``, 10 blocks, spatial partition,
    edge importance) on ``ntu25`` and 3 channels it has exactly 821,380 parameters, the encoder of
    PSTL/ASMa, and costs 1.189 GFLOPs per :math:`(3, 50, 25, 2)` clip as computed here (aggregate
    first; 1.225 GFLOPs in the lineage's convolution-first order).

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
        A = partition_adjacency(get_layout(layout), partition, max_hop, center_distance)
        self._num_partitions = A.size(0)
        super().__init__(layout, in_channels, hidden_channels, out_channels, channels, strides,
                         temporal_kernel, dropout, data_bn)
        self.register_buffer("A", A, persistent=False)
        if edge_importance:
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones_like(A)) for _ in self.blocks])
        else:
            self.edge_importance = None

    def make_spatial(self, in_channels: int, out_channels: int, index: int) -> nn.Module:
        return GraphConv(in_channels, out_channels, self._num_partitions)

    def block_inputs(self, index: int) -> Tuple[Tensor]:
        """Block ``index``'s adjacency :math:`\\mathbf{A} \\odot \\mathbf{M}^l`, :math:`(K, V, V)`."""
        return (self.A if self.edge_importance is None else self.A * self.edge_importance[index],)

    def reset_parameters(self) -> None:
        """Re-initialise data BN, every block and the edge importance (ones)."""
        super().reset_parameters()
        if self.edge_importance is not None:
            for p in self.edge_importance:
                nn.init.ones_(p)


@register_backbone("stgcn")
def stgcn(layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3, **cfg) -> STGCN:
    """The paper's teacher encoder (ST-GCN, 16 hidden channels, 10 blocks, 256-d output)."""
    return STGCN(layout, in_channels, **cfg)
