"""`torchrun --nproc_per_node 2 asma pretrain`: two CPU processes (gloo) train one model."""
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_pretrain_under_torchrun_two_processes(tmp_path):
    run = tmp_path / "run"
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", port,
           "-m", "asma.cli.main", "pretrain", "--preset", "tiny", "--no-progress", "--run-dir", str(run),
           "--set", "data.clips_per_class=12", "--set", "data.num_classes=3", "--set", "pretrain.epochs=2",
           "--set", "pretrain.batch_size=8"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.count("pretrained encoders in") == 1  # rank 0 reports
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    # rank 0 alone writes: one record per epoch, not two
    assert [l["epoch"] for l in lines if l["stage"] == "pretrain"] == [0, 1]
    assert all(l["loss"] > 0 for l in lines)
    ckpts = sorted(d.name for d in (run / "pretrain").iterdir() if d.is_dir())
    assert ckpts == ["epoch-0000", "epoch-0001"]
    assert (run / "encoders" / "phi" / "model.safetensors").is_file()


def test_batch_must_divide_by_world_size(monkeypatch):
    from asma.data.synthetic import SyntheticConfig, make_synthetic
    import torch

    from asma.train import make_config, pretrain
    from asma.train.distributed import DistInfo
    pt = sys.modules["asma.train.pretrain"]
    monkeypatch.setattr(pt, "init_distributed", lambda: DistInfo(0, 3, 0, "gloo", torch.device("cpu")))
    cfg = make_config("tiny")
    cfg.pretrain.batch_size = 8
    data = make_synthetic(SyntheticConfig(num_classes=3, clips_per_class=6, num_frames=12, num_persons=1))
    with pytest.raises(ValueError, match="must be a multiple of the number of processes \\(3\\)"):
        pretrain(cfg, data, None, progress=False)
