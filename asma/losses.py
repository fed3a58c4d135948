"""Losses: Barlow Twins (global-batch aware), logit distillation (KL) and cosine feature distillation."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def gather_batch(z: Tensor) -> Tensor:
    """Concatenate ``z`` over all processes along dim 0 with a gradient-preserving all-gather
    (identity when not running distributed).

    Shapes:
        - **z**: :math:`(B, D)` per process -> **output**: :math:`(W \\cdot B, D)`
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(z), dim=0)


def standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-dimension zero mean / unit variance over the batch (a non-affine BatchNorm in train
    mode, biased variance), as the Barlow Twins and PSTL code normalise the projections."""
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


def cross_correlation(z1: Tensor, z2: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Cross-correlation matrix of Eq. 5:

    .. math::
        \mathbf{C}_{ij} = \frac{\sum_b z_{b,i}\, z'_{b,j}}
        {\sqrt{\sum_b z_{b,i}^2}\,\sqrt{\sum_b z'^{\,2}_{b,j}}}

    Shapes:
        - **z1**, **z2**: :math:`(B, D)`
        - **output**: :math:`(D, D)`
    """
    n1 = z1.pow(2).sum(0).clamp(min=eps).sqrt()
    n2 = z2.pow(2).sum(0).clamp(min=eps).sqrt()
    return (z1.t() @ z2) / (n1.unsqueeze(1) * n2.unsqueeze(0))


def _column_normalize(z: Tensor, eps: float = 1e-12) -> Tensor:
    """Each column divided by its Euclidean norm over the batch (the denominators of Eq. 5)."""
    return z / z.pow(2).sum(0, keepdim=True).clamp(min=eps).sqrt()


def barlow_twins_terms(z1: Tensor, z2: Tensor, form: str = "auto") -> Tuple[Tensor, Tensor]:
    r"""The two sums of Eq. 6, :math:`\sum_i (1 - \mathbf{C}_{ii})^2` and
    :math:`\sum_{i \neq j} \mathbf{C}_{ij}^2`, with :math:`\mathbf{C}` of :func:`cross_correlation`.

    ``form="cross"`` builds the :math:`D \times D` matrix :math:`\mathbf{C} = A^\top B'` of the
    column-normalised projections. ``form="gram"`` never does: with the :math:`B \times B` Gram
    matrices :math:`G_1 = AA^\top`, :math:`G_2 = B'B'^\top`,
    :math:`\sum_{ij} \mathbf{C}_{ij}^2 = \lVert A^\top B' \rVert_F^2 = \mathrm{tr}(G_1 G_2)
    = \sum_{ab} (G_1 \circ G_2)_{ab}` exactly, and the diagonal is :math:`\sum_b A_{bi} B'_{bi}`,
    so the cost is :math:`O(B^2 D)` instead of :math:`O(B D^2)` (8 ms instead of 755 ms per term at
    :math:`B=32, D=6144` on a CPU) and no :math:`D \times D` tensor is stored for backward.
    ``"auto"`` takes the Gram form when :math:`B < D`.

    Shapes:
        - **z1**, **z2**: :math:`(B, D)` -> two scalars
    """
    if form == "auto":
        form = "gram" if z1.shape[0] < z1.shape[1] else "cross"
    if form == "cross":
        c = cross_correlation(z1, z2)
        diag = torch.diagonal(c)
        return (1.0 - diag).pow(2).sum(), c.pow(2).sum() - diag.pow(2).sum()
    if form != "gram":
        raise ValueError(f"unknown Barlow Twins form {form!r}; use 'auto', 'gram' or 'cross'")
    a, b = _column_normalize(z1), _column_normalize(z2)
    diag = (a * b).sum(0)
    frob = ((a @ a.t()) * (b @ b.t())).sum()
    return (1.0 - diag).pow(2).sum(), frob - diag.pow(2).sum()


