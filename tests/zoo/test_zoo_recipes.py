"""Recipes end to end: ``asma zoo build`` on a tiny recipe (embedded synthetic data, tiny preset,
pretrain -> linear -> distill), the built student found by ``fetch``, ``create_model`` and
``asma zoo pull``, listed as built locally with its measured metric, then published to the
localhost Hub and pulled from there on a fresh machine through the written manifest entry."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import asma
from asma.cli.zoo import zoo
from asma.zoo.hub import fetch
from asma.zoo.model import load_pretrained
from asma.zoo.registry import NotBuiltError, Recipe, ZooEntry, ZooError, read_manifest, write_manifest

TINY = Recipe(dataset="synthetic", preset="tiny", stages=["pretrain", "linear", "distill"], export="student",
              overrides={"data": {"clips_per_class": 8, "num_classes": 3},
                         "pretrain": {"epochs": 1, "batch_size": 8}, "probe": {"epochs": 3},
                         "distill": {"epochs": 1}},
              expected={"synthetic-xsub/distill": {"top1": 50.0}}, data="none (embedded synthetic data)",
              cost="seconds")


@pytest.fixture
def manifest(tmp_path):
    entry = ZooEntry("tiny-student", "student", description="tiny test student", license="apache-2.0",
                     dataset="synthetic", recipe=TINY)
    return write_manifest(tmp_path / "tiny.json", [entry])


@pytest.mark.slow
def test_build_then_use_list_publish_and_pull(manifest, zoo_cache, hub, tmp_path, monkeypatch):
    run = CliRunner().invoke
    r = run(zoo, ["pull", "tiny-student", "--manifest", str(manifest)])
    assert r.exit_code == 2 and "'tiny-student' is a recipe: no one has trained it yet" in r.output
    from asma.zoo.registry import resolve
    assert not resolve("tiny-student", [manifest]).has_weights
    r = run(zoo, ["build", "tiny-student", "--manifest", str(manifest)])
    assert r.exit_code == 0, r.output
    folder = zoo_cache / "tiny-student"
    assert "built tiny-student in" in r.output and str(folder) in " ".join(r.output.split())
    cfg = json.loads((folder / "config.json").read_text())
    # the measured metric of the run's distilled student, not the recipe's expected one
    results = json.loads((zoo_cache / ".runs" / "tiny-student" / "results.json").read_text())
    student = next(row for row in results["distill"] if row["name"].startswith("student"))
    key = next(iter(cfg["metrics"]))
    assert cfg["metrics"][key]["top1"] == pytest.approx(student["top1"])
    assert f"{student['top1']:.2f} % measured" in r.output
    assert cfg["source"]["recipe"] == "tiny-student" and cfg["source"]["build_seconds"] > 0
    assert cfg["kind"] == "student" and cfg["license"] == "apache-2.0"
    assert f"| {key} | {cfg['metrics'][key]['top1']}" in (folder / "README.md").read_text()  # the card's results
    # found by fetch, create_model and asma zoo pull
    assert fetch("tiny-student", manifests=[manifest]) == folder and resolve("tiny-student", [manifest]).has_weights
    model = asma.create_model("tiny-student", pretrained=True, manifests=[manifest])
    direct, direct_cfg = load_pretrained(folder)
    x = torch.randn(2, *direct_cfg.input_shape()[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), direct(x))
    r = run(zoo, ["pull", "tiny-student", "--manifest", str(manifest)])
    assert r.exit_code == 0 and "sha256 verified" in r.output
    monkeypatch.setenv("COLUMNS", "160")
    r = run(zoo, ["list", "--manifest", str(manifest)])
    row = next(line for line in r.output.splitlines() if "tiny-student" in line)
    assert "built locally" in row and f"{student['top1']:.1f} distill" in row and "*" not in row
    # publish: the entry now pins the repository, revision and sha256 of every file
    published = tmp_path / "published.json"
    r = run(zoo, ["publish", "tiny-student", "org/tiny-student", "--tag", "v1", "--manifest-out", str(published),
                  "--endpoint", hub.url, "--manifest", str(manifest)])
    assert r.exit_code == 0, r.output
    (entry,) = read_manifest(published)
    assert entry.hub.repo_id == "org/tiny-student" and entry.hub.revision == "v1" and entry.recipe == TINY
    assert sorted(entry.hub.sha256) == ["config.json", "model.safetensors"] and entry.metrics == cfg["metrics"]
    # a fresh machine: empty zoo cache and Hub cache
    monkeypatch.setenv("ASMA_ZOO_CACHE", str(tmp_path / "fresh-zoo"))
    path = fetch("tiny-student", manifests=[published], endpoint=hub.url, cache_dir=tmp_path / "fresh-hub")
    assert path.name == (tmp_path / "fresh-hub" / "models--org--tiny-student" / "refs" / "v1").read_text()
    pulled, _ = load_pretrained(path)
    with torch.no_grad():
        assert torch.equal(pulled(x), direct(x))


def test_build_needs_a_recipe_and_prepared_data(zoo_cache, tmp_path):
    from asma.zoo.recipes import build
    with pytest.raises(ZooError, match="has no recipe to build .it is published: asma zoo pull actclr"):
        build("actclr-ntu60-xview-joint")
    with pytest.raises((ValueError, FileNotFoundError), match="asma data prepare ntu60"):
        build("ntu60-student", data_dir=tmp_path / "no-data", progress=False)
    with pytest.raises(NotBuiltError, match="asma zoo build ntu60-student --data-dir DATA_DIR"):
        fetch("ntu60-student")
