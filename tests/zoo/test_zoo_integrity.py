"""Issue 13.3 and 13.5: weight integrity (sha256 recorded at save, verified on every load: local
folders, Hub pulls online and offline, tampered server blobs), path traversal in ``push`` and
model folders, and hostile ``config.json`` files on pull. Uses the localhost Hub (hub_server.py)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from asma.cli.zoo import zoo
from asma.io import CheckpointError, sha256_file, sha256_record
from asma.zoo.hub import _stage, fetch, load_from_hub, pull, push_to_hub
from asma.zoo.integrity import UnsafePathError
from asma.zoo.model import load_pretrained
from asma.zoo.registry import HubSource, ZooEntry, write_manifest
from hub_server import Blob


def flip(path: Path, n: int = 16) -> None:
    """Overwrite the last ``n`` bytes of a file (inside the last tensor's data)."""
    data = bytearray(path.read_bytes())
    data[-n:] = bytes(b ^ 0xFF for b in data[-n:])
    path.write_bytes(bytes(data))


def test_hash_is_recorded_at_save_and_checked_at_load(saved):
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["weights_sha256"] == {"model.safetensors": sha256_file(saved / "model.safetensors")}
    recorded = cfg["weights_sha256"]["model.safetensors"]
    flip(saved / "model.safetensors")
    with pytest.raises(CheckpointError) as e:
        load_pretrained(saved)
    assert str(e.value) == (f"{saved / 'model.safetensors'} was modified or damaged after it was written: sha256 "
                            f"{sha256_file(saved / 'model.safetensors')}, recorded {recorded}; refusing to load it")
    r = CliRunner().invoke(zoo, ["pull", str(saved)])
    assert r.exit_code == 2 and f"recorded {recorded}" in r.output


def test_a_modified_hub_cache_file_is_refused_online_and_offline(hub, saved, tmp_path):
    push_to_hub(saved, "org/tiny", endpoint=hub.url, tag="v1")
    cache = tmp_path / "c"
    path = pull("org/tiny@v1", endpoint=hub.url, cache_dir=cache)
    weights = (path / "model.safetensors").resolve()  # the blob the snapshot links to
    recorded = sha256_file(weights)
    flip(weights)
    for offline in (False, True):
        with pytest.raises(CheckpointError, match=f"sha256 {sha256_file(weights)}, recorded {recorded}"):
            pull("org/tiny@v1", endpoint=hub.url, cache_dir=cache, local_files_only=offline)
    hub.stop()
    with pytest.raises(CheckpointError, match=f"recorded {recorded}"):
        load_from_hub("org/tiny@v1", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(CheckpointError, match=f"recorded {recorded}"):
        load_pretrained(path)


@dataclass(frozen=True)
class ForgedBlob(Blob):
    """Other bytes served under the original blob's ETag / sha256 headers."""

    original: Blob = None

    @property
    def sha256(self) -> str:
        return self.original.sha256

    @property
    def etag(self) -> str:
        return self.original.etag


def _forge(hub, repo_id: str, name: str, data: bytes) -> None:
    repo = next(r for (kind, rid), r in hub.repos.items() if rid == repo_id)
    for files in repo.commits.values():
        if name in files:
            files[name] = ForgedBlob(data, files[name].lfs, original=files[name])


def test_a_blob_replaced_on_the_server_is_refused(hub, saved, tmp_path, classifier, classifier_config):
    sha = push_to_hub(saved, "org/tiny", endpoint=hub.url, tag="v1")
    # a different (valid) model's weights, served under the original ETag: config.json's hash catches it
    with torch.no_grad():
        classifier.head.fc.bias.add_(1.0)
    from asma.zoo.model import save_pretrained
    other = save_pretrained(classifier, classifier_config, tmp_path / "other")
    _forge(hub, "org/tiny", "model.safetensors", (other / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=f"recorded {sha256_file(saved / 'model.safetensors')}"):
        pull("org/tiny@v1", endpoint=hub.url, cache_dir=tmp_path / "c1")
    # the attacker also replaces config.json (hashes matching the forged weights): the manifest's pin catches it
    _forge(hub, "org/tiny", "config.json", (other / "config.json").read_bytes())
    assert pull("org/tiny@v1", endpoint=hub.url, cache_dir=tmp_path / "c2")  # an unpinned name cannot tell
    entry = ZooEntry("tiny", "classifier", hub=HubSource("org/tiny", "v1", sha256_record(saved, [
        "config.json", "model.safetensors"])))
    manifest = write_manifest(tmp_path / "m.json", [entry])
    with pytest.raises(CheckpointError, match=f"config.json was modified .* recorded {sha256_file(saved / 'config.json')}"):
        fetch("tiny", manifests=[manifest], endpoint=hub.url, cache_dir=tmp_path / "c3")
    assert len(sha) == 40


# ---------------------------------------------------------------------- path traversal (13.5)
@pytest.fixture
def planted(saved, tmp_path):
    """``saved`` turned into a sharded folder whose index maps a weight to ``../../planted.txt``."""
    outside = saved.parent.parent / "planted.txt"
    outside.write_text("secret outside the model folder")
    (saved / "model.safetensors").rename(saved / "model-00001-of-00001.safetensors")
    (saved / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "head.fc.weight": "model-00001-of-00001.safetensors", "head.fc.bias": "../../planted.txt"}}))
    return saved, outside


