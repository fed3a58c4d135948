"""Budgets that work on small datasets: ``pretrain.min_steps``, the ``small`` preset chosen by
``--preset auto`` from the training set's size, the few-steps warning, and the ``random-init
aligned`` baseline row of linear evaluation."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from asma.cli.main import main
from asma.data.arrays import SkeletonArrays
from asma.data.store import write_store
from asma.data.synthetic import SyntheticConfig, make_synthetic
from asma.models import create_backbone
from asma.train import make_config, pretrain
from asma.train.config import SMALL_MIN_STEPS, OptimConfig, ProbeConfig, pretrain_epochs
from asma.train.downstream import linear_stage, random_encoder
from asma.train.options import SMALL_MAX_CLIPS, auto_preset, budget_warning, config_from_options, train_size
from asma.train.probe import linear_evaluation
from asma.train.rundir import RunContext
from asma.train.validation import check_config


@pytest.mark.parametrize("epochs,min_steps,n,batch,expected", [
    (7, 0, 10, 32, 7),             # min_steps 0: exactly the epochs (even with fewer clips than a batch)
    (10, 1200, 1020, 32, 39),      # NW-UCLA: 31 steps per epoch, ceil(1200 / 31) = 39
    (10, 1200, 431, 32, 93),       # UTD-MHAD: 13 steps per epoch
    (10, 100, 320, 32, 10),        # an exact multiple
    (10, 101, 320, 32, 11),
    (1, 5, 63, 32, 5),             # the tail batch is dropped: 1 step per epoch, not 63 / 32
    (150, 1200, 40_091, 128, 150),  # a large dataset keeps its epochs
    (2, 3, 32, 32, 3),             # exactly one batch
])
def test_pretrain_epochs(epochs, min_steps, n, batch, expected):
    oc = OptimConfig(epochs=epochs, min_steps=min_steps, batch_size=batch)
    assert pretrain_epochs(oc, n) == expected
    oc.epochs = expected  # a resumed run's config.json holds the result: it is kept
    assert pretrain_epochs(oc, n) == expected


def test_pretrain_epochs_needs_one_batch():
    with pytest.raises(ValueError, match="has 20 clips, fewer than pretrain.batch_size=32"):
        pretrain_epochs(OptimConfig(min_steps=10, batch_size=32), 20)


def _tiny_pretrain_cfg():
    cfg = make_config("tiny")
    cfg.pretrain.epochs, cfg.pretrain.batch_size, cfg.pretrain.min_steps = 1, 16, 7  # 3 steps an epoch -> 3 epochs
    cfg.model.backbone_cfg = {"hidden_channels": 4, "out_channels": 16, "dropout": 0.0}
    cfg.model.projector = [32, 32]
    return cfg, make_synthetic(SyntheticConfig(num_classes=4, clips_per_class=12, num_frames=16, num_persons=1))


def test_pretraining_runs_the_resolved_epochs_and_resumes_exactly(tmp_path):
    cfg, data = _tiny_pretrain_cfg()
    full = pretrain(cfg, data, tmp_path / "a", progress=False)
    assert [h["epoch"] for h in full.history] == [0, 1, 2]
    pretrain(cfg, data, tmp_path / "b", progress=False, max_epochs=1)
    resumed = pretrain(cfg, data, tmp_path / "b", progress=False, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history][1:], rel=1e-5)


def _store(data_dir, name, n):
    """A prepared dataset ``name`` with ``n`` training clips (zeros: only its size matters here)."""
    for part, count in (("train", n), ("test", 8)):
        arrays = SkeletonArrays(np.zeros((count, 3, 4, 25, 1), np.float32), np.arange(count) % 2, "ntu25",
                                ["a", "b"])
        write_store(data_dir / name / part, arrays)
    return str(data_dir)


@pytest.mark.parametrize("n,preset", [(431, "small"), (SMALL_MAX_CLIPS - 1, "small"), (SMALL_MAX_CLIPS, "paper")])
def test_auto_preset_by_training_set_size(tmp_path, n, preset):
    data_dir = _store(tmp_path, "utd-mhad-xsub", n)
    cfg = config_from_options(dataset="utd-mhad-xsub", data_dir=data_dir)
    assert cfg.preset == preset and train_size(cfg.data) == n
    if preset == "small":  # the epochs that run are in the config: max(10, ceil(1200 / (n // 32)))
        assert cfg.pretrain.epochs == max(10, -(-SMALL_MIN_STEPS // (n // 32)))
        assert cfg.model.backbone_cfg["out_channels"] == 32 and cfg.probe.epochs == 100
    else:
        assert cfg.pretrain.epochs == 150 and cfg.pretrain.min_steps == 0
    # the dataset may also come from --set; an explicit preset wins
    assert config_from_options(sets=["data.dataset=utd-mhad-xsub", f"data.data_dir={data_dir}"]).preset == preset
    assert config_from_options(preset="tiny", dataset="utd-mhad-xsub", data_dir=data_dir).preset == "tiny"


def test_auto_preset_for_synthetic_and_unprepared_data(tmp_path):
    assert config_from_options().preset == "quick"
    assert auto_preset(make_config("paper").data, None) == "quick"
    cfg = config_from_options(dataset="nwucla-xview", data_dir=str(tmp_path))  # not prepared: size unknown
    assert train_size(cfg.data) is None and cfg.preset == "paper"


def test_print_config_shows_the_resolved_preset_and_epochs(tmp_path):
    data_dir = _store(tmp_path, "nwucla-xview", 1020)
    r = CliRunner().invoke(main, ["train", "--dataset", "nwucla-xview", "--data-dir", data_dir, "--print-config"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["preset"] == "small" and cfg["pretrain"]["epochs"] == 39 and cfg["pretrain"]["min_steps"] == 1200
    assert "warning" not in r.stderr


def test_few_steps_on_a_prepared_dataset_warn_with_the_fix(tmp_path):
    data_dir = _store(tmp_path, "nwucla-xview", 300)
    args = ["train", "--dataset", "nwucla-xview", "--data-dir", data_dir, "--print-config"]
    r = CliRunner().invoke(main, [*args, "--preset", "quick"])  # 12 epochs of 300 // 64 = 4 steps
    assert r.exit_code == 0, r.output
    line = " ".join(r.stderr.split())
    assert line.startswith("warning: pretraining takes only 48 optimizer steps (12 epochs of 300 nwucla-xview clips")
    assert "--preset small or --set pretrain.min_steps=1200" in line
    assert json.loads(r.stdout)["preset"] == "quick"  # the JSON on stdout stays readable
    for fix in (["--preset", "small"], ["--preset", "quick", "--set", "pretrain.min_steps=300"]):
        r = CliRunner().invoke(main, [*args, *fix])
        assert r.exit_code == 0 and "warning" not in r.stderr, r.output
    # the embedded data and runs that do not pretrain are not warned about
    assert budget_warning(config_from_options(preset="tiny")) is None
    cfg = config_from_options(preset="quick", dataset="nwucla-xview", data_dir=data_dir, stages="linear")
    assert budget_warning(cfg) is None


@pytest.mark.parametrize("value", ["-1", "1000001"])
def test_min_steps_is_bounded(value):
    with pytest.raises(ValueError, match=f"pretrain.min_steps={value}: must be an integer in 0..1,000,000"):
        check_config(make_config("small", None, {"pretrain": {"min_steps": value}}))


def test_random_init_aligned_row_is_two_random_encoders_under_the_alignment_head(tmp_path):
    cfg = make_config("tiny")
    cfg.model.backbone_cfg = {"hidden_channels": 4, "out_channels": 16, "dropout": 0.0}
    cfg.probe = ProbeConfig(epochs=3, batch_size=8, lr=1e-2, heads=2)
    cfg.seed = 3
    data = make_synthetic(SyntheticConfig(num_classes=3, clips_per_class=8, num_frames=16, num_persons=1))
    encoders = {}
    for name, seed in (("theta", 10), ("phi", 11)):  # stand-ins for pretrained encoders
        torch.manual_seed(seed)
        encoders[name] = create_backbone("stgcn", data.skeleton, 3, **cfg.model.backbone_cfg)
    ctx = RunContext(cfg, tmp_path, encoders, data, data)
    rows = {r.name: r for r in linear_stage(ctx)}
    assert list(rows) == ["random-init probe", "random-init aligned", "theta probe", "phi probe",
                          "theta+phi average", "theta+phi aligned"]
    # the same alignment probe on the two seeded random encoders, as if they were the pretrained pair
    r0, r1 = random_encoder(ctx, 0), random_encoder(ctx, 1)
    assert not torch.equal(r0.state_dict()["blocks.0.gcn.conv.weight"], r1.state_dict()["blocks.0.gcn.conv.weight"])
    ref = {r.name: r for r in linear_evaluation({"a": r0, "b": r1}, data, data, cfg.probe, seed=cfg.seed)}
    assert torch.allclose(rows["random-init aligned"].logits, ref["a+b aligned"].logits, atol=1e-6)
    assert torch.allclose(rows["random-init probe"].logits, ref["a probe"].logits, atol=1e-6)
    assert not torch.allclose(rows["random-init aligned"].logits, rows["theta+phi aligned"].logits, atol=1e-3)
    saved = json.loads((tmp_path / "linear" / "results.json").read_text())["results"]
    assert [x["name"] for x in saved] == list(rows)
