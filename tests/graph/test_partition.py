import pytest
import torch

from asma.graph import get_layout, partition_adjacency


def test_lineage_spatial_partition_ntu25():
    # Reference notes §2.1: with max_hop=1 and truncated centre distances, nnz = 25 / 40 / 8.
    A = partition_adjacency(get_layout("ntu25"), "spatial", max_hop=1, center_distance="truncated")
    assert A.shape == (3, 25, 25)
    assert [(a != 0).sum().item() for a in A] == [25, 40, 8]
    # A2 holds exactly the 8 entries whose source is strictly closer to the centre (1-based).
    src_tgt = {(int(j) + 1, int(i) + 1) for j, i in (A[2] != 0).nonzero().tolist()}
    assert src_tgt == {(21, 2), (21, 3), (21, 5), (21, 9), (2, 1), (3, 4), (5, 6), (9, 10)}
    # columns of the sum are a mean over the closed neighbourhood
    assert torch.allclose(A.sum(dim=(0, 1)), torch.ones(25))
    deg = get_layout("ntu25").degree()
    assert torch.allclose(torch.diagonal(A[0]), 1.0 / (deg + 1))
    assert A[0, 20, 20] == pytest.approx(0.2)


def test_bfs_spatial_partition_is_textbook():
    A = partition_adjacency(get_layout("ntu25"), "spatial", center_distance="bfs")
    assert [(a != 0).sum().item() for a in A] == [25, 24, 24]
    # centripetal (A1) edges point from the joint farther from the centre to the nearer one
    assert A[1, 0, 1] > 0 and A[1, 1, 0] == 0  # SpineBase -> SpineMid


def test_uniform_and_distance():
    s = get_layout("coco17")
    U = partition_adjacency(s, "uniform")
    assert U.shape == (1, 17, 17) and torch.allclose(U.sum(dim=(0, 1)), torch.ones(17))
    D = partition_adjacency(s, "distance", max_hop=2)
    assert D.shape == (3, 17, 17)
    assert torch.count_nonzero(D[0]) == 17
    # 2-hop pairs exist (e.g. left_ear -> nose via left_eye)
    assert D[2, 3, 0] > 0 and D[1, 3, 0] == 0


def test_bad_strategy():
    with pytest.raises(ValueError, match="unknown partition strategy"):
        partition_adjacency(get_layout("ntu25"), "star")
