"""Bad command lines end in one clear line and exit code 2, and write nothing (issues 13.7, 12.6)."""
import json

import pytest
from click.testing import CliRunner

from asma.cli.main import PRESET_CHOICES, main
from asma.train.config import PRESETS, make_config


def _invoke(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run directory would be ./runs/...
    r = CliRunner().invoke(main, args)
    assert "Traceback" not in r.output and not isinstance(r.exception, (KeyError, TypeError, RuntimeError))
    return r


@pytest.mark.parametrize("sets,msg", [
    ('model.backbone_cfg={"hidden_channels": -4}', "model.backbone_cfg.hidden_channels=-4: must be an integer in 1..4,096"),
    ('model.backbone_cfg={"dropout": 1.5}', "model.backbone_cfg.dropout=1.5: a dropout rate must be in [0, 1)"),
    ("pretrain.lr=1e9", "pretrain.lr=1000000000.0: must be a finite number in (0, 1]"),
    ("model.lambda_bt=nan", "model.lambda_bt=nan: must be a finite number in (0, 1]"),
    ("distill.tau=inf", "distill.tau=inf: must be a finite number in (0, 100]"),
    ("data.clips_per_class=10000000000", "data.clips_per_class=10000000000: must be an integer in 1..100,000"),
    ("data.clips_per_class=100000", "the synthetic dataset of 1,000,000 clips of 30 frames would take 8.4 GiB "
                                    "(limit 4 GiB)"),
    ("data.num_frames=1000000", "data.num_frames=1000000: must be an integer in 2..1,000"),
    ("pretrain.epochs=0", "pretrain.epochs=0: must be an integer in 1..100,000"),
    ("model.projector=[6144,-1]", "model.projector[1]=-1: must be an integer in 1..16,384"),
    ("pretrain.warmup_epochs=99", "pretrain.warmup_epochs=99: must not exceed pretrain.epochs=12"),
    ("model.backbone=resnet", "unknown backbone 'resnet'; registered backbones: dgcnn, gin, stgcn"),
])
@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_out_of_bounds_config_is_one_line_naming_the_key(tmp_path, monkeypatch, command, sets, msg):
    r = _invoke([command, "--set", sets, "--run-dir", "r", "--no-progress"], tmp_path, monkeypatch)
    assert r.exit_code == 2, r.output
    assert msg in " ".join(r.output.split()) and r.output.startswith("error: ")
    assert list(tmp_path.iterdir()) == []  # no run directory, no runs/


@pytest.mark.parametrize("args,msg", [
    (["--epochs", "0"], "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (["--epochs", "-3"], "Invalid value for '--epochs': -3 is not in the range x>=1"),
    (["--threads", "-1"], "Invalid value for '--threads': -1 is not in the range x>=0"),
    (["--batch-size", "0"], "Invalid value for '--batch-size'"),
    (["--preset", "huge"], "'huge' is not one of 'auto', 'paper', 'quick', 'small', 'tiny'"),
    (["--stream", "bones"], "'bones' is not one of 'joint', 'bone', 'motion'"),
    (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0"),
])
@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_bad_options_are_refused_before_anything_runs(tmp_path, monkeypatch, command, args, msg):
    r = _invoke([command, *args, "--run-dir", "r"], tmp_path, monkeypatch)
    assert r.exit_code == 2 and msg in " ".join(r.output.split()), r.output
    assert list(tmp_path.iterdir()) == []  # no untrained "pretrained" encoders


def test_negative_seeds_are_refused(tmp_path, monkeypatch):
    r = _invoke(["train", "--seeds", "0,-1", "--run-dir", "r"], tmp_path, monkeypatch)
    assert r.exit_code == 2 and "--seeds must be integers >= 0, got '0,-1'" in r.output
    assert list(tmp_path.iterdir()) == []


def test_stage_commands_check_their_options(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(make_config("tiny").to_dict()))
    for args, msg in [(["finetune", "--lr", "1e9"], "finetune.lr=1000000000.0: must be a finite number in (0, 1]"),
                      (["finetune", "--align-epochs", "0"], "finetune.align_epochs=0: must be an integer in 1..100,000"),
                      (["finetune", "--epochs", "0"], "Invalid value for '--epochs'"),
                      (["distill", "--tau", "nan"], "distill.tau=nan: must be a finite number in (0, 100]"),
                      (["distill", "--layers", "0"], "Invalid value for '--layers'")]:
        r = _invoke([*args, "--run-dir", str(run)], tmp_path, monkeypatch)
        assert r.exit_code == 2 and msg in " ".join(r.output.split()), r.output
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
    cfg = make_config("tiny").to_dict()
    cfg["probe"]["lr"] = 1e9  # a hand-edited run configuration
    (run / "config.json").write_text(json.dumps(cfg))
    for args in (["linear"], ["train", "--resume", "--no-progress"]):
        r = _invoke([*args, "--run-dir", str(run)], tmp_path, monkeypatch)
        assert r.exit_code == 2 and f"{run / 'config.json'}: probe.lr=1000000000.0: must be a finite number in " \
            "(0, 1]" in " ".join(r.output.split()), r.output
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_data_prepare_refuses_zero_persons(tmp_path, monkeypatch):
    r = _invoke(["data", "prepare", "ntu60", "--persons", "0"], tmp_path, monkeypatch)
    assert r.exit_code == 2 and "Invalid value for '--persons': 0 is not in the range x>=1" in r.output, r.output
    assert list(tmp_path.iterdir()) == []


def test_non_finite_loss_is_one_line(tmp_path, monkeypatch):
    import asma.train.run

    def diverge(*a, **k):
        raise FloatingPointError("pretraining loss became nan at epoch 3, step 7; lower pretrain.lr")
    monkeypatch.setattr(asma.train.run, "run_train", diverge)
    r = _invoke(["train", "--run-dir", "r", "--no-progress"], tmp_path, monkeypatch)
    assert r.exit_code == 2 and r.output.strip() == "error: pretraining loss became nan at epoch 3, step 7; " \
                                                     "lower pretrain.lr"


def test_help_shows_the_choices_of_preset_and_stream():
    assert PRESET_CHOICES == ("auto", *PRESETS)
    for command in ("train", "pretrain"):
        r = CliRunner().invoke(main, [command, "--help"])
        text = " ".join(r.output.split())
        assert "--preset [auto|paper|quick|small|tiny]" in text and "--stream [joint|bone|motion]" in text
        assert "--epochs INTEGER RANGE" in text and "--print-config" in text


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path, monkeypatch, command):
    args = [command, "--preset", "tiny", "--epochs", "3", "--backbone", "gin", "--seed", "5",
            "--set", "probe.lr=0.5", "--set", 'model.backbone_cfg={"dropout": 0.25}', "--print-config"]
    r = _invoke(args, tmp_path, monkeypatch)
    assert r.exit_code == 0, r.output
    # --set replaces a whole dict field (a config file merges into it)
    expected = make_config("tiny", overrides={"pretrain": {"epochs": 3}, "model": {"backbone": "gin",
                                              "backbone_cfg": '{"dropout": 0.25}'}, "probe": {"lr": "0.5"}, "seed": 5})
    if command == "pretrain":
        expected.stages = ["pretrain"]
    printed = json.loads(r.output)
    assert printed == json.loads(json.dumps(expected.to_dict()))
    assert printed["model"]["backbone_cfg"] == {"dropout": 0.25} and printed["probe"]["lr"] == 0.5
    assert printed["pretrain"]["epochs"] == 3 and printed["finetune"]["epochs"] == 3  # the tiny preset's
    assert list(tmp_path.iterdir()) == []
