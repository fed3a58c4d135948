"""The spatio-temporal encoder base shared by every backbone (ST-GCN, GIN, DGCNN, the student):
data BatchNorm, persons folded into the batch, a stack of :class:`SpatioTemporalBlock`
(a spatial layer, then ST-GCN's temporal unit :class:`TemporalConv`, plus a residual), and the
pooling to per-frame tokens and one pooled feature.

The parameter names follow the ST-GCN lineage (``data_bn``, ``blocks.<i>.gcn``, ``blocks.<i>.tcn.<j>``,
``blocks.<i>.residual``), so lineage checkpoints load by renaming the prefix only.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ..graph import Skeleton
from .memory import checkpoint_block
from .registry import Backbone


def paper_plan(hidden: int, out: int) -> Tuple[List[int], List[int]]:
    """The lineage's 10 blocks: 4 at ``h``, 3 at ``2h`` (first strided), 2 at ``4h`` (first
    strided), 1 to ``out``; returns ``(channels, strides)``.

    Shapes:
        - **output**: two lists of length 10
    """
    return ([hidden] * 4 + [2 * hidden] * 3 + [4 * hidden] * 2 + [out],
            [1, 1, 1, 1, 2, 1, 1, 2, 1, 1])


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


def batchnorm_affine(bn: nn.BatchNorm2d) -> Tuple[Tensor, Tensor]:
    r"""An eval-mode BatchNorm as a per-channel affine map, :math:`y = s x + t` with
    :math:`s = \gamma / \sqrt{\sigma^2 + \epsilon}`, :math:`t = \beta - \mu s`.

    Shapes:
        - **output**: ``(scale, shift)``, each :math:`(C,)`
    """
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def foldable(bn: nn.Module) -> bool:
    """Whether ``bn`` is an affine BatchNorm that uses running statistics in eval mode."""
    return isinstance(bn, nn.BatchNorm2d) and bn.affine and bn.running_var is not None


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> Tuple[Tensor, Tensor]:
    """Weight and bias of one convolution equal to ``bn(conv(x))`` in eval mode.

    Shapes:
        - **output**: ``(weight, bias)`` of ``conv``'s shapes (bias :math:`(C_{out},)`)
    """
    scale, shift = batchnorm_affine(bn)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return conv.weight * scale.view(-1, 1, 1, 1), bias


def folded_conv_bn(owner: nn.Module, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> Tuple[Tensor, Tensor]:
    """:func:`fold_conv_bn`, cached on ``owner`` while every source tensor keeps its storage and
    version (an optimiser step, ``load_state_dict`` or a running-statistics update changes the
    version, so the cache cannot go stale). Computed afresh (differentiable, traced) when
    gradients are enabled or under ``torch.jit`` tracing (ONNX export)."""
    if torch.is_grad_enabled() or torch.jit.is_tracing():
        return fold_conv_bn(conv, bn)
    sources = (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    key = tuple((t.data_ptr(), t._version) for t in sources if t is not None)
    cached = owner.__dict__.get("_folded")
    if cached is None or cached[0] != key:
        # ordinary tensors even under inference_mode, so the module stays deep-copyable
        with torch.inference_mode(False), torch.no_grad():
            cached = (key, *fold_conv_bn(conv, bn))
        owner.__dict__["_folded"] = cached
    return cached[1], cached[2]


def _tracing() -> bool:
    """Under ``torch.jit`` tracing/scripting, ``torch.compile``, autocast or a dispatch mode (FLOP
    counting, fake tensors): keep the module graph, which ONNX export traces and
    :func:`~asma.models.count_flops` counts (the inference plan is plain fp32 eager code)."""
    from torch.utils._python_dispatch import is_in_torch_dispatch_mode

    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
            or torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")
            or is_in_torch_dispatch_mode())


class Dropout(nn.Module):
    r"""Inverted dropout, :math:`y = x \odot m / (1 - p)` with :math:`m_i \sim \mathrm{Bernoulli}(1 - p)`
    from the global generator (seeded like ``nn.Dropout``), by :func:`keep_mask`: 16 random bits
    per element, where :class:`torch.nn.Dropout`'s ``bernoulli_`` masks were the slower part of a
    training step on CPU. Identity in eval mode.

    Args:
        p (float): drop probability, :math:`0 \le p < 1`.

    Shapes:
        - **x**: any -> same
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        # x * bool mask (saved as bool for backward): 4x faster on CPU than masked_fill, same values
        return x * keep_mask(x, self.p) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def keep_mask(x: Tensor, p: float) -> Tensor:
    r"""Dropout's keep mask for ``x``: each element kept with probability :math:`1 - t / 2^{16}`,
    :math:`t = \min(\mathrm{round}(2^{16} p), 2^{16} - 1)`, i.e. exactly :math:`1 - p` when
    :math:`2^{16} p` is an integer (:math:`p = 0.5`) and within :math:`2^{-17}` otherwise (below
    :math:`p = 1 - 2^{-17}`). The bits are the four 16-bit lanes of full-range 64-bit draws from
    the global generator (one draw per 4 elements: 2.5x faster on CPU than ``rand_like(x) >= p``);
    a lane is kept when it is at least :math:`t - 2^{15}`. (Not 32-bit draws: ``int32``
    ``random_()`` leaves the sign bit 0, which would bias every second lane.)

    Shapes:
        - **x**: any -> **output**: the same, bool
    """
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-2 ** 63, None)
    t = min(round(p * 65536), 65535)
    return words.view(torch.int16)[:n].view(x.shape) >= t - 32768


