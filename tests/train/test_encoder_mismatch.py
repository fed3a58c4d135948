"""The encoders of a run are verified and must be the ones its configuration trained (issue 13.4)."""
import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from asma.cli.main import main
from asma.io import CheckpointError, load_tensors, read_json, sha256_file, sha256_record
from asma.train.rundir import load_encoders, read_config

FAST = ["--preset", "tiny", "--no-progress", "--set", "data.clips_per_class=8", "--set", "data.num_classes=4",
        "--set", "pretrain.batch_size=8", "--epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    for backbone in ("stgcn", "gin"):
        r = CliRunner().invoke(main, ["pretrain", *FAST, "--backbone", backbone, "--run-dir", str(base / backbone)])
        assert r.exit_code == 0, r.output
    return base


@pytest.fixture
def run(runs, tmp_path):
    shutil.copytree(runs / "stgcn", tmp_path / "stgcn")
    return tmp_path / "stgcn"


def _edit_encoder_config(run, name, rehash=True, **changes):
    p = run / "encoders" / name / "config.json"
    meta = read_json(p)
    for key, value in changes.items():
        node = meta
        *head, last = key.split(".")
        for h in head:
            node = node[h]
        node[last] = value
    if rehash:  # a consistent record: only the content check can catch it
        meta["weights_sha256"] = sha256_record(p.parent, ["model.safetensors"])
    p.write_text(json.dumps(meta))


def test_intact_encoders_load(run):
    cfg = read_config(run)
    encoders = load_encoders(run, cfg)
    assert list(encoders) == ["theta", "phi"] and encoders["theta"].config["name"] == "stgcn"


def test_gin_encoders_in_an_stgcn_run_are_refused(run, runs):
    shutil.rmtree(run / "encoders")
    shutil.copytree(runs / "gin" / "encoders", run / "encoders")
    r = CliRunner().invoke(main, ["linear", "--run-dir", str(run)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    out = r.output.replace("\n", "")
    assert "theta/config.json: the encoder has backbone 'gin' but the run's config.json has " \
           "model.backbone='stgcn'" in out
    assert not (run / "linear").exists()


@pytest.mark.parametrize("changes,msg", [
    ({"backbone.hidden_channels": 16}, r"backbone option 'hidden_channels' 16 .* model.backbone_cfg.hidden_channels=8"),
    ({"training.masking": ["low", "low"]}, r"masking \['low', 'low'\] .* model.encoders.theta=\['high', 'low'\]"),
    ({"stream": "bone"}, r"stream 'bone' .* data.stream='joint'"),
    ({"layout.name": "kinect20"}, r"layout 'kinect20' .* data.layout='ntu25'"),
    ({"kind": "classifier", "num_classes": 4}, r"kind 'classifier' .* model.encoders.theta='encoder'"),
])
def test_encoder_config_disagreeing_with_the_run_names_both_sides(run, changes, msg):
    _edit_encoder_config(run, "theta", **changes)
    with pytest.raises(CheckpointError, match=msg):
        load_encoders(run, read_config(run))


@pytest.mark.parametrize("changes,msg", [
    # the run's config and the encoder's config.json agree, the weights are another model's
    ({"backbone.hidden_channels": 16}, r"shape mismatch\(es\), e.g. .* is \[\d+(, \d+)*\] in the file but"),
    ({"in_channels": 2, "num_coords": 2}, r"data_bn.weight is \[75\] in the file but \[50\] in the model"),
    ({"backbone.edge_importance": False}, r"unexpected key\(s\) \(edge_importance"),
    ({"backbone.name": "gin"}, r"does not fit the gin encoder described by .*theta/config.json: .*missing key"),
])
def test_weights_not_fitting_their_config_are_one_line(run, changes, msg):
    _edit_encoder_config(run, "theta", **changes)
    cfg = read_config(run)
    cfg.model.backbone = read_json(run / "encoders" / "theta" / "config.json")["backbone"]["name"]
    cfg.model.backbone_cfg = {}
    with pytest.raises(CheckpointError, match=msg) as e:
        load_encoders(run, cfg)
    assert "Error(s) in loading" not in str(e.value) and "\n" not in str(e.value)


def test_modified_or_unrecorded_encoders_are_refused(run):
    p = run / "encoders" / "phi" / "model.safetensors"
    recorded = read_json(p.parent / "config.json")["weights_sha256"]["model.safetensors"]
    assert recorded == sha256_file(p)
    data = bytearray(p.read_bytes())
    data[-20:-4] = bytes(b ^ 0xFF for b in data[-20:-4])  # 16 flipped bytes
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{p} was modified .* sha256 {sha256_file(p)}, recorded {recorded}"):
        load_encoders(run, read_config(run))
    r = CliRunner().invoke(main, ["linear", "--run-dir", str(run)])
    assert r.exit_code == 2 and recorded in r.output.replace("\n", "") and "Traceback" not in r.output
    _edit_encoder_config(run, "phi", rehash=False, weights_sha256={})
    with pytest.raises(CheckpointError, match=r"phi/config.json: no sha256 of model.safetensors recorded"):
        load_encoders(run, read_config(run))


def test_run_encoders_stay_loadable_by_the_zoo(run):
    from asma.zoo import load_pretrained
    model, cfg = load_pretrained(run / "encoders" / "theta")
    assert cfg.kind == "encoder" and cfg.weights_sha256 == read_json(run / "encoders" / "theta" / "config.json")[
        "weights_sha256"]
    p = run / "encoders" / "theta" / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-16] + bytes(16))
    with pytest.raises(ValueError, match=rf"{p}.*{sha256_file(p)}"):
        load_pretrained(run / "encoders" / "theta")


def test_run_encoders_are_exactly_zoo_folders(run, tmp_path):
    import inspect

    import asma
    from asma.pretrained.config import PretrainedConfig
    from asma.zoo import save_pretrained
    folder = run / "encoders" / "theta"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    cfg = PretrainedConfig.from_json(folder)
    assert cfg.to_json_string() == (folder / "config.json").read_text()  # an exact round trip
    assert cfg.kind == "encoder" and cfg.training == {"masking": ["high", "low"]} and cfg.stream == "joint"
    run_cfg = read_config(run)
    assert cfg.layout_name == "ntu25" and len(cfg.class_names) == 4 and cfg.num_frames == run_cfg.data.num_frames
    ref = load_encoders(run, run_cfg)["theta"]
    assert cfg.num_params == sum(p.numel() for p in ref.parameters()) and cfg.gflops > 0
    # the zoo writes the same folder for that encoder and config (safetensors orders its metadata
    # arbitrarily, so the weights' bytes and sha256 may differ; their tensors and metadata do not)
    out = save_pretrained(ref, PretrainedConfig.from_json(folder), tmp_path / "zoo", card=False)
    ours, theirs = read_json(folder / "config.json"), read_json(out / "config.json")
    assert ours.pop("weights_sha256") != {} and theirs.pop("weights_sha256") != {} and ours == theirs
    a, b = load_tensors(folder / "model.safetensors"), load_tensors(out / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with safe_open(folder / "model.safetensors", "pt") as f, safe_open(out / "model.safetensors", "pt") as g:
        assert f.metadata() == g.metadata() == {"format": "pt", "library": "asma", "asma_version": asma.__version__,
                                                "kind": "encoder"}
    model = asma.create_model(f"{run}:encoder-theta", pretrained=True)
    x = torch.randn(2, *cfg.input_shape()[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x)[0], ref(x)[0])
    assert model.pretrained_cfg.kind == "encoder" and model.pretrained_cfg.training["masking"] == {"theta": ["high", "low"]}
    assert "masking" not in inspect.getsource(PretrainedConfig.from_dict)  # no run-format conversion left


def test_an_encoder_of_the_old_run_format_is_refused_in_one_line(run):
    p = run / "encoders" / "theta" / "config.json"
    meta = read_json(p)
    old = {"backbone": meta["backbone"], "layout": meta["layout"], "in_channels": 3, "stream": "joint",
           "num_frames": 16, "masking": ["high", "low"], "class_names": meta["class_names"],
           "weights_sha256": meta["weights_sha256"]}
    p.write_text(json.dumps(old))
    with pytest.raises(CheckpointError, match=r"theta/config.json: unknown field\(s\) 'masking'; an encoder folder "
                                              r"is a model folder written by 'asma pretrain'"):
        load_encoders(run, read_config(run))
