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


class BarlowTwinsLoss(nn.Module):
    r"""Barlow Twins loss (Eq. 6):

    .. math::
        \mathcal{L} = \sum_i (1 - \mathbf{C}_{ii})^2 + \lambda \sum_i \sum_{j \neq i} \mathbf{C}_{ij}^2

    with :math:`\mathbf{C}` from :func:`cross_correlation`. With ``standardize=True`` (default) each
    branch is first standardised over the batch; :math:`\mathbf{C}` is then exactly the
    :math:`\frac{1}{B} z_1^\top z_2` of the Barlow Twins / PSTL code. Under
    ``torch.distributed`` the projections are all-gathered (with gradients) so :math:`\mathbf{C}`
    is computed over the global batch: :math:`W` processes with batch :math:`B` give the loss and
    gradients of one process with batch :math:`WB`.

    Args:
        lambda_ (float): off-diagonal weight :math:`\lambda` (paper: 2e-4).
        standardize (bool): standardise each dimension over the batch first.
        gather_distributed (bool): use the global batch under ``torch.distributed``.

    Shapes:
        - **z1**, **z2**: :math:`(B, D)`, :math:`B \geq 2`
        - **output**: scalar
    """

    def __init__(self, lambda_: float = 2e-4, standardize: bool = True, gather_distributed: bool = True):
        super().__init__()
        self.lambda_ = lambda_
        self.standardize = standardize
        self.gather_distributed = gather_distributed

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        if z1.shape != z2.shape or z1.dim() != 2:
            raise ValueError(f"Barlow Twins needs two (B, D) projections of equal shape, got "
                             f"{tuple(z1.shape)} and {tuple(z2.shape)}")
        if self.gather_distributed:
            z1, z2 = gather_batch(z1), gather_batch(z2)
        if z1.shape[0] < 2:
            raise ValueError("Barlow Twins needs a batch of at least 2 samples to standardise "
                             f"over, got {z1.shape[0]}")
        if self.standardize:
            z1, z2 = standardize(z1), standardize(z2)
        c = cross_correlation(z1.float(), z2.float())
        diag = torch.diagonal(c)
        on = (1.0 - diag).pow(2).sum()
        off = c.pow(2).sum() - diag.pow(2).sum()
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
