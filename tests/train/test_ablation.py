"""Masking ablations (Fig. 3 pairings, Table 7 counts) and the literal readings of Algorithm 1
(raw anchor, shared projector)."""
import json
from dataclasses import asdict

import pytest
import torch

from asma.data.transforms import Augment
from asma.graph import get_layout
from asma.models.asma import ASMa
from asma.train import make_config
from asma.train.ablation import PAIRINGS, ablation_sweep, count_sweep, pairing_sweep, parse_pairing
from asma.train.config import pretrain_epochs
from asma.train.pipeline import run_pipeline
from asma.train.pretrain import batch_views, pretrain


def _small():
    cfg = make_config("tiny")
    cfg.data.clips_per_class, cfg.data.num_classes = 12, 4
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 16
    cfg.probe.epochs = 5
    return cfg


def test_pairings_are_fig3_grid():
    assert len(PAIRINGS) == 9 and len(set(PAIRINGS)) == 9
    assert PAIRINGS[0] == ("random", "random") and ("low", "high") in PAIRINGS
    assert parse_pairing("low-high") == ("low", "high")
    with pytest.raises(ValueError, match="SPATIAL-TEMPORAL"):
        parse_pairing("low-medium")


@pytest.mark.slow
def test_pairing_sweep_equals_single_encoder_runs(tmp_path):
    cfg = _small()
    rows = pairing_sweep(cfg, tmp_path, [("low", "high"), ("random", "low")], seeds=[0, 1])
    assert [(r["spatial"], r["temporal"]) for r in rows] == [("low", "high"), ("random", "low")]
    saved = json.loads((tmp_path / "pairings.json").read_text())
    assert saved["rows"] == rows and saved["seeds"] == [0, 1]
    run = tmp_path / "pairings" / "low-high" / "seed-1"
    assert json.loads((run / "config.json").read_text())["model"]["encoders"] == {"encoder": ["low", "high"]}
    # the same single-encoder run by hand gives the same probe accuracy
    ref = make_config("tiny")
    ref.data.clips_per_class, ref.data.num_classes = 12, 4
    ref.pretrain.epochs, ref.pretrain.batch_size, ref.probe.epochs = 1, 16, 5
    ref.model.encoders, ref.seed, ref.stages = {"encoder": ["low", "high"]}, 1, ["pretrain", "linear"]
    ref.run_dir = str(tmp_path / "ref")
    top1 = run_pipeline(ref).row("encoder probe").top1
    assert rows[0]["top1"][1] == pytest.approx(round(top1, 2))
    assert rows[0]["top1_mean"] == pytest.approx(sum(rows[0]["top1"]) / 2, abs=0.01)
    # a second call resumes the finished runs instead of refusing or retraining
    assert pairing_sweep(cfg, tmp_path, [("low", "high")], seeds=[0, 1])[0] == rows[0]


@pytest.mark.slow
def test_count_sweep_and_cli_entry(tmp_path):
    cfg = _small()
    cfg.run_dir = str(tmp_path / "base")
    cfg.stages = ["pretrain"]
    run_pipeline(cfg)
    rows = ablation_sweep(tmp_path / "base", "n_frames", [2, 6], seeds=[0])
    assert [r["n_frames"] for r in rows] == [2, 6]
    for v in (2, 6):
        c = json.loads((tmp_path / "base" / "sweeps" / "n_frames" / str(v) / "seed-0" / "config.json").read_text())
        assert c["model"]["n_frames"] == v and c["model"]["n_joints"] == cfg.model.n_joints
        res = json.loads((tmp_path / "base" / "sweeps" / "n_frames" / str(v) / "seed-0" / "linear" /
                          "results.json").read_text())
        aligned = next(r for r in res["results"] if r["name"] == "theta+phi aligned")
        assert rows[[2, 6].index(v)]["top1"] == [aligned["top1"]]
    with pytest.raises(ValueError, match="n_joints=25 must be smaller"):
        count_sweep(cfg, tmp_path / "bad", "n_joints", [25])
    # the command: finished settings are read back, bad values are one-line errors
    from click.testing import CliRunner

    from asma.cli.main import main
    r = CliRunner()
    out = r.invoke(main, ["sweep", "--run-dir", str(tmp_path / "base"), "--over", "n_frames", "--values", "6"])
    assert out.exit_code == 0, out.output
    assert "n_frames sweep" in out.output and f"{rows[1]['top1_mean']:.1f}" in out.output
    for args, msg in ((["--over", "pairings", "--values", "low-medium"], "SPATIAL-TEMPORAL"),
                      (["--over", "n_joints", "--values", "a,b"], "comma-separated integers"),
                      (["--over", "tau", "--seeds", "0,1"], "--seeds applies to --over pairings")):
        out = r.invoke(main, ["sweep", "--run-dir", str(tmp_path / "base"), *args])
        assert out.exit_code == 2 and msg in out.output and "Traceback" not in out.output, out.output


