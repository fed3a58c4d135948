"""From a finished run to a zoo folder: ``asma.zoo.export.export_run`` and ``asma zoo export``.

One tiny run (all four stages, a few seconds) is trained once for the module; every exported model
must give the run's own logits on the run's test clips, and its config must carry the run's metrics.
"""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from asma.cli.zoo import zoo
from asma.zoo import load_from_hub, load_pretrained, push_to_hub
from asma.zoo.export import export_run, exportable


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run: ``{"dir", "ctx" (open_run), "clips" (N, C, T, V, M) joints, "results"}``."""
    from asma.train.config import make_config
    from asma.train.pipeline import run_pipeline
    from asma.train.rundir import open_run
    cfg = make_config("tiny")
    cfg.data.clips_per_class, cfg.data.num_classes = 8, 3
    cfg.pretrain.epochs, cfg.pretrain.batch_size, cfg.probe.epochs = 1, 8, 3
    cfg.finetune.epochs, cfg.finetune.align_epochs, cfg.distill.epochs = 1, 1, 1
    cfg.stages = ["pretrain", "linear", "finetune", "distill"]
    cfg.run_dir = str(tmp_path_factory.mktemp("export") / "run")
    run_pipeline(cfg, progress=False)
    ctx = open_run(cfg.run_dir)
    return {"dir": ctx.run_dir, "ctx": ctx, "clips": torch.from_numpy(ctx.test.data.copy()),
            "results": json.loads((ctx.run_dir / "results.json").read_text())}


def _row(run, stage, name):
    row = next(r for r in run["results"][stage] if r["name"] == name)
    return {"top1": row["top1"], "top5": row["top5"]}


def _exported_logits(folder, clips):
    model, cfg = load_pretrained(folder)
    with torch.no_grad():
        return model(cfg.preprocess(clips)), cfg


def test_student_reproduces_the_runs_student(run, tmp_path):
    from asma.train.downstream import load_student
    from asma.train.stages import evaluate_run
    cfg = export_run(run["dir"], "student", tmp_path / "student", license="apache-2.0", base_model="org/teacher")
    logits, loaded = _exported_logits(tmp_path / "student", run["clips"])
    assert torch.equal(logits, evaluate_run(run["dir"], "distill").logits)
    with torch.no_grad():
        assert torch.equal(logits, load_student(run["dir"], "distill")(loaded.preprocess(run["clips"])))
    assert loaded == cfg and loaded.kind == "student" and loaded.base_model == "org/teacher"
    student_row = next(r["name"] for r in run["results"]["distill"] if r["name"].startswith("student of"))
    assert loaded.metrics == {"synthetic-xsub/distill": _row(run, "distill", student_row)}
    ctx = run["ctx"]
    assert loaded.class_names == ctx.train.class_names and loaded.layout == ctx.train.skeleton.to_dict()
    assert (loaded.in_channels, loaded.num_coords, loaded.num_frames, loaded.num_persons) == (3, 3, 20, 1)
    assert (loaded.dataset, loaded.stream, loaded.license, loaded.head) == (
        "synthetic-xsub", "joint", "apache-2.0", {"type": "linear"})
    assert loaded.training == {"teacher": "linear", "tau": 4.0, "mode": "logits", "seed": 0,
                               "epochs": {"pretrain": 1, "distill": 1},
                               "masking": {"theta": ["high", "low"], "phi": ["low", "high"]}}
    assert "synthetic" in loaded.preprocessing["note"] and loaded.preprocessing["synthetic"]["num_classes"] == 3
    assert "student distilled (tau=4)" in loaded.description
    assert "synthetic-xsub/distill" in (tmp_path / "student" / "README.md").read_text()


def test_teacher_reproduces_the_finetuned_aligned_classifier(run, tmp_path):
    from asma.train.downstream import finetuned_teacher
    from asma.train.stages import evaluate_run
    export_run(run["dir"], "teacher", tmp_path / "teacher")
    logits, cfg = _exported_logits(tmp_path / "teacher", run["clips"])
    assert torch.equal(logits, evaluate_run(run["dir"], "finetune", "aligned").logits)
    model, _ = load_pretrained(tmp_path / "teacher")
    ref = finetuned_teacher(run["ctx"])
    assert torch.equal(model.norm_theta.std, ref.norm_theta.std) and torch.equal(model.norm_phi.mean, ref.norm_phi.mean)
    assert cfg.kind == "teacher" and cfg.head == {"type": "alignment", "num_heads": 2, "dropout": 0.0}
    assert cfg.metrics == {"synthetic-xsub/finetune": _row(run, "finetune", "theta+phi fine-tuned aligned")}
    assert cfg.training["epochs"] == {"pretrain": 1, "finetune": 1, "align": 1}


def test_classifier_and_encoder(run, tmp_path):
    from asma.train.rundir import load_encoders
    from asma.train.stages import evaluate_run
    export_run(run["dir"], "classifier-theta", tmp_path / "clf")
    logits, cfg = _exported_logits(tmp_path / "clf", run["clips"])
    assert torch.equal(logits, evaluate_run(run["dir"], "finetune", "theta").logits)
    assert cfg.kind == "classifier" and cfg.training["masking"] == {"theta": ["high", "low"]}
    assert cfg.metrics == {"synthetic-xsub/finetune": _row(run, "finetune", "theta fine-tuned")}
    assert cfg.class_names == run["ctx"].train.class_names
    export_run(run["dir"], "encoder-phi", tmp_path / "enc")
    enc, cfg = load_pretrained(tmp_path / "enc")
    ref = load_encoders(run["dir"], run["ctx"].cfg)["phi"]
    with torch.no_grad():
        assert torch.equal(enc(run["clips"])[0], ref(run["clips"])[0])
    assert cfg.kind == "encoder" and not cfg.class_names
    assert cfg.metrics == {"synthetic-xsub/linear": _row(run, "linear", "phi probe")}


def test_errors_name_the_missing_stage_and_the_command(run, tmp_path):
    assert exportable(run["dir"]) == ["student", "teacher", "classifier-phi", "classifier-theta",
                                      "encoder-phi", "encoder-theta"]
    with pytest.raises(ValueError, match=r"distill-ft/student\.safetensors does not exist.*asma distill --run-dir "
                                         r".* --teacher finetune"):
        export_run(run["dir"], "student-ft", tmp_path / "x")
    with pytest.raises(ValueError, match=r"unknown model 'studnet'; .* holds: student, teacher"):
        export_run(run["dir"], "studnet", tmp_path / "x")
    with pytest.raises(ValueError, match="not a student"):
        export_run(run["dir"], "teacher", tmp_path / "x", base_model="org/t")
    with pytest.raises(ValueError, match="not a run directory"):
        export_run(tmp_path, "student", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_exported_student_through_the_hub(run, hub, tmp_path):
    export_run(run["dir"], "student", tmp_path / "student")
    sha = push_to_hub(tmp_path / "student", "org/asma-student", endpoint=hub.url, tag="v1")
    model, cfg = load_from_hub("hf-hub:org/asma-student@v1", endpoint=hub.url, cache_dir=tmp_path / "cache")
    assert cfg.origin["commit"] == sha
    local, _ = _exported_logits(tmp_path / "student", run["clips"])
    with torch.no_grad():
        assert torch.equal(model(cfg.preprocess(run["clips"])), local)


def test_cli_export(run, tmp_path):
    out = tmp_path / "cli-student"
    r = CliRunner().invoke(zoo, ["export", "--run-dir", str(run["dir"]), "--model", "student", "--out", str(out),
                                 "--license", "cc-by-nc-4.0", "--description", "A tiny student."])
    assert r.exit_code == 0, r.output
    assert f"publish it with: asma zoo push {out} org/name" in r.output
    assert "synthetic-xsub/distill" in r.output and "config.json, model.safetensors, README.md" in r.output
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["license"], cfg["description"], cfg["kind"]) == ("cc-by-nc-4.0", "A tiny student.", "student")
    r = CliRunner().invoke(zoo, ["export", "--run-dir", str(run["dir"]), "--model", "student-ft", "--out",
                                 str(tmp_path / "ft")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert "distill-ft/student.safetensors does not exist" in r.output and "--teacher finetune" in r.output


def test_create_model_builds_a_runs_models_in_memory(run):
    import asma
    from asma.train.downstream import finetuned_teacher, load_student
    clips = run["clips"]
    student = asma.create_model(str(run["dir"]), pretrained=True)  # a bare run: its student
    assert not student.training and student.pretrained_cfg.kind == "student"
    assert student.pretrained_cfg.source == {"run": str(run["dir"]), "model": "student"}
    teacher = asma.create_model(f"{run['dir']}:teacher", pretrained=True)
    x = student.pretrained_cfg.preprocess(clips)
    with torch.no_grad():
        assert torch.equal(student(x), load_student(run["dir"], "distill")(x))
        assert torch.equal(teacher(x), finetuned_teacher(run["ctx"])(x))
    with pytest.raises(ValueError, match="unknown model 'nope'.*holds: student"):
        asma.create_model(f"{run['dir']}:nope")
