"""GIN backbone: PyG's :class:`~torch_geometric.nn.DenseGINConv` per frame, interleaved with
ST-GCN-style temporal convolutions (the "GIN" row of the paper's Table 4).

The module also holds the pieces shared by the non-ST-GCN backbones (``dgcnn`` imports them):
:class:`TemporalConv`, :class:`SpatioTemporalBlock` and :class:`SpatioTemporalEncoder`, the
data-BN / person-folding / pooling skeleton that :class:`~asma.models.STGCN` also follows.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.nn import DenseGINConv

from ..graph import Skeleton
from .registry import Backbone, register_backbone
from .stgcn import _paper_plan


def fold_frames(x: Tensor) -> Tensor:
    r"""Fold a clip feature map into a batch of per-frame node-feature matrices.

    Shapes:
        - **x**: :math:`(B, C, T, V)`
        - **output**: :math:`(B \cdot T, V, C)` (frame ``b * T + t``)
    """
    b, c, t, v = x.shape
    return x.permute(0, 2, 3, 1).reshape(b * t, v, c)


def unfold_frames(x: Tensor, batch: int) -> Tensor:
    r"""Inverse of :func:`fold_frames`.

    Shapes:
        - **x**: :math:`(B \cdot T, V, C)`
        - **output**: :math:`(B, C, T, V)`
    """
    bt, v, c = x.shape
    return x.reshape(batch, bt // batch, v, c).permute(0, 3, 1, 2).contiguous()


class TemporalConv(nn.Module):
    r"""ST-GCN's temporal unit: BN, ReLU, a :math:`k_t \times 1` convolution with stride :math:`s`
    over time (same padding), BN, Dropout:

    .. math::
        \mathbf{Y} = \mathrm{Drop}(\mathrm{BN}(\mathbf{W} *_t \mathrm{ReLU}(\mathrm{BN}(\mathbf{X}))))

    Args:
        channels (int): :math:`C` (in = out).
        stride (int): temporal stride :math:`s`.
        kernel_size (int): odd :math:`k_t` (9).
        dropout (float): dropout probability.

    Shapes:
        - **x**: :math:`(B, C, T, V)`
        - **output**: :math:`(B, C, \lceil T/s \rceil, V)`
    """

    def __init__(self, channels: int, stride: int = 1, kernel_size: int = 9, dropout: float = 0.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {kernel_size}")
        pad = (kernel_size - 1) // 2
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, (kernel_size, 1), (stride, 1), (pad, 0))
        self.bn2 = nn.BatchNorm2d(channels)
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        """Re-initialise the convolution and both BatchNorms."""
        self.bn1.reset_parameters()
        self.conv.reset_parameters()
        self.bn2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.bn2(self.conv(torch.relu(self.bn1(x)))))


class SpatioTemporalBlock(nn.Module):
    r"""Generic unit of the non-ST-GCN backbones, wired like :class:`~asma.models.STGCNBlock`:

    .. math::
        \mathbf{Y} = \mathrm{ReLU}\big(\mathrm{TCN}(\mathrm{S}(\mathbf{X})) + \mathrm{R}(\mathbf{X})\big)

    where :math:`\mathrm{S}` is a per-frame spatial layer (:math:`C_{in} \to C_{out}`),
    :math:`\mathrm{TCN}` a :class:`TemporalConv` and :math:`\mathrm{R}` the residual: none
    (``residual=False``), identity when shapes match, else a strided :math:`1\times1` conv + BN.

    Args:
        spatial (nn.Module): maps :math:`(B, C_{in}, T, V) \to (B, C_{out}, T, V)`.
        in_channels / out_channels (int): :math:`C_{in}`, :math:`C_{out}`.
        stride, temporal_kernel, dropout: see :class:`TemporalConv`.
        residual (bool): use a residual branch.

    Shapes:
        - **x**: :math:`(B, C_{in}, T, V)`
        - **output**: :math:`(B, C_{out}, \lceil T/s \rceil, V)`
    """

    def __init__(self, spatial: nn.Module, in_channels: int, out_channels: int, stride: int = 1,
                 temporal_kernel: int = 9, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        self.spatial = spatial
        self.tcn = TemporalConv(out_channels, stride, temporal_kernel, dropout)
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                                          nn.BatchNorm2d(out_channels))

    def reset_parameters(self) -> None:
        """Re-initialise the spatial layer, the temporal unit and the residual branch."""
        self.spatial.reset_parameters()
        self.tcn.reset_parameters()
        if isinstance(self.residual, nn.Sequential):
            for m in self.residual:
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn(self.spatial(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y)


class SpatioTemporalEncoder(Backbone):
    r"""Shared skeleton of the GIN / DGCNN encoders (the same plumbing as
    :class:`~asma.models.STGCN`): data BatchNorm over :math:`V \cdot C` channels, persons folded
    into the batch, a stack of :class:`SpatioTemporalBlock` (no residual in block 1, dropout in
    blocks 2..), mean over joints (tokens per frame), then over persons; ``pooled`` is the mean of
    the tokens over time:

    .. math::
        \mathbf{tok}_{n,t} = \frac{1}{MV}\sum_{m,v} \mathbf{H}_{(n,m),:,t,v}, \qquad
        \mathbf{pooled}_n = \frac{1}{T'}\sum_t \mathbf{tok}_{n,t}

    Subclasses implement :meth:`make_spatial`. The default plan is the ST-GCN teacher's 10 blocks
    (``h, h, h, h, 2h, 2h, 2h, 4h, 4h, D`` with strides 2 at blocks 5 and 8).

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`,
          :math:`T' = \lceil T / \prod s \rceil`
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                 hidden_channels: int = 16, out_channels: int = 256,
                 channels: Optional[Sequence[int]] = None, strides: Optional[Sequence[int]] = None,
                 temporal_kernel: int = 9, dropout: float = 0.5, data_bn: bool = True):
        super().__init__(layout, in_channels)
        channels, strides = self.resolve_plan(hidden_channels, out_channels, channels, strides)
        V = self.layout.num_joints
        self.data_bn = nn.BatchNorm1d(in_channels * V) if data_bn else nn.Identity()
        blocks: List[SpatioTemporalBlock] = []
        c_in = in_channels
        for i, (c, s) in enumerate(zip(channels, strides)):
            blocks.append(SpatioTemporalBlock(self.make_spatial(c_in, c, i), c_in, c, stride=s,
                                              temporal_kernel=temporal_kernel,
                                              dropout=0.0 if i == 0 else dropout, residual=i > 0))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.channels, self.strides = list(channels), list(strides)
        self.out_dim = channels[-1]
        self.temporal_stride = int(torch.tensor(strides).prod())

    @staticmethod
    def resolve_plan(hidden_channels: int, out_channels: int, channels: Optional[Sequence[int]],
                     strides: Optional[Sequence[int]]) -> Tuple[List[int], List[int]]:
        """Per-block widths and strides: explicit ``channels``/``strides`` or the teacher plan."""
        if channels is None:
            channels, default_strides = _paper_plan(hidden_channels, out_channels)
            strides = list(strides) if strides is not None else default_strides
        channels = [int(c) for c in channels]
        strides = [int(s) for s in strides] if strides is not None else [1] * len(channels)
        if not channels or len(strides) != len(channels):
            raise ValueError(f"channels ({len(channels)}) and strides ({len(strides)}) must be "
                             "non-empty and of equal length")
        if min(channels) < 1 or min(strides) < 1:
            raise ValueError(f"channels and strides must be positive, got {channels} / {strides}")
        return channels, strides

    def make_spatial(self, in_channels: int, out_channels: int, index: int) -> nn.Module:
        """The per-frame spatial layer of block ``index``: :math:`(B, C_{in}, T, V) \\to (B, C_{out}, T, V)`."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Re-initialise data BN and every block."""
        if isinstance(self.data_bn, nn.BatchNorm1d):
            self.data_bn.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()

    def embed(self, x: Tensor) -> Tensor:
        """Per-person feature maps before pooling, ``(N*M, D, T', V)``."""
        self.check_input(x)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n * m, v, c, t).permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        n, m = x.shape[0], x.shape[-1]
        y = self.embed(x)
        d, t = y.shape[1], y.shape[2]
        tokens = y.mean(dim=3).view(n, m, d, t).mean(dim=1).transpose(1, 2)
        return tokens.mean(dim=1), tokens


