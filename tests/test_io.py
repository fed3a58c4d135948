import pytest
import torch
from torch import nn

from asma.io import (atomic_write_json, latest_checkpoint, load_checkpoint, load_tensors,
                     read_json, save_checkpoint, save_tensors, sha256_file)


def test_safetensors_roundtrip_and_no_partial_files(tmp_path):
    t = {"a": torch.arange(6.0).view(2, 3), "b": torch.ones(2)[:1]}
    save_tensors(tmp_path / "w.safetensors", t)
    back = load_tensors(tmp_path / "w.safetensors")
    assert torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"])
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_checkpoint_restores_model_and_adam_state(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(3):
        loss = m(torch.randn(8, 3)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    save_checkpoint(tmp_path, "epoch-0002", m, {"k": 1}, {"epoch": 2}, opt)
    m2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-2)
    state = load_checkpoint(latest_checkpoint(tmp_path), m2, opt2)
    assert state == {"epoch": 2}
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    # one more identical step keeps both in lockstep (the Adam moments were restored)
    x = torch.randn(8, 3)
    for mm, oo in ((m, opt), (m2, opt2)):
        loss = mm(x).pow(2).mean()
        oo.zero_grad(); loss.backward(); oo.step()
    for a, b in zip(m.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    # no pickles anywhere
    files = {p.name for p in (tmp_path / "epoch-0002").iterdir()}
    assert files == {"model.safetensors", "config.json", "state.json", "optimizer.safetensors", "optimizer.json"}


def test_checkpoint_pruning_and_pointer(tmp_path):
    m = nn.Linear(2, 2)
    for e in range(4):
        save_checkpoint(tmp_path, f"epoch-{e:04d}", m, {}, {"epoch": e}, keep=2)
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert dirs == ["epoch-0002", "epoch-0003"]
    assert latest_checkpoint(tmp_path).name == "epoch-0003"


def test_read_json_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n "a": 1,\n oops\n}')
    with pytest.raises(ValueError, match=r"bad.json line 3"):
        read_json(p)
    with pytest.raises(FileNotFoundError, match="missing file"):
        read_json(tmp_path / "none.json")
    atomic_write_json(tmp_path / "ok.json", {"x": torch.tensor(2)})
    assert read_json(tmp_path / "ok.json") == {"x": 2}


def test_sha256_file_matches_hashlib_over_chunks(tmp_path):
    import hashlib
    data = bytes(range(256)) * 20_000  # 5 MB: several read chunks
    (tmp_path / "b").write_bytes(data)
    assert sha256_file(tmp_path / "b") == hashlib.sha256(data).hexdigest()


def test_checkpoint_state_needs_an_epoch(tmp_path):
    with pytest.raises(ValueError, match=r"state\['epoch'\] must be the finished epoch .* got None"):
        save_checkpoint(tmp_path, "epoch-0000", nn.Linear(2, 2), {}, {"loss": 1.0})
    assert list(tmp_path.iterdir()) == []
