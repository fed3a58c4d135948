"""Figures of a dataset: motion vs degree (Fig. 1) and the masking strategies, on real UTKinect
clips and on the embedded data; the numbers behind each figure against direct computations."""
import csv
import json

import numpy as np
import pytest
import torch

from asma.data.readers.kinect_v1 import load_utkinect
from asma.data.synthetic import SyntheticConfig, make_synthetic
from asma.masking import joint_mask_probs, motion_scores, sample_frame_mask, sample_joint_mask
from asma.plot.masks import plot_masks
from asma.plot.motion import joint_motion, motion_by_degree, plot_motion_degree


@pytest.fixture
def utkinect(realdata):
    return load_utkinect(realdata / "utkinect_action3d")


def _direct_motion(clip):
    # loops written out: mean over frame pairs of the Euclidean step of each joint (person 0)
    C, T, V, _ = clip.shape
    out = np.zeros(V)
    for v in range(V):
        out[v] = np.mean([np.sqrt(sum((clip[c, t + 1, v, 0] - clip[c, t, v, 0]) ** 2 for c in range(3)))
                          for t in range(T - 1)])
    return out


def test_motion_by_degree_on_utkinect(utkinect, tmp_path, assert_png):
    res = plot_motion_degree(utkinect, tmp_path / "fig1.png")
    assert_png(res.png)
    d = json.loads(res.files["json"].read_text())
    assert d["degree"] == utkinect.skeleton.degree().tolist()
    assert d["degree"][2] == 4 and d["degree"][3] == 1          # ShoulderCenter, Head
    direct = np.stack([_direct_motion(np.asarray(c, dtype=np.float64)) for c in utkinect.data])
    np.testing.assert_allclose(d["motion"], direct.mean(0), rtol=1e-6, atol=1e-9)
    wave = utkinect.class_names.index("waveHands")
    np.testing.assert_allclose(d["motion_per_class"][wave], direct[utkinect.labels == wave].mean(0), rtol=1e-6)
    # the observation of Fig. 1 holds on real Kinect recordings: low degree, high motion
    assert d["spearman"]["rho"] < -0.3
    hands = [utkinect.skeleton.joint_names.index(n) for n in ("HandLeft", "HandRight")]
    assert min(d["motion"][h] for h in hands) > 3 * d["motion"][1]  # hands move more than the spine
    rows = list(csv.reader(res.files["csv"].open()))
    assert rows[0][:4] == ["joint", "name", "degree", "motion"] and len(rows) == 21
    assert rows[8][1] == "HandLeft" and float(rows[8][3]) == pytest.approx(d["motion"][7], rel=1e-5)


def test_joint_motion_skips_padding_and_empty_clips():
    x = np.random.default_rng(0).normal(size=(2, 3, 12, 25, 1)).astype(np.float32)
    x[0, :, 8:] = 0.0                                            # clip 0: 8 real frames, then padding
    x[1] = 0.0                                                   # clip 1: empty
    m = joint_motion(x)
    np.testing.assert_allclose(m[0], _direct_motion(x[0, :, :8].astype(np.float64)), rtol=1e-5)
    assert np.isnan(m[1]).all()
    arrays = make_synthetic(SyntheticConfig(num_classes=2, clips_per_class=3, num_frames=10, num_persons=1))
    arrays.data[:] = 0.0
    with pytest.raises(ValueError, match="no clip has two consecutive frames"):
        motion_by_degree(arrays)


