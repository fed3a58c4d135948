import pytest
import torch

from asma.losses import (BarlowTwinsLoss, CosineFeatureLoss, DistillationKL, accuracy_topk,
                         barlow_twins_terms, cross_correlation)


def reference_bt_tensor(z1, z2, lam):
    """Direct float64 evaluation of Eqs. 5-6 with explicit loops over i, j (differentiable)."""
    z1, z2 = z1.double(), z2.double()
    B, D = z1.shape
    loss = z1.new_zeros(())
    for i in range(D):
        for j in range(D):
            num = sum(z1[b, i] * z2[b, j] for b in range(B))
            den = torch.sqrt(sum(z1[b, i] ** 2 for b in range(B))) * torch.sqrt(sum(z2[b, j] ** 2 for b in range(B)))
            c = num / den
            loss = loss + ((1 - c) ** 2 if i == j else lam * c ** 2)
    return loss


def reference_bt(z1, z2, lam):
    return float(reference_bt_tensor(z1, z2, lam))


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


@pytest.mark.parametrize("form", ["gram", "cross", "auto"])
@pytest.mark.parametrize("shape", [(4, 7), (9, 3)])  # B < D (Gram form pays) and B > D
def test_barlow_twins_forms_match_float64_reference_values_and_gradients(form, shape):
    g = torch.Generator().manual_seed(2)
    z1 = (torch.randn(*shape, generator=g) * 2 + 0.5).double().requires_grad_(True)
    z2 = torch.randn(*shape, generator=g).double().requires_grad_(True)
    ref = reference_bt_tensor(z1, z2, 0.3)
    r1, r2 = torch.autograd.grad(ref, (z1, z2))
    loss = BarlowTwinsLoss(lambda_=0.3, standardize=False, form=form)(z1, z2)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    g1, g2 = torch.autograd.grad(loss, (z1, z2))
    assert torch.allclose(g1, r1, rtol=1e-10, atol=1e-12) and torch.allclose(g2, r2, rtol=1e-10, atol=1e-12)


def test_gram_form_float32_at_paper_width_matches_cross_correlation_form():
    g = torch.Generator().manual_seed(3)
    z1 = torch.randn(16, 512, generator=g, requires_grad=True)
    z2 = (z1.detach() + 0.5 * torch.randn(16, 512, generator=g)).requires_grad_(True)
    gram = BarlowTwinsLoss(form="gram")(z1, z2)
    g_gram = torch.autograd.grad(gram, (z1, z2))
    exact = BarlowTwinsLoss(form="cross")(z1.double(), z2.double())
    g_exact = torch.autograd.grad(exact, (z1, z2))
    assert gram.item() == pytest.approx(exact.item(), rel=1e-5)
    for a, b in zip(g_gram, g_exact):
        assert (a.double() - b).abs().max() <= 1e-5 * b.abs().max()


def test_barlow_twins_auto_form_picks_gram_below_projection_width(monkeypatch):
    import asma.losses as L
    used = []
    monkeypatch.setattr(L, "cross_correlation", lambda *a: used.append("cross") or cross_correlation(*a))
    on, off = barlow_twins_terms(torch.randn(4, 9), torch.randn(4, 9))
    assert used == []
    barlow_twins_terms(torch.randn(9, 4), torch.randn(9, 4))
    assert used == ["cross"]
    with pytest.raises(ValueError, match="unknown Barlow Twins form"):
        barlow_twins_terms(torch.randn(4, 9), torch.randn(4, 9), "fast")


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
