"""Tests for the embedded synthetic dataset (asma.data.synthetic)."""
import numpy as np
import pytest

from asma.data.arrays import SkeletonArrays
from asma.data.synthetic import SyntheticConfig, class_names, make_synthetic, split
from asma.graph import Skeleton, from_edges, get_layout, list_layouts

SMALL = dict(num_classes=4, clips_per_class=6, num_frames=12, num_subjects=4)


def robot6() -> Skeleton:
    """A 6-joint serial robot arm rooted at its base."""
    return from_edges([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], name="robot6")


def two_person_classes(arrays: SkeletonArrays) -> np.ndarray:
    """Labels whose clips hold two persons (the interactions come last; see class_names)."""
    names = class_names(arrays.num_classes, 2)
    single = len([n for n in names if n not in ("handshake", "push", "hug", "high_five",
                                                "kick_other_person")])
    return np.arange(single, arrays.num_classes)


# ---------------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("layout", list_layouts())
def test_shapes_and_dtypes_for_every_builtin_layout(layout):
    out = make_synthetic(layout=layout, **SMALL)
    V = get_layout(layout).num_joints
    assert isinstance(out, SkeletonArrays)
    assert out.shape == (24, 3, 12, V, 2)
    assert out.data.dtype == np.float32 and out.labels.dtype == np.int64
    assert np.isfinite(out.data).all()
    assert out.layout == layout and len(out.class_names) == 4
    assert np.array_equal(np.bincount(out.labels), [6, 6, 6, 6])
    for key in ("subject", "camera", "replication", "length"):
        assert out.meta[key].dtype == np.int64 and out.meta[key].shape == (24,)
    assert (out.meta["length"] == 12).all()
    assert len(out.names) == 24 and len(set(out.names)) == 24


@pytest.mark.parametrize("persons", [1, 2])
def test_custom_six_joint_layout(persons):
    skel = robot6()
    out = make_synthetic(layout=skel, num_persons=persons, **SMALL)
    assert out.shape == (24, 3, 12, 6, persons)
    assert out.layout is skel and out.skeleton is skel
    assert out.class_names == class_names(4, persons, layout=skel)
    assert all(n.startswith(("motion_", "pair_motion_")) for n in out.class_names)
    assert np.abs(out.data).max() > 0


def test_custom_graph_named_like_a_builtin_gets_the_generic_generator():
    impostor = from_edges([(i, i + 1) for i in range(24)], name="ntu25")   # a 25-joint chain
    out = make_synthetic(layout=impostor, **SMALL)
    assert out.class_names[0] == "motion_00"
    assert make_synthetic(layout=get_layout("ntu25"), **SMALL).class_names[0] == "wave_right_hand"


def test_channels_and_confidence():
    base = dict(SMALL, drop_prob=0.1)
    xyz = make_synthetic(**base)
    xy = make_synthetic(channels=2, **base)
    assert xy.shape[1] == 2
    # 2D drops z of the very same clips (same noise and the same dropped joints).
    np.testing.assert_array_equal(xy.data, xyz.data[:, :2])
    assert make_synthetic(channels=2, with_confidence=True, **base).shape[1] == 3
    conf = make_synthetic(with_confidence=True, **base)
    assert conf.shape[1] == 4
    np.testing.assert_array_equal(conf.data[:, :3], xyz.data)
    assert set(np.unique(conf.data[:, 3]).tolist()) <= {0.0, 1.0}


def test_config_object_layout_argument_and_overrides_combine():
    cfg = SyntheticConfig(num_classes=3, clips_per_class=3, num_frames=8)
    out = make_synthetic(cfg, layout="coco17", num_persons=1)
    assert out.shape == (9, 3, 8, 17, 1) and out.layout == "coco17"
    assert cfg.layout == "ntu25"     # the caller's config is not modified


# ---------------------------------------------------------------------------------- determinism

def test_same_seed_is_bit_identical_and_seeds_differ():
    a = make_synthetic(seed=3, **SMALL)
    b = make_synthetic(seed=3, **SMALL)
    c = make_synthetic(seed=4, **SMALL)
    assert a.data.tobytes() == b.data.tobytes()
    assert np.array_equal(a.labels, b.labels) and a.names == b.names
    assert all(np.array_equal(a.meta[k], b.meta[k]) for k in a.meta)
    assert not np.array_equal(a.data, c.data)
    d, e = (make_synthetic(layout=robot6(), seed=s, **SMALL) for s in (5, 5))
    assert d.data.tobytes() == e.data.tobytes()


