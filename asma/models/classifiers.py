"""Classifiers on one encoder: :class:`EncoderClassifier` (encoder + head: fine-tuned encoders,
distilled students, published classifiers) and the one feature standardiser
(:class:`FeatureStandardizer`, :func:`feature_stats`) used wherever frozen features or tokens are
standardised."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from .heads import LinearClassifier
from .registry import Backbone


def feature_stats(features: Tensor, eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    r"""Per-dimension mean and standard deviation (no Bessel correction, plus ``eps``) of training
    features, over every leading dimension:

    .. math::
        \mu_d = \frac{1}{N}\sum_i h_{i,d}, \qquad
        \sigma_d = \sqrt{\frac{1}{N}\sum_i (h_{i,d} - \mu_d)^2} + \epsilon

    Shapes:
        - **features**: :math:`(..., D)` -> two :math:`(D,)`
    """
    flat = features.reshape(-1, features.shape[-1])
    return flat.mean(0), flat.std(0, unbiased=False) + eps


class FeatureStandardizer(nn.Module):
    r"""Per-dimension standardisation :math:`(h - \mu) / \sigma` with stored statistics
    (:func:`feature_stats`). Identity until :meth:`fit` or :meth:`set_stats`; the statistics are
    buffers, so they travel with the weights.

    Args:
        dim: feature width :math:`D`.

    Shapes:
        - **input**: :math:`(..., D)` -> same
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def set_stats(self, mean: Tensor, std: Tensor) -> "FeatureStandardizer":
        """Set :math:`\\mu` and :math:`\\sigma` (both :math:`(D,)`); returns ``self``."""
        self.mean.copy_(mean.reshape(-1))
        self.std.copy_(std.reshape(-1))
        return self

    def fit(self, features: Tensor, eps: float = 1e-5) -> "FeatureStandardizer":
        """Statistics of training features :math:`(..., D)` (:func:`feature_stats`); returns ``self``."""
        return self.set_stats(*feature_stats(features, eps))

    def forward(self, h: Tensor) -> Tensor:
        """:math:`(h - \\mu) / \\sigma`, shape-preserving :math:`(..., D)`."""
        return (h - self.mean) / self.std


class EncoderClassifier(nn.Module):
    r"""An encoder and a head on its pooled feature, :math:`\hat{y} = g(f(x)_{pooled})`: the
    fine-tuned encoders, the distilled students and the published classifiers / students.

    Args:
        encoder: a :class:`~asma.models.Backbone`.
        head: maps :math:`(B, D) \to (B, K)` (a :class:`~asma.models.heads.LinearClassifier`, or a
            :class:`~asma.models.heads.ProjectedHead` for a feature-distilled student).

    Shapes:
        - **input**: :math:`(B, C, T, V, M)` -> **output**: logits :math:`(B, K)`, or with
          ``features=True`` the pooled feature :math:`(B, D)`
    """

    def __init__(self, encoder: Backbone, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    @classmethod
    def linear(cls, encoder: Backbone, num_classes: int) -> "EncoderClassifier":
        """``encoder`` + a fresh :class:`~asma.models.heads.LinearClassifier` to ``num_classes``."""
        return cls(encoder, LinearClassifier(encoder.out_dim, num_classes))

    @property
    def num_classes(self) -> int:
        """:math:`K`, the head's output width."""
        return int(self.head.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Pooled encoder feature, :math:`(B, C, T, V, M) \\to (B, D)`."""
        return self.encoder(x)[0]

    def forward(self, x: Tensor, features: bool = False) -> Tensor:
        """Logits :math:`(B, K)` (or the pooled feature with ``features=True``: a DDP wrapper only
        runs ``forward``)."""
        f = self.features(x)
        return f if features else self.head(f)
