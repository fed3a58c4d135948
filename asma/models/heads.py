"""Projection and classification heads, and the bi-directional feature alignment module (§3.4)."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn


class Projector(nn.Module):
    r"""Barlow Twins projector: ``Linear -> BN -> ReLU`` for every hidden layer, then a final
    bias-free ``Linear`` (paper/PSTL: :math:`256 \to 6144 \to 6144 \to 6144`).

    Args:
        in_dim: encoder width :math:`D`.
        dims: output widths of the layers, e.g. ``(6144, 6144, 6144)``.

    Shapes:
        - **input**: :math:`(B, D)` -> **output**: :math:`(B, \text{dims}[-1])`
    """

    def __init__(self, in_dim: int, dims: Sequence[int] = (6144, 6144, 6144)):
        super().__init__()
        dims = list(dims)
        if not dims:
            raise ValueError("projector needs at least one layer")
        layers = []
        prev = in_dim
        for i, d in enumerate(dims):
            layers.append(nn.Linear(prev, d, bias=False))
            if i < len(dims) - 1:
                layers += [nn.BatchNorm1d(d), nn.ReLU(inplace=True)]
            prev = d
        self.net = nn.Sequential(*layers)
        self.out_dim = prev

    def reset_parameters(self) -> None:
        for m in self.net:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class LinearClassifier(nn.Module):
    r"""Linear probe :math:`\hat{y} = W h + b` with Xavier-normal weights and zero bias (PSTL).

    Shapes:
        - **input**: :math:`(B, D)` -> **output**: :math:`(B, K)`
    """

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(h)


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

    def reset_parameters(self) -> None:
        self.theta_to_phi._reset_parameters()
        self.phi_to_theta._reset_parameters()
        self.head.reset_parameters()

    def features(self, h_theta: Tensor, h_phi: Tensor) -> Tensor:
        """Pooled aligned feature, :math:`(B, D)`."""
        a = self.theta_to_phi(h_theta, h_phi, h_phi, need_weights=False)[0]
        b = self.phi_to_theta(h_phi, h_theta, h_theta, need_weights=False)[0]
        return (a + b).mean(dim=1)

    def forward(self, h_theta: Tensor, h_phi: Tensor) -> Tensor:
        return self.head(self.features(h_theta, h_phi))
