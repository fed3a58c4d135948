"""The shared encoder parts: the cheap dropout masks and TemporalConv."""
from __future__ import annotations

import pytest
import torch

from asma.models import create_backbone
from asma.models.spatiotemporal import Dropout, TemporalConv, keep_mask


def test_dropout_masks_have_nn_dropouts_distribution_and_are_seeded():
    x = torch.ones(400, 500)
    drop = Dropout(0.3).train()
    torch.manual_seed(0)
    y = drop(x.clone())
    kept = y != 0
    # Bernoulli(0.7) keeps, scaled by 1 / 0.7: mean 1, keep rate 0.7 within 4 standard errors
    assert abs(kept.float().mean().item() - 0.7) < 4 * (0.7 * 0.3 / x.numel()) ** 0.5
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    torch.manual_seed(0)
    assert torch.equal(drop(x.clone()), y)  # the global generator, as nn.Dropout
    assert torch.equal(drop.eval()(x), x)
    g = torch.ones(3, 4, requires_grad=True)
    torch.manual_seed(1)
    out = Dropout(0.5).train()(g * 1.0)
    out.sum().backward()
    assert torch.equal(g.grad, (out != 0).float() * 2.0)
    with pytest.raises(ValueError, match="dropout probability must be in"):
        Dropout(1.0)


def test_keep_mask_lanes_are_unbiased_and_its_edges_exact():
    torch.manual_seed(0)
    m = keep_mask(torch.empty(250_000, 4), 0.5).float()  # column j: lane j of every 64-bit draw
    assert (m.mean(0) - 0.5).abs().max() < 4 * (0.25 / 250_000) ** 0.5  # each lane, not only the mean
    pairs = m[:, 0] * 2 + m[:, 1]  # two lanes of one draw are independent: each pattern 1/4
    assert (torch.bincount(pairs.long(), minlength=4) / 250_000 - 0.25).abs().max() < 4 * (0.1875 / 250_000) ** 0.5
    x = torch.empty(1_000_003)  # not a multiple of 4
    assert keep_mask(x, 0.0).all()  # t = 0: every 16-bit value is kept
    rare = keep_mask(x, 1 - 2 ** -20).float().mean().item()  # t = 2**16 - 1: only the top value
    assert 0 < rare < 4 / 2 ** 16
    torch.manual_seed(1)
    rate = keep_mask(x, 0.3).float().mean().item()
    assert abs(rate - 0.7) < 4 * (0.21 / x.numel()) ** 0.5


def test_the_encoders_use_it():
    model = create_backbone("stgcn", hidden_channels=4, out_channels=16, dropout=0.5)
    tcn = model.blocks[3].tcn
    assert isinstance(tcn, TemporalConv) and isinstance(tcn[4], Dropout) and tcn[4].p == 0.5
    assert model.blocks[0].tcn[4].p == 0.0  # no dropout in block 1, as the lineage
    x = torch.randn(2, 3, 12, 25, 2)
    torch.manual_seed(3)
    a = model.train()(x)[0]
    torch.manual_seed(3)
    assert torch.equal(model(x)[0], a)


@pytest.mark.parametrize("name, extra", [("stgcn", {}), ("stgcn-student", {}), ("gin", {}), ("dgcnn", {"k": 4})])
def test_backbone_shapes_grads_determinism(name, extra):
    model = create_backbone(name, "ntu25", in_channels=3, channels=[8, 8, 16], strides=[1, 2, 1], dropout=0.0,
                            **extra)
    assert model.out_dim == 16 and model.temporal_stride == 2
    x = torch.randn(2, 3, 9, 25, 2)
    pooled, tokens = model(x)
    assert pooled.shape == (2, 16) and tokens.shape == (2, 5, 16)
    torch.testing.assert_close(pooled, tokens.mean(1))
    (pooled.square().sum() + tokens.sum()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])


def _unfolded(block, x, *graph):
    """SpatioTemporalBlock's train-mode expression, evaluated with the BatchNorm modules in eval."""
    y = block.tcn(block.gcn(x, *graph))
    return block.relu(y if block.residual is None else y + block.residual(x))


@pytest.mark.parametrize("name, extra", [("stgcn", {}), ("gin", {})])
def test_eval_folds_batchnorm_exactly_and_never_serves_stale_weights(name, extra):
    """In eval the BatchNorms are folded into the convolutions (GraphConv takes the first one): the
    value of the plain modules up to float rounding, with and without gradients; the no-grad cache
    follows in-place weight changes and load_state_dict; train mode is the unfolded code."""
    import copy
    torch.manual_seed(0)
    model = create_backbone(name, "ntu25", 3, channels=[8, 16, 16], strides=[1, 2, 1], dropout=0.0, **extra)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    model.eval()
    inputs = {2: torch.randn(2, 16, 5, 25), 1: torch.randn(2, 8, 9, 25)}
    for i, x in inputs.items():  # identity residual, strided 1x1 + BN residual
        block, graph = model.blocks[i], model.block_inputs(i)
        with torch.no_grad():
            ref = _unfolded(block, x, *graph)
            torch.testing.assert_close(block(x, *graph), ref, rtol=1e-5, atol=1e-5)
            assert "_folded" in block.tcn.__dict__  # the no-grad path caches the folded weights
        xg = x.clone().requires_grad_()
        torch.testing.assert_close(block(xg, *graph), ref, rtol=1e-5, atol=1e-5)  # folded with autograd
        (gx,) = torch.autograd.grad(block(xg, *graph).sum(), xg)
        (rx,) = torch.autograd.grad(_unfolded(block, xg, *graph).sum(), xg)
        torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    block = model.blocks[1]
    with torch.no_grad():
        block.tcn[2].weight.mul_(-2.0)  # an optimiser-like in-place change
        block.tcn[3].running_var.add_(1.0)
        torch.testing.assert_close(block(x, *graph), _unfolded(block, x, *graph), rtol=1e-5, atol=1e-5)
    other = create_backbone(name, "ntu25", 3, channels=[8, 16, 16], strides=[1, 2, 1], dropout=0.0, **extra)
    model.load_state_dict(other.state_dict())
    y = torch.randn(1, 3, 9, 25, 2)
    with torch.inference_mode():
        torch.testing.assert_close(model(y)[0], other.eval()(y)[0], rtol=1e-5, atol=1e-5)
    copy.deepcopy(model)  # the cache holds ordinary tensors, even when filled under inference_mode
    assert set(model.state_dict()) == set(other.state_dict())
    model.train()
    torch.manual_seed(1)
    a = model(y)[0]
    torch.manual_seed(1)
    assert torch.equal(a, other.train()(y)[0])  # train mode: batch statistics, nothing folded
