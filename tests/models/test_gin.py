"""GIN backbone: the dense per-frame layer against PyG's sparse GINConv, hand-computed graphs,
and the full encoder (shapes, gradients, determinism, invariances, ONNX)."""
from __future__ import annotations


import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINConv

from asma.graph import from_edges, get_layout
from asma.models import count_parameters, create_backbone
from asma.models.gin import GIN, FrameGINConv
from asma.models.spatiotemporal import fold_frames, unfold_frames

TINY = dict(channels=[8, 8, 16], strides=[1, 2, 1], dropout=0.0)


def _identity_mlp(layer: FrameGINConv) -> None:
    """Make h_Theta the identity on non-negative inputs (1x1 weights 1, biases 0)."""
    with torch.no_grad():
        for lin in (layer.conv.nn[0], layer.conv.nn[2]):
            lin.weight.copy_(torch.eye(lin.out_features, lin.in_features))
            lin.bias.zero_()


def _sparse_gin_like(layer: FrameGINConv) -> GINConv:
    """PyG's sparse GINConv with a copy of ``layer``'s MLP and epsilon."""
    ref = GINConv(nn.Sequential(nn.Linear(layer.in_channels, layer.out_channels), nn.ReLU(),
                                nn.Linear(layer.out_channels, layer.out_channels)),
                  eps=float(layer.conv.eps), train_eps=False)
    ref.nn.load_state_dict(layer.conv.nn.state_dict())
    return ref


def test_fold_unfold_roundtrip():
    x = torch.randn(2, 3, 4, 5)
    f = fold_frames(x)
    assert f.shape == (8, 5, 3)
    assert torch.equal(f[1 * 4 + 2], x[1, :, 2].t())  # frame b*T + t holds x[b, :, t, :]^T
    assert torch.equal(unfold_frames(f, 2), x)


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_dense_gin_equals_pyg_ginconv_on_batched_frames(eps):
    skel = get_layout("ntu25")
    layer = FrameGINConv(3, 6, skel.adjacency(), eps=eps)
    x = torch.randn(2, 3, 4, 25)  # (B, C, T, V)
    out = layer(x)
    # PyG reference: one Data per frame, in fold order (b, t), batched into a disjoint union.
    frames = fold_frames(x)
    batch = Batch.from_data_list([Data(x=f, edge_index=skel.edge_index) for f in frames])
    ref = _sparse_gin_like(layer)(batch.x, batch.edge_index).view(2 * 4, 25, 6)
    torch.testing.assert_close(fold_frames(out), ref, rtol=1e-5, atol=1e-5)


def test_gin_three_node_path_by_hand():
    # 0 - 1 - 2 with scalar features 1, 2, 4 and an identity MLP:
    # x'_i = (1 + eps) x_i + sum_{j ~ i} x_j
    path = from_edges([(0, 1), (1, 2)], 3)
    layer = FrameGINConv(1, 1, path.adjacency())
    _identity_mlp(layer)
    x = torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 1, 3)
    assert layer(x).flatten().tolist() == [1 + 2, 2 + 1 + 4, 4 + 2]
    layer.conv.eps.fill_(0.5)
    assert layer(x).flatten().tolist() == [1.5 + 2, 3 + 1 + 4, 6 + 2]


def test_gin_four_node_star_by_hand_and_relu():
    # centre 0 joined to 1, 2, 3; features 1, 2, 3, -9 and an identity MLP (ReLU in the middle)
    star = from_edges([(0, 1), (0, 2), (0, 3)], 4)
    layer = FrameGINConv(1, 1, star.adjacency())
    _identity_mlp(layer)
    x = torch.tensor([1.0, 2.0, 3.0, -9.0]).view(1, 1, 1, 4)
    # centre: 1 + 2 + 3 - 9 = -3 -> ReLU 0; leaves: 2 + 1, 3 + 1, -9 + 1 -> 0
    assert layer(x).flatten().tolist() == [0.0, 3.0, 4.0, 0.0]


def test_gin_frames_are_independent_graphs():
    # changing one frame must not change the others (no leakage through the folded batch)
    layer = FrameGINConv(3, 4, get_layout("coco17").adjacency())
    x = torch.randn(1, 3, 3, 17)
    y = x.clone()
    y[:, :, 1] += 5.0
    a, b = layer(x), layer(y)
    assert torch.equal(a[:, :, 0], b[:, :, 0]) and torch.equal(a[:, :, 2], b[:, :, 2])
    assert not torch.allclose(a[:, :, 1], b[:, :, 1])


