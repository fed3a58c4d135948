"""`asma train` as one pipeline: pretrain -> linear -> finetune -> distill, resumable at every
stage, transfer to another dataset, several streams fused."""
import json

import pytest
import torch
from click.testing import CliRunner

from asma.cli.main import main
from asma.io import load_tensors
from asma.train import make_config
from asma.train.options import config_from_options
from asma.train.evaluate import evaluate_logits, fuse_streams
from asma.train.pipeline import run_pipeline, run_streams

TINY = ["--preset", "tiny", "--no-progress", "--set", "data.clips_per_class=8", "--set", "data.num_classes=3",
        "--set", "pretrain.epochs=2", "--set", "pretrain.batch_size=8", "--set", "probe.epochs=5",
        "--set", "finetune.epochs=2", "--set", "finetune.align_epochs=2", "--set", "finetune.batch_size=8",
        "--set", "distill.epochs=2", "--set", "distill.batch_size=8"]


def _json(p):
    return json.loads(p.read_text())


def _tiny_cfg(run_dir, **sets):
    cfg = make_config("tiny")
    cfg.data.clips_per_class, cfg.data.num_classes = 8, 3
    cfg.pretrain.epochs, cfg.pretrain.batch_size, cfg.probe.epochs = 3, 8, 5
    cfg.finetune.epochs, cfg.finetune.align_epochs, cfg.finetune.batch_size = 3, 2, 8
    cfg.distill.epochs, cfg.distill.batch_size = 3, 8
    cfg.stages = ["pretrain", "linear", "finetune", "distill"]
    cfg.run_dir = str(run_dir)
    for k, v in sets.items():
        setattr(cfg, k, v)
    return cfg


def test_train_runs_every_stage_in_one_command(tmp_path):
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", *TINY, "--stages", "all", "--teacher", "finetune", "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    status = _json(run / "status.json")
    assert list(status) == ["pretrain", "linear", "finetune", "distill-ft"]
    for stage, info in status.items():  # each stage's cost is recorded (wall and this process's CPU)
        assert info["seconds"] > 0 and info["cpu_seconds"] > 0 and info["resumed"] is False, stage
    res = _json(run / "results.json")
    names = [x["name"] for x in res["linear"] + res["finetune"] + res["distill-ft"]]
    assert names == ["random-init probe", "random-init aligned", "theta probe", "phi probe", "theta+phi average",
                     "theta+phi aligned", "theta fine-tuned", "phi fine-tuned", "theta+phi fine-tuned aligned",
                     "teacher (fine-tuned, aligned)", "student of finetune teacher (stgcn-student, tau=4)"]
    # the distillation teacher is the fine-tuned aligned classifier the finetune stage saved
    assert res["distill-ft"][0]["top1"] == pytest.approx(res["finetune"][2]["top1"], abs=1e-6)
    m = res["models"]
    assert m["teacher"]["params"] > 2 * m["encoder"]["params"] > 0
    assert 0 < m["student"]["gflops"] and 0 < m["teacher"]["gflops"]
    # adding the student of the linear-probed teacher to the finished run (Table 5 compares both)
    r = CliRunner().invoke(main, ["train", "--run-dir", str(run), "--resume", "--stages", "distill",
                                  "--teacher", "linear", "--no-progress"])
    assert r.exit_code == 0, r.output
    res = _json(run / "results.json")
    assert list(_json(run / "status.json")) == ["pretrain", "linear", "finetune", "distill-ft", "distill"]
    # the linear-probed teacher is the aligned row of the linear evaluation, recomputed identically
    aligned = next(x for x in res["linear"] if x["name"] == "theta+phi aligned")
    assert res["distill"][0]["top1"] == pytest.approx(aligned["top1"], abs=1e-6)
    assert (run / "distill" / "student.safetensors").is_file()
    r = CliRunner().invoke(main, ["evaluate", "--run-dir", str(run), "--stage", "distill-ft"])
    assert r.exit_code == 0, r.output
    assert _json(run / "distill-ft" / "eval_student.json")["top1"] == pytest.approx(res["distill-ft"][1]["top1"], abs=0.01)
    # a finished run is not overwritten by accident
    r = CliRunner().invoke(main, ["train", *TINY, "--run-dir", str(run)])
    assert r.exit_code == 2 and "already holds a run" in r.output and "--resume" in r.output


def _interrupt_at(monkeypatch, module, stage_dir: str, tag: str):
    """Make ``module.save_checkpoint`` raise KeyboardInterrupt right after writing ``tag`` in a
    folder named ``stage_dir`` (a crash mid-stage)."""
    real = module.save_checkpoint

    def save(directory, name, *a, **k):
        out = real(directory, name, *a, **k)
        if directory.name == stage_dir and name == tag:
            raise KeyboardInterrupt(f"interrupted after {stage_dir}/{tag}")
        return out
    monkeypatch.setattr(module, "save_checkpoint", save)


