"""Damaged, tampered and foreign checkpoints are refused with one line naming the file (issue 13.3/13.4)."""
import json
import os
import shutil

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from asma.cli.main import main
from asma.io import (CHECKPOINT_HASHES, CheckpointError, latest_checkpoint, load_checkpoint, load_tensors,
                     read_json, resolve_tag, save_checkpoint, save_tensors, sha256_file)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


@pytest.fixture
def ckpt(tmp_path):
    m = _model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    for e in (0, 1):
        save_checkpoint(tmp_path, f"epoch-{e:04d}", m, {"k": 1}, {"epoch": e}, opt)
    return tmp_path


def _flip(path, n=16, at=None):
    data = bytearray(path.read_bytes())
    start = len(data) - n - 1 if at is None else at
    for i in range(start, start + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _resume(directory):
    m = _model()
    return load_checkpoint(latest_checkpoint(directory), m, torch.optim.Adam(m.parameters(), lr=1e-2))


def test_state_records_the_sha256_of_every_file(ckpt):
    state = read_json(ckpt / "epoch-0001" / "state.json")
    assert state["epoch"] == 1
    assert state[CHECKPOINT_HASHES] == {n: sha256_file(ckpt / "epoch-0001" / n) for n in
                                        ("model.safetensors", "config.json", "optimizer.safetensors", "optimizer.json")}
    assert _resume(ckpt) == {"epoch": 1}  # the record is not part of the caller's state


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.safetensors", "optimizer.json"])
def test_sixteen_flipped_bytes_are_refused_naming_file_and_hashes(ckpt, name):
    path = ckpt / "epoch-0001" / name
    recorded = read_json(ckpt / "epoch-0001" / "state.json")[CHECKPOINT_HASHES][name]
    _flip(path)
    actual = sha256_file(path)
    assert actual != recorded
    with pytest.raises(CheckpointError) as e:
        _resume(ckpt)
    msg = str(e.value)
    assert str(path) in msg and actual in msg and recorded in msg and "\n" not in msg


@pytest.mark.parametrize("damage", ["empty", "truncated", "header"])
def test_damaged_safetensors_name_the_file(tmp_path, damage):
    p = tmp_path / "w.safetensors"
    save_tensors(p, {"a": torch.randn(16, 16)})
    data = p.read_bytes()
    p.write_bytes({"empty": b"", "truncated": data[:len(data) // 2], "header": data[:8] + b"}" + data[9:]}[damage])
    with pytest.raises(CheckpointError, match=rf"{p}.*(empty|truncated or damaged)") as e:
        load_tensors(p)
    assert "\n" not in str(e.value)


def test_truncated_checkpoint_is_refused(ckpt):
    p = ckpt / "epoch-0001" / "model.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=rf"{p} was modified or damaged"):
        _resume(ckpt)


def _edit_state(ckpt, **changes):
    p = ckpt / "epoch-0001" / "state.json"
    state = read_json(p)
    for k, v in changes.items():
        if v is None:
            state.pop(k)
        else:
            state[k] = v
    p.write_text(json.dumps(state))


def test_state_without_epoch_or_hashes_is_a_clear_error(ckpt):
    _edit_state(ckpt, epoch=None)
    with pytest.raises(CheckpointError, match=r"state.json: field 'epoch' .*\(the field is missing\)"):
        _resume(ckpt)
    _edit_state(ckpt, epoch=-2)
    with pytest.raises(CheckpointError, match=r"field 'epoch' must be the finished epoch .* got -2"):
        _resume(ckpt)
    _edit_state(ckpt, epoch=1, **{CHECKPOINT_HASHES: None})
    with pytest.raises(CheckpointError, match=r"'files_sha256' .* cannot be verified"):
        _resume(ckpt)


def test_latest_naming_a_missing_tag_is_an_error_not_a_restart(ckpt):
    shutil.rmtree(ckpt / "epoch-0001")
    with pytest.raises(CheckpointError, match=r"latest.json names checkpoint 'epoch-0001' but .* does not exist "
                                              r"\(checkpoints there: epoch-0000\)"):
        latest_checkpoint(ckpt)
    (ckpt / "latest.json").write_text('{"tagg": "epoch-0000"}')
    with pytest.raises(CheckpointError, match=r'latest.json: expected \{"tag"'):
        latest_checkpoint(ckpt)


@pytest.mark.parametrize("tag", ["../../other/epoch-0001", "..", "sub/epoch-0001", ".epoch-0001.tmp", "", 3])
def test_tags_are_confined_to_the_checkpoint_directory(ckpt, tag):
    (ckpt / "latest.json").write_text(json.dumps({"tag": tag}))
    with pytest.raises(CheckpointError, match="confined to the checkpoint directory"):
        latest_checkpoint(ckpt)
    if isinstance(tag, str):
        with pytest.raises(CheckpointError, match="confined"):
            save_checkpoint(ckpt, tag, _model(), {}, {"epoch": 0})


def test_a_tag_linking_outside_is_refused(ckpt, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("other")
    shutil.copytree(ckpt / "epoch-0001", elsewhere / "epoch-0009")
    os.symlink(elsewhere / "epoch-0009", ckpt / "epoch-0009")
    (ckpt / "latest.json").write_text('{"tag": "epoch-0009"}')
    with pytest.raises(CheckpointError, match="leads outside"):
        latest_checkpoint(ckpt)
    assert resolve_tag(ckpt, "epoch-0000") == ckpt / "epoch-0000"


def test_weights_of_another_model_name_keys_and_shapes(ckpt):
    other = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 1))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(latest_checkpoint(ckpt), other)
    msg = str(e.value)
    assert "model.safetensors does not fit the Sequential being resumed" in msg
    assert "2 missing key(s) (3.weight, 3.bias)" in msg and "0.weight is [4, 3] in the file but [5, 3]" in msg
    assert "Error(s) in loading" not in msg and "\n" not in msg


FAST = ["--preset", "tiny", "--no-progress", "--set", "data.clips_per_class=8", "--set", "data.num_classes=4",
        "--set", "pretrain.batch_size=8", "--threads", "1"]


@pytest.mark.slow
def test_resume_refuses_a_tampered_checkpoint_and_a_dangling_pointer(tmp_path):
    from asma.data.catalog import load_dataset
    from asma.train.options import config_from_options
    from asma.train.pretrain import pretrain
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["pretrain", *FAST, "--epochs", "2", "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    # an interrupted pretraining: the checkpoints of epoch 0 and 1 exist, the run is not finished
    (run / "status.json").unlink()
    shutil.rmtree(run / "encoders")
    weights = run / "pretrain" / "epoch-0001" / "model.safetensors"
    recorded = read_json(weights.parent / "state.json")[CHECKPOINT_HASHES]["model.safetensors"]
    _flip(weights, at=weights.stat().st_size // 2)
    r = CliRunner().invoke(main, ["pretrain", "--resume", "--run-dir", str(run), "--no-progress"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"sha256 {sha256_file(weights)}" in r.output.replace("\n", "") and recorded in r.output.replace("\n", "")
    assert not (run / "encoders").exists()  # nothing trained from the tampered weights
    shutil.rmtree(weights.parent)
    r = CliRunner().invoke(main, ["pretrain", "--resume", "--run-dir", str(run), "--no-progress"])
    assert r.exit_code == 2 and "names checkpoint 'epoch-0001'" in r.output and "epoch-0000" in r.output
    # the library call refuses too (never a silent restart from epoch 0)
    cfg = config_from_options(resume=True, run_dir=str(run))
    with pytest.raises(CheckpointError, match="does not exist"):
        pretrain(cfg, load_dataset(cfg.data)[0], run, resume=True, progress=False)


def test_stage_weights_are_verified_before_loading(tmp_path):
    from asma.io import WEIGHTS_RECORD, save_weights
    from asma.train.rundir import load_weights
    m = _model()
    save_weights(tmp_path / "final.safetensors", m.state_dict())
    save_weights(tmp_path / "aligned.safetensors", nn.Linear(2, 2).state_dict())
    record = read_json(tmp_path / WEIGHTS_RECORD)
    assert record == {n: sha256_file(tmp_path / n) for n in ("final.safetensors", "aligned.safetensors")}
    back = load_weights(_model(), tmp_path / "final.safetensors", "the classifier")
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), m.state_dict().values()))
    with pytest.raises(CheckpointError, match=r"aligned.safetensors does not fit the classifier: 7 missing key.*; "
                                              r"2 unexpected key\(s\) \(bias, weight\)"):
        load_weights(_model(), tmp_path / "aligned.safetensors", "the classifier")
    _flip(tmp_path / "final.safetensors")
    with pytest.raises(CheckpointError, match=rf"final.safetensors was modified .*recorded {record['final.safetensors']}"):
        load_weights(_model(), tmp_path / "final.safetensors", "the classifier")
    save_tensors(tmp_path / "other.safetensors", m.state_dict())  # written without a record
    with pytest.raises(CheckpointError, match="records no sha256 for other.safetensors"):
        load_weights(_model(), tmp_path / "other.safetensors", "the classifier")


def test_mutated_safetensors_raise_only_checkpoint_errors(tmp_path):
    import random
    p, m = tmp_path / "w.safetensors", tmp_path / "m.safetensors"
    save_tensors(p, {"a": torch.randn(4, 4), "b": torch.arange(6)})
    base = p.read_bytes()
    header = 8 + int.from_bytes(base[:8], "little")
    rng, outcomes = random.Random(0), {"ok": 0, "refused": 0}
    for _ in range(300):
        d = bytearray(base)
        kind = rng.randrange(3)
        if kind == 0:  # truncated
            d = d[:rng.randrange(len(d))]
        elif kind == 1:  # bytes of the length prefix or the JSON header replaced
            for _ in range(rng.randint(1, 4)):
                d[rng.randrange(header)] = rng.randrange(256)
        else:  # a byte inserted into the header
            pos = rng.randrange(8, header)
            d[pos:pos] = bytes([rng.randrange(32, 127)])
        m.write_bytes(bytes(d))
        try:
            load_tensors(m)
            outcomes["ok"] += 1
        except CheckpointError as e:
            assert str(m) in str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 290  # a few header edits keep a valid file (e.g. whitespace)