class _RecomputedUnit(torch.autograd.Function):
    """``conv(relu(bn(pre(x, *pre_tensors))))`` (``pre`` None: the identity) of a training
    :class:`TemporalConv`, storing only ``x`` and the tensors for backward: ``pre``'s output and
    ``relu(bn(.))`` are recomputed there with the same batch statistics."""

    @staticmethod
    def forward(ctx, pre: Optional[Callable[..., Tensor]], bn: nn.BatchNorm2d, conv: nn.Conv2d, x: Tensor,
                gamma: Tensor, beta: Tensor, weight: Tensor, bias: Optional[Tensor], *pre_tensors: Tensor) -> Tensor:
        with torch.no_grad():
            h = x if pre is None else pre(x, *pre_tensors)
            y = conv(F.relu(bn(h), inplace=True))  # bn(h) updates the running statistics, once
        ctx.save_for_backward(x, gamma, beta, weight, *pre_tensors)
        ctx.pre, ctx.eps, ctx.conv, ctx.has_bias = pre, bn.eps, conv, bias is not None
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, gamma, beta, weight, *pre_tensors = ctx.saved_tensors
        conv = ctx.conv
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (x, gamma, beta, *pre_tensors)]
            h = leaves[0] if ctx.pre is None else ctx.pre(leaves[0], *leaves[3:])
            h = F.relu(F.batch_norm(h, None, None, leaves[1], leaves[2], True, 0.0, ctx.eps))
        gh, gw, gb = torch.ops.aten.convolution_backward(
            grad, h.detach(), weight, [weight.shape[0]], list(conv.stride), list(conv.padding), list(conv.dilation),
            False, [0, 0], conv.groups, [True, True, ctx.has_bias])
        gx, g_gamma, g_beta, *g_pre = torch.autograd.grad(h, leaves, gh)
        return (None, None, None, gx, g_gamma, g_beta, gw, gb if ctx.has_bias else None, *g_pre)