def test_masks_on_a_real_clip_are_asma_masking_outputs(utkinect, tmp_path, assert_png):
    i = utkinect.names.index("s01_e01_waveHands")
    res = plot_masks(utkinect, tmp_path / "masks.png", index=i, n_joints=9, n_frames=10, seed=3)
    assert_png(res.png)
    d = json.loads(res.files["json"].read_text())
    assert d["clip_name"] == "s01_e01_waveHands" and d["label"] == "waveHands"
    x = torch.as_tensor(np.asarray(utkinect.data[i]))[None]
    g = torch.Generator().manual_seed(3)
    for s in ("high", "low", "random"):
        p = joint_mask_probs(utkinect.skeleton.degree(), s)
        assert d["joint_masks"][s] == torch.nonzero(sample_joint_mask(1, p, 9, g)[0]).flatten().tolist()
        freq = sample_joint_mask(4000, p, 9, g).float().mean(0)
        np.testing.assert_allclose(d["joint_frequency"][s], freq.numpy(), atol=1e-6)
    scores = motion_scores(x)
    for t in ("high", "low", "random"):
        assert d["frame_masks"][t] == torch.nonzero(sample_frame_mask(scores, 10, t, g)[0]).flatten().tolist()
    a = np.array(d["motion"])
    hi, lo = d["frame_masks"]["high"], d["frame_masks"]["low"]
    rest_hi, rest_lo = np.delete(a, hi), np.delete(a, lo)
    assert a[hi].min() >= rest_hi.max() and a[lo].max() <= rest_lo.min()   # TopK / BottomK of a_t
    assert all(len(d["joint_masks"][s]) == 9 for s in d["joint_masks"])
    # HDSM masks the degree-4 ShoulderCenter more often than the degree-1 Head; LDSM the reverse
    assert d["joint_frequency"]["high"][2] > d["joint_frequency"]["high"][3] + 0.3
    assert d["joint_frequency"]["low"][3] > d["joint_frequency"]["low"][2]


def test_masks_rejects_a_clip_out_of_range(tmp_path):
    arrays = make_synthetic(SyntheticConfig(num_classes=2, clips_per_class=2, num_frames=20, num_persons=1))
    with pytest.raises(ValueError, match="clip index 9 is out of range"):
        plot_masks(arrays, tmp_path / "m.png", index=9)
    with pytest.raises(ValueError, match="must be a .png"):
        plot_masks(arrays, tmp_path / "m.jpg", index=0, n_joints=3, n_frames=4)


def test_sweep_figures_from_the_sweep_files(tmp_path, assert_png):
    from asma.plot.sweeps import plot_sweep
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    rows = [{"spatial": "low", "temporal": "high", "top1_mean": 61.5, "top1_std": 1.5, "top1": [60.0, 63.0]},
            {"spatial": "high", "temporal": "low", "top1_mean": 58.0, "top1_std": 0.5, "top1": [57.5, 58.5]}]
    (sweeps / "pairings.json").write_text(json.dumps({"what": "pairings", "seeds": [0, 1], "dataset": "synthetic",
                                                       "rows": rows}))
    res = plot_sweep(tmp_path, tmp_path / "fig3.png")
    assert_png(res.png)
    assert res.data["grid"] == [[None, None, None], [None, None, 58.0], [None, 61.5, None]]
    (sweeps / "n_frames.json").write_text(json.dumps({"what": "n_frames", "seeds": [0], "dataset": "synthetic",
                                                       "n_joints": 9, "n_frames": 10, "rows": [
                                                           {"n_frames": k, "top1_mean": 50.0 + k, "top1_std": 0.0,
                                                            "top1": [50.0 + k]} for k in (8, 10)]}))
    assert_png(plot_sweep(tmp_path, tmp_path / "t7.png", "n_frames").png)
    with pytest.raises(ValueError, match="run 'asma sweep --run-dir .* --over n_joints' first"):
        plot_sweep(tmp_path, tmp_path / "x.png", "n_joints")


def test_plot_commands_on_prepared_utkinect(realdata, tmp_path, assert_png):
    from click.testing import CliRunner

    from asma.cli.main import main
    r = CliRunner()
    out = r.invoke(main, ["data", "prepare", "utkinect", "--raw", str(realdata / "utkinect_action3d"),
                          "--out", str(tmp_path / "data")])
    assert out.exit_code == 0, out.output
    common = ["--dataset", "utkinect-xsub", "--data-dir", str(tmp_path / "data")]
    out = r.invoke(main, ["plot", "motion", *common, "--out", str(tmp_path / "m.png")])
    assert out.exit_code == 0, out.output
    assert_png(tmp_path / "m.png")
    d = json.loads((tmp_path / "m.json").read_text())
    assert d["num_clips"] == 199 and d["layout"] == "kinect20"  # train + test: every segment with an interval
    out = r.invoke(main, ["plot", "masks", *common, "--split", "test", "--clip", "500", "--out", str(tmp_path / "k.png")])
    assert out.exit_code == 2 and "clip index 500 is out of range" in out.output