class BarlowTwinsLoss(nn.Module):
    r"""Barlow Twins loss (Eq. 6):

    .. math::
        \mathcal{L} = \sum_i (1 - \mathbf{C}_{ii})^2 + \lambda \sum_i \sum_{j \neq i} \mathbf{C}_{ij}^2

    with :math:`\mathbf{C}` from :func:`cross_correlation`. With ``standardize=True`` (default) each
    branch is first standardised over the batch; :math:`\mathbf{C}` is then exactly the
    :math:`\frac{1}{B} z_1^\top z_2` of the Barlow Twins / PSTL code. Under
    ``torch.distributed`` the projections are all-gathered (with gradients) so :math:`\mathbf{C}`
    is computed over the global batch: :math:`W` processes with batch :math:`B` give the loss and
    gradients of one process with batch :math:`WB`. The sums are computed through
    :math:`B \times B` Gram matrices when the (global) batch is narrower than the projection
    (:func:`barlow_twins_terms`; the same value and gradients, far cheaper). Computed in float32
    at least (float64 inputs stay float64).

    Args:
        lambda_ (float): off-diagonal weight :math:`\lambda` (paper: 2e-4).
        standardize (bool): standardise each dimension over the batch first.
        gather_distributed (bool): use the global batch under ``torch.distributed``.
        form (str): ``"auto"`` (default), ``"gram"`` or ``"cross"`` (see :func:`barlow_twins_terms`).

    Shapes:
        - **z1**, **z2**: :math:`(B, D)`, :math:`B \geq 2`
        - **output**: scalar
    """

    def __init__(self, lambda_: float = 2e-4, standardize: bool = True, gather_distributed: bool = True,
                 form: str = "auto"):
        super().__init__()
        self.lambda_ = lambda_
        self.standardize = standardize
        self.gather_distributed = gather_distributed
        self.form = form

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        if z1.shape != z2.shape or z1.dim() != 2:
            raise ValueError(f"Barlow Twins needs two (B, D) projections of equal shape, got "
                             f"{tuple(z1.shape)} and {tuple(z2.shape)}")
        if self.gather_distributed:
            z1, z2 = gather_batch(z1), gather_batch(z2)
        if z1.shape[0] < 2:
            raise ValueError("Barlow Twins needs a batch of at least 2 samples to standardise "
                             f"over, got {z1.shape[0]}")
        dtype = torch.promote_types(z1.dtype, torch.float32)  # bf16 autocast outputs -> float32
        z1, z2 = z1.to(dtype), z2.to(dtype)
        if self.standardize:
            z1, z2 = standardize(z1), standardize(z2)
        on, off = barlow_twins_terms(z1, z2, self.form)
        return on + self.lambda_ * off


class DistillationKL(nn.Module):
    r"""Logit distillation without labels (Eqs. 13-14).

    .. math::
        \mathcal{L}_{kd} = \tau^2 \, \mathrm{KL}\big(\hat{y}^T \,\|\, \hat{y}^S\big)
        = \tau^2 \sum_i \hat{y}^T_i \log \frac{\hat{y}^T_i}{\hat{y}^S_i},\quad
        \hat{y} = \mathrm{softmax}(z / \tau)

    averaged over the batch. The direction is Hinton's (teacher distribution as the target, the
    forward KL that PyTorch's ``kl_div(log q_S, p_T)`` computes); the paper writes
    :math:`\mathrm{KL}(\hat{y}^S\|\hat{y}^T)` as a name for the same objective. The :math:`\tau^2`
    factor keeps gradient magnitudes comparable across temperatures (set ``scale_by_tau2=False``
    to drop it).

    Shapes:
        - **student_logits**, **teacher_logits**: :math:`(B, K)`
        - **output**: scalar
    """

    def __init__(self, tau: float = 4.0, scale_by_tau2: bool = True):
        super().__init__()
        if tau <= 0:
            raise ValueError(f"temperature tau must be > 0, got {tau}")
        self.tau = tau
        self.scale_by_tau2 = scale_by_tau2

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                             f"{tuple(teacher_logits.shape)} differ (label spaces must match)")
        log_q = F.log_softmax(student_logits / self.tau, dim=1)
        log_p = F.log_softmax(teacher_logits.detach() / self.tau, dim=1)
        loss = F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")
        return loss * (self.tau ** 2 if self.scale_by_tau2 else 1.0)


class CosineFeatureLoss(nn.Module):
    r"""Feature distillation (Appendix C): :math:`1 - \cos(\hat{f}_S, f_T)` averaged over the batch,
    where :math:`\hat{f}_S` is the student feature (projected to the teacher's width by the caller).

    Shapes:
        - **student**, **teacher**: :math:`(B, D)` -> scalar
    """

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        return (1.0 - F.cosine_similarity(student, teacher.detach(), dim=1)).mean()


def accuracy_topk(logits: Tensor, target: Tensor, ks: Tuple[int, ...] = (1, 5)) -> Tuple[float, ...]:
    """Top-k accuracies in percent (k larger than the class count counts as all classes)."""
    out = []
    for k in ks:
        k = min(k, logits.shape[1])
        hit = logits.topk(k, dim=1).indices.eq(target.unsqueeze(1)).any(dim=1)
        out.append(100.0 * hit.float().mean().item() if len(target) else 0.0)
    return tuple(out)