# ---------------------------------------------------------------------------------- content

@pytest.mark.parametrize("layout", ["ntu25", "coco17"])
def test_centre_joint_of_person0_is_exactly_zero(layout):
    out = make_synthetic(layout=layout, **SMALL)
    c = get_layout(layout).center
    assert (out.data[:, :, :, c, 0] == 0).all()
    raw = make_synthetic(layout=layout, center=False, **SMALL)
    assert (raw.data[:, :, :, c, 0] != 0).any()
    # Uncentred coordinates are camera coordinates: the performer stands ~3 m in front.
    assert 2.0 < np.median(raw.data[:, 2][raw.data[:, 2] != 0]) < 4.5


def test_person_slots_one_and_two_person_classes():
    out = make_synthetic(num_classes=8, clips_per_class=6, num_frames=12, num_subjects=4)
    pairs = two_person_classes(out)
    assert len(pairs) == 2
    second = np.abs(out.data[..., 1]).reshape(len(out), -1).max(1)
    is_pair = np.isin(out.labels, pairs)
    assert (second[~is_pair] == 0).all()
    assert (second[is_pair] > 0).all()


def test_bone_lengths_constant_within_a_clip_and_vary_across_subjects():
    out = make_synthetic(num_classes=5, clips_per_class=24, num_frames=20, num_subjects=8,
                         noise_std=0.0, drop_prob=0.0)
    pairs = get_layout("ntu25").bone_pairs.numpy()
    bones = out.data[:, :, :, pairs[:, 0], 0] - out.data[:, :, :, pairs[:, 1], 0]
    length = np.linalg.norm(bones, axis=1)                   # (N, T, V)
    assert (length.max(1) - length.min(1)).max() < 1e-4        # rigid within a clip
    per_clip = length.mean(1)                                  # (N, V)
    subject = out.meta["subject"]
    means = np.stack([per_clip[subject == s].mean(0) for s in np.unique(subject)])
    for s in np.unique(subject):                               # the same body in every clip
        assert np.ptp(per_clip[subject == s], axis=0).max() < 1e-4
    gaps = np.abs(means[:, None] - means[None]).max(-1)
    assert gaps[~np.eye(len(means), dtype=bool)].min() > 5e-3  # every pair of subjects differs


def test_unconnected_joint_of_custom_layout_stays_at_fixed_offset():
    skel = from_edges([(0, 1), (1, 2), (2, 3)], num_joints=5, name="with_loose_joint")
    out = make_synthetic(layout=skel, noise_std=0.0, drop_prob=0.0, num_persons=1, **SMALL)
    dist = np.linalg.norm(out.data[:, :, :, 4, 0], axis=1)   # centre joint 0 is the origin
    assert (dist.max(1) - dist.min(1)).max() < 1e-5
    assert np.abs(out.data[:, :, :, 3, 0]).max() > 0


def test_dropped_joints_are_zero_with_zero_confidence():
    out = make_synthetic(with_confidence=True, drop_prob=0.1, num_persons=1, **SMALL)
    xyz, conf = out.data[:, :3], out.data[:, 3]
    lost = conf == 0
    assert 0.05 < lost.mean() < 0.15
    assert (xyz.transpose(0, 2, 3, 4, 1)[lost] == 0).all()
    clean = make_synthetic(with_confidence=True, drop_prob=0.0, **SMALL)
    present = np.abs(clean.data[:, :3]).reshape(len(clean), -1, 2).max(1) > 0   # (N, M)
    conf = clean.data[:, 3]
    assert (conf.transpose(0, 3, 1, 2)[present] == 1).all()
    assert (conf.transpose(0, 3, 1, 2)[~present] == 0).all()


def test_class_names_and_limits():
    names = class_names(12, 2)
    assert names == make_synthetic(**dict(SMALL, num_classes=12)).class_names
    assert names[-3:] == ["handshake", "push", "hug"] and len(set(names)) == 12
    assert "handshake" not in class_names(16, 1)
    assert len(class_names(21, 2)) == 21
    with pytest.raises(ValueError, match="only 21 distinct action generators"):
        class_names(22, 2)
    with pytest.raises(ValueError, match="only 16"):
        make_synthetic(num_classes=17, num_persons=1)


