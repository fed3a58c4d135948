"""``asma zoo import`` / :mod:`asma.zoo.convert` on the three real lineage checkpoints (research-only
fixtures in ../shared/realdata, never copied into the repository) and on crafted bad checkpoints.

The imported models must reproduce the lineage's own computation (pooled ST-GCN features -> fc,
checked against a direct evaluation of the checkpoint tensors) and classify the 12 real NTU-60
samples prepared with the lineage preprocessing: ActCLR 11, AimCLR 10, CrosNNCLR/SkeletonCLR 9 of 12.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from asma.cli.zoo import zoo
from asma.io import CheckpointError
from asma.zoo.convert import CheckpointImportError, convert_lineage, detect_format, import_checkpoint, read_checkpoint
from asma.zoo.model import load_pretrained

CHECKPOINTS = {  # folder -> (file, detected format, correct of the 12 real NTU-60 clips)
    "actclr_ntu60_xview_joint_stgcn16_linear": ("epoch100_acc87.14_model.pt", "actclr", 11),
    "aimclr_ntu60_xview_joint_stgcn16_linear": ("epoch100_acc77.76_model.pt", "actclr", 10),
    "crosnnclr_skeletonclr_ntu60_xview_joint_stgcn16_linear": ("epoch100_acc74.33_model.pt", "skeletonclr", 9),
}


def real_ntu_clips(realdata: Path):
    """The 12 unique real NTU-60 samples as raw (3, F, 25, 2) clips (file-order bodies, as the
    lineage's gendata) and their 0-based labels (the manifest tool's reading)."""
    from asma.zoo.manifest_tool import real_ntu_samples
    return [(clip, label) for clip, label, _ in real_ntu_samples(realdata / "ntu60_raw_skeleton")]


def checkpoint(realdata: Path, folder: str) -> Path:
    return realdata / "lineage_checkpoints" / folder / CHECKPOINTS[folder][0]


def lineage_logits(state, x: torch.Tensor) -> torch.Tensor:
    """The lineage model's logits from its own tensors: asma's ST-GCN with the renamed encoder, pooled, then fc."""
    from asma.models import create_backbone
    enc = create_backbone("stgcn", "ntu25", 3)
    enc.load_state_dict({k[len("encoder_q."):].replace("st_gcn_networks", "blocks"): v for k, v in state.items()
                         if not k.startswith(("encoder_q.fc", "encoder_q.A"))})
    with torch.no_grad():
        return enc.eval()(x)[0] @ state["encoder_q.fc.weight"].flatten(1).T + state["encoder_q.fc.bias"]


@pytest.mark.parametrize("folder", sorted(CHECKPOINTS))
def test_real_checkpoints_import_completely_and_classify_real_ntu(realdata, tmp_path, folder):
    path = checkpoint(realdata, folder)
    _, fmt, expected_correct = CHECKPOINTS[folder]
    state = read_checkpoint(path)
    assert len(state) == 179 and detect_format(state) == fmt
    cfg = import_checkpoint(path, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    model, loaded = load_pretrained(tmp_path / "model")
    # every tensor of the checkpoint except the fixed graph is in the model, value for value
    own = model.state_dict()
    assert sum(1 for k in state if k != "encoder_q.A") == sum(1 for k in own if not k.endswith((".mean", ".std")))
    assert loaded.num_params == 836_800 and loaded.gflops == pytest.approx(1.19, rel=0.05)  # count_flops
    assert loaded.input_shape() == (1, 3, 50, 25, 2) and loaded.layout_name == "ntu25"
    assert loaded.preprocessing["frames"] == "lineage" and loaded.class_names[0] == "drink water"
    assert loaded.source["format"] == fmt and len(loaded.source["sha256"]) == 64 and len(loaded.class_names) == 60
    assert loaded.weights_sha256 == cfg.weights_sha256 and "model.safetensors" in loaded.weights_sha256
    samples = real_ntu_clips(realdata)
    assert len(samples) == 12
    x = torch.cat([loaded.transforms().prepare_clip(raw) for raw, _ in samples])
    labels = torch.tensor([y for _, y in samples])
    with torch.no_grad():
        logits = model(x)
    torch.testing.assert_close(logits, lineage_logits(state, x), rtol=1e-4, atol=1e-4)
    correct = int((logits.argmax(1) == labels).sum())
    assert correct == expected_correct
    # the built-in manifest entry states exactly this agreement, these costs and the file's hash
    from asma.zoo.registry import resolve
    entry = resolve(folder.split("_")[0] + "-ntu60-xview-joint")
    assert entry.agreement["ntu60-real-samples"].startswith(f"{correct} of 12 real NTU-60 clips")
    # asma's count on the converted model (asma.zoo.manifest_tool rewrites it when the counter changes)
    assert (entry.params, entry.gflops) == (loaded.num_params, loaded.gflops)
    assert entry.url.sha256 == loaded.source["sha256"] and entry.url.size == path.stat().st_size


def test_cli_import_detects_the_format(realdata, tmp_path):
    folder = "crosnnclr_skeletonclr_ntu60_xview_joint_stgcn16_linear"
    r = CliRunner().invoke(zoo, ["import", str(checkpoint(realdata, folder)), "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert "skeletonclr format, every key mapped" in r.output and "836,800 parameters" in r.output
    assert "(3, 50, 25, 2)" in r.output
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["kind"] == "classifier" and cfg["backbone"] == {"name": "stgcn", "hidden_channels": 16,
                                                                  "out_channels": 256}


def _fake_lineage_state(conv_head: bool = True):
    """A random state_dict with the lineage's key names and shapes (ActCLR's Conv2d head when ``conv_head``)."""
    from asma.graph import get_layout, partition_adjacency
    from asma.models import create_backbone
    enc = create_backbone("stgcn", "ntu25", 3)
    state = {"encoder_q." + k.replace("blocks.", "st_gcn_networks.", 1): v for k, v in enc.state_dict().items()}
    state["encoder_q.A"] = partition_adjacency(get_layout("ntu25"), "spatial", 1, "truncated")
    state["encoder_q.fc.weight"] = torch.randn(60, 256, 1, 1) if conv_head else torch.randn(60, 256)
    state["encoder_q.fc.bias"] = torch.randn(60)
    return state


def test_bad_checkpoints_are_refused_naming_the_keys(tmp_path):
    good = _fake_lineage_state()
    model, _ = convert_lineage(good)
    assert detect_format(good) == "actclr" and detect_format(_fake_lineage_state(False)) == "skeletonclr"
    extra = {**good, "encoder_k.data_bn.weight": torch.zeros(75), "queue": torch.zeros(128, 10)}
    with pytest.raises(CheckpointError, match=r"x.pt does not fit .*2 unexpected key\(s\) \(encoder_k.data_bn.weight, "
                                              r"queue\)"):
        convert_lineage(extra, where="x.pt")
    missing = {k: v for k, v in good.items() if k != "encoder_q.st_gcn_networks.3.tcn.2.weight"}
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\) \(\S*blocks\.3\.tcn\.2\.weight\)"):
        convert_lineage(missing)
    shape = {**good, "encoder_q.st_gcn_networks.5.tcn.2.weight": torch.zeros(32, 32, 7, 1)}
    with pytest.raises(CheckpointError, match=r"shape mismatch.*blocks\.5\.tcn\.2\.weight is \[32, 32, 7, 1\] in the file"):
        convert_lineage(shape)
    graph = {**good, "encoder_q.A": good["encoder_q.A"] * 2}
    with pytest.raises(CheckpointImportError, match="graph encoder_q.A differs"):
        convert_lineage(graph)
    with pytest.raises(CheckpointImportError, match="not a lineage ST-GCN checkpoint"):
        convert_lineage({"backbone.x": torch.zeros(1)})
    pretext = {k: v for k, v in good.items() if not k.startswith("encoder_q.fc")}
    pretext.update({"encoder_q.fc.0.weight": torch.zeros(256, 256), "encoder_q.fc.2.weight": torch.zeros(128, 256)})
    with pytest.raises(CheckpointError, match=r"2 unexpected key\(s\) \(encoder_q.fc.0.weight, encoder_q.fc.2.weight\)"):
        convert_lineage(pretext)  # a projection MLP is not a classification head
    with pytest.raises(CheckpointImportError, match="missing key 'encoder_q.data_bn.weight'"):
        convert_lineage({k: v for k, v in good.items() if not k.startswith("encoder_q.data_bn.")})


def test_a_pstl_encoder_imports_as_an_encoder(tmp_path):
    """PSTL saves the bare st_gcn.Model (no encoder_q. prefix, no head)."""
    from asma.models import create_backbone
    state = {k[len("encoder_q."):]: v for k, v in _fake_lineage_state().items() if not k.startswith("encoder_q.fc")}
    assert detect_format(state) == "pstl"
    path = tmp_path / "pstl_epoch150.pt"
    torch.save(state, path)
    cfg = import_checkpoint(path, tmp_path / "m")
    model, loaded = load_pretrained(tmp_path / "m")
    assert cfg.kind == loaded.kind == "encoder" and loaded.source["format"] == "pstl" and loaded.class_names == []
    ref = create_backbone("stgcn", "ntu25", 3)
    ref.load_state_dict({k.replace("st_gcn_networks", "blocks"): v for k, v in state.items() if k != "A"})
    x = torch.randn(2, 3, 50, 25, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], ref.eval()(x)[0])


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"encoder_q.x": _Evil()}, path)
    with pytest.raises(CheckpointImportError, match=r"evil.pt: cannot be read with torch.load\(weights_only=True\): it holds objects other than tensors"):
        read_checkpoint(path)
    assert "this must never run" not in capsys.readouterr().out
    r = CliRunner().invoke(zoo, ["import", str(path), "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "Traceback" not in r.output
    assert not (tmp_path / "m").exists()


def test_damaged_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(_fake_lineage_state(), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointImportError, match=r"cut.pt: cannot be read with torch.load\(weights_only=True\)"):
        read_checkpoint(path)
