import pytest
import torch

from asma.graph import from_edges, get_layout, partition_adjacency
from asma.models import (GraphConv, count_flops, count_parameters, create_backbone,
                         list_backbones)


def test_paper_encoder_parameter_and_flop_count():
    m = create_backbone("stgcn", "ntu25", 3)
    assert count_parameters(m) == 821_380  # reference notes §2.3
    flops = count_flops(m, torch.zeros(1, 3, 50, 25, 2))
    assert flops == pytest.approx(1.1893e9, rel=1e-3)  # aggregate-first graph convolution
    # the lineage's convolution-first order does 2*K*V*V*(C_out - C_in) more FLOPs per frame and
    # person in every widening block: 1.2248 GFLOPs (the figure the paper's tables count)
    V, K, frames = 25, 3, [50] * 5 + [25] * 3 + [13] * 2  # input frames of each block's graph product
    extra = sum(2 * 2 * t * K * V * V * (b.tcn[2].out_channels - b.gcn.conv.in_channels)
                for b, t in zip(m.blocks, frames))
    assert flops + extra == pytest.approx(1.2248e9, rel=1e-3)
    assert m.out_dim == 256


def test_aggregate_first_equals_convolution_first():
    """GraphConv sums over partitions on the input channels first; the value is ST-GCN's
    (1x1 convolution to K*C_out channels, then the einsum), forward and backward."""
    torch.manual_seed(0)
    A = partition_adjacency(get_layout("ntu25"), "spatial") * (torch.rand(3, 25, 25) + 0.5)
    gc = GraphConv(6, 10, 3)
    x = torch.randn(4, 6, 7, 25, requires_grad=True)
    y = gc(x, A)
    ref = torch.einsum("nkctv,kvw->nctw", gc.conv(x).view(4, 3, 10, 7, 25), A)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(y, (x, gc.conv.weight, gc.conv.bias), g)
    rx, rw, rb = torch.autograd.grad(ref, (x, gc.conv.weight, gc.conv.bias), g)
    for a, b in ((gx, rx), (gw, rw), (gb, rb)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout,batch", [("ntu25", 3), ("coco17", 1), ("mediapipe33", 2)])
def test_aggregate_convolution_equals_the_einsum(layout, batch):
    """With gradients on, the graph product runs as a 1x1 convolution over the vertex axis: the
    einsum's value and gradients (input and adjacency), also for a non-contiguous input; without
    gradients it is the einsum itself."""
    from asma.models.stgcn import aggregate
    torch.manual_seed(1)
    A0 = partition_adjacency(get_layout(layout), "spatial") * (torch.rand(3, 1, 1) + 0.5)
    V = A0.shape[-1]
    x0 = torch.randn(batch, 5, 8, V, 2)[..., 0]  # strided input
    x, A = x0.clone().requires_grad_(), A0.clone().requires_grad_()
    z = aggregate(x, A)
    n, c, t = x.shape[:3]
    xr, Ar = x0.clone().double().requires_grad_(), A0.clone().double().requires_grad_()
    ref = torch.einsum("nctv,kvw->nkctw", xr, Ar).reshape(n, 3 * c, t, V)
    assert z.shape == ref.shape and z.is_contiguous()
    torch.testing.assert_close(z, ref.float(), rtol=1e-5, atol=1e-5)
    g = torch.randn_like(z)
    gx, gA = torch.autograd.grad(z, (x, A), g)
    rx, rA = torch.autograd.grad(ref, (xr, Ar), g.double())
    torch.testing.assert_close(gx, rx.float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gA, rA.float(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(aggregate(x0, A0), ref.float(), rtol=1e-5, atol=1e-5)


def test_block_parameter_counts_match_reference_table():
    m = create_backbone("stgcn", "ntu25", 3)
    per_block = [sum(p.numel() for p in b.parameters()) for b in m.blocks]
    assert per_block == [2576, 3200, 3200, 3200, 11616, 12544, 12544, 45760, 49664, 658176]


def test_graph_conv_equals_explicit_formula():
    A = partition_adjacency(get_layout("coco17"), "spatial")
    gc = GraphConv(2, 3, A.shape[0])
    x = torch.randn(2, 2, 4, 17)
    y = gc(x, A)
    W = gc.conv.weight.view(A.shape[0], 3, 2)
    b = gc.conv.bias.view(A.shape[0], 3)
    ref = torch.zeros(2, 3, 4, 17)
    for k in range(A.shape[0]):
        h = torch.einsum("oc,nctv->notv", W[k], x) + b[k].view(1, 3, 1, 1)
        for w in range(17):
            for v in range(17):
                ref[:, :, :, w] += h[:, :, :, v] * A[k, v, w]
    assert torch.allclose(y, ref, atol=1e-5)


def test_tokens_and_pooling_and_persons():
    m = create_backbone("stgcn", "ntu25", 3, hidden_channels=8, out_channels=32).eval()
    x = torch.randn(3, 3, 50, 25, 2)
    pooled, tokens = m(x)
    assert tokens.shape == (3, 13, 32) and pooled.shape == (3, 32)
    assert torch.allclose(pooled, tokens.mean(1), atol=1e-6)
    # persons are folded into the batch and averaged: swapping them changes nothing
    p2, _ = m(x.flip(-1))
    assert torch.allclose(pooled, p2, atol=1e-5)
    # samples are independent in eval mode
    p3, _ = m(x[:1])
    assert torch.allclose(pooled[:1], p3, atol=1e-5)


def test_any_layout_and_custom_graph():
    arm = from_edges([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], name="arm6")
    m = create_backbone("stgcn", arm, 2, hidden_channels=4, out_channels=8)
    pooled, tokens = m(torch.randn(2, 2, 16, 6, 1))
    assert pooled.shape == (2, 8) and tokens.shape == (2, 4, 8)


def test_input_mismatch_errors_name_both_sides():
    m = create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=8)
    with pytest.raises(ValueError, match="V=17 joints.*'ntu25' with V=25"):
        m(torch.randn(1, 3, 10, 17, 1))
    with pytest.raises(ValueError, match="C=2 channels.*in_channels=3"):
        m(torch.randn(1, 2, 10, 25, 1))


def test_registry_errors_and_listing():
    assert "stgcn" in list_backbones()
    with pytest.raises(ValueError, match="registered backbones: .*stgcn"):
        create_backbone("resnet", "ntu25")
    with pytest.raises(ValueError, match="invalid options for backbone 'stgcn'"):
        create_backbone("stgcn", "ntu25", 3, wings=2)


def test_lineage_dropout_and_edge_importance():
    m = create_backbone("stgcn", "ntu25", 3)
    drops = [b.tcn[-1].p for b in m.blocks]
    assert drops == [0.0] + [0.5] * 9
    assert len(m.edge_importance) == 10 and all(p.shape == (3, 25, 25) for p in m.edge_importance)
    m2 = create_backbone("stgcn", "ntu25", 3, edge_importance=False)
    assert count_parameters(m) - count_parameters(m2) == 18_750


@pytest.mark.parametrize("name", ["stgcn", "gin", "dgcnn", "stgcn-student"])
def test_outputs_equal_the_recorded_reference(name):
    """Every backbone, built on the shared SpatioTemporalEncoder, gives the outputs recorded on fixed
    weights by the code before that refactor (tests/models/data/reference_outputs.safetensors;
    float tolerance for the aggregate-first graph convolution, which sums in another order)."""
    from pathlib import Path

    from asma.io import load_tensors
    ref = load_tensors(Path(__file__).parent / "data" / "reference_outputs.safetensors")
    cfg = {"stgcn": dict(hidden_channels=4, out_channels=16), "gin": dict(hidden_channels=4, out_channels=16,
           train_eps=True), "dgcnn": dict(hidden_channels=4, out_channels=16, k=5),
           "stgcn-student": dict(width=4)}[name]
    model = create_backbone(name, "ntu25", 3, **cfg)
    prefix = f"{name}/state/"
    model.load_state_dict({k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}, strict=True)
    with torch.no_grad():
        pooled, tokens = model.eval()(ref["input"])
    torch.testing.assert_close(pooled, ref[f"{name}/pooled"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tokens, ref[f"{name}/tokens"], rtol=1e-5, atol=1e-5)