@pytest.mark.parametrize("bad, message", [
    (dict(num_frames=1), "num_frames"), (dict(channels=4), "channels"),
    (dict(num_persons=3), "num_persons"), (dict(num_classes=0), "num_classes"),
    (dict(drop_prob=1.0), "drop_prob"), (dict(noise_std=-1.0), "noise_std"),
    (dict(speed_range=(2.0, 1.0)), "speed_range"), (dict(seed=-1), "seed"),
    (dict(layout="no-such-layout"), "unknown layout"), (dict(colour="red"), "colour"),
])
def test_invalid_settings_raise_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic(**bad)


def test_custom_layout_without_bones_at_the_centre_is_rejected():
    skel = from_edges([(1, 2)], num_joints=3, center=0, name="detached")
    with pytest.raises(ValueError, match="no bone is connected"):
        make_synthetic(layout=skel, **SMALL)


# ---------------------------------------------------------------------------------- splits

def test_splits_are_disjoint_and_cover_everything():
    out = make_synthetic(num_classes=3, clips_per_class=24, num_frames=8, num_subjects=8)
    train, test = split(out, "xsub")
    assert len(train) + len(test) == len(out)
    assert set(train.meta["subject"]) == {1, 3, 5, 7} and set(test.meta["subject"]) == {2, 4, 6, 8}
    train, test = split(out, "xview")
    assert set(train.meta["camera"]) == {2, 3} and set(test.meta["camera"]) == {1}
    assert len(train) + len(test) == len(out)
    assert set(train.labels) == set(test.labels) == {0, 1, 2}
    with pytest.raises(ValueError, match="unknown split protocol 'xsetup'"):
        split(out, "xsetup")
    with pytest.raises(ValueError, match="empty"):
        split(make_synthetic(num_cameras=1, **SMALL), "xview")


# ---------------------------------------------------------------------------------- learnability

def ridge_test_accuracy(train_x, train_y, test_x, test_y, lams):
    """Best test accuracy of one-vs-rest ridge regression (least squares on one-hot targets)
    over the regularisation strengths ``lams``, solved in the dual (features >> clips)."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    A, B = (train_x - mu) / sd, (test_x - mu) / sd
    Y = np.eye(train_y.max() + 1)[train_y]
    Y = Y - Y.mean(0)
    gram, cross = (A @ A.T).astype(np.float64), (B @ A.T).astype(np.float64)
    eye = np.eye(len(A))
    return max(((cross @ np.linalg.solve(gram + lam * eye, Y)).argmax(1) == test_y).mean()
               for lam in lams)


def motion_features(x):
    """Simple view-robust motion statistics per person and joint: mean/std/max/min of height
    (y) and of horizontal distance from the centre joint, and mean speed; dropped joints
    (all-zero) are ignored."""
    seen = np.abs(x).sum(1) > 0                                     # (N, T, V, M)
    step = seen[:, 1:] & seen[:, :-1]
    speed = np.linalg.norm(np.diff(x, axis=2), axis=1) * step
    feats = [speed.sum(1) / step.sum(1).clip(1)]
    for value in (x[:, 1], np.linalg.norm(x[:, [0, 2]], axis=1)):
        count = seen.sum(1).clip(1)
        mean = (value * seen).sum(1) / count
        std = np.sqrt((((value - mean[:, None]) ** 2) * seen).sum(1) / count)
        feats += [mean, std, np.where(seen, value, -9).max(1), np.where(seen, value, 9).min(1)]
    return np.concatenate([f.reshape(len(x), -1) for f in feats], 1)


def test_default_dataset_is_learnable_but_not_linearly_trivial():
    data = make_synthetic()
    assert data.shape == (1440, 3, 50, 25, 2)
    train, test = split(data, "xsub")
    chance = 1.0 / data.num_classes
    raw = ridge_test_accuracy(train.data.reshape(len(train), -1), train.labels,
                              test.data.reshape(len(test), -1), test.labels,
                              lams=(10.0, 100.0, 1e3, 1e4))
    motion = ridge_test_accuracy(motion_features(train.data), train.labels,
                                 motion_features(test.data), test.labels, lams=(1.0, 10.0, 100.0))
    assert raw < 0.9                  # nuisance keeps raw coordinates from being enough ...
    assert motion > 0.8               # ... while motion separates the classes
    assert motion > raw and raw > 3 * chance


def test_custom_layout_is_learnable():
    data = make_synthetic(layout=robot6(), num_classes=8, clips_per_class=60, num_persons=1,
                          num_frames=40)
    train, test = split(data, "xsub")
    acc = ridge_test_accuracy(motion_features(train.data), train.labels,
                              motion_features(test.data), test.labels, lams=(1.0, 10.0, 100.0))
    assert acc > 4.0 / data.num_classes
