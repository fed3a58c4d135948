"""DGCNN backbone: k-NN (self, ties, brute force), the dense EdgeConv against PyG's EdgeConv on
the same k-NN edge_index, hand-computed graphs, and the full encoder (shapes, gradients,
determinism, invariances, ONNX / onnxruntime)."""
from __future__ import annotations


import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import EdgeConv

import asma.models.dgcnn as dgcnn_mod
from asma.models import count_parameters, create_backbone
from asma.models.dgcnn import (DGCNN, DenseEdgeConv, FrameEdgeConv, knn_edge_index, knn_indices)
from asma.models.spatiotemporal import fold_frames

TINY = dict(channels=[8, 8, 16], strides=[1, 2, 1], dropout=0.0, k=4)


def _pyg_edgeconv_like(layer: DenseEdgeConv) -> EdgeConv:
    """PyG EdgeConv(max) whose MLP is a copy of ``layer``'s Linear -> BN -> LeakyReLU(0.2)."""
    mlp = nn.Sequential(nn.Linear(2 * layer.in_channels, layer.out_channels),
                        nn.BatchNorm1d(layer.out_channels), nn.LeakyReLU(layer.negative_slope))
    conv = EdgeConv(mlp, aggr="max")  # its constructor re-initialises mlp: copy weights after
    conv.nn[0].load_state_dict(layer.lin.state_dict())
    conv.nn[1].load_state_dict(layer.bn.state_dict())
    return conv


def _set_identity_bn(layer: DenseEdgeConv) -> None:
    layer.eval()  # BN with running mean 0 / var 1: y = x / sqrt(1 + 1e-5)
    layer.bn.eps = 0.0


# --------------------------------------------------------------------------------------- kNN

def test_knn_matches_brute_force_and_includes_self_first():
    x = torch.randn(3, 9, 4)
    k = 4
    nbr = knn_indices(x, k)
    assert nbr.shape == (3, 9, 4) and nbr.dtype == torch.long
    assert torch.equal(nbr[..., 0], torch.arange(9).expand(3, 9))
    d = ((x.unsqueeze(2) - x.unsqueeze(1)) ** 2).sum(-1)     # exact squared distances
    ref = d.argsort(dim=-1)[..., :k]                        # self has distance 0: first
    assert torch.equal(nbr, ref)                            # same sets, same order


def test_knn_ties_go_to_the_lower_index():
    # identical points: every distance is 0 -> self, then the lowest other indices
    nbr = knn_indices(torch.zeros(1, 5, 3), 3)[0]
    assert nbr.tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1], [3, 0, 1], [4, 0, 1]]
    # 1-D points at 0, 1, -1, 3: node 0 has two neighbours at distance 1 -> index 1 wins
    x = torch.tensor([0.0, 1.0, -1.0, 3.0]).view(1, 4, 1)
    nbr = knn_indices(x, 2)[0]
    assert nbr.tolist() == [[0, 1], [1, 0], [2, 0], [3, 1]]
    # a duplicate of node 1 at index 3: node 1 keeps itself first, then its twin (distance 0)
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [1.0, 1.0]]).view(1, 4, 2)
    assert knn_indices(x, 2)[0].tolist() == [[0, 1], [1, 3], [2, 1], [3, 1]]


def test_knn_validation_and_edge_index_layout():
    with pytest.raises(ValueError, match="k must be"):
        knn_indices(torch.randn(1, 4, 2), 5)
    nbr = torch.tensor([[[0, 1], [1, 0], [2, 1]], [[0, 2], [1, 2], [2, 1]]])  # B=2, V=3, k=2
    ei = knn_edge_index(nbr)
    # row 0 = source (neighbour j), row 1 = target (centre i), graph b offset by b*V
    assert ei.tolist() == [[0, 1, 1, 0, 2, 1, 3, 5, 4, 5, 5, 4],
                           [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]]


# ---------------------------------------------------------------------------------- EdgeConv

@pytest.mark.parametrize("train", [True, False])
def test_dense_edgeconv_equals_pyg_edgeconv(train):
    layer = DenseEdgeConv(5, 7)
    with torch.no_grad():  # non-trivial BN statistics / affine for eval mode
        layer.bn.running_mean.uniform_(-1, 1)
        layer.bn.running_var.uniform_(0.5, 2)
        layer.bn.weight.uniform_(0.5, 1.5)
        layer.bn.bias.uniform_(-1, 1)
    ref = _pyg_edgeconv_like(layer)
    layer.train(train)
    ref.train(train)
    x = torch.randn(6, 10, 5, requires_grad=True)           # 6 frames of 10 nodes
    nbr = knn_indices(x, 4)
    out = layer(x, nbr)
    xr = x.detach().clone().requires_grad_(True)
    ref_out = ref(xr.reshape(60, 5), knn_edge_index(nbr)).view(6, 10, 7)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    ref_out.sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.lin.weight.grad, ref.nn[0].weight.grad, rtol=1e-4, atol=1e-5)


def test_frame_edgeconv_equals_pyg_on_batch_of_frame_graphs():
    layer = FrameEdgeConv(3, 6, k=5)
    x = torch.randn(2, 3, 4, 12)                             # (B, C, T, V): 8 frame graphs
    out = layer(x)
    frames = fold_frames(x)
    graphs = []
    for f in frames:                                         # each frame's own k-NN graph
        nbr = knn_indices(f.unsqueeze(0), 5)
        graphs.append(Data(x=f, edge_index=knn_edge_index(nbr)))
    batch = Batch.from_data_list(graphs)
    ref = _pyg_edgeconv_like(layer.edge)(batch.x, batch.edge_index).view(8, 12, 6)
    torch.testing.assert_close(fold_frames(out), ref, rtol=1e-5, atol=1e-5)


