"""Figures of a run directory (t-SNE, encoder difference, curves, confusion) and the
``asma plot`` commands; the data behind each figure against direct computations."""
import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from asma.cli.main import main
from asma.io import load_tensors
from asma.plot.embedding import embed, pick_classes, plot_tsne, run_encoder, tsne_points
from asma.plot.runs import encoder_difference, plot_confusion, plot_curves, plot_encoder_difference, read_metrics

pytestmark = pytest.mark.slow  # the module trains one tiny run (about 15 s)


def _per_class(logits, labels, k):
    pred = logits.argmax(1).numpy()
    lab = labels.numpy()
    return np.array([100.0 * np.mean(pred[lab == c] == c) for c in range(k)])


def test_tsne_of_a_pretrained_encoder(tiny_run, tmp_path, assert_png):
    enc, test, stream = run_encoder(tiny_run, "phi")
    res = plot_tsne(enc, test, tmp_path / "tsne.png", stream, num_classes=3, seed=1, perplexity=10)
    assert_png(res.png)
    d = res.data
    assert d["classes"] == pick_classes(test.labels, 3, 1) and len(d["classes"]) == 3
    idx = np.flatnonzero(np.isin(test.labels, d["classes"]))
    assert d["clips"] == idx.tolist() and d["labels"] == test.labels[idx].tolist()
    with torch.no_grad():
        direct = enc.eval()(torch.as_tensor(np.asarray(test.data[idx])))[0].numpy()
    feats = embed(enc, test.subset(idx), stream)
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d["points"], tsne_points(direct, 1, 10), rtol=1e-3, atol=1e-3)
    rows = list(csv.reader(res.files["csv"].open()))
    assert rows[0] == ["clip", "name", "label", "class", "x", "y"] and len(rows) == len(idx) + 1
    assert rows[1][3] == test.class_names[int(rows[1][2])]


