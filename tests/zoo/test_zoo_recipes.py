"""Recipes end to end: ``asma zoo build`` on a tiny recipe (embedded synthetic data, tiny preset,
pretrain -> linear -> distill), the built student found by ``fetch``, ``create_model`` and
``asma zoo pull``, listed as built locally with its measured metric, then published to the
localhost Hub and pulled from there on a fresh machine through the written manifest entry."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

import asma
from asma.cli.zoo import zoo
from asma.zoo.hub import fetch
from asma.zoo.model import load_pretrained
from asma.zoo.recipes import recipe_costs, run_key
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
    results = json.loads((zoo_cache / ".runs" / run_key(TINY) / "results.json").read_text())
    student = next(row for row in results["distill"] if row["name"].startswith("student"))
    key = next(iter(cfg["metrics"]))
    assert cfg["metrics"][key]["top1"] == pytest.approx(student["top1"])
    assert f"{student['top1']:.2f} % measured" in r.output
    assert cfg["source"]["recipe"] == "tiny-student" and cfg["source"]["build_seconds"] > 0
    assert sorted(cfg["source"]["stage_seconds"]) == ["distill", "linear", "pretrain"]
    assert cfg["source"]["recipe_seconds"] == pytest.approx(sum(cfg["source"]["stage_seconds"].values()))
    # the manifest's costs of a recipe (recipe_costs) are those of the model the build writes
    costs = recipe_costs(TINY, "student")
    assert (cfg["num_params"], cfg["gflops"]) == (costs["num_params"], costs["gflops"])
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
    r = run(zoo, ["list", "--manifest", str(manifest)])
    row = next(line for line in r.output.splitlines() if "tiny-student" in line)
    assert " built " in row and f"{student['top1']:.1f} distill" in row and "*" not in row
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


def test_run_key_is_shared_by_the_recipes_of_one_dataset_preset_and_overrides():
    student = TINY
    teacher = Recipe(dataset="synthetic", preset="tiny", stages=["pretrain", "linear", "finetune"], export="teacher",
                     overrides=TINY.overrides)
    key = run_key(student)
    assert key == run_key(teacher) and key.startswith("synthetic-tiny-") and len(key) == len("synthetic-tiny-") + 8
    # where the data lives and the device do not change what is computed; an override, the preset or the data do
    assert run_key(student, _cfg(student, data_dir="/elsewhere", threads=1)) == key
    other = dataclasses.replace(TINY, overrides={**TINY.overrides, "pretrain": {"epochs": 2, "batch_size": 8}})
    assert run_key(other) != key
    assert run_key(dataclasses.replace(TINY, preset="quick")) != key


def _cfg(recipe, data_dir=None, threads=0):
    from asma.zoo.recipes import recipe_config
    cfg = recipe_config(recipe, data_dir)
    cfg.threads = threads
    return cfg


def test_build_refuses_clips_of_another_length(zoo_cache, tmp_path):
    """A prepared store fixes T; a recipe on another T would silently train another model."""
    from asma.zoo.recipes import build
    store = tmp_path / "data" / "nwucla-xview" / "train"
    store.mkdir(parents=True)
    info = {"format": "asma-skeleton-store", "version": 1, "num_samples": 4, "shape": [4, 3, 50, 20, 1],
            "dtype": "float32", "layout": "kinect20", "class_names": ["a"], "num_classes": 1}
    (store / "info.json").write_text(json.dumps(info))
    with pytest.raises(ZooError, match=r"nwucla-student trains on clips of 20 frames but \S+nwucla-xview holds "
                                       r"50-frame clips; prepare it with: asma data prepare nwucla --raw RAW_DIR "
                                       r"--out \S+ --frames 20"):
        build("nwucla-student", data_dir=tmp_path / "data", progress=False)
    assert not (zoo_cache / ".runs").exists()


@pytest.mark.slow
def test_a_teacher_and_a_student_share_one_pretraining(zoo_cache, tmp_path):
    """asma zoo build TEACHER then STUDENT (same dataset, preset, overrides): one run directory,
    pretrained once; the second build only adds the distillation; both models load."""
    from asma.io import sha256_file
    from asma.zoo.recipes import BUILD_RECORD, build
    teacher = Recipe(dataset="synthetic", preset="tiny", stages=["pretrain", "linear", "finetune"], export="teacher",
                     overrides={**TINY.overrides, "finetune": {"epochs": 1, "align_epochs": 1}})
    student = dataclasses.replace(teacher, stages=["pretrain", "linear", "distill"], export="student")
    path = write_manifest(tmp_path / "pair.json", [
        ZooEntry("pair-teacher", "teacher", license="apache-2.0", recipe=teacher),
        ZooEntry("pair-student", "student", license="apache-2.0", recipe=student)])
    build("pair-teacher", manifests=[path], progress=False)
    run = zoo_cache / ".runs" / run_key(teacher)
    assert sorted(p.name for p in (zoo_cache / ".runs").iterdir()) == [run.name]

    def pretrain_records():
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [ln for ln in lines if json.loads(ln).get("stage") == "pretrain"]

    before, encoder = pretrain_records(), sha256_file(run / "encoders" / "theta" / "model.safetensors")
    record = json.loads((run / BUILD_RECORD).read_text())
    assert len(before) >= 1 and sorted(record) == ["finetune", "linear", "pretrain"]
    r = CliRunner().invoke(zoo, ["build", "pair-student", "--manifest", str(path)])
    assert r.exit_code == 0, r.output
    assert "stage: distill" in r.output and "stage: linear" not in r.output and "data: synthetic" not in r.output
    assert sorted(p.name for p in (zoo_cache / ".runs").iterdir()) == [run.name]
    assert pretrain_records() == before and sha256_file(run / "encoders" / "theta" / "model.safetensors") == encoder
    assert sorted(json.loads((run / "status.json").read_text())) == ["distill", "finetune", "linear", "pretrain"]
    src = json.loads((zoo_cache / "pair-student" / "config.json").read_text())["source"]
    # the student's cost from scratch counts the shared stages as the teacher's build measured them
    assert src["stage_seconds"]["pretrain"] == record["pretrain"] and src["run_dir"] == str(run)
    assert src["build_seconds"] < src["recipe_seconds"]
    x = torch.randn(2, 3, 20, 25, 1, generator=torch.Generator().manual_seed(0))
    for alias, kind in (("pair-teacher", "teacher"), ("pair-student", "student")):
        model = asma.create_model(alias, pretrained=True, manifests=[path])
        assert model.pretrained_cfg.kind == kind and model(x).shape == (2, 3)