class TemporalConv(nn.Sequential):
    r"""ST-GCN's temporal unit: BN, ReLU, a :math:`k_t \times 1` convolution with stride :math:`s`
    over time (same padding), BN, :class:`Dropout` (``tcn.0`` .. ``tcn.4``, as in the lineage):

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

    In training (with gradients, outside autocast) the first BatchNorm, the ReLU and the
    convolution run as one autograd node that stores only the unit's input:
    :math:`\mathrm{ReLU}(\mathrm{BN}(\mathbf{X}))` (the convolution's input) is recomputed in
    backward from the same batch statistics (an elementwise pass, no slower step measured), so one
    activation per block fewer is kept, with the values and gradients of the stored path; the
    running statistics are updated once, in forward.
    """

    def __init__(self, channels: int, stride: int = 1, kernel_size: int = 9, dropout: float = 0.0):
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {kernel_size}")
        pad = (kernel_size - 1) // 2
        super().__init__(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, channels, (kernel_size, 1), (stride, 1), (pad, 0)),
                         nn.BatchNorm2d(channels), Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        if self.can_recompute(x):
            return self.recomputed(x)
        return super().forward(x)

    def can_recompute(self, x: Tensor) -> bool:
        """Whether :meth:`recomputed` applies: the first BatchNorm normalises with batch statistics
        (training), gradients are on and autocast is off."""
        return self[0].training and torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type)

    def recomputed(self, x: Tensor, pre: Optional[Callable[..., Tensor]] = None,
                   pre_tensors: Sequence[Tensor] = ()) -> Tensor:
        """The training forward of ``self(pre(x, *pre_tensors))`` storing ``x`` and
        ``pre_tensors`` (not ``pre``'s output nor the ReLU output) for backward."""
        bn, conv = self[0], self[2]
        y = _RecomputedUnit.apply(pre, bn, conv, x, bn.weight, bn.bias, conv.weight, conv.bias, *pre_tensors)
        return self[4](self[3](y))

    def reset_parameters(self) -> None:
        """Re-initialise the convolution and both BatchNorms."""
        for i in (0, 2, 3):
            self[i].reset_parameters()


class SpatioTemporalBlock(nn.Module):
    r"""One unit of every backbone (ST-GCN's ``st_gcn`` block with a pluggable spatial layer):

    .. math::
        \mathbf{Y} = \mathrm{ReLU}\big(\mathrm{TCN}(\mathrm{S}(\mathbf{X})) + \mathrm{R}(\mathbf{X})\big)

    where :math:`\mathrm{S}` (``gcn``) is the spatial layer (:math:`C_{in} \to C_{out}`, per frame),
    :math:`\mathrm{TCN}` a :class:`TemporalConv` and :math:`\mathrm{R}` the residual: none
    (``residual=False``), identity when shapes match, else a strided :math:`1\times1` conv + BN.

    Args:
        spatial (nn.Module): maps :math:`(B, C_{in}, T, V)` (and the block's extra inputs, e.g. an
            adjacency) to :math:`(B, C_{out}, T, V)`.
        in_channels / out_channels (int): :math:`C_{in}`, :math:`C_{out}`.
        stride, temporal_kernel, dropout: see :class:`TemporalConv`.
        residual (bool): use a residual branch.

    With ``recompute = True`` (:func:`~asma.models.memory.set_memory` ``"low"``; training, outside autocast) and a
    spatial layer offering ``recomputable(*graph)`` (:class:`~asma.models.stgcn.GraphConv`), the
    spatial layer, the first BatchNorm, the ReLU and the temporal convolution run as one autograd
    node storing only the block input: the spatial layer's output (and its aggregated
    :math:`K \cdot C_{in}`-channel tensor) is recomputed in backward, not stored.

    Shapes:
        - **x**: :math:`(B, C_{in}, T, V)`; ``*graph``: passed to the spatial layer
        - **output**: :math:`(B, C_{out}, \lceil T/s \rceil, V)`
    """

    recompute = False
    checkpoint = False

    def __init__(self, spatial: nn.Module, in_channels: int, out_channels: int, stride: int = 1,
                 temporal_kernel: int = 9, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        self.gcn = spatial
        self.tcn = TemporalConv(out_channels, stride, temporal_kernel, dropout)
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def reset_parameters(self) -> None:
        """Re-initialise the spatial layer, the temporal unit and the residual branch."""
        self.gcn.reset_parameters()
        self.tcn.reset_parameters()
        if isinstance(self.residual, nn.Sequential):
            for m in self.residual:
                m.reset_parameters()

    def forward(self, x: Tensor, *graph: Tensor) -> Tensor:
        if not self.training and foldable(self.tcn[0]) and foldable(self.tcn[3]):
            return self.forward_folded(x, *graph)
        if self.checkpoint and torch.is_grad_enabled() and not torch.jit.is_tracing():
            # dropout masks replayed from the saved RNG state; running statistics updated once
            return checkpoint_block(self._forward, self, x, *graph)
        return self._forward(x, *graph)

    def _forward(self, x: Tensor, *graph: Tensor) -> Tensor:
        if self.recompute and hasattr(self.gcn, "recomputable") and self.tcn.can_recompute(x):
            y = self.tcn.recomputed(x, *self.gcn.recomputable(*graph))
        else:
            y = self.tcn(self.gcn(x, *graph))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)

    def forward_folded(self, x: Tensor, *graph: Tensor) -> Tensor:
        """The eval-mode forward with every BatchNorm folded into the convolution before it (the
        same value up to float rounding, a third fewer passes over the activations at batch 1);
        a spatial layer with ``folds_affine`` takes the first BatchNorm into its own weights."""
        bn1, conv = self.tcn[0], self.tcn[2]
        if getattr(self.gcn, "folds_affine", False):
            h = self.gcn(x, *graph, affine=batchnorm_affine(bn1))
        else:
            h = bn1(self.gcn(x, *graph))
        weight, bias = folded_conv_bn(self.tcn, conv, self.tcn[3])
        y = F.conv2d(h.relu_(), weight, bias, conv.stride, conv.padding)  # Dropout: identity in eval
        if isinstance(self.residual, nn.Sequential) and foldable(self.residual[1]):
            weight, bias = folded_conv_bn(self.residual, *self.residual)
            y = y.add_(F.conv2d(x, weight, bias, self.residual[0].stride))
        elif self.residual is not None:
            y = y.add_(self.residual(x))
        return y.relu_()


