"""The encoders of a run are verified and must be the ones its configuration trained (issue 13.4)."""
import json
import shutil

import pytest
from click.testing import CliRunner

from asma.cli.main import main
from asma.io import CheckpointError, read_json, sha256_file
from asma.train.rundir import load_encoders, read_config, record_encoder_hashes

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
    p.write_text(json.dumps(meta))
    if rehash:  # a consistent record: only the content check can catch it
        record_encoder_hashes(run)


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
    ({"masking": ["low", "low"]}, r"masking \['low', 'low'\] .* model.encoders.theta=\['high', 'low'\]"),
    ({"stream": "bone"}, r"stream 'bone' .* data.stream='joint'"),
    ({"layout.name": "kinect20"}, r"layout 'kinect20' .* data.layout='ntu25'"),
])
def test_encoder_config_disagreeing_with_the_run_names_both_sides(run, changes, msg):
    _edit_encoder_config(run, "theta", **changes)
    with pytest.raises(CheckpointError, match=msg):
        load_encoders(run, read_config(run))


@pytest.mark.parametrize("changes,msg", [
    # the run's config and the encoder's config.json agree, the weights are another model's
    ({"backbone.hidden_channels": 16}, r"shape mismatch\(es\), e.g. .* is \[\d+(, \d+)*\] in the file but"),
    ({"in_channels": 2}, r"data_bn.weight is \[75\] in the file but \[50\] in the model"),
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
