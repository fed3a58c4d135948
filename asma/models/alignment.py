"""The bi-directional feature alignment module (§3.4, Eqs. 10-12) and the full ASMa classifier
built on it (:class:`AlignedClassifier`: the distillation teacher and the published teacher)."""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from .classifiers import FeatureStandardizer
from .heads import LinearClassifier
from .registry import Backbone


class FeatureAlignment(nn.Module):
    r"""Bi-directional multi-head cross-attention between the two encoders' per-frame tokens
    (Eqs. 10-12):

    .. math::
        \mathbf{h}_{aligned} = \mathrm{MHA}(\mathbf{h}^\theta, \mathbf{h}^\phi, \mathbf{h}^\phi)
        + \mathrm{MHA}(\mathbf{h}^\phi, \mathbf{h}^\theta, \mathbf{h}^\theta), \qquad
        \hat{y} = W_{cls}\, \mathrm{pool}_t(\mathbf{h}_{aligned})

    The attention runs over the :math:`T'` frame tokens (a single pooled token would make the
    softmax trivially 1, see docs/fidelity.md); the fused tokens are mean-pooled over time.

    Args:
        dim: token width :math:`D`.
        num_classes: :math:`K`.
        num_heads: attention heads (paper: 4).
        dropout: attention dropout.

    Shapes:
        - **h_theta**, **h_phi**: :math:`(B, T', D)`
        - **output**: logits :math:`(B, K)`
    """

    def __init__(self, dim: int, num_classes: int, num_heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"token width {dim} is not divisible by num_heads={num_heads}")
        self.theta_to_phi = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.phi_to_theta = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.head = LinearClassifier(dim, num_classes)
        self.num_classes = int(num_classes)

    def reset_parameters(self) -> None:
        """Re-initialise both attentions and the classifier."""
        self.theta_to_phi._reset_parameters()
        self.phi_to_theta._reset_parameters()
        self.head.reset_parameters()

    def features(self, h_theta: Tensor, h_phi: Tensor) -> Tensor:
        """Pooled aligned feature, :math:`(B, T', D) \\times 2 \\to (B, D)`."""
        a = self.theta_to_phi(h_theta, h_phi, h_phi, need_weights=False)[0]
        b = self.phi_to_theta(h_phi, h_theta, h_theta, need_weights=False)[0]
        return (a + b).mean(dim=1)

    def forward(self, h_theta: Tensor, h_phi: Tensor) -> Tensor:
        """Logits, :math:`(B, T', D) \\times 2 \\to (B, K)`."""
        return self.head(self.features(h_theta, h_phi))


class AlignedClassifier(nn.Module):
    r"""The full ASMa classifier: two frozen encoders, their per-frame tokens standardised with
    the training set's statistics (:class:`~asma.models.classifiers.FeatureStandardizer`
    ``norm_theta`` / ``norm_phi``), and :class:`FeatureAlignment` (Eqs. 10-12). The distillation
    teacher (§3.5) and the published ``teacher``. The encoders stay in eval mode and have
    ``requires_grad=False``.

    Args:
        enc_theta, enc_phi: the two encoders (same layout, channels and width :math:`D`).
        align: the alignment module on width :math:`D`.
        stats: ``{"mean_theta", "std_theta", "mean_phi", "std_phi"}`` token statistics
            (:func:`~asma.models.classifiers.feature_stats`); identity when omitted.

    Shapes:
        - **input**: :math:`(B, C, T, V, M)` -> **output**: logits :math:`(B, K)`;
          :meth:`features`: :math:`(B, D)`
    """

    def __init__(self, enc_theta: Backbone, enc_phi: Backbone, align: FeatureAlignment,
                 stats: Optional[Mapping[str, Tensor]] = None):
        super().__init__()
        if enc_theta.out_dim != enc_phi.out_dim:
            raise ValueError(f"theta and phi widths differ: {enc_theta.out_dim} vs {enc_phi.out_dim}")
        if enc_theta.in_channels != enc_phi.in_channels or not enc_theta.layout.same_as(enc_phi.layout):
            raise ValueError("theta and phi must share the layout and in_channels")
        self.enc_theta = enc_theta.requires_grad_(False)
        self.enc_phi = enc_phi.requires_grad_(False)
        self.norm_theta = FeatureStandardizer(enc_theta.out_dim)
        self.norm_phi = FeatureStandardizer(enc_phi.out_dim)
        for k in ("theta", "phi"):
            if stats and f"mean_{k}" in stats:
                getattr(self, f"norm_{k}").set_stats(stats[f"mean_{k}"], stats[f"std_{k}"])
        self.align = align
        self.train(False)

    def train(self, mode: bool = True) -> "AlignedClassifier":
        """Set the mode of the alignment module; the frozen encoders stay in eval mode."""
        super().train(mode)
        self.enc_theta.eval()
        self.enc_phi.eval()
        return self

    @property
    def head(self) -> nn.Module:
        """The final linear classifier, :math:`(B, D) \\to (B, K)`."""
        return self.align.head

    @property
    def num_classes(self) -> int:
        """:math:`K`."""
        return self.align.num_classes

    def tokens(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Standardised tokens of both encoders, each :math:`(B, T', D)`."""
        with torch.no_grad():
            return self.norm_theta(self.enc_theta(x)[1]), self.norm_phi(self.enc_phi(x)[1])

    def features(self, x: Tensor) -> Tensor:
        """Pooled aligned feature, :math:`(B, C, T, V, M) \\to (B, D)`."""
        return self.align.features(*self.tokens(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits, :math:`(B, C, T, V, M) \\to (B, K)`."""
        return self.align(*self.tokens(x))
