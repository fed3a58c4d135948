import json

import pytest

from click.testing import CliRunner

from asma.cli.main import main

FAST = ["--preset", "tiny", "--no-progress", "--set", "data.clips_per_class=8", "--set", "pretrain.epochs=1",
        "--set", "probe.epochs=2", "--set", "data.num_classes=4", "--set", "pretrain.batch_size=8"]


def test_layouts_and_backbones_listing():
    r = CliRunner().invoke(main, ["layouts"])
    assert r.exit_code == 0 and "ntu25-anatomical" in r.output and "mediapipe33" in r.output
    r = CliRunner().invoke(main, ["backbones", "--frames", "50"])
    assert r.exit_code == 0, r.output
    assert "821,380" in r.output and "1.189" in r.output  # aggregate-first graph convolution


def test_train_writes_run_dir_and_table(tmp_path):
    run = tmp_path / "r"
    r = CliRunner().invoke(main, ["train", *FAST, "--run-dir", str(run), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "theta+phi aligned" in r.output and "random-init probe" in r.output
    assert "data: synthetic" in r.output and ".py:" not in r.output  # log lines without source locations
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["pretrain"]["epochs"] == 1 and cfg["data"]["num_classes"] == 4
    assert (run / "results.json").is_file()


def test_unknown_backbone_is_one_clear_line(tmp_path):
    r = CliRunner().invoke(main, ["train", *FAST, "--backbone", "resnet", "--run-dir", str(tmp_path / "x")])
    assert r.exit_code == 2
    assert "unknown backbone 'resnet'" in r.output and "stgcn" in r.output
    assert "Traceback" not in r.output


def test_bad_override_and_resume_without_run_dir(tmp_path):
    r = CliRunner().invoke(main, ["train", "--set", "pretrain.epoch=1"])
    assert r.exit_code == 2 and "unknown config key 'pretrain.epoch'" in r.output
    r = CliRunner().invoke(main, ["train", "--resume"])
    assert r.exit_code == 2 and "--resume needs --run-dir" in r.output


def test_plugin_backbone_from_file(tmp_path):
    plugin = tmp_path / "myplug.py"
    plugin.write_text(
        "from asma.models import register_backbone, create_backbone\n"
        "@register_backbone('tiny-stgcn-plugin')\n"
        "def build(layout, in_channels=3, **cfg):\n"
        "    return create_backbone('stgcn', layout, in_channels, hidden_channels=4, out_channels=16)\n")
    r = CliRunner().invoke(main, ["train", *FAST, "--plugin", str(plugin), "--backbone", "tiny-stgcn-plugin",
                                  "--run-dir", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    assert cfg["model"]["backbone"] == "tiny-stgcn-plugin"


def test_seeds_are_reproducible_and_summarised(tmp_path):
    args = ["train", *FAST, "--run-dir", str(tmp_path / "s"), "--seeds", "0,1"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "theta+phi aligned" in r.output and " ± " in r.output
    summary = json.loads((tmp_path / "s" / "seeds.json").read_text())["summary"]
    res0 = json.loads((tmp_path / "s" / "seed-0" / "results.json").read_text())["linear"]
    res1 = json.loads((tmp_path / "s" / "seed-1" / "results.json").read_text())["linear"]
    for row, a, b in zip(summary, res0, res1):
        assert row["top1_mean"] == pytest.approx((a["top1"] + b["top1"]) / 2, abs=0.01)
    # the same seed again gives the same metrics and the same pretraining losses
    r = CliRunner().invoke(main, ["train", *FAST, "--run-dir", str(tmp_path / "again"), "--seed", "0"])
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "again" / "results.json").read_text())["linear"]
    assert again == res0
    loss = lambda d: [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()
                      if json.loads(l)["stage"] == "pretrain"]
    assert loss(tmp_path / "again") == loss(tmp_path / "s" / "seed-0")