def test_count_sweep_rejects_bad_what(tmp_path):
    with pytest.raises(ValueError, match="n_joints or n_frames"):
        count_sweep(_small(), tmp_path, "tau", [1])


def test_raw_anchor_is_the_clip_and_default_unchanged():
    cfg = make_config("tiny")
    aug = Augment(cfg.augment, get_layout("ntu25").flip_perm, 3)
    x = torch.randn(4, 3, 20, 25, 1)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, xj, xm = batch_views(x, aug, g1)
    ref = [aug(x, g2) for _ in range(3)]
    assert all(torch.equal(u, v) for u, v in zip((a, xj, xm), ref))
    raw, rj, _ = batch_views(x, aug, torch.Generator().manual_seed(3), raw_anchor=True)
    assert torch.equal(raw, x) and torch.equal(rj, ref[0])


def test_shared_projector_is_one_module_trained_by_both_encoders():
    kw = dict(backbone_cfg={"hidden_channels": 4, "out_channels": 8, "dropout": 0.0}, projector=(16, 16), n_joints=3, n_frames=2)
    own, shared = ASMa("ntu25", 3, **kw), ASMa("ntu25", 3, shared_projector=True, **kw)
    assert sorted(own.projectors) == ["phi", "theta"] and list(shared.projectors) == ["shared"]
    n_proj = sum(p.numel() for p in own.projectors["theta"].parameters())
    assert sum(p.numel() for p in own.parameters()) - sum(p.numel() for p in shared.parameters()) == n_proj
    x = torch.randn(6, 3, 12, 25, 1)
    loss, parts = shared(x, x.clone(), x.clone(), generator=torch.Generator().manual_seed(0))
    # the projector's gradient is the sum of both encoders' terms
    grads = []
    for enc in ("theta", "phi"):
        shared.zero_grad()
        sum(v for k, v in _terms(shared, x, enc).items()).backward()
        grads.append(shared.projectors["shared"].net[0].weight.grad.clone())
    shared.zero_grad()
    loss.backward()
    assert torch.allclose(shared.projectors["shared"].net[0].weight.grad, grads[0] + grads[1], atol=1e-4)


def _terms(model, x, enc):
    # the two Barlow Twins terms of one encoder, with the masks the full forward pass draws
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, masker in model.maskers.items():
        xj, _ = masker.joint_view(x, g)
        xm, _ = masker.frame_view(x, g)
        if name == enc:
            z, zj, zm = model._encode(name, x, xj, xm)
            out = {"joint": model.loss_fn(z, zj), "frame": model.loss_fn(z, zm)}
    return out


def test_literal_options_pretrain_and_are_checked():
    from asma.data.synthetic import SyntheticConfig, make_synthetic
    cfg = make_config("tiny")
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 16
    train = make_synthetic(SyntheticConfig(num_classes=2, clips_per_class=8, num_frames=20, num_persons=1))
    base = pretrain(cfg, train, progress=False).history[0]["loss"]
    cfg.model.anchor, cfg.model.shared_projector = "raw", True
    model = pretrain(cfg, train, progress=False)
    assert list(model.projectors) == ["shared"]
    lit = model.history[0]["loss"]
    assert torch.isfinite(torch.tensor(lit)) and lit != pytest.approx(base)
    cfg.model.anchor = "clean"
    with pytest.raises(ValueError, match="model.anchor must be 'augmented' or 'raw'"):
        pretrain(cfg, train, progress=False)


def test_sweep_epochs_are_exact_even_with_min_steps(tmp_path, monkeypatch):
    import asma.train.ablation as ab
    cfg = _small()
    cfg.pretrain.min_steps, cfg.run_dir = 1200, str(tmp_path / "base")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text(json.dumps(asdict(cfg)))
    seen = {}
    monkeypatch.setattr(ab, "count_sweep", lambda c, *a, **k: seen.update(cfg=c) or [])
    ablation_sweep(tmp_path / "base", "n_joints", [3], epochs=4)
    assert (seen["cfg"].pretrain.epochs, seen["cfg"].pretrain.min_steps) == (4, 0)
    assert pretrain_epochs(seen["cfg"].pretrain, 1000) == 4  # not stretched to 1,200 steps