def test_edgeconv_three_node_path_by_hand():
    # 1-D points 0, 1, 3, k = 2 (self + nearest): N(0) = {0, 1}, N(1) = {1, 0}, N(2) = {2, 1}
    x = torch.tensor([0.0, 1.0, 3.0]).view(1, 3, 1)
    nbr = knn_indices(x, 2)
    assert nbr[0].tolist() == [[0, 1], [1, 0], [2, 1]]
    layer = DenseEdgeConv(1, 2)
    _set_identity_bn(layer)
    with torch.no_grad():
        layer.lin.bias.zero_()
        # channel 0: x_i + (x_j - x_i) = x_j  -> max_j x_j
        # channel 1: (x_j - x_i)              -> max_j LeakyReLU(x_j - x_i), self gives 0
        layer.lin.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    out = layer(x, nbr)[0]
    expected = torch.tensor([[1.0, 1.0],        # max(0, 1);  max(0, 1)
                             [1.0, 0.0],        # max(1, 0);  max(0, -0.2)
                             [3.0, 0.0]])       # max(3, 1);  max(0, -0.4)
    torch.testing.assert_close(out, expected)


def test_edgeconv_four_points_by_hand():
    # points (0,0), (1,0), (0,2), (3,3); k = 2: nearest others are 1, 0, 0 and 2
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]).view(1, 4, 2)
    nbr = knn_indices(x, 2)
    assert nbr[0].tolist() == [[0, 1], [1, 0], [2, 0], [3, 2]]
    layer = DenseEdgeConv(2, 2)
    _set_identity_bn(layer)
    with torch.no_grad():
        layer.lin.bias.zero_()
        layer.lin.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]))  # h = x_j
    out = layer(x, nbr)[0]                      # coordinate-wise max over {i, nn(i)}
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]))


# ---------------------------------------------------------------------------------- backbone

def test_dgcnn_is_a_dgcnn():
    model = create_backbone("dgcnn", "ntu25", in_channels=3, **TINY)  # shapes, grads: test_spatiotemporal.py
    assert isinstance(model, DGCNN) and model.out_dim == 16 and model.k == 4


def test_dgcnn_recomputes_knn_at_every_layer(monkeypatch):
    calls = []
    real = dgcnn_mod.knn_indices

    def spy(h, k, *args, **kwargs):
        calls.append((tuple(h.shape), k))
        return real(h, k, *args, **kwargs)

    monkeypatch.setattr(dgcnn_mod, "knn_indices", spy)
    model = create_backbone("dgcnn", **TINY).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 6, 25, 2))
    # one k-NN per block, on that block's input features (N*M*T, V, C_in); T: 6, 6, 3
    assert calls == [((12, 25, 3), 4), ((12, 25, 8), 4), ((6, 25, 8), 4)]


def test_dgcnn_person_and_joint_permutation_invariance():
    model = create_backbone("dgcnn", **TINY).eval()
    x = torch.randn(2, 3, 8, 25, 2)
    with torch.no_grad():
        a = model(x)
        b = model(x.flip(-1))
    torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-6)
    # Without the per-joint data BN, DGCNN ignores bones and joint order: relabelling the joints
    # leaves the (joint-averaged) outputs unchanged.
    model = create_backbone("dgcnn", data_bn=False, **TINY).eval()
    perm = torch.randperm(25)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[1], model(x[:, :, :, perm])[1], rtol=1e-4, atol=1e-5)


def test_dgcnn_k_validation_and_defaults():
    model = create_backbone("dgcnn")
    assert model.k == 8 and len(model.blocks) == 10 and model.out_dim == 256
    # formula: EdgeConv Linear 2*C_in*C + C, BN 2C; TCN BN 2C + 9*C*C + C + BN 2C; residual
    # (blocks 2.., when the shape changes) C_in*C + C + BN 2C; data BN 2*3*25
    total, c_in = 150, 3
    for i, (c, s) in enumerate(zip(model.channels, model.strides)):
        total += 2 * c_in * c + c + 2 * c + 4 * c + 9 * c * c + c
        if i > 0 and not (c_in == c and s == 1):
            total += c_in * c + 3 * c
        c_in = c
    assert count_parameters(model) == total == 776_726
    w = model.blocks[3].gcn.edge.lin.weight.clone()
    model.reset_parameters()
    assert not torch.equal(w, model.blocks[3].gcn.edge.lin.weight)
    with pytest.raises(ValueError, match="k must satisfy"):
        create_backbone("dgcnn", "coco17", k=17)
    with pytest.raises(ValueError, match="k must satisfy"):
        create_backbone("dgcnn", k=0)
    m = create_backbone("dgcnn", "coco17", k=16, channels=[4], strides=[1]).eval()
    assert m(torch.randn(1, 3, 4, 17, 1))[0].shape == (1, 4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_dgcnn_onnx_export_and_onnxruntime(onnx_roundtrip):
    proto = onnx_roundtrip(create_backbone("dgcnn", "coco17", **TINY), 17)
    assert "TopK" in {n.op_type for n in proto.graph.node}  # the kNN graph is built inside the model
