"""Projection and classification heads (the feature alignment module is in :mod:`asma.models.alignment`)."""
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
        self.num_classes = int(num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(h)


class ProjectedHead(nn.Module):
    """Classifier of a feature-distilled student: the learned projection to the teacher's width
    followed by the teacher's own (frozen) linear head, so the student classifies without labels.

    Args:
        proj: maps the student's :math:`D_S` to the teacher's :math:`D_T`.
        teacher_head: the teacher's classifier :math:`(B, D_T) \\to (B, K)` (frozen here).

    Shapes:
        - **input**: :math:`(B, D_S)` -> **output**: :math:`(B, K)`
    """

    def __init__(self, proj: nn.Module, teacher_head: nn.Module):
        super().__init__()
        self.proj = proj
        self.teacher_head = teacher_head.requires_grad_(False)

    @property
    def num_classes(self) -> int:
        """:math:`K`, the teacher head's output width."""
        return int(self.teacher_head.num_classes)

    def forward(self, h: Tensor) -> Tensor:
        """Logits, :math:`(B, D_S) \\to (B, K)`."""
        return self.teacher_head(self.proj(h))