def test_reset_parameters_restores_eps():
    layer = FrameGINConv(3, 4, get_layout("coco17").adjacency(), eps=0.1, train_eps=True)
    assert isinstance(layer.conv.eps, nn.Parameter)
    with torch.no_grad():
        layer.conv.eps.fill_(2.0)
    w = layer.conv.nn[0].weight.clone()
    layer.reset_parameters()
    assert float(layer.conv.eps.detach()) == pytest.approx(0.1)
    assert not torch.equal(w, layer.conv.nn[0].weight)


def test_gin_backbone_is_seeded():
    model = create_backbone("gin", "ntu25", in_channels=3, **TINY)  # shapes, grads: test_spatiotemporal.py
    assert isinstance(model, GIN) and model.out_dim == 16 and model.temporal_stride == 2
    torch.manual_seed(1)
    m1 = create_backbone("gin", **TINY)
    torch.manual_seed(1)
    m2 = create_backbone("gin", **TINY)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_gin_person_permutation_invariance():
    model = create_backbone("gin", **TINY).eval()
    x = torch.randn(3, 3, 8, 25, 2)
    with torch.no_grad():
        a, ta = model(x)
        b, tb = model(x.flip(-1))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ta, tb, rtol=1e-5, atol=1e-6)


def test_gin_joint_relabelling_equivariance():
    # Relabel the joints of the layout and of the input: same weights, same output (no data BN,
    # which is per-joint by design). GIN depends only on the graph, not on joint numbering.
    layout = get_layout("coco17")
    perm = torch.randperm(17)                    # new joint p holds old joint perm[p]
    inv = torch.argsort(perm)
    edges = [(int(inv[a]), int(inv[b])) for a, b in layout.edge_index.t().tolist() if a < b]
    relabelled = from_edges(edges, 17)
    m1 = GIN(layout, 3, data_bn=False, **TINY).eval()
    m2 = GIN(relabelled, 3, data_bn=False, **TINY).eval()
    m2.load_state_dict(m1.state_dict())
    x = torch.randn(2, 3, 6, 17, 1)
    with torch.no_grad():
        torch.testing.assert_close(m1(x)[1], m2(x[:, :, :, perm])[1], rtol=1e-5, atol=1e-5)


def test_gin_default_size_matches_teacher_order():
    gin = create_backbone("gin")
    teacher = create_backbone("stgcn")
    assert len(gin.blocks) == len(teacher.blocks) == 10
    assert gin.out_dim == teacher.out_dim == 256
    assert gin.channels == [16] * 4 + [32] * 3 + [64] * 2 + [256]
    assert 0.8 < count_parameters(gin) / count_parameters(teacher) < 1.25
    # formula: MLP C_in*C + C + C*C + C; TCN BN 2C + 9*C*C + C + BN 2C; residual (blocks 2..,
    # when the shape changes) C_in*C + C + BN 2C; data BN 2*3*25
    total, c_in = 150, 3
    for i, (c, s) in enumerate(zip(gin.channels, gin.strides)):
        total += c_in * c + c + c * c + c + 4 * c + 9 * c * c + c
        if i > 0 and not (c_in == c and s == 1):
            total += c_in * c + 3 * c
        c_in = c
    assert count_parameters(gin) == total == 828_102


def test_gin_reset_parameters():
    model = create_backbone("gin", **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.blocks[0].tcn[0].weight.fill_(3.0)
    model.reset_parameters()
    after = model.state_dict()
    assert torch.equal(after["blocks.0.tcn.0.weight"], torch.ones(8))
    assert not torch.equal(before["blocks.1.gcn.conv.nn.0.weight"],
                           after["blocks.1.gcn.conv.nn.0.weight"])


def test_gin_input_validation():
    model = create_backbone("gin", **TINY)
    with pytest.raises(ValueError, match="V=17"):
        model(torch.randn(1, 3, 8, 17, 2))
    with pytest.raises(ValueError, match="in_channels"):
        model(torch.randn(1, 2, 8, 25, 2))
    with pytest.raises(ValueError, match="equal length"):
        create_backbone("gin", channels=[8, 8], strides=[1])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_gin_onnx_export(onnx_roundtrip):
    onnx_roundtrip(create_backbone("gin", "coco17", **TINY), 17)  # values compared inside
