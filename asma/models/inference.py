"""A cached channels-last inference plan for ST-GCN encoders (the paper encoder and the students).

In eval mode without gradients, :meth:`~asma.models.spatiotemporal.SpatioTemporalEncoder.forward`
runs :class:`STGCNPlan` instead of the module graph: every BatchNorm folded into the layer
before it (data BN included), the edge importance multiplied into the adjacency once, and the
feature maps kept as ``(B, T, V, C)`` (channels last), where

- the graph aggregation of every partition is one broadcast matmul with the stacked
  :math:`(V \\cdot K, V)` adjacency, producing the ``(w, k, c)`` order the next product needs,
- the graph convolution's :math:`1\\times1` weight is one ``mm`` with no reshape or copy,
- the temporal and residual convolutions run on oneDNN's channels-last kernels.

At batch 1 this removes the per-call weight reshapes, the einsum copies and half the small
kernels. The plan is rebuilt whenever a parameter or buffer changes (storage or version, as
:func:`~asma.models.spatiotemporal.folded_conv_bn`), so it cannot go stale, and it holds no
state that is saved: ``state_dict`` is the module's. Nothing is compiled or traced.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .spatiotemporal import SpatioTemporalEncoder, batchnorm_affine, fold_conv_bn, foldable
from .stgcn import GraphConv

_CL = torch.channels_last
_DISABLED = [0]  # depth of nested module_graph() blocks


@contextmanager
def module_graph() -> Iterator[None]:
    """Within this block encoders run through their modules in eval too (no plan): to compare
    timings (``benchmarks/graph_conv.py``) or to rule the plan out when debugging."""
    _DISABLED[0] += 1
    try:
        yield
    finally:
        _DISABLED[0] -= 1


@dataclass
class BlockPlan:
    """One block's folded tensors (shapes for :math:`K` partitions, :math:`V` joints).

    Attributes:
        adjacency: :math:`(V K, V)`, row ``w * K + k`` = column ``w`` of partition ``k``.
        graph_weight: :math:`(K C_{in}, C_{out})`, rows ordered ``k * C_in + c``, first BN folded in.
        graph_bias: :math:`(V, C_{out})`, the graph convolution's bias through the adjacency and BN.
        temporal: folded temporal convolution ``(weight (channels last), bias, stride, padding)``.
        residual: ``None`` (no residual), ``"identity"`` or a folded ``(weight, bias, stride)``.
    """

    adjacency: Tensor
    graph_weight: Tensor
    graph_bias: Tensor
    temporal: Tuple[Tensor, Tensor, Tuple[int, int], Tuple[int, int]]
    residual: object


def _block_plan(block: nn.Module, A: Tensor) -> BlockPlan:
    """Fold one :class:`~asma.models.spatiotemporal.SpatioTemporalBlock` with a
    :class:`~asma.models.stgcn.GraphConv` on adjacency ``A`` :math:`(K, V, V)`."""
    gcn, tcn = block.gcn, block.tcn
    K, V, _ = A.shape
    o, c = gcn.out_channels, gcn.conv.in_channels
    scale, shift = batchnorm_affine(tcn[0])
    # conv.weight[k * C_out + o, c] -> (k * C_in + c, o), scaled by the first BN per output channel
    weight = gcn.conv.weight.view(K, o, c).permute(0, 2, 1).reshape(K * c, o) * scale
    bias = torch.einsum("ko,kw->wo", gcn.conv.bias.view(K, o), A.sum(dim=1)) * scale + shift
    t_weight, t_bias = fold_conv_bn(tcn[2], tcn[3])
    temporal = (t_weight.contiguous(memory_format=_CL), t_bias, tcn[2].stride, tcn[2].padding)
    residual: object = None
    if isinstance(block.residual, nn.Sequential):
        r_weight, r_bias = fold_conv_bn(*block.residual)
        residual = (r_weight.contiguous(memory_format=_CL), r_bias, block.residual[0].stride)
    elif block.residual is not None:
        residual = "identity"
    return BlockPlan(A.permute(2, 0, 1).reshape(V * K, V).contiguous(), weight.contiguous(),
                     bias.contiguous(), temporal, residual)


def plannable(model: SpatioTemporalEncoder) -> bool:
    """Whether :class:`STGCNPlan` reproduces ``model``'s eval forward: every spatial layer a
    :class:`~asma.models.stgcn.GraphConv`, every BatchNorm foldable, the residuals identities or
    1x1 convolution + BatchNorm, the data BN a BatchNorm1d with running statistics or absent."""
    if not isinstance(model.data_bn, nn.Identity) and not foldable_1d(model.data_bn):
        return False
    for block in model.blocks:
        if type(block.gcn) is not GraphConv or not (foldable(block.tcn[0]) and foldable(block.tcn[3])):
            return False
        res = block.residual
        if isinstance(res, nn.Sequential) and not (len(res) == 2 and foldable(res[1])):
            return False
        if res is not None and not isinstance(res, (nn.Sequential, nn.Identity)):
            return False
    return True


def foldable_1d(bn: nn.Module) -> bool:
    """Whether ``bn`` is an affine BatchNorm1d using running statistics in eval mode."""
    return isinstance(bn, nn.BatchNorm1d) and bn.affine and bn.running_var is not None


class STGCNPlan:
    """The folded, channels-last eval forward of an ST-GCN encoder (see the module docstring).

    Shapes:
        - **x**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`, equal to the
          module's eval forward up to float rounding
    """

    def __init__(self, model: SpatioTemporalEncoder):
        V, C = model.layout.num_joints, model.in_channels
        self.data_affine: Optional[Tuple[Tensor, Tensor]] = None
        if isinstance(model.data_bn, nn.BatchNorm1d):
            scale, shift = batchnorm_affine(model.data_bn)  # channel v * C + c
            self.data_affine = (scale.view(V, C), shift.view(V, C))
        self.blocks: List[BlockPlan] = [_block_plan(b, *model.block_inputs(i))
                                        for i, b in enumerate(model.blocks)]

    def __call__(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        n, c, t, v, m = x.shape
        h = x.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c)  # (B, T, V, C), person b = n * M + m
        if self.data_affine is not None:
            h = torch.addcmul(self.data_affine[1], h, self.data_affine[0])
        else:
            h = h.contiguous()
        for p in self.blocks:
            h = self._block(h, p)
        tokens = h.mean(dim=2).view(n, m, h.shape[1], h.shape[3]).mean(dim=1)
        return tokens.mean(dim=1), tokens

    @staticmethod
    def _block(h: Tensor, p: BlockPlan) -> Tensor:
        """One block on a channels-last map, :math:`(B, T, V, C_{in}) \\to (B, T', V, C_{out})`."""
        B, T, V, C = h.shape
        o = p.graph_weight.shape[1]
        z = torch.matmul(p.adjacency, h)  # (B, T, V * K, C): aggregate every partition at once
        g = torch.mm(z.view(B * T * V, -1), p.graph_weight).view(B * T, V, o)
        g = g.add_(p.graph_bias).relu_().view(B, T, V, o).permute(0, 3, 1, 2)  # NCHW view, NHWC memory
        weight, bias, stride, padding = p.temporal
        y = F.conv2d(g, weight, bias, stride, padding)
        x = h.permute(0, 3, 1, 2)
        if p.residual == "identity":
            y = y.add_(x)
        elif p.residual is not None:
            y = y.add_(F.conv2d(x, p.residual[0], p.residual[1], p.residual[2]))
        # oneDNN returns channels last for a channels-last input; .contiguous is then free
        return y.relu_().permute(0, 2, 3, 1).contiguous()


def _state_key(modules: List[nn.Module]) -> List[int]:
    """Every submodule's identity and every parameter's and buffer's storage and version: equal
    keys mean an unchanged model (a walk of the module dicts, about 4x cheaper than
    ``parameters()``, so the check costs ~1 % of a batch-1 forward)."""
    key: List[int] = []
    for m in modules:
        key.extend(map(id, m._modules.values()))
        for t in (*m._parameters.values(), *m._buffers.values()):
            if t is not None:
                key += (t.data_ptr(), t._version)
    return key


def cached_plan(model: SpatioTemporalEncoder) -> Optional[STGCNPlan]:
    """``model``'s :class:`STGCNPlan`, cached on the module while every submodule, parameter and
    buffer stays in place with its storage and version (an optimiser step, ``load_state_dict``,
    ``.to()`` or a replaced layer rebuilds it); ``None`` when the model is not :func:`plannable`
    or inside :func:`module_graph`.

    Shapes:
        - see :class:`STGCNPlan`
    """
    if _DISABLED[0]:
        return None
    cached = model.__dict__.get("_inference_plan")  # (key, plan, modules)
    if cached is not None and cached[0] == _state_key(cached[2]):
        return cached[1]
    modules = list(model.modules())
    plan = None
    if plannable(model):
        # ordinary tensors even under inference_mode, so the module stays deep-copyable
        with torch.inference_mode(False), torch.no_grad():
            plan = STGCNPlan(model)
    model.__dict__["_inference_plan"] = (_state_key(modules), plan, modules)
    return plan
