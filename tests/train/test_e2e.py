"""End to end on the embedded data: pretraining must beat a random-init encoder on the linear probe."""
import json

import pytest

from asma.io import read_json
from asma.train import make_config, run_train


@pytest.mark.slow
def test_pretraining_beats_random_init(tmp_path):
    cfg = make_config("tiny")
    cfg.run_dir = str(tmp_path / "run")
    result = run_train(cfg, progress=False)
    rand = result.row("random-init probe").top1
    theta = result.row("theta probe").top1
    phi = result.row("phi probe").top1
    aligned = result.row("theta+phi aligned").top1
    chance = 100.0 / cfg.data.num_classes
    assert max(theta, phi, aligned) > rand + 10, [r.as_dict() for r in result.rows]
    assert min(theta, phi) > chance + 10
    # run directory contents
    run = tmp_path / "run"
    saved = read_json(run / "config.json")
    assert saved["preset"] == "tiny" and saved["model"]["n_joints"] == 5
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    pre = [l for l in lines if l["stage"] == "pretrain"]
    assert [l["epoch"] for l in pre] == list(range(cfg.pretrain.epochs))
    assert pre[-1]["loss"] < pre[0]["loss"]
    assert (run / "encoders" / "theta" / "model.safetensors").is_file()
    enc_cfg = read_json(run / "encoders" / "phi" / "config.json")
    assert enc_cfg["kind"] == "encoder" and enc_cfg["training"]["masking"] == ["low", "high"]
    assert enc_cfg["layout"]["num_joints"] == 25
    res = read_json(run / "results.json")
    assert {r["name"] for r in res["linear"]} == {r.name for r in result.rows}
