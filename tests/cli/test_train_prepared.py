"""`asma train --dataset NAME --data-dir DIR` on a dataset prepared from real files."""
import json

from click.testing import CliRunner

from asma.cli.main import main
from asma.data.prepare import prepare_dataset


def test_train_on_prepared_utkinect(realdata, tmp_path):
    out = tmp_path / "prepared"
    prepare_dataset("utkinect", realdata / "utkinect_action3d", out, workers=1)
    run = tmp_path / "run"
    r = CliRunner().invoke(main, [
        "train", "--dataset", "utkinect-xsub", "--data-dir", str(out), "--preset", "tiny", "--no-progress",
        "--epochs", "1", "--batch-size", "25", "--set", "probe.epochs=2", "--set", "model.n_joints=5",
        "--set", "model.n_frames=10", "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    res = json.loads((run / "results.json").read_text())
    assert res["dataset"] == "utkinect-xsub"
    enc = json.loads((run / "encoders" / "theta" / "config.json").read_text())
    assert enc["layout"]["name"] == "kinect20" and enc["num_frames"] == 50


def test_missing_prepared_dataset_names_path_and_command(tmp_path):
    r = CliRunner().invoke(main, ["train", "--dataset", "ntu60-xsub", "--data-dir", str(tmp_path), "--preset", "tiny"])
    assert r.exit_code == 2
    assert "asma data prepare ntu60" in r.output and str(tmp_path) in r.output


def test_transfer_from_embedded_data_to_real_utkinect(realdata, tmp_path):
    """Table 6 style on real data: pretrain on the embedded generator's kinect20 skeletons, then
    every labelled stage on UTKinect's recordings (another label space: 10 real actions)."""
    from asma.io import load_tensors
    out = tmp_path / "prepared"
    prepare_dataset("utkinect", realdata / "utkinect_action3d", out, workers=1)
    run = tmp_path / "run"
    r = CliRunner().invoke(main, [
        "train", "--preset", "tiny", "--no-progress", "--set", "data.layout=kinect20", "--set", "data.num_classes=4",
        "--set", "data.clips_per_class=8", "--epochs", "1", "--batch-size", "8", "--set", "probe.epochs=2",
        "--set", "finetune.epochs=1", "--set", "finetune.align_epochs=1", "--stages", "pretrain,linear,finetune",
        "--transfer-to", "utkinect-xsub", "--data-dir", str(out), "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    res = json.loads((run / "results.json").read_text())
    assert res["dataset"] == "synthetic" and res["downstream"]["dataset"] == "utkinect-xsub"
    logits = load_tensors(run / "finetune" / "logits.safetensors")
    assert logits["theta+phi fine-tuned aligned"].shape == (99, 10)  # UTKinect's test clips and classes
    enc = json.loads((run / "encoders" / "theta" / "config.json").read_text())
    assert enc["layout"]["name"] == "kinect20" and len(enc["class_names"]) == 4  # pretrained on 4 synthetic classes
    # the fine-tuned classifier exports to the zoo with the downstream data's facts
    r = CliRunner().invoke(main, ["zoo", "export", "--run-dir", str(run), "--model", "classifier-theta",
                                  "--out", str(tmp_path / "zoo")])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "zoo" / "config.json").read_text())
    assert cfg["dataset"] == "utkinect-xsub" and len(cfg["class_names"]) == 10 and cfg["num_frames"] == 50
    info = json.loads((out / "utkinect-xsub" / "train" / "info.json").read_text())
    assert cfg["preprocessing"] == info["preprocessing"]  # what a user must re-apply to raw clips
