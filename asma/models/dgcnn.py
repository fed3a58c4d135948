"""DGCNN backbone: per-frame dynamic k-NN graphs in feature space with EdgeConv (Wang et al., 2019),
interleaved with ST-GCN-style temporal convolutions (the "DGCNN" row of the paper's Table 4).

k-NN is computed with plain torch ops (``torch.cdist`` + ``torch.topk``, batched over frames), so
neither ``torch-cluster`` nor ``pyg-lib`` is needed and the model exports to ONNX.
"""
from __future__ import annotations

from typing import Any, Union

import torch
from torch import Tensor, nn

from ..graph import Skeleton, get_layout
from .registry import register_backbone
from .spatiotemporal import SpatioTemporalEncoder, fold_frames, unfold_frames

#: Relative tie tolerance of :func:`knn_indices`.
TIE_RTOL = 1e-6


def knn_indices(x: Tensor, k: int, rtol: float = TIE_RTOL) -> Tensor:
    r"""k nearest neighbours of every node within its own graph (frame), **the node itself
    included** (always first), as in DGCNN's reference code and PyG's ``DynamicEdgeConv`` (whose
    ``knn(x, x, k)`` returns the point itself): node :math:`i` gets itself plus its :math:`k-1`
    nearest other nodes by Euclidean distance :math:`\lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2`.

    Ties are resolved deterministically, identically in eager PyTorch and in ONNX Runtime: the
    distances of row :math:`i` are quantised to steps of
    :math:`\delta_i = \mathrm{rtol} \cdot \max_j d_{ij}` and ranked by the key
    :math:`\lfloor d_{ij} / \delta_i \rfloor \cdot V + j` (float64), i.e. distances equal up to a
    relative ``rtol`` count as tied and the **lower joint index wins**. (Ties between identical
    feature vectors never change an EdgeConv output anyway: their messages are identical.)
    The selection is not differentiable and is computed on detached features.

    Args:
        x (Tensor): node features per graph.
        k (int): neighbours per node including itself, :math:`1 \le k \le V`.
        rtol (float): relative tie tolerance.

    Shapes:
        - **x**: :math:`(B, V, C)`
        - **output**: :math:`(B, V, k)` long, ``out[b, i, 0] == i``; neighbours sorted by distance
    """
    B, V, _ = x.shape
    if not torch.jit.is_tracing() and not 1 <= k <= V:
        raise ValueError(f"k must be in [1, V={V}], got {k}")
    with torch.no_grad():
        # Direct (non-matmul) evaluation: exact zeros for identical points.
        d = torch.cdist(x.detach(), x.detach(), compute_mode="donot_use_mm_for_euclid_dist").double()
        step = d.amax(dim=-1, keepdim=True) * rtol + 1e-30
        idx = torch.arange(V, device=x.device)
        key = torch.floor(d / step) * V + idx.to(torch.float64)
        key = key.masked_fill(idx.view(-1, 1) == idx.view(1, -1), -1.0)  # self first
        return torch.topk(key, k, dim=-1, largest=False, sorted=True).indices


def knn_edge_index(nbr: Tensor) -> Tensor:
    r"""PyG ``edge_index`` (``source_to_target``: row 0 = neighbour :math:`j`, row 1 = centre
    :math:`i`) of the batched k-NN graphs returned by :func:`knn_indices`; graph :math:`b`'s nodes
    are numbered :math:`bV .. bV + V - 1` as in a PyG :class:`~torch_geometric.data.Batch`:

    .. math::
        \mathcal{E} = \{(bV + \mathrm{nbr}_{b,i,r},\; bV + i)\}_{b, i, r}

    Shapes:
        - **nbr**: :math:`(B, V, k)`
        - **output**: :math:`(2, B V k)`
    """
    B, V, k = nbr.shape
    offset = (torch.arange(B, device=nbr.device) * V).view(B, 1, 1)
    src = (nbr + offset).reshape(-1)
    dst = (torch.arange(V, device=nbr.device).view(1, V, 1) + offset).expand(B, V, k).reshape(-1)
    return torch.stack([src, dst])