def test_interrupted_stages_resume_to_the_uninterrupted_numbers(tmp_path, monkeypatch):
    import sys
    ft = sys.modules["asma.train.loop"]  # the engine's module, not the function
    ref = run_pipeline(_tiny_cfg(tmp_path / "ref"), progress=False)
    ref_rows = {r.name: r.top1 for r in ref.rows}

    cfg = _tiny_cfg(tmp_path / "cut")
    with monkeypatch.context() as m:
        _interrupt_at(m, ft, "pretrain", "epoch-0001")
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(cfg, progress=False)
    assert not (tmp_path / "cut" / "status.json").exists()
    with pytest.raises(ValueError, match="already holds a run \\(an interrupted pretraining\\).*--resume"):
        run_pipeline(_tiny_cfg(tmp_path / "cut"), progress=False)  # never restarted over a crashed run
    with monkeypatch.context() as m:  # resumed pretraining, then a crash in phi's fine-tuning
        _interrupt_at(m, ft, "phi", "epoch-0001")
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(_tiny_cfg(tmp_path / "cut"), resume=True, progress=False)
    assert list(_json(tmp_path / "cut" / "status.json")) == ["pretrain", "linear"]
    with monkeypatch.context() as m:
        _interrupt_at(m, ft, "distill", "epoch-0000")
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(_tiny_cfg(tmp_path / "cut"), resume=True, progress=False)
    out = run_pipeline(_tiny_cfg(tmp_path / "cut"), resume=True, progress=False)
    assert {r.name: r.top1 for r in out.rows} == pytest.approx(ref_rows, abs=0.01)
    status = _json(tmp_path / "cut" / "status.json")  # continued stages say their seconds are partial
    assert [k for k, v in status.items() if v["resumed"]] == ["pretrain", "finetune", "distill"]
    # finished stages were read back, not run again: one linear record in the metrics log
    log = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert sum(1 for x in log if x["stage"] == "linear") == 1
    assert [x["epoch"] for x in log if x["stage"] == "pretrain"] == [0, 1, 2]
    # one metrics file per run, every epoch of every stage in it exactly once despite the crashes
    assert sorted(p.relative_to(tmp_path / "cut").as_posix() for p in (tmp_path / "cut").rglob("metrics.*")) == \
        ["metrics.jsonl"]
    for stage in ("theta", "phi", "finetune-aligned", "distill"):
        epochs = [x["epoch"] for x in log if x["stage"] == stage]
        assert epochs == list(range(len(epochs))) and epochs, stage


def test_transfer_pretrains_on_one_dataset_and_evaluates_on_another(tmp_path):
    cfg = _tiny_cfg(tmp_path / "t", stages=["pretrain", "linear", "finetune"])
    cfg.data.num_classes = 4
    cfg.downstream = {"num_classes": 3, "synthetic_seed": 7, "clips_per_class": 6}
    res = run_pipeline(cfg, progress=False)
    logits = load_tensors(tmp_path / "t" / "finetune" / "logits.safetensors")
    assert logits["theta fine-tuned"].shape[1] == 3  # the downstream label space, not the 4 pretraining classes
    assert logits["labels"].max() <= 2
    summary = _json(tmp_path / "t" / "results.json")
    assert summary["downstream"]["num_classes"] == 3 and summary["downstream"]["synthetic_seed"] == 7
    assert len(res.rows) == 9  # 6 linear rows (2 random-init baselines), 3 fine-tuned
    # a downstream layout the encoders were not pretrained on is refused with the reason
    bad = _tiny_cfg(tmp_path / "bad", stages=["linear"])
    bad.downstream = {"layout": "coco17"}
    cfg2 = _tiny_cfg(tmp_path / "bad", stages=["pretrain"])
    run_pipeline(cfg2, progress=False)
    with pytest.raises(ValueError, match="layout 'coco17' with 17 joints.*pretrained on layout 'ntu25'"):
        run_pipeline(bad, resume=True, progress=False)


