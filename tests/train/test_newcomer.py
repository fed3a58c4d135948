"""What a newcomer hit (issue 12 item 6), each fixed: no run directory for a run that cannot
start, no empty table, the random-init row in `asma linear`, short reprs, the right hint for the
student of the fine-tuned teacher."""
import json

import pytest
import torch
from click.testing import CliRunner

from asma.cli.main import main
from asma.train import make_config
from asma.train.downstream import load_student
from asma.train.pipeline import RunResult, run_pipeline
from asma.train.probe import ProbeResult
from asma.train.stages import linear_run


def _tiny(run_dir):
    cfg = make_config("tiny")
    cfg.data.clips_per_class, cfg.data.num_classes = 8, 3
    cfg.pretrain.epochs, cfg.pretrain.batch_size, cfg.probe.epochs = 2, 8, 3
    cfg.run_dir = str(run_dir)
    return cfg


def test_a_run_that_cannot_start_leaves_no_run_directory(tmp_path):
    cfg = _tiny(tmp_path / "unprepared")
    cfg.data.dataset, cfg.data.data_dir = "ntu60-xsub", str(tmp_path / "no-data")
    with pytest.raises(Exception, match="ntu60"):
        run_pipeline(cfg, progress=False)
    assert not (tmp_path / "unprepared").exists()
    cfg = _tiny(tmp_path / "bad-backbone")
    cfg.model.backbone = "no-such-backbone"
    with pytest.raises(ValueError, match="no-such-backbone"):
        run_pipeline(cfg, progress=False)
    cfg = _tiny(tmp_path / "bad-logger")
    cfg.loggers = ["jsonl", "wandb"]
    with pytest.raises(ValueError, match="unknown logger"):
        run_pipeline(cfg, progress=False)
    assert not (tmp_path / "bad-backbone").exists() and not (tmp_path / "bad-logger").exists()


def test_train_with_only_pretraining_prints_no_empty_table(tmp_path, monkeypatch):
    import asma.train.run as run_mod
    seen = {}

    def fake_run_train(cfg, **kw):
        seen["stages"], seen["loggers"] = list(cfg.stages), list(cfg.loggers)
        return RunResult(tmp_path, [], [], 1.0)
    monkeypatch.setattr(run_mod, "run_train", fake_run_train)
    r = CliRunner().invoke(main, ["train", "--preset", "tiny", "--stages", "pretrain", "--no-progress",
                                  "--logger", "csv", "--logger", "tensorboard", "--run-dir", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert seen == {"stages": ["pretrain"], "loggers": ["csv", "tensorboard"]}
    assert "top-1" not in r.output and "┏" not in r.output
    assert "pretrained encoders in" in r.output


def test_probe_results_print_without_their_logits():
    row = ProbeResult("aligned", 51.25, 90.0, torch.randn(200, 60))
    assert repr(row) == "ProbeResult(name='aligned', top1=51.25, top5=90.0)"
    assert "tensor" not in str([row, row])


def test_evaluating_the_wrong_distill_folder_names_the_right_one(tmp_path):
    run = tmp_path / "run"
    (run / "distill-ft").mkdir(parents=True)
    (run / "distill-ft" / "student.json").write_text(json.dumps({"backbone": {}}))
    with pytest.raises(ValueError, match="student of the other teacher: use --stage distill-ft"):
        load_student(run, "distill")
    with pytest.raises(ValueError, match="--teacher finetune' first"):
        load_student(tmp_path / "empty", "distill-ft")


@pytest.mark.slow
def test_asma_linear_has_the_random_init_row_of_asma_train(tmp_path):
    cfg = _tiny(tmp_path / "run")
    cfg.stages = ["pretrain", "linear"]
    full = run_pipeline(cfg, progress=False)
    rows = linear_run(tmp_path / "run", progress=False)
    assert [r.name for r in rows][0] == "random-init probe"
    assert [(r.name, r.top1, r.top5) for r in rows] == [(r.name, r.top1, r.top5) for r in full.rows]


def test_log_lines_do_not_show_source_file_names():
    from asma.cli.main import console
    with console.capture() as cap:
        console.log("stage: linear")
    out = cap.get()
    assert "stage: linear" in out and ".py:" not in out