class SpatioTemporalEncoder(Backbone):
    r"""The encoder every backbone is: data BatchNorm over :math:`V \cdot C` channels, persons
    folded into the batch, a stack of :class:`SpatioTemporalBlock` (no residual in block 1,
    dropout in blocks 2..), mean over joints (tokens per frame), then over persons; ``pooled`` is
    the mean of the tokens over time:

    .. math::
        \mathbf{tok}_{n,t} = \frac{1}{MV}\sum_{m,v} \mathbf{H}_{(n,m),:,t,v}, \qquad
        \mathbf{pooled}_n = \frac{1}{T'}\sum_t \mathbf{tok}_{n,t}

    Subclasses implement :meth:`make_spatial` (and :meth:`block_inputs` when their spatial layer
    takes more than the features, e.g. ST-GCN's adjacency). The default plan is the ST-GCN
    teacher's 10 blocks (:func:`paper_plan`: ``h, h, h, h, 2h, 2h, 2h, 4h, 4h, D`` with strides 2
    at blocks 5 and 8).

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
        """Per-block widths and strides: explicit ``channels``/``strides`` or the teacher plan
        (:func:`paper_plan`); strides default to 1 with explicit channels.

        Raises:
            ValueError: empty, unequal-length or non-positive plans.
        """
        if channels is None:
            channels, default_strides = paper_plan(hidden_channels, out_channels)
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

    def block_inputs(self, index: int) -> Tuple[Tensor, ...]:
        """Extra inputs of block ``index``'s spatial layer (none by default)."""
        return ()

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
        for i, block in enumerate(self.blocks):
            x = block(x, *self.block_inputs(i))
        return x

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        if not (self.training or torch.is_grad_enabled() or _tracing()):
            from .inference import cached_plan  # imports .stgcn, which imports this module
            plan = cached_plan(self)
            if plan is not None:
                self.check_input(x)
                return plan(x)
        n, m = x.shape[0], x.shape[-1]
        y = self.embed(x)
        d, t = y.shape[1], y.shape[2]
        tokens = y.mean(dim=3).view(n, m, d, t).mean(dim=1).transpose(1, 2)
        return tokens.mean(dim=1), tokens