def test_push_refuses_an_index_pointing_outside_the_folder(hub, planted, tmp_path):
    folder, outside = planted
    with pytest.raises(UnsafePathError, match=r"refusing file name '\.\./\.\./planted\.txt'"):
        push_to_hub(folder, "org/evil", endpoint=hub.url)
    r = CliRunner().invoke(zoo, ["push", str(folder), "org/evil", "--endpoint", hub.url])
    assert r.exit_code == 2 and "refusing file name '../../planted.txt'" in r.output
    assert not any(m == "POST" for m, _, _ in hub.requests)  # no repository, no preupload, no commit
    stage = tmp_path / "stage" / "deep"
    stage.mkdir(parents=True)
    from asma.pretrained.config import PretrainedConfig
    with pytest.raises(UnsafePathError):
        _stage(folder, stage, PretrainedConfig.from_json(folder), "org/evil")
    assert list(stage.iterdir()) == [] and not (tmp_path / "planted.txt").exists()
    assert outside.read_text() == "secret outside the model folder"
    with pytest.raises(UnsafePathError, match="planted.txt"):
        load_pretrained(folder)


def test_a_hostile_index_next_to_model_safetensors_is_refused_too(hub, saved):
    (saved / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../../planted.txt"}}))
    with pytest.raises(UnsafePathError, match="planted.txt"):
        push_to_hub(saved, "org/evil", endpoint=hub.url)
    assert not any(m == "POST" for m, _, _ in hub.requests)


def test_push_refuses_a_symlink_out_of_the_folder(hub, saved, tmp_path):
    secret = tmp_path / "secret.safetensors"
    shutil.move(saved / "model.safetensors", secret)
    (saved / "model.safetensors").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="refusing file name 'model.safetensors'"):
        _stage(saved, tmp_path, None, "org/x")


# ---------------------------------------------------------------------- hostile config.json (13.5)
def _upload_config(hub, saved, repo_id: str, config_text: str) -> None:
    from huggingface_hub import HfApi
    api = HfApi(endpoint=hub.url)
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=config_text.encode(), path_in_repo="config.json", repo_id=repo_id)
    api.upload_file(path_or_fileobj=saved / "model.safetensors", path_in_repo="model.safetensors", repo_id=repo_id)


@pytest.mark.parametrize("change, expect", [
    ("deep", "JSON nested too deeply"),
    ({"backbone": {"name": "stgcn", "hidden_channels": 10 ** 6}}, "field 'backbone': option value 1000000 exceeds"),
    ({"in_channels": 10 ** 8}, "field 'in_channels': 100000000 exceeds the limit 64"),
    ({"num_classes": 10 ** 9, "class_names": []}, "field 'num_classes': 1000000000 exceeds the limit 100000"),
    ({"backbone": {"name": "stgcn", "channels": [8] * 10 ** 5}}, "field 'backbone': a list of 100000 items"),
])
def test_hostile_config_on_pull_is_one_clear_error(hub, saved, tmp_path, monkeypatch, change, expect):
    if change == "deep":
        text = '{"kind": ' + "[" * 100_000 + "]" * 100_000 + "}"
    else:
        text = json.dumps({**json.loads((saved / "config.json").read_text()), **change})
    _upload_config(hub, saved, "org/hostile", text)
    import asma.pretrained.architectures as arch
    monkeypatch.setattr(arch, "build_model", lambda cfg: pytest.fail("a model was built from a hostile config"))
    with pytest.raises(ValueError, match=expect):
        pull("org/hostile", endpoint=hub.url, cache_dir=tmp_path / "c")
    r = CliRunner().invoke(zoo, ["pull", "org/hostile", "--endpoint", hub.url, "--cache-dir", str(tmp_path / "c")])
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_a_folder_saved_without_hashes_is_pushed_with_them(hub, saved, tmp_path):
    cfg = json.loads((saved / "config.json").read_text())
    del cfg["weights_sha256"]
    (saved / "config.json").write_text(json.dumps(cfg))
    push_to_hub(saved, "org/old", endpoint=hub.url)
    path = pull("org/old", endpoint=hub.url, cache_dir=tmp_path / "c")
    assert json.loads((path / "config.json").read_text())["weights_sha256"] == {
        "model.safetensors": sha256_file(saved / "model.safetensors")}
