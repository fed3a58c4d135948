"""The ASMa pretraining model: two encoders, their projectors and the Barlow Twins wiring (§3.3)."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..graph import Skeleton, get_layout
from ..losses import BarlowTwinsLoss
from ..masking import MaskSpec, Masker
from .heads import Projector
from .registry import Backbone, create_backbone

DEFAULT_ENCODERS: Dict[str, Tuple[str, str]] = {"theta": ("high", "low"), "phi": ("low", "high")}


def project_groups(proj: Projector, feats: Sequence[Tensor]) -> List[Tensor]:
    r"""``[proj(f) for f in feats]`` (BatchNorm statistics per group, running statistics updated in
    the same order) with each linear layer run once on the concatenated groups: one GEMM per
    layer instead of one per group, and no accumulation of weight gradients between the calls
    (three 6144-wide weights per encoder and step).

    Shapes:
        - **feats**: :math:`(B_i, D)` each -> :math:`(B_i, \text{proj.out\_dim})` each
    """
    sizes = [f.shape[0] for f in feats]
    h = torch.cat(list(feats)) if len(feats) > 1 else feats[0]
    for layer in proj.net:
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and len(sizes) > 1:
            h = torch.cat([layer(part) for part in h.split(sizes)])
        else:
            h = layer(h)
    return list(h.split(sizes))


class ASMa(nn.Module):
    r"""Asymmetric spatio-temporal masking pretraining (Eqs. 5-9, Algorithm 1 lines 5-17).

    Each encoder :math:`f_k` (by default :math:`f_\theta`: HDSM + LMTM, :math:`f_\phi`: LDSM + HMTM)
    encodes the anchor :math:`x`, its joint-masked view :math:`x^k_j` (masked from :math:`x'`) and its
    frame-masked view :math:`x^k_m` (masked from :math:`\hat{x}`); its own projector maps the three
    to :math:`Z^k, Z^k_j, Z^k_m` and

    .. math::
        \mathcal{L}_{ASMa} = \sum_{k \in \{\theta,\phi\}} \mathrm{BT}(Z^k, Z^k_j) + \mathrm{BT}(Z^k, Z^k_m).

    Args:
        layout: layout name or :class:`~asma.graph.Skeleton`.
        in_channels: :math:`C`.
        backbone: registered backbone name; ``backbone_cfg`` its options.
        projector: projector widths (paper: ``(6144, 6144, 6144)``).
        lambda_: Barlow Twins off-diagonal weight (paper: 2e-4).
        encoders: name -> ``(spatial, temporal)`` strategies; one entry gives the single-encoder
            ablation (Fig. 3), e.g. ``{"theta": ("random", "random")}``.
        n_joints, n_frames: masked joints and frames (paper: 9, 10).
        frame_mode: ``"drop"`` or ``"zero"`` masked frames.
        num_coords: coordinate channels for motion scores.
        shared_projector: one projector :math:`p(\cdot)` for every encoder (Algorithm 1 line 12
            read literally) instead of one per encoder (default).

    ``forward(..., names=("theta",))`` computes only the terms of those encoders: the loss is a
    sum of per-encoder terms with separate graphs (shared only through a shared projector, whose
    gradients then add up), so the training step back-propagates one encoder's terms before it
    encodes the next one's views (:class:`~asma.train.loop.Backward`), which halves the
    activation memory and gives the gradients of the joint backward. Masks are drawn in encoder
    order either way, so the generator is consumed identically.

    Shapes:
        - **anchor**, **view_j**, **view_m**: :math:`(B, C, T, V, M)`
        - **output**: scalar loss and a dict of the per-term losses
    """

    def __init__(self, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                 backbone: str = "stgcn", backbone_cfg: Optional[Mapping[str, Any]] = None,
                 projector: Sequence[int] = (6144, 6144, 6144), lambda_: float = 2e-4,
                 encoders: Optional[Mapping[str, Sequence[str]]] = None, n_joints: int = 9,
                 n_frames: int = 10, frame_mode: str = "drop", num_coords: Optional[int] = None,
                 shared_projector: bool = False):
        super().__init__()
        self.layout = get_layout(layout)
        encoders = dict(encoders or DEFAULT_ENCODERS)
        if not encoders:
            raise ValueError("ASMa needs at least one encoder")
        self.encoders = nn.ModuleDict({k: create_backbone(backbone, self.layout, in_channels, **dict(backbone_cfg or {}))
                                       for k in encoders})
        dim = next(iter(self.encoders.values())).out_dim
        self.shared_projector = shared_projector
        self.projectors = nn.ModuleDict({"shared": Projector(dim, projector)} if shared_projector
                                        else {k: Projector(dim, projector) for k in encoders})
        degree = self.layout.degree()
        self.specs = {k: MaskSpec(s, t, n_joints, n_frames, frame_mode) for k, (s, t) in encoders.items()}
        for spec in self.specs.values():
            spec.validate(self.layout.num_joints, num_frames=10 ** 9)
        self.maskers = {k: Masker(spec, degree, num_coords) for k, spec in self.specs.items()}
        self.loss_fn = BarlowTwinsLoss(lambda_)

    def encoder(self, name: str) -> Backbone:
        return self.encoders[name]

    def _encode(self, name: str, *views: Tensor) -> Tuple[Tensor, ...]:
        # Views of equal shape share one encoder pass (one batch of 2B or 3B is faster on CPU).
        enc, proj = self.encoders[name], self.projectors["shared" if self.shared_projector else name]
        groups: Dict[Tuple[int, ...], list] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape), []).append(i)
        feats = [enc(torch.cat([views[i] for i in idx], dim=0))[0] for idx in groups.values()]
        # Under bf16 autocast only the encoder runs in bf16: the projections that feed the
        # cross-correlation (off-diagonal target 0) are computed in fp32 (docs/training.md).
        with torch.autocast(feats[0].device.type, enabled=False):
            zs = project_groups(proj, [f.float() for f in feats])
        out: list = [None] * len(views)
        for idx, z in zip(groups.values(), zs):
            for j, i in enumerate(idx):
                out[i] = z[j * views[i].shape[0]:(j + 1) * views[i].shape[0]]
        return tuple(out)

    def forward(self, anchor: Tensor, view_j: Tensor, view_m: Tensor, generator: Optional[torch.Generator] = None,
                names: Optional[Sequence[str]] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        names = list(self.maskers) if names is None else list(names)
        unknown = [k for k in names if k not in self.maskers]
        if unknown:
            raise ValueError(f"unknown encoder(s) {unknown}; this model has {list(self.maskers)}")
        T = anchor.shape[2]
        for spec in (self.specs[k] for k in names):
            if spec.temporal != "none" and spec.n_frames >= T:
                raise ValueError(f"n_frames={spec.n_frames} must be smaller than the clip length T={T}")
        parts: Dict[str, Tensor] = {}
        total = anchor.new_zeros(())
        for name in names:
            masker = self.maskers[name]
            with torch.no_grad():
                xj, _ = masker.joint_view(view_j, generator)
                xm, _ = masker.frame_view(view_m, generator)
            z, zj, zm = self._encode(name, anchor, xj, xm)
            l1, l2 = self.loss_fn(z, zj), self.loss_fn(z, zm)
            parts[f"{name}/joint"], parts[f"{name}/frame"] = l1.detach(), l2.detach()
            total = total + l1 + l2
        return total, parts
