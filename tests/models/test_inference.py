"""The cached channels-last inference plan (asma.models.inference) against the module graph."""
import copy

import pytest
import torch

from asma.models import create_backbone
from asma.models.inference import cached_plan, module_graph


def _module_graph(model, x):
    """The eval forward through the modules (the plan only runs without gradients)."""
    with torch.enable_grad():
        pooled, tokens = model(x)
    return pooled.detach(), tokens.detach()


def _randomise_norms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def _unfolded_forward(model, x):
    """The plain eval forward: every block's train-mode expression with the BatchNorms in eval."""
    n, m = x.shape[0], x.shape[-1]
    c, t, v = x.shape[1:4]
    h = model.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)).view(n * m, v, c, t).permute(0, 2, 3, 1)
    for i, block in enumerate(model.blocks):
        y = block.tcn(block.gcn(h, *model.block_inputs(i)))
        h = block.relu(y if block.residual is None else y + block.residual(h))
    tokens = h.mean(dim=3).view(n, m, h.shape[1], h.shape[2]).mean(dim=1).transpose(1, 2)
    return tokens.mean(dim=1), tokens


@pytest.mark.parametrize("name, shape", [("stgcn", (1, 3, 50, 25, 2)), ("stgcn", (3, 3, 23, 25, 1)),
                                         ("stgcn-student", (2, 3, 17, 25, 2))])
def test_plan_equals_the_plain_eval_forward(name, shape):
    """Paper encoder and student, fixed weights with non-trivial BatchNorm statistics: the plan's
    pooled features and tokens equal the unfolded eval forward and the module graph to 2e-5
    (float32 rounding of the folded weights); the plan is what runs without gradients."""
    torch.manual_seed(0)
    model = _randomise_norms(create_backbone(name)).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        pooled, tokens = model(x)
        ref_pooled, ref_tokens = _unfolded_forward(model, x)
    assert model.__dict__["_inference_plan"][1] is not None
    for a, b in ((pooled, ref_pooled), (tokens, ref_tokens), (pooled, _module_graph(model, x)[0])):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-5)
    assert tokens.shape == ref_tokens.shape and pooled.abs().max() > 1e-2  # not a vanishing signal


def test_plan_follows_weight_changes_and_saves_nothing():
    """In-place (optimiser-like) edits and load_state_dict rebuild the plan; state_dict keys are
    the module's; deepcopy works after running under inference_mode; train mode is unaffected."""
    torch.manual_seed(1)
    model = _randomise_norms(create_backbone("stgcn", channels=[8, 16, 16], strides=[1, 2, 1])).eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 12, 25, 2)
    with torch.inference_mode():
        before = model(x)[0]
    with torch.no_grad():
        model.blocks[1].tcn[2].weight.mul_(-2.0)
        model.edge_importance[2].mul_(0.5)
        model.data_bn.running_mean.add_(0.2)
        changed = model(x)[0]
    assert (changed - before).abs().max() > 1e-3
    torch.testing.assert_close(changed, _module_graph(model, x)[0], rtol=2e-5, atol=2e-5)
    other = _randomise_norms(create_backbone("stgcn", channels=[8, 16, 16], strides=[1, 2, 1]), seed=5)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], _module_graph(other.eval(), x)[0], rtol=2e-5, atol=2e-5)
    assert list(model.state_dict()) == keys
    copy.deepcopy(model)
    model.train()
    torch.manual_seed(2)
    with torch.no_grad():
        assert model(x)[0].shape == (2, 16)  # the module graph (dropout, batch statistics)


def test_models_the_plan_does_not_cover_use_the_module_graph():
    """GIN's spatial layer is not a GraphConv: no plan, same outputs with and without grad; a
    wrong joint count still raises the backbone's one-line error on the plan path."""
    torch.manual_seed(0)
    gin = create_backbone("gin", channels=[8, 8], strides=[1, 1]).eval()
    x = torch.randn(1, 3, 6, 25, 2)
    with torch.no_grad():
        out = gin(x)[0]
    assert cached_plan(gin) is None
    torch.testing.assert_close(out, _module_graph(gin, x)[0])
    stgcn = create_backbone("stgcn", channels=[8], strides=[1]).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="V=20 joints"):
        stgcn(torch.randn(1, 3, 6, 20, 2))


def test_module_graph_block_runs_the_modules():
    """Inside module_graph() no plan is built or used (nested blocks too); outside it is again."""
    torch.manual_seed(0)
    model = _randomise_norms(create_backbone("stgcn", channels=[8, 16], strides=[1, 2])).eval()
    x = torch.randn(1, 3, 9, 25, 2)
    with torch.no_grad():
        with module_graph(), module_graph():
            inside = model(x)[0]
            assert cached_plan(model) is None and "_inference_plan" not in model.__dict__
        assert cached_plan(model) is not None
        torch.testing.assert_close(model(x)[0], inside, rtol=2e-5, atol=2e-5)


def test_a_replaced_layer_or_parameter_rebuilds_the_plan():
    torch.manual_seed(0)
    model = _randomise_norms(create_backbone("stgcn", channels=[8, 16], strides=[1, 2])).eval()
    x = torch.randn(1, 3, 9, 25, 2)
    with torch.no_grad():
        model(x)
        other = _randomise_norms(create_backbone("stgcn", channels=[8, 16], strides=[1, 2]), seed=3)
        model.blocks[1].tcn = other.blocks[1].tcn  # a replaced submodule
        model.edge_importance[0] = torch.nn.Parameter(torch.full_like(model.A, 0.5))  # a replaced tensor
        torch.testing.assert_close(model(x)[0], _module_graph(model, x)[0], rtol=2e-5, atol=2e-5)
