import pytest
import torch

from asma.losses import (BarlowTwinsLoss, CosineFeatureLoss, DistillationKL, accuracy_topk,
                         cross_correlation)


def reference_bt(z1, z2, lam):
    """Direct float64 evaluation of Eqs. 5-6 with explicit loops over i, j."""
    z1, z2 = z1.double(), z2.double()
    B, D = z1.shape
    loss = 0.0
    for i in range(D):
        for j in range(D):
            num = sum(z1[b, i] * z2[b, j] for b in range(B))
            den = torch.sqrt(sum(z1[b, i] ** 2 for b in range(B))) * torch.sqrt(sum(z2[b, j] ** 2 for b in range(B)))
            c = num / den
            loss += (1 - c) ** 2 if i == j else lam * c ** 2
    return float(loss)


def test_barlow_twins_matches_eqs_5_6_without_standardisation():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    got = BarlowTwinsLoss(lambda_=0.3, standardize=False)(z1.double(), z2.double())
    assert got.item() == pytest.approx(reference_bt(z1, z2, 0.3), rel=1e-6)


def test_barlow_twins_standardised_equals_pstl_form():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(16, 8, generator=g) * 3 + 1, torch.randn(16, 8, generator=g)
    got = BarlowTwinsLoss(lambda_=2e-4)(z1.double(), z2.double()).item()
    n1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    n2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    assert got == pytest.approx(reference_bt(n1, n2, 2e-4), rel=1e-5)
    c = (n1.t() @ n2 / 16).double()  # PSTL: C = z1^T z2 / N after non-affine BN
    pstl = ((1 - c.diagonal()) ** 2).sum() + 2e-4 * (c ** 2).sum() - 2e-4 * (c.diagonal() ** 2).sum()
    assert got == pytest.approx(pstl.item(), rel=1e-3)


def test_identical_views_give_zero_on_diagonal_term():
    z = torch.randn(32, 4)
    c = cross_correlation(z, z)
    assert torch.allclose(c.diagonal(), torch.ones(4), atol=1e-5)
    assert BarlowTwinsLoss(lambda_=0.0)(z, z).item() == pytest.approx(0.0, abs=1e-4)


def test_barlow_twins_rejects_batch_of_one():
    with pytest.raises(ValueError, match="at least 2"):
        BarlowTwinsLoss()(torch.randn(1, 4), torch.randn(1, 4))


def test_kl_distillation_value_and_gradient():
    s = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    t = torch.tensor([[0.5, 3.0, -1.0]])
    tau = 2.0
    loss = DistillationKL(tau)(s, t)
    p = torch.softmax(t / tau, 1)
    q = torch.softmax(s / tau, 1)
    ref = tau ** 2 * (p * (p.log() - q.log())).sum()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss.backward()
    # d/ds of tau^2 KL(p||q) = tau (q - p)
    assert torch.allclose(s.grad, tau * (q - p).detach(), atol=1e-6)
    assert DistillationKL(3.0)(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_cosine_loss_and_topk():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert CosineFeatureLoss()(a, a).item() == pytest.approx(0.0)
    assert CosineFeatureLoss()(a, -a).item() == pytest.approx(2.0)
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05], [0.2, 0.3, 0.5]])
    top1, top2 = accuracy_topk(logits, torch.tensor([1, 2, 1]), ks=(1, 2))
    assert top1 == pytest.approx(100 / 3) and top2 == pytest.approx(200 / 3)
