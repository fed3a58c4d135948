"""`torchrun --nproc_per_node 2 asma pretrain|finetune|distill`: two CPU processes (gloo) train one
model."""
import json
import os
import subprocess
import sys

import pytest


def _torchrun(*args):
    """``torchrun --nproc_per_node 2 -m asma.cli.main <args>`` on a free local port."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", port, "-m", "asma.cli.main", *args]


def _records(path, *stages):
    """(stage, epoch) of the records of ``stages`` in the run's one metrics file."""
    return [(r["stage"], r["epoch"]) for r in map(json.loads, path.read_text().splitlines()) if r["stage"] in stages]


@pytest.mark.slow
def test_whole_pipeline_under_torchrun_two_processes(tmp_path):
    """`torchrun ... asma train --stages all`: every stage data-parallel, rank 0 writes and reports."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = _torchrun("train", "--preset", "tiny", "--no-progress", "--run-dir", str(run), "--stages", "all",
                    "--set", "data.clips_per_class=12", "--set", "data.num_classes=3", "--set", "pretrain.epochs=2",
                    "--set", "pretrain.batch_size=8", "--set", "probe.epochs=3", "--set", "finetune.epochs=1",
                    "--set", "finetune.align_epochs=1", "--set", "distill.epochs=1")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.count("run directory:") == 1  # rank 0 reports
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    # rank 0 alone writes: one record per epoch, not two
    assert [l["epoch"] for l in lines if l["stage"] == "pretrain"] == [0, 1]
    assert all(l["loss"] > 0 for l in lines if l["stage"] == "pretrain")
    ckpts = sorted(d.name for d in (run / "pretrain").iterdir() if d.is_dir())
    assert ckpts == ["epoch-0000", "epoch-0001"]
    assert (run / "encoders" / "phi" / "model.safetensors").is_file()
    assert list(json.loads((run / "status.json").read_text())) == ["pretrain", "linear", "finetune", "distill"]
    assert _records(run / "metrics.jsonl", "distill") == [("distill", 0)]
    res = json.loads((run / "results.json").read_text())
    assert len(res["linear"]) == 6 and len(res["finetune"]) == 3 and len(res["distill"]) == 2


@pytest.mark.slow
def test_finetune_and_distill_under_torchrun_two_processes(tmp_path):
    # a pretrained run made by one process, then the labelled stages data-parallel on two
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "asma.cli.main", "pretrain", "--preset", "tiny", "--no-progress",
                        "--run-dir", str(run), "--set", "data.clips_per_class=10", "--set", "data.num_classes=3",
                        "--set", "pretrain.epochs=1", "--set", "pretrain.batch_size=8", "--set", "probe.epochs=3"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    # 18 training clips, global batch 7: parts 4/3 and a last batch of 4 (2/2)
    p = subprocess.run(_torchrun("finetune", "--run-dir", str(run), "--epochs", "2", "--batch-size", "7",
                                 "--align-epochs", "2", "--no-progress"),
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.count("fine-tuning:") == 1  # rank 0 reports
    ft = run / "finetune"
    # rank 0 alone writes: one record per epoch of every sub-stage, not two
    assert _records(run / "metrics.jsonl", "theta", "phi", "finetune-aligned") == [
        ("theta", 0), ("theta", 1), ("phi", 0), ("phi", 1), ("finetune-aligned", 0), ("finetune-aligned", 1)]
    assert sorted(d.name for d in (ft / "theta").iterdir() if d.is_dir()) == ["epoch-0000", "epoch-0001"]
    names = [r["name"] for r in json.loads((ft / "results.json").read_text())["results"]]
    assert names == ["theta fine-tuned", "phi fine-tuned", "theta+phi fine-tuned aligned"]

    p = subprocess.run(_torchrun("distill", "--run-dir", str(run), "--epochs", "2", "--batch-size", "8",
                                 "--layers", "3", "--no-progress"),
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.count("distillation:") == 1
    assert _records(run / "metrics.jsonl", "distill") == [("distill", 0), ("distill", 1)]
    assert (run / "distill" / "student.safetensors").is_file()
    status = json.loads((run / "status.json").read_text())
    assert {"pretrain", "finetune", "distill"} <= set(status)


def test_batch_must_divide_by_world_size(monkeypatch):
    from asma.data.synthetic import SyntheticConfig, make_synthetic
    import torch

    from asma.train import make_config, pretrain
    from asma.train.distributed import DistInfo
    pt = sys.modules["asma.train.pretrain"]
    monkeypatch.setattr(pt, "init_for_device", lambda device: DistInfo(0, 3, 0, "gloo", torch.device("cpu")))
    cfg = make_config("tiny")
    cfg.pretrain.batch_size = 8
    data = make_synthetic(SyntheticConfig(num_classes=3, clips_per_class=6, num_frames=12, num_persons=1))
    with pytest.raises(ValueError, match="must be a multiple of the number of processes \\(3\\)"):
        pretrain(cfg, data, None, progress=False)
