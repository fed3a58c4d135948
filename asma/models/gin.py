"""GIN backbone: PyG's :class:`~torch_geometric.nn.DenseGINConv` per frame, interleaved with
ST-GCN-style temporal convolutions (the "GIN" row of the paper's Table 4), on the shared
:class:`~asma.models.spatiotemporal.SpatioTemporalEncoder`.
"""
from __future__ import annotations

from typing import Any, Union

from torch import Tensor, nn
from torch_geometric.nn import DenseGINConv

from ..graph import Skeleton
from .registry import register_backbone
from .spatiotemporal import SpatioTemporalEncoder, fold_frames, unfold_frames


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
    adjacency, sum aggregation, 2-layer MLP) interleaved with
    :class:`~asma.models.spatiotemporal.TemporalConv` (kernel 9,
    BN, ReLU, residuals), in the ST-GCN teacher's 10-block plan (16/32/64 hidden, 256-d output,
    strides 2 at blocks 5 and 8) so the paper's Table 4 comparison is like for like. Block
    :math:`l`:

    .. math::
        \mathbf{H}^{l} = \mathrm{ReLU}\big(\mathrm{TCN}(\mathrm{GIN}(\mathbf{H}^{l-1}))
        + \mathrm{R}(\mathbf{H}^{l-1})\big)

    Defaults on ``ntu25`` with 3 channels: 828,102 parameters and 1.18 GFLOPs per
    :math:`(3, 50, 25, 2)` clip (ST-GCN teacher: 821,380 / 1.19G aggregate-first, 1.22G convolution-first).

    Args:
        layout, in_channels, hidden_channels, out_channels, channels, strides, temporal_kernel,
        dropout, data_bn: keyword options as :class:`~asma.models.STGCN` (passed to
            :class:`~asma.models.spatiotemporal.SpatioTemporalEncoder`).
        eps (float): initial GIN :math:`\epsilon`.
        train_eps (bool): learnable :math:`\epsilon` per layer.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3, *, eps: float = 0.0,
                 train_eps: bool = False, **kwargs: Any):
        self._eps, self._train_eps = float(eps), bool(train_eps)
        super().__init__(layout, in_channels, **kwargs)

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
