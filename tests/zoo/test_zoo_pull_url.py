"""Pulling ``url`` entries (a file at a pinned commit of a public repository + its sha256 + the
converter) through the real code path (:func:`asma.zoo.hub.fetch` -> torch.hub's
``download_url_to_file``) from a localhost HTTP server standing in for raw.githubusercontent.com:
hash check before anything is read, conversion, cache, offline re-use, tampered and modified files."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from asma.cli.zoo import zoo
from asma.io import CheckpointError, sha256_file
from asma.zoo.hub import fetch, load_from_hub
from asma.zoo.registry import ZooEntry, ZooError, resolve, write_manifest
from test_zoo_convert import CHECKPOINTS, _fake_lineage_state, checkpoint


def served_entry(server, entry: ZooEntry, data_file: Path, tmp_path: Path) -> Path:
    """Put ``data_file`` on ``server`` at the entry's repository path and write a manifest whose
    entry is ``entry`` with its URL pointing there (everything else, the sha256 included, unchanged)."""
    rel = Path("raw") / entry.url.commit / entry.url.path
    (server.root / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_file, server.root / rel)
    local = dataclasses.replace(entry, url=dataclasses.replace(entry.url, url=f"{server.url}/{rel.as_posix()}"))
    return write_manifest(tmp_path / "local-manifest.json", [local])


@pytest.mark.parametrize("alias", ["actclr-ntu60-xview-joint", "aimclr-ntu60-xview-joint",
                                   "crosnnclr-ntu60-xview-joint"])
def test_real_lineage_models_pull_convert_and_work_offline(realdata, file_server, zoo_cache, tmp_path, alias,
                                                           find_pickles):
    entry = resolve(alias)
    folder = next(f for f in CHECKPOINTS if f.startswith(alias.split("-")[0]))
    manifest = served_entry(file_server, entry, checkpoint(realdata, folder), tmp_path)
    path = fetch(alias, manifests=[manifest], progress=False)
    assert path == zoo_cache / alias and not find_pickles(zoo_cache)  # the downloaded .pt was deleted
    model, cfg = load_from_hub(alias, manifests=[manifest])
    assert cfg.source["sha256"] == entry.url.sha256 and cfg.source["commit"] == entry.url.commit
    assert cfg.metrics == entry.metrics and cfg.num_params == entry.params and cfg.origin["alias"] == alias
    x = torch.randn(2, 3, 50, 25, 2, generator=torch.Generator().manual_seed(0))
    from asma.zoo.convert import import_checkpoint
    from asma.zoo.model import load_pretrained
    import_checkpoint(checkpoint(realdata, folder), tmp_path / "direct")
    direct, _ = load_pretrained(tmp_path / "direct")
    with torch.no_grad():
        assert torch.equal(model(x), direct(x))
    file_server.stop()
    assert fetch(alias, manifests=[manifest], offline=True) == path  # offline, from the cache
    r = CliRunner().invoke(zoo, ["pull", alias, "--manifest", str(manifest), "--offline"])
    assert r.exit_code == 0 and "sha256 verified" in r.output and "ntu60-xview/linear: top-1" in r.output


@pytest.fixture
def fake_entry(tmp_path):
    """A url entry for a random lineage-format checkpoint: ``(entry, file)``."""
    path = tmp_path / "epoch100_model.pt"
    torch.save(_fake_lineage_state(), path)
    base = resolve("actclr-ntu60-xview-joint")
    url = dataclasses.replace(base.url, sha256=sha256_file(path), path="work_dir/epoch100_model.pt")
    return dataclasses.replace(base, alias="fake-lineage", url=url, source="test"), path


def test_a_tampered_download_is_refused_and_not_cached(file_server, zoo_cache, tmp_path, fake_entry, find_pickles):
    entry, path = fake_entry
    tampered = tmp_path / "tampered.pt"
    state = _fake_lineage_state()
    state["encoder_q.fc.bias"] += 1
    torch.save(state, tampered)
    manifest = served_entry(file_server, entry, tampered, tmp_path)
    with pytest.raises(CheckpointError) as e:
        fetch("fake-lineage", manifests=[manifest], progress=False)
    msg = str(e.value)
    assert "epoch100_model.pt" in msg and sha256_file(tampered) in msg and entry.url.sha256 in msg
    assert "refusing the download" in msg
    assert not (zoo_cache / "fake-lineage").exists() and not find_pickles(zoo_cache)
    r = CliRunner().invoke(zoo, ["pull", "fake-lineage", "--manifest", str(manifest)])
    # after the download's progress bar: one error line
    assert r.exit_code == 2 and "100%" in r.output and "Traceback" not in r.output
    assert r.output.split("error: ")[1].strip().endswith("refusing the download (it was deleted)")


def test_a_modified_cached_file_is_refused_online_and_offline(file_server, zoo_cache, tmp_path, fake_entry):
    entry, path = fake_entry
    manifest = served_entry(file_server, entry, path, tmp_path)
    folder = fetch("fake-lineage", manifests=[manifest], progress=False)
    weights = folder / "model.safetensors"
    recorded = sha256_file(weights)
    data = bytearray(weights.read_bytes())
    data[-16:] = bytes(16)  # 16 bytes of a weight tensor
    weights.write_bytes(bytes(data))
    for offline in (False, True):
        with pytest.raises(CheckpointError, match=f"model.safetensors was modified .* sha256 {sha256_file(weights)}, "
                                                  f"recorded {recorded}"):
            fetch("fake-lineage", manifests=[manifest], offline=offline)
    from asma.zoo.model import load_pretrained
    with pytest.raises(ValueError, match=f"recorded {recorded}"):
        load_pretrained(folder)


def test_offline_before_any_pull_and_unreachable_server(zoo_cache, tmp_path, fake_entry):
    entry, _ = fake_entry
    gone = dataclasses.replace(entry, url=dataclasses.replace(entry.url, url="http://127.0.0.1:9/x.pt"))
    manifest = write_manifest(tmp_path / "m.json", [gone])
    with pytest.raises(ZooError, match="not in the local zoo cache .* offline mode is on; pull it once while online"):
        fetch("fake-lineage", manifests=[manifest], offline=True)
    with pytest.raises(ZooError, match=r"cannot download http://127.0.0.1:9/x.pt"):
        fetch("fake-lineage", manifests=[manifest], progress=False)