class DenseEdgeConv(nn.Module):
    r"""EdgeConv with max aggregation on batched dense k-NN neighbour lists:

    .. math::
        \mathbf{x}'_i = \max_{j \in \mathcal{N}_k(i)} h_{\mathbf{\Theta}}
        \big(\mathbf{x}_i \,\Vert\, \mathbf{x}_j - \mathbf{x}_i\big),
        \qquad h_{\mathbf{\Theta}} = \mathrm{LeakyReLU}_{0.2} \circ \mathrm{BN} \circ \mathrm{Lin}

    (DGCNN's edge MLP; the BN normalises over all :math:`B V k` edges). The linear part is
    evaluated per node: with :math:`\mathrm{Lin}(\mathbf{u} \Vert \mathbf{w}) = \mathbf{W}_1\mathbf{u}
    + \mathbf{W}_2 \mathbf{w} + \mathbf{b}`, the edge pre-activation is
    :math:`(\mathbf{W}_1 - \mathbf{W}_2)\mathbf{x}_i + \mathbf{b} + \mathbf{W}_2 \mathbf{x}_j`, so two
    :math:`C_{in} \times C_{out}` products per node replace one :math:`2C_{in} \times C_{out}` per edge.
    Equal to PyG's ``EdgeConv(Sequential(Linear(2C_in, C_out), BatchNorm1d, LeakyReLU(0.2)),
    aggr="max")`` on :func:`knn_edge_index` (same weights: ``lin`` is that ``Linear``).

    Args:
        in_channels (int): :math:`C_{in}`.
        out_channels (int): :math:`C_{out}`.
        negative_slope (float): LeakyReLU slope (0.2 as DGCNN).

    Shapes:
        - **x**: :math:`(B, V, C_{in})`, **nbr**: :math:`(B, V, k)` long
        - **output**: :math:`(B, V, C_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float = 0.2):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin = nn.Linear(2 * in_channels, out_channels)
        self.bn = nn.BatchNorm1d(out_channels)
        self.negative_slope = negative_slope

    def reset_parameters(self) -> None:
        """Re-initialise the linear layer and the BatchNorm."""
        self.lin.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: Tensor, nbr: Tensor) -> Tensor:
        B, V, C = x.shape
        k = nbr.size(-1)
        w1, w2 = self.lin.weight[:, :C], self.lin.weight[:, C:]
        centre = nn.functional.linear(x, w1 - w2, self.lin.bias)          # (B, V, C_out)
        other = nn.functional.linear(x, w2).reshape(B * V, -1)            # (B*V, C_out)
        offset = (torch.arange(B, device=x.device) * V).view(B, 1, 1)
        e = other[(nbr + offset).reshape(-1)].view(B, V, k, -1) + centre.unsqueeze(2)
        e = self.bn(e.reshape(B * V * k, -1)).view(B, V, k, -1)
        e = nn.functional.leaky_relu(e, self.negative_slope)
        return e.amax(dim=2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


class FrameEdgeConv(nn.Module):
    r"""Dynamic-graph EdgeConv applied to every frame of a clip: the k-NN graph of each frame is
    built from *this layer's input features* (:func:`knn_indices`, the joint itself included),
    then :class:`DenseEdgeConv` aggregates:

    .. math::
        \mathbf{x}'_{t,i} = \max_{j \in \mathrm{kNN}_k(\mathbf{x}_{t,:}, i)} h_{\mathbf{\Theta}}
        \big(\mathbf{x}_{t,i} \,\Vert\, \mathbf{x}_{t,j} - \mathbf{x}_{t,i}\big)

    Args:
        in_channels (int): :math:`C_{in}`.
        out_channels (int): :math:`C_{out}`.
        k (int): neighbours per joint, itself included.

    Shapes:
        - **x**: :math:`(B, C_{in}, T, V)`
        - **output**: :math:`(B, C_{out}, T, V)`
    """

    def __init__(self, in_channels: int, out_channels: int, k: int = 8):
        super().__init__()
        self.k = int(k)
        self.edge = DenseEdgeConv(in_channels, out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise the EdgeConv MLP."""
        self.edge.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = fold_frames(x)
        return unfold_frames(self.edge(h, knn_indices(h, self.k)), x.size(0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.edge.in_channels}, {self.edge.out_channels}, k={self.k})"


class DGCNN(SpatioTemporalEncoder):
    r"""Dynamic graph CNN encoder: per frame, a k-NN graph in the current feature space
    (recomputed at every layer; layer 1 uses the data-BN'd coordinates) with EdgeConv max
    aggregation (:class:`FrameEdgeConv`), interleaved with :class:`~asma.models.spatiotemporal.TemporalConv`
    (kernel 9, BN, ReLU, residuals), in the ST-GCN teacher's 10-block plan (16/32/64 hidden, 256-d
    output). The skeleton's bones are not used: the graph is learned from features. Block :math:`l`:

    .. math::
        \mathbf{H}^{l} = \mathrm{ReLU}\big(\mathrm{TCN}(\mathrm{EdgeConv}_{\mathrm{kNN}(\mathbf{H}^{l-1})}
        (\mathbf{H}^{l-1})) + \mathrm{R}(\mathbf{H}^{l-1})\big)

    Args:
        layout, in_channels, hidden_channels, out_channels, channels, strides, temporal_kernel,
        dropout, data_bn: keyword options as :class:`~asma.models.STGCN` (passed to
            :class:`~asma.models.spatiotemporal.SpatioTemporalEncoder`).
        k (int): neighbours per joint including itself, :math:`1 \le k < V` (default 8).

    Defaults on ``ntu25`` with 3 channels: 776,726 parameters and 1.09 GFLOPs per
    :math:`(3, 50, 25, 2)` clip as counted by :func:`~asma.models.count_flops` (the k-NN distances,
    about 0.019 GFLOPs, and the gather/max are not counted).

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3, *, k: int = 8,
                 **kwargs: Any):
        V = get_layout(layout).num_joints
        if not 1 <= int(k) < V:
            raise ValueError(f"k must satisfy 1 <= k < V={V} (the joint itself counts), got {k}")
        self.k = int(k)
        super().__init__(layout, in_channels, **kwargs)

    def make_spatial(self, in_channels: int, out_channels: int, index: int) -> nn.Module:
        return FrameEdgeConv(in_channels, out_channels, self.k)


@register_backbone("dgcnn")
def dgcnn(layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3, **cfg) -> DGCNN:
    r"""DGCNN backbone of the paper's Table 4 (:class:`DGCNN`: per-frame dynamic k-NN EdgeConv,
    :math:`\max_{j \in \mathrm{kNN}(i)} h_\Theta(\mathbf{x}_i \Vert \mathbf{x}_j - \mathbf{x}_i)`, plus
    temporal convs, teacher plan). ``cfg``: any :class:`DGCNN` option (e.g. ``k``).

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """
    return DGCNN(layout, in_channels, **cfg)
