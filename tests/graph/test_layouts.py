import pytest

from asma.graph import (Skeleton, from_edges, get_layout, list_layouts, partition_adjacency,
                        skeleton_from_dict)

# Reference notes §1.1: degree column of the ST-GCN graph, 1-based joints 1..25.
NTU_DEGREES = [3, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 1, 4, 1, 2, 1, 2]
NTU_ANATOMICAL_DEGREES = [3, 2, 2, 1, 2, 2, 2, 3, 2, 2, 2, 3, 2, 2, 2, 1, 2, 2, 2, 1, 4, 1, 1, 1, 1]
NTU_FLIP = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23, 24, 21, 22]
NTU_BONES_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                    (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12)]


def test_builtin_layouts_are_pyg_data_and_valid():
    expected = {"ntu25": (25, 24), "ntu25-anatomical": (25, 24), "kinect20": (20, 19),
                "openpose18": (18, 17), "coco17": (17, 16), "mediapipe33": (33, 39), "penn13": (13, 12),
                "hdm05": (31, 30)}
    assert set(expected) <= set(list_layouts())
    for name, (V, E) in expected.items():
        s = get_layout(name)
        assert isinstance(s, Skeleton)
        assert s.num_nodes == V and s.edge_index.shape == (2, 2 * E)
        # undirected and no duplicates
        pairs = set(map(tuple, s.edge_index.t().tolist()))
        assert len(pairs) == 2 * E and all((b, a) in pairs for a, b in pairs)
        # every layout is connected: the bone tree reaches every joint
        assert int((s.bfs_parents() >= 0).sum()) == V - 1


def test_ntu25_degrees_match_reference_table():
    assert get_layout("ntu25").degree().int().tolist() == NTU_DEGREES
    assert get_layout("ntu25-anatomical").degree().int().tolist() == NTU_ANATOMICAL_DEGREES


def test_ntu25_flip_and_bones_match_lineage():
    s = get_layout("ntu25")
    assert s.flip_perm.tolist() == NTU_FLIP
    assert (s.bone_pairs + 1).tolist() == [list(p) for p in NTU_BONES_1BASED]
    assert s.joint_names[s.center] == "SpineShoulder"


def test_other_layout_degrees_and_flips():
    assert get_layout("openpose18").degree().int().tolist() == [3, 3, 3, 2, 1, 3, 2, 1, 2, 2, 1, 2, 2, 1, 2, 2, 1, 1]
    assert get_layout("coco17").degree().int().tolist() == [4, 2, 2, 1, 1, 3, 3, 2, 2, 1, 1, 2, 2, 2, 2, 1, 1]
    op = get_layout("openpose18")
    assert op.flip_perm[2] == 5 and op.flip_perm[14] == 15 and op.flip_perm[0] == 0
    mp = get_layout("mediapipe33")
    assert mp.joint_names[int(mp.flip_perm[11])] == "right_shoulder"
    k = get_layout("kinect20")
    assert k.joint_names[k.center] == "ShoulderCenter"


def test_penn13_and_hdm05_layouts():
    p = get_layout("penn13")
    assert p.degree().int().tolist() == [2, 3, 3, 2, 2, 1, 1, 2, 2, 2, 2, 1, 1]
    assert p.flip_perm.tolist() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]
    assert p.joint_names[p.center] == "head"
    h = get_layout("hdm05")
    names = h.joint_names
    assert names[h.center] == "thorax" and h.degree()[names.index("thorax")] == 4  # upperback, neck, clavicles
    # bones point away from the thorax (the centre): the knee (rfemur end) minus the hip (rhipjoint end)
    assert [names[int(b)] for b in h.bone_pairs[names.index("rfemur")]] == ["rfemur", "rhipjoint"]
    assert names[int(h.flip_perm[names.index("lthumb")])] == "rthumb"
    assert int(h.flip_perm[names.index("lowerneck")]) == names.index("lowerneck")  # not a left joint


def test_unknown_layout_lists_known():
    with pytest.raises(ValueError, match="known layouts: .*ntu25"):
        get_layout("ntu26")


def test_from_edges_custom_hand_with_isolated_joint():
    s = from_edges([(0, 1), (1, 2), (2, 3), (0, 4)], num_joints=6, center=0,
                   joint_names=["wrist", "a", "b", "c", "d", "loose"])
    assert s.degree().tolist() == [2, 2, 2, 1, 1, 0]
    assert s.bone_pairs.tolist() == [[0, 0], [1, 0], [2, 1], [3, 2], [4, 0], [5, 5]]
    assert skeleton_from_dict(s.to_dict()).same_as(s)
    A = partition_adjacency(s, "spatial")
    assert A.shape == (3, 6, 6)
    # the isolated joint only aggregates itself
    assert A[:, :, 5].sum() == pytest.approx(1.0) and A[0, 5, 5] == 1.0


@pytest.mark.parametrize("edges,msg", [([(0, 0)], "self loop"), ([(0, 5)], ">= num_joints")])
def test_from_edges_rejects_bad_edges(edges, msg):
    with pytest.raises(ValueError, match=msg):
        from_edges(edges, num_joints=3)


def test_from_edges_one_based_and_flip_pairs():
    s = from_edges([(1, 2), (1, 3)], one_based=True, flip_pairs=[(2, 3)], center=1)
    assert s.flip_perm.tolist() == [0, 2, 1]
    assert s.center == 0