class FrameGINConv(nn.Module):
    r"""GIN layer (Xu et al., 2019) applied to every frame of a clip on the layout's fixed graph,
    through PyG's :class:`~torch_geometric.nn.DenseGINConv` with the :math:`B \cdot T` frames
    folded into its batch dimension and one shared binary adjacency :math:`\mathbf{A}`:

    .. math::
        \mathbf{x}'_{t,i} = h_{\mathbf{\Theta}}\Big((1 + \epsilon)\,\mathbf{x}_{t,i}
        + \sum_{j \in \mathcal{N}(i)} \mathbf{x}_{t,j}\Big),
        \qquad h_{\mathbf{\Theta}} = \mathrm{Lin}_2 \circ \mathrm{ReLU} \circ \mathrm{Lin}_1

    (sum aggregation, no normalisation; :math:`\mathrm{Lin}_1: C_{in} \to C_{out}`,
    :math:`\mathrm{Lin}_2: C_{out} \to C_{out}`). Equal to PyG's sparse
    :class:`~torch_geometric.nn.GINConv` with the same MLP on the batched per-frame graphs.

    Args:
        in_channels (int): :math:`C_{in}`.
        out_channels (int): :math:`C_{out}`.
        adjacency (Tensor): dense binary :math:`(V, V)` adjacency without self loops
            (:meth:`Skeleton.adjacency`); ``A[i, j] = 1`` if :math:`j \in \mathcal{N}(i)`.
        eps (float): initial :math:`\epsilon` (0: GIN-0).
        train_eps (bool): learn :math:`\epsilon` (GIN-:math:`\epsilon`).

    Shapes:
        - **x**: :math:`(B, C_{in}, T, V)`
        - **output**: :math:`(B, C_{out}, T, V)`
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, eps: float = 0.0,
                 train_eps: bool = False):
        super().__init__()
        if adjacency.dim() != 2 or adjacency.size(0) != adjacency.size(1):
            raise ValueError(f"adjacency must be (V, V), got {tuple(adjacency.shape)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU(),
                            nn.Linear(out_channels, out_channels))
        self.conv = DenseGINConv(mlp, eps=eps, train_eps=train_eps)
        self.register_buffer("adj", adjacency.float().clone(), persistent=False)

    def reset_parameters(self) -> None:
        """Re-initialise the MLP and :math:`\\epsilon` (PyG's ``DenseGINConv.reset_parameters``)."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        b = x.size(0)
        return unfold_frames(self.conv(fold_frames(x), self.adj), b)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"V={self.adj.size(0)}, train_eps={isinstance(self.conv.eps, nn.Parameter)})")


