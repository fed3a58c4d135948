import numpy as np
import pytest
import torch

from asma.graph import from_edges, get_layout
from asma.masking import (PHI, THETA, MaskSpec, Masker, apply_frame_mask, apply_joint_mask,
                          joint_mask_probs, motion_scores, sample_frame_mask, sample_joint_mask)


def test_probabilities_follow_eqs_1_2():
    d = get_layout("ntu25").degree()
    pH = joint_mask_probs(d, "high")
    pL = joint_mask_probs(d, "low")
    assert torch.allclose(pH, d / 48.0)
    assert torch.allclose(pL, (1 - d / 48.0) / 24.0)
    assert pH.sum().item() == pytest.approx(1.0) and pL.sum().item() == pytest.approx(1.0)
    assert pH.argmax() == 20 and pL[20] == pL.min()  # SpineShoulder: most likely in H, least in L


def _successive_sampling_reference(p, n, trials, seed):
    # numpy's choice without replacement is successive sampling with probabilities p
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(p))
    for _ in range(trials):
        counts[rng.choice(len(p), n, replace=False, p=p)] += 1
    return counts / trials


@pytest.mark.parametrize("strategy", ["high", "low"])
def test_joint_sampling_frequencies_match_formula(strategy):
    d = get_layout("ntu25").degree()
    p = joint_mask_probs(d, strategy)
    g = torch.Generator().manual_seed(0)
    B = 20000
    mask = sample_joint_mask(B, p, 9, g)
    assert mask.sum(1).eq(9).all()  # exactly n distinct joints per sample
    freq = mask.float().mean(0).numpy()
    ref = _successive_sampling_reference(p.double().numpy() / p.double().sum().item(), 9, 20000, 1)
    # inclusion probabilities agree with the reference sampler within Monte-Carlo error
    assert np.abs(freq - ref).max() < 0.025
    # first-draw property of successive sampling: with n=1 frequencies are p itself
    one = sample_joint_mask(B, p, 1, g).float().mean(0)
    assert torch.allclose(one, p, atol=0.01)
    if strategy == "high":
        assert freq[20] > freq[0] > freq[1] > freq[3]  # deg 4 > deg 3 > deg 2 > deg 1
    else:
        assert freq[20] < freq[0] < freq[1] < freq[3]


def test_joint_masks_are_per_sample():
    p = joint_mask_probs(get_layout("ntu25").degree(), "high")
    m = sample_joint_mask(64, p, 9, torch.Generator().manual_seed(1))
    assert len({tuple(r.tolist()) for r in m}) > 50


def test_isolated_joint_never_high_masked_but_fills_when_needed():
    s = from_edges([(0, 1), (1, 2), (2, 3)], num_joints=5)
    pH = joint_mask_probs(s.degree(), "high")
    assert pH[4] == 0
    m = sample_joint_mask(2000, pH, 3, torch.Generator().manual_seed(0))
    assert not m[:, 4].any()
    # 4 positive-probability joints: asking for all 4 still never takes the isolated one
    assert sample_joint_mask(500, pH, 4, torch.Generator().manual_seed(0))[:, 4].sum() == 0
    pL = joint_mask_probs(s.degree(), "low")
    assert pL.argmax() == 4


def test_motion_scores_eq_3_4():
    x = torch.zeros(1, 3, 5, 2, 1)
    x[0, 0, 2:, 0, 0] = 1.0  # joint 0 jumps by 1 in x between frames 1 and 2
    x[0, 1, 4, 1, 0] = 3.0   # joint 1 jumps by 3 in y between frames 3 and 4
    a = motion_scores(x)
    expected = torch.tensor([[0.0, 1 / 6, 0.0, 3 / 6, 3 / 6]])  # last frame copies the one before
    assert torch.allclose(a, expected)


def test_frame_masks_top_bottom_k_and_ties():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.2, 0.8]])
    g = torch.Generator().manual_seed(0)
    assert sample_frame_mask(scores, 2, "high", g).nonzero()[:, 1].tolist() == [1, 5]
    assert sample_frame_mask(scores, 2, "low", g).nonzero()[:, 1].tolist() == [0, 4]
    # zero-motion clip: every frame ties, the choice must be uniform, not always the first frames
    zeros = torch.zeros(4000, 10)
    m = sample_frame_mask(zeros, 3, "low", g)
    assert m.sum(1).eq(3).all()
    assert torch.allclose(m.float().mean(0), torch.full((10,), 0.3), atol=0.04)


def test_apply_frame_mask_drop_keeps_order_and_zero_mode():
    x = torch.arange(6.0).view(1, 1, 6, 1, 1).repeat(2, 1, 1, 1, 1)
    mask = torch.tensor([[False, True, False, False, True, False],
                         [True, False, False, False, False, True]])
    out = apply_frame_mask(x, mask, "drop")
    assert out.shape == (2, 1, 4, 1, 1)
    assert out[0].flatten().tolist() == [0, 2, 3, 5] and out[1].flatten().tolist() == [1, 2, 3, 4]
    z = apply_frame_mask(x, mask, "zero")
    assert z.shape == x.shape and z[0].flatten().tolist() == [0, 0, 2, 3, 0, 5]


def test_apply_joint_mask_zeros_all_channels_frames_persons():
    x = torch.ones(2, 3, 4, 5, 2)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1] = mask[1, 3] = True
    y = apply_joint_mask(x, mask)
    assert y[0, :, :, 1].abs().sum() == 0 and y[1, :, :, 3].abs().sum() == 0
    assert y.sum() == x.sum() - 2 * 3 * 4 * 2


def test_masker_asymmetry_theta_phi():
    skel = get_layout("ntu25")
    x = torch.randn(512, 3, 30, 25, 1)
    g = torch.Generator().manual_seed(0)
    th, ph = Masker(THETA, skel.degree()), Masker(PHI, skel.degree())
    _, mj_t = th.joint_view(x, g)
    _, mj_p = ph.joint_view(x, g)
    # Eq. 2 makes LDSM only mildly non-uniform on 25 joints (0.35 vs 0.37); HDSM is strongly skewed
    assert mj_t[:, 20].float().mean() > 0.5 and mj_p[:, 20].float().mean() < 0.45
    assert mj_t[:, [3, 15, 19, 21, 23]].float().mean() < 0.3
    xm_t, mf_t = th.frame_view(x, g)
    xm_p, mf_p = ph.frame_view(x, g)
    a = motion_scores(x)
    assert xm_t.shape == (512, 3, 20, 25, 1)
    # theta drops the lowest-motion frames, phi the highest
    assert (a[mf_t].view(512, 10).max(1).values <= a[~mf_t].view(512, 20).min(1).values).all()
    assert (a[mf_p].view(512, 10).min(1).values >= a[~mf_p].view(512, 20).max(1).values).all()


@pytest.mark.parametrize("n,k,msg", [(25, 10, "n_joints=25"), (9, 30, "n_frames=30")])
def test_mask_spec_validation(n, k, msg):
    with pytest.raises(ValueError, match=msg):
        MaskSpec("high", "low", n, k).validate(num_joints=25, num_frames=30)


def test_nine_pairings_all_work():
    skel = get_layout("ntu25")
    x = torch.randn(8, 3, 20, 25, 2)
    for s in ("high", "low", "random"):
        for t in ("high", "low", "random"):
            m = Masker(MaskSpec(s, t, 9, 5), skel.degree())
            xj, mj = m.joint_view(x)
            xm, mf = m.frame_view(x)
            assert mj.sum(1).eq(9).all() and mf.sum(1).eq(5).all() and xm.shape[2] == 15
