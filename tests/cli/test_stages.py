"""`asma pretrain` then `asma linear`, `asma finetune` and `asma distill` on the same run directory."""
import json

import pytest

from click.testing import CliRunner

from asma.cli.main import main
from asma.io import load_tensors

FAST = ["--preset", "tiny", "--no-progress", "--set", "data.clips_per_class=10", "--set", "pretrain.epochs=1",
        "--set", "probe.epochs=3", "--set", "data.num_classes=3", "--set", "pretrain.batch_size=8"]


def test_stage_commands_continue_a_run(tmp_path):
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["pretrain", *FAST, "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    assert "linear" not in json.loads((run / "results.json").read_text())  # pretrain only
    assert (run / "encoders" / "theta" / "model.safetensors").is_file()

    r = CliRunner().invoke(main, ["linear", "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    lin = json.loads((run / "linear" / "results.json").read_text())["results"]
    assert json.loads((run / "results.json").read_text())["linear"] == lin
    assert [x["name"] for x in lin] == ["random-init probe", "random-init aligned", "theta probe", "phi probe",
                                        "theta+phi average", "theta+phi aligned"]  # the rows of `asma train`

    r = CliRunner().invoke(main, ["finetune", "--run-dir", str(run), "--epochs", "2", "--batch-size", "8",
                                  "--align-epochs", "2", "--no-progress"])
    assert r.exit_code == 0, r.output
    ft = json.loads((run / "finetune" / "results.json").read_text())
    assert [x["name"] for x in ft["results"]] == ["theta fine-tuned", "phi fine-tuned",
                                                 "theta+phi fine-tuned aligned"]
    assert ft["config"]["epochs"] == 2

    r = CliRunner().invoke(main, ["distill", "--run-dir", str(run), "--epochs", "2", "--batch-size", "8",
                                  "--layers", "3", "--tau", "4", "--no-progress"])
    assert r.exit_code == 0, r.output
    dist = json.loads((run / "distill" / "results.json").read_text())
    assert dist["config"]["tau"] == 4.0 and dist["results"][1]["name"] == "student of linear teacher (stgcn-student, tau=4)"
    # the linear-probed teacher reproduces the aligned row of `asma linear`
    assert dist["results"][0]["top1"] == next(x for x in lin if x["name"] == "theta+phi aligned")["top1"]
    student = json.loads((run / "distill" / "student.json").read_text())
    assert student["backbone"]["name"] == "stgcn-student" and student["backbone"]["num_layers"] == 3
    assert any(k.startswith("encoder.blocks.2.") for k in load_tensors(run / "distill" / "student.safetensors"))

    # evaluate the saved classifiers: the numbers equal what the stages reported
    r = CliRunner().invoke(main, ["evaluate", "--run-dir", str(run), "--stage", "finetune", "--name", "phi"])
    assert r.exit_code == 0, r.output
    ev = json.loads((run / "finetune" / "eval_phi.json").read_text())
    assert ev["top1"] == pytest.approx(ft["results"][1]["top1"], abs=0.01)
    confusion = (run / "finetune" / "eval_phi_confusion.csv").read_text().splitlines()
    assert len(confusion) == 1 + 3
    r = CliRunner().invoke(main, ["evaluate", "--run-dir", str(run), "--stage", "distill"])
    assert r.exit_code == 0, r.output
    ev = json.loads((run / "distill" / "eval_student.json").read_text())
    assert ev["top1"] == pytest.approx(dist["results"][1]["top1"], abs=0.01)


def test_stage_on_a_folder_that_is_not_a_run(tmp_path):
    r = CliRunner().invoke(main, ["linear", "--run-dir", str(tmp_path)])
    assert r.exit_code == 2 and "is not a run directory" in r.output
    r = CliRunner().invoke(main, ["evaluate", "--run-dir", str(tmp_path), "--stage", "distill"])
    assert r.exit_code == 2 and "is not a run directory" in r.output


def test_sweep_command_runs_fig4_on_a_run(tmp_path):
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["pretrain", *FAST, "--run-dir", str(run)]).exit_code == 0
    r = CliRunner().invoke(main, ["sweep", "--run-dir", str(run), "--over", "tau", "--values", "1,4",
                                  "--epochs", "1"])
    assert r.exit_code == 0, r.output
    tau = json.loads((run / "sweeps" / "tau.json").read_text())
    assert [x["tau"] for x in tau["rows"]] == [1.0, 4.0] and tau["teacher"]["kind"] == "linear"
    assert len({x["params"] for x in tau["rows"]}) == 1  # same student, only tau changes
    r = CliRunner().invoke(main, ["sweep", "--run-dir", str(run), "--over", "layers", "--values", "2,4",
                                  "--epochs", "1"])
    assert r.exit_code == 0, r.output
    rows = json.loads((run / "sweeps" / "layers.json").read_text())["rows"]
    assert [x["layers"] for x in rows] == [2, 4] and rows[0]["params"] < rows[1]["params"]
    assert (run / "sweeps" / "layers" / "layers-4").is_dir()
    r = CliRunner().invoke(main, ["sweep", "--run-dir", str(run), "--over", "layers", "--values", "2.5"])
    assert r.exit_code == 2 and "comma-separated integers" in r.output