def test_streams_are_trained_and_fused(tmp_path):
    cfg = _tiny_cfg(tmp_path / "s", stages=["pretrain", "linear"], streams=["joint", "bone"],
                    fusion_weights={"joint": 0.7, "bone": 0.3})
    res = run_streams(cfg, progress=False)
    ens = _json(tmp_path / "s" / "ensemble.json")
    assert ens["weights"] == {"joint": 0.7, "bone": 0.3}
    fused = {r["name"]: r["top1"] for r in ens["results"]}
    assert "fused joint+bone: theta+phi aligned" in fused and not any("random-init" in n for n in fused)
    j = load_tensors(tmp_path / "s" / "joint" / "linear" / "logits.safetensors")
    b = load_tensors(tmp_path / "s" / "bone" / "linear" / "logits.safetensors")
    assert not torch.equal(j["theta probe"], b["theta probe"])  # the streams really differ
    expect = evaluate_logits(fuse_streams({"joint": j["theta probe"], "bone": b["theta probe"]},
                                          {"joint": 0.7, "bone": 0.3}), j["labels"]).top1
    assert fused["fused joint+bone: theta probe"] == pytest.approx(expect, abs=0.01)
    names = [r.name for r in res.rows]
    assert "joint: theta probe" in names and "bone: theta+phi aligned" in names
    assert (tmp_path / "s" / "bone" / "encoders" / "theta" / "model.safetensors").is_file()
    # a stage added later to every stream: the ensemble then covers the old and the new stages
    cfg.stages = ["distill"]
    run_streams(cfg, resume=True, progress=False)
    fused = [r["name"] for r in _json(tmp_path / "s" / "ensemble.json")["results"]]
    assert "fused joint+bone: theta probe" in fused
    assert "fused joint+bone: student of linear teacher (stgcn-student, tau=4)" in fused
    summary = _json(tmp_path / "s" / "results.json")
    assert set(summary["per_stream"]) == {"joint", "bone"} and "distill" in summary["per_stream"]["bone"]


def test_a_bad_second_stream_leaves_nothing_behind(tmp_path, monkeypatch):
    import asma.train.pipeline as pipeline
    real = pipeline.load_dataset

    def load(data):  # the second stream's data cannot be read
        if data.stream == "bone":
            raise ValueError("bone data is unreadable")
        return real(data)

    monkeypatch.setattr(pipeline, "load_dataset", load)
    cfg = _tiny_cfg(tmp_path / "s", stages=["pretrain", "linear"], streams=["joint", "bone"],
                    fusion_weights={"joint": 0.7, "bone": 0.3})
    with pytest.raises(ValueError, match="bone data is unreadable"):
        run_streams(cfg, progress=False)
    assert not (tmp_path / "s").exists()
    # a second stream that already holds a finished run (no --resume): refused before the first trains
    monkeypatch.setattr(pipeline, "load_dataset", real)
    (tmp_path / "t" / "bone").mkdir(parents=True)
    (tmp_path / "t" / "bone" / "status.json").write_text(json.dumps({"pretrain": {"time": 0}}))
    cfg = _tiny_cfg(tmp_path / "t", stages=["pretrain", "linear"], streams=["joint", "bone"],
                    fusion_weights={"joint": 0.7, "bone": 0.3})
    with pytest.raises(ValueError, match=r"t/bone already holds a run \(finished: pretrain\)"):
        run_streams(cfg, progress=False)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["bone"]


def test_streams_from_the_command_line(tmp_path):
    r = CliRunner().invoke(main, ["train", *TINY, "--stages", "pretrain,linear", "--streams", "joint,motion",
                                  "--fusion-weights", "joint=1,motion=0.5", "--run-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "fused joint+motion: theta+phi aligned" in r.output
    assert _json(tmp_path / "c" / "ensemble.json")["weights"] == {"joint": 1.0, "motion": 0.5}


@pytest.mark.parametrize("opts,msg", [
    ({"stages": "pretrain,probe"}, r"unknown stage\(s\) \['probe'\]"),
    ({"fusion_weights": "joint:0.6"}, "STREAM=WEIGHT"),
    ({"streams": "joint,depth"}, "streams must be distinct names from joint, bone, motion"),
])
def test_bad_pipeline_options_are_clear(tmp_path, opts, msg):
    from asma.train.run import run_train
    with pytest.raises(ValueError, match=msg):
        cfg = config_from_options(preset="tiny", run_dir=str(tmp_path / "x"), **opts)
        run_train(cfg, progress=False)


def test_resume_only_accepts_options_that_do_not_change_the_run(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seed": 3}))
    with pytest.raises(ValueError, match="--epochs, --set cannot change it"):
        config_from_options(resume=True, run_dir=str(tmp_path), epochs=3, sets=["probe.lr=1"])
    cfg = config_from_options(resume=True, run_dir=str(tmp_path), stages="distill", teacher="finetune")
    assert cfg.seed == 3 and cfg.stages == ["distill"] and cfg.distill.teacher == "finetune"


def test_an_unavailable_device_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = CliRunner().invoke(main, ["train", *TINY, "--device", "cuda", "--run-dir", str(tmp_path / "d")])
    assert r.exit_code == 2 and "cuda" in r.output and "is_available" in r.output, r.output
    assert not (tmp_path / "d").exists()
    r = CliRunner().invoke(main, ["train", *TINY, "--device", "tpu", "--run-dir", str(tmp_path / "d")])
    assert r.exit_code == 2 and "tpu" in r.output, r.output
