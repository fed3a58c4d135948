import pytest
import torch

from asma.data.streams import bone_stream, motion_stream, to_stream
from asma.data.transforms import (Augment, AugmentConfig, flip, resample_time, rotate, shear,
                                  temporal_crop_resize)
from asma.graph import get_layout


def test_resample_identity_and_linear_interpolation():
    x = torch.arange(10.0).view(1, 1, 10, 1, 1)
    same = resample_time(x, torch.zeros(1), torch.full((1,), 10.0), 10)
    assert torch.allclose(same, x)
    half = resample_time(x, torch.zeros(1), torch.full((1,), 10.0), 5)
    # half-pixel centres: output frame i samples input position 2i + 0.5
    assert torch.allclose(half.flatten(), torch.tensor([0.5, 2.5, 4.5, 6.5, 8.5]))


def test_crop_resize_windows_are_per_sample_and_inside_clip():
    x = torch.arange(50.0).view(1, 1, 50, 1, 1).repeat(64, 1, 1, 1, 1)
    y = temporal_crop_resize(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    span = y[:, 0, -1, 0, 0] - y[:, 0, 0, 0, 0]
    assert (span >= 0.5 * 50 - 2).all() and (span <= 50).all()
    assert y.min() >= 0 and y.max() <= 49
    assert len(set(y[:, 0, 0, 0, 0].tolist())) > 30  # different crops per sample


def test_rotation_preserves_lengths_and_shear_identity_diagonal():
    x = torch.randn(16, 3, 5, 4, 2)
    r = rotate(x, 30.0, 3, torch.Generator().manual_seed(0))
    assert torch.allclose(r.norm(dim=1), x.norm(dim=1), atol=1e-5)
    assert not torch.allclose(r, x)
    s0 = shear(x, 0.0, 3)
    assert torch.allclose(s0, x)
    # confidence channel is untouched
    x4 = torch.randn(4, 4, 5, 4, 1)
    assert torch.equal(rotate(x4, 30, 3)[:, 3], x4[:, 3])
    assert torch.equal(shear(x4, 0.5, 3)[:, 3], x4[:, 3])


def test_flip_uses_layout_permutation_per_sample():
    skel = get_layout("ntu25")
    x = torch.arange(25.0).view(1, 1, 1, 25, 1).repeat(200, 1, 1, 1, 1)
    y = flip(x, skel.flip_perm, 0.5, torch.Generator().manual_seed(0))
    flipped = (y[:, 0, 0, 4, 0] == 8)
    assert 60 < flipped.sum() < 140
    assert torch.equal(y[flipped][0].flatten(), skel.flip_perm.float())
    assert torch.equal(y[~flipped][0].flatten(), torch.arange(25.0))


def test_augment_is_deterministic_given_generator():
    skel = get_layout("ntu25")
    aug = Augment(AugmentConfig(), skel.flip_perm, 3)
    x = torch.randn(4, 3, 20, 25, 2)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape


def test_streams():
    skel = get_layout("ntu25")
    x = torch.randn(2, 3, 6, 25, 2)
    b = bone_stream(x, skel.bone_pairs)
    assert torch.equal(b[:, :, :, 20], torch.zeros_like(b[:, :, :, 20]))  # centre bone
    assert torch.allclose(b[:, :, :, 3], x[:, :, :, 3] - x[:, :, :, 2])  # head - neck
    m = motion_stream(x)
    assert torch.allclose(m[:, :, 2], x[:, :, 3] - x[:, :, 2]) and m[:, :, -1].abs().sum() == 0
    assert torch.equal(to_stream(x, "joint", skel), x)
    with pytest.raises(ValueError, match="unknown stream"):
        to_stream(x, "velocity", skel)
    c = torch.rand(1, 4, 3, 25, 1)
    bc = bone_stream(c, skel.bone_pairs, num_coords=3)
    assert torch.allclose(bc[:, 3, :, 3], c[:, 3, :, 3] * c[:, 3, :, 2])
