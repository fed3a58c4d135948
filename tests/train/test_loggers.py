import csv
import json

import pytest
import torch
from torch import nn

from asma.train.loggers import CsvLogger, JsonlLogger, TensorBoardLogger, make_logger, scalars
from asma.train.loop import fit
from asma.train.optim import adam


def test_scalars_flatten_nested_records_and_result_rows():
    rec = {"stage": "linear", "epoch": 3, "time": 1.0, "loss": 0.5, "theta/joint": 2, "ok": True,
           "lr": {"base": 0.1}, "results": [{"name": "aligned", "top1": 50.0, "top5": 90.0}], "note": "x"}
    assert dict(scalars(rec)) == {"loss": 0.5, "theta/joint": 2.0, "ok": 1.0, "lr/base": 0.1,
                                  "results/aligned/top1": 50.0, "results/aligned/top5": 90.0}


def test_jsonl_and_csv_resume_forget_only_the_restarted_stage_epochs(tmp_path):
    j, c = JsonlLogger(tmp_path / "m.jsonl"), CsvLogger(tmp_path / "m.csv")
    for lg in (j, c):
        for stage in ("pretrain", "finetune"):
            for e in range(3):
                lg.log({"stage": stage, "epoch": e, "loss": float(e)})
        lg.log({"stage": "linear", "results": [{"name": "a", "top1": 1.0}]})
        lg.resume("finetune", 1)
    got = [(r["stage"], r.get("epoch")) for r in j.read()]
    assert got == [("pretrain", 0), ("pretrain", 1), ("pretrain", 2), ("finetune", 0), ("linear", None)]
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["stage"], r["epoch"], r["key"], r["value"]) for r in rows] == [
        ("pretrain", "0", "loss", "0.0"), ("pretrain", "1", "loss", "1.0"), ("pretrain", "2", "loss", "2.0"),
        ("finetune", "0", "loss", "0.0"), ("linear", "", "results/a/top1", "1.0")]


def test_tensorboard_logger_writes_scalars_and_purges_restarted_epochs(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tb = TensorBoardLogger(tmp_path / "tb")
    for e in range(3):
        tb.log({"stage": "pretrain", "epoch": e, "loss": 10.0 + e})
    tb.resume("pretrain", 1)  # crashed after epoch 2 was logged; continue at epoch 1
    for e in (1, 2):
        tb.log({"stage": "pretrain", "epoch": e, "loss": 20.0 + e})
    tb.close()
    acc = EventAccumulator(str(tmp_path / "tb" / "pretrain"), purge_orphaned_data=True)
    acc.Reload()
    assert [(ev.step, ev.value) for ev in acc.Scalars("loss")] == [(0, 10.0), (1, 21.0), (2, 22.0)]


def test_make_logger_kinds_and_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown logger.*'wandb'.*jsonl, csv, tensorboard"):
        make_logger(tmp_path, ["jsonl", "wandb"])
    with make_logger(tmp_path, ["jsonl", "csv"]) as lg:
        lg.log({"stage": "s", "epoch": 0, "loss": 1.5})
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["loss"] == 1.5
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1].endswith(",s,0,loss,1.5")
    make_logger(None, ["csv"]).log({"stage": "s", "epoch": 0, "loss": 1.0})  # no run directory: nothing


def _train(ckpt, logger, resume=False, max_epochs=None):
    torch.manual_seed(0)
    x, y = torch.randn(24, 5), torch.randint(0, 3, (24,))
    lin = nn.Linear(5, 3)
    opt = adam(lin.parameters(), lr=0.05)

    def batch_loss(net, batch, g):
        return nn.functional.cross_entropy(net(x[batch.idx]), y[batch.idx]), {}
    return fit(lin, opt, batch_loss, 24, 10, 4, warmup_epochs=1, stage="toy", ckpt_dir=ckpt, resume=resume,
               logger=logger, max_epochs=max_epochs)


def test_resume_after_a_crash_between_log_and_checkpoint_logs_every_epoch_once(tmp_path):
    full = _train(tmp_path / "full", JsonlLogger(tmp_path / "full.jsonl"))
    log = JsonlLogger(tmp_path / "run.jsonl")
    _train(tmp_path / "ck", log, max_epochs=2)
    # the process died after logging epoch 2 and before its checkpoint was written
    log.log({**full[2], "loss": 123.0})
    resumed = _train(tmp_path / "ck", log, resume=True)
    assert [h["epoch"] for h in resumed] == [2, 3]
    records = log.read()
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert [r["loss"] for r in records] == [h["loss"] for h in full]  # exactly the uninterrupted numbers
    assert [r["lr"] for r in records] == [h["lr"] for h in full]