class GIN(SpatioTemporalEncoder):
    r"""GIN encoder: :class:`FrameGINConv` spatial layers (per frame, the layout's binary skeleton
    adjacency, sum aggregation, 2-layer MLP) interleaved with :class:`TemporalConv` (kernel 9,
    BN, ReLU, residuals), in the ST-GCN teacher's 10-block plan (16/32/64 hidden, 256-d output,
    strides 2 at blocks 5 and 8) so the paper's Table 4 comparison is like for like. Block
    :math:`l`:

    .. math::
        \mathbf{H}^{l} = \mathrm{ReLU}\big(\mathrm{TCN}(\mathrm{GIN}(\mathbf{H}^{l-1}))
        + \mathrm{R}(\mathbf{H}^{l-1})\big)

    Defaults on ``ntu25`` with 3 channels: 828,102 parameters and 1.18 GFLOPs per
    :math:`(3, 50, 25, 2)` clip (ST-GCN teacher: 821,380 / 1.22G).

    Args:
        layout, in_channels, hidden_channels, out_channels, channels, strides, temporal_kernel,
        dropout, data_bn: as :class:`~asma.models.STGCN`.
        eps (float): initial GIN :math:`\epsilon`.
        train_eps (bool): learnable :math:`\epsilon` per layer.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                 hidden_channels: int = 16, out_channels: int = 256,
                 channels: Optional[Sequence[int]] = None, strides: Optional[Sequence[int]] = None,
                 temporal_kernel: int = 9, dropout: float = 0.5, data_bn: bool = True,
                 eps: float = 0.0, train_eps: bool = False):
        self._eps, self._train_eps = float(eps), bool(train_eps)
        super().__init__(layout, in_channels, hidden_channels, out_channels, channels, strides,
                         temporal_kernel, dropout, data_bn)

    def make_spatial(self, in_channels: int, out_channels: int, index: int) -> nn.Module:
        return FrameGINConv(in_channels, out_channels, self.layout.adjacency(), eps=self._eps,
                            train_eps=self._train_eps)


@register_backbone("gin")
def gin(layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3, **cfg) -> GIN:
    r"""GIN backbone of the paper's Table 4 (:class:`GIN`: DenseGINConv per frame,
    :math:`h_\Theta((1+\epsilon)\mathbf{x}_i + \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j)`, plus temporal convs,
    teacher plan). ``cfg``: any :class:`GIN` option.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """
    return GIN(layout, in_channels, **cfg)