def test_tsne_of_the_student_and_unknown_model(tiny_run):
    enc, _, _ = run_encoder(tiny_run, "student")
    assert enc.config["name"] == "stgcn-student"
    feat, test, stream = run_encoder(tiny_run, "teacher-ft")
    from asma.train.downstream import finetuned_teacher
    from asma.train.rundir import open_run
    ref = finetuned_teacher(open_run(tiny_run)).eval()
    x = torch.as_tensor(np.asarray(test.data[:8]))
    with torch.no_grad():
        np.testing.assert_allclose(embed(feat, test.subset(np.arange(8)), stream), ref.features(x).numpy(),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no model 'omega'; choose one of theta, phi, student.*teacher-ft"):
        run_encoder(tiny_run, "omega")


def test_encoder_difference_is_phi_minus_theta(tiny_run, tmp_path, assert_png):
    res = plot_encoder_difference(tiny_run, tmp_path / "fig6.png")
    assert_png(res.png)
    t = load_tensors(tiny_run / "linear" / "logits.safetensors")
    acc_t = _per_class(t["theta probe"], t["labels"], 4)
    acc_p = _per_class(t["phi probe"], t["labels"], 4)
    np.testing.assert_allclose(res.data["difference"], acc_p - acc_t, atol=1e-9)
    np.testing.assert_allclose(res.data["accuracy"]["theta"], acc_t, atol=1e-9)
    results = json.loads((tiny_run / "linear" / "results.json").read_text())["results"]
    assert res.data["top1"]["phi"] == pytest.approx(next(r["top1"] for r in results if r["name"] == "phi probe"),
                                                   abs=0.01)
    ft = encoder_difference(tiny_run, "finetune")
    t = load_tensors(tiny_run / "finetune" / "logits.safetensors")
    np.testing.assert_allclose(ft["difference"], _per_class(t["phi fine-tuned"], t["labels"], 4) -
                               _per_class(t["theta fine-tuned"], t["labels"], 4), atol=1e-9)
    with pytest.raises(ValueError, match="no row 'omega probe'"):
        encoder_difference(tiny_run, "linear", second="omega")


def test_curves_are_the_metrics_records(tiny_run, tmp_path, assert_png):
    res = plot_curves(tiny_run, tmp_path / "curves.png")
    assert_png(res.png)
    recs = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    pre = [r for r in recs if r["stage"] == "pretrain"]
    assert res.data["pretrain"]["loss"] == [r["loss"] for r in pre]
    assert res.data["pretrain"]["theta/joint"] == [r["theta/joint"] for r in pre]
    # every stage that logged epochs has its curves, pretraining first (wherever the records live)
    files = [tiny_run / "metrics.jsonl"] + sorted(tiny_run.glob("*/metrics.jsonl"))
    stages = {json.loads(line)["stage"] for f in files for line in f.read_text().splitlines()
              if "epoch" in json.loads(line)}
    assert {k.rpartition("/")[2] for k in res.data} == stages >= {"pretrain", "theta", "phi", "distill"}
    assert list(res.data)[0] == "pretrain"
    phi = [json.loads(line) for f in files for line in f.read_text().splitlines()
           if json.loads(line).get("stage") == "phi" and "epoch" in json.loads(line)]
    key = next(k for k in res.data if k.rpartition("/")[2] == "phi")
    assert res.data[key]["train_acc"] == [r["train_acc"] for r in phi]
    assert "linear" not in read_metrics(tiny_run)  # one record without epochs is not a curve


def test_curves_name_a_broken_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"stage": "pretrain", "epoch": 0, "loss": 1}\n{"stage": \n')
    with pytest.raises(ValueError, match=r"metrics.jsonl line 2: not JSON"):
        read_metrics(tmp_path)


def test_confusion_from_stage_logits_and_from_an_evaluation(tiny_run, tmp_path, assert_png):
    res = plot_confusion(tmp_path / "c.png", tiny_run, "linear")
    assert_png(res.png)
    t = load_tensors(tiny_run / "linear" / "logits.safetensors")
    pred, lab = t["theta+phi aligned"].argmax(1), t["labels"]
    direct = np.zeros((4, 4), int)
    np.add.at(direct, (lab.numpy(), pred.numpy()), 1)
    assert res.data["confusion"] == direct.tolist()
    assert "theta+phi aligned" in res.data["source"]  # the stage's last row, not the last key
    rows = list(csv.reader(res.files["csv"].open()))
    assert rows[0][0] == "true\\pred" and [int(v) for v in rows[1][1:]] == direct[0].tolist()
    from asma.train.stages import evaluate_run
    ev = evaluate_run(tiny_run, "distill")
    res = plot_confusion(tmp_path / "e.png", eval_json=tiny_run / "distill" / "eval_student.json", normalize=False)
    assert res.data["confusion"] == ev.confusion.tolist() and res.data["class_names"] == ev.class_names


def test_plot_commands(tiny_run, tmp_path, assert_png):
    r = CliRunner()
    for args in (["curves"], ["encoders", "--stage", "finetune"], ["confusion", "--stage", "finetune"],
                 ["tsne", "--encoder", "student", "--classes", "2"]):
        out = r.invoke(main, ["plot", *args, "--run-dir", str(tiny_run)])
        assert out.exit_code == 0, out.output
        assert "wrote" in out.output
    assert_png(tiny_run / "plots" / "encoders-finetune.png")
    assert (tiny_run / "plots" / "tsne-student.csv").is_file()
    out = r.invoke(main, ["plot", "motion", "--split", "test", "--out", str(tmp_path / "m.png")])
    assert out.exit_code == 0, out.output
    assert_png(tmp_path / "m.png")
    out = r.invoke(main, ["plot", "tsne", "--model", f"{tiny_run}:encoder-phi", "--dataset", "synthetic",
                          "--classes", "2", "--out", str(tmp_path / "t.png")])
    assert out.exit_code == 0, out.output
    assert len(json.loads((tmp_path / "t.json").read_text())["classes"]) == 2
    out = r.invoke(main, ["plot", "confusion", "--run-dir", str(tiny_run), "--row", "nope"])
    assert out.exit_code == 2 and "no result row 'nope'" in out.output and "Traceback" not in out.output
    out = r.invoke(main, ["plot", "tsne"])
    assert out.exit_code == 2 and "either --run-dir" in out.output
