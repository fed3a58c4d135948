"""push_to_hub / pull / load_from_hub against the localhost Hub, offline re-use, names and the manifest."""
from __future__ import annotations

import json

import pytest
import torch

import asma
from asma.io import sha256_record
from asma.zoo.hub import ModelRef, commit_of, load_from_hub, parse_model_name, pull, push_to_hub
from asma.zoo.model import save_pretrained
from asma.zoo.registry import (HubSource, UnknownModelError, ZooEntry, ZooError, add_entry, builtin_manifest_path,
                               list_entries, read_manifest, remove_entry, resolve, write_manifest)


def hub_entry(alias, repo_id, revision, folder=None, kind="classifier", **kw):
    """A manifest entry pinning ``repo_id@revision`` with the sha256 of ``folder``'s files."""
    hashes = sha256_record(folder, ["config.json", "model.safetensors"]) if folder else {"model.safetensors": "0" * 64}
    return ZooEntry(alias, kind, hub=HubSource(repo_id, revision, hashes), **kw)


@pytest.fixture
def pushed(hub, saved):
    """The tiny classifier pushed to org/tiny and tagged v1; returns the commit sha."""
    return push_to_hub(saved, "org/tiny", endpoint=hub.url, tag="v1")


def test_push_pull_load_gives_identical_logits(hub, pushed, classifier, classifier_config, clips, tmp_path,
                                               find_pickles):
    assert len(pushed) == 40
    cache = tmp_path / "fresh-cache"
    path = pull("org/tiny", endpoint=hub.url, cache_dir=cache)
    assert commit_of(path) == pushed
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (cache / "models--org--tiny" / "refs" / "main").read_text() == pushed  # resolved commit recorded
    model, cfg = load_from_hub("hf-hub:org/tiny", endpoint=hub.url, cache_dir=tmp_path / "another-cache")
    assert cfg == classifier_config
    assert cfg.origin["commit"] == pushed and cfg.origin["repo_id"] == "org/tiny"
    with torch.no_grad():
        assert torch.equal(model(cfg.preprocess(clips)), classifier(classifier_config.preprocess(clips)))
    # the client identified itself as asma, and the card was completed with the repository id
    downloads = [ua for m, p, ua in hub.requests if "/resolve/" in p]
    assert downloads and all(f"asma/{asma.__version__}" in ua for ua in downloads)
    assert "asma zoo pull org/tiny" in (path / "README.md").read_text()
    assert not find_pickles(tmp_path)


def test_model_info_on_the_hub(hub, pushed):
    from huggingface_hub import HfApi
    info = HfApi(endpoint=hub.url).model_info("org/tiny")
    assert info.sha == pushed and info.library_name == "asma" and info.pipeline_tag == "video-classification"
    assert "skeleton-based-action-recognition" in info.tags
    files = set(HfApi(endpoint=hub.url).list_repo_files("org/tiny"))
    assert files == {".gitattributes", "README.md", "config.json", "model.safetensors"}


def test_pinned_revisions_and_tags(hub, pushed, saved, classifier, classifier_config, clips, tmp_path):
    import shutil
    saved_v1 = shutil.copytree(saved, tmp_path / "v1")
    with torch.no_grad():
        for p in classifier.head.parameters():
            p.add_(1.0)
    v2_dir = save_pretrained(classifier, classifier_config, tmp_path / "v2")
    sha2 = push_to_hub(v2_dir, "org/tiny", endpoint=hub.url, tag="v2")
    assert sha2 != pushed
    cache = tmp_path / "c"
    m1, c1 = load_from_hub("hf-hub:org/tiny@v1", endpoint=hub.url, cache_dir=cache)
    m2, c2 = load_from_hub("org/tiny", endpoint=hub.url, cache_dir=cache)
    m3, c3 = load_from_hub("org/tiny", revision=pushed, endpoint=hub.url, cache_dir=cache)
    assert (c1.origin["commit"], c2.origin["commit"], c3.origin["commit"]) == (pushed, sha2, pushed)
    with torch.no_grad():
        assert torch.equal(m2(clips), classifier(clips))
        assert torch.equal(m1(clips), m3(clips)) and not torch.equal(m1(clips), m2(clips))
    # an alias pins a revision; an explicit revision overrides it
    add_entry(hub_entry("tiny-v1", "org/tiny", "v1", saved_v1, description="test"))
    try:
        assert commit_of(pull("tiny-v1", endpoint=hub.url, cache_dir=cache)) == pushed
        assert commit_of(pull("tiny-v1", revision="v2", endpoint=hub.url, cache_dir=cache)) == sha2
    finally:
        remove_entry("tiny-v1")
    with pytest.raises(ZooError, match=r"repository 'org/tiny' has no revision 'v3'"):
        pull("org/tiny@v3", endpoint=hub.url, cache_dir=cache)


def test_push_to_a_branch(hub, saved, tmp_path):
    sha = push_to_hub(saved, "org/branchy", endpoint=hub.url, revision="experiments")
    from huggingface_hub import HfApi
    refs = HfApi(endpoint=hub.url).list_repo_refs("org/branchy")
    assert {b.name: b.target_commit for b in refs.branches}["experiments"] == sha
    assert commit_of(pull("org/branchy@experiments", endpoint=hub.url, cache_dir=tmp_path / "c")) == sha


def test_offline_reuse_after_the_server_stops(hub, pushed, classifier, clips, tmp_path):
    cache = tmp_path / "c"
    online = pull("hf-hub:org/tiny@v1", endpoint=hub.url, cache_dir=cache)
    pull("org/tiny", endpoint=hub.url, cache_dir=cache)
    hub.stop()
    # unreachable server: the cache answers, for the tag and for the default branch
    assert pull("hf-hub:org/tiny@v1", endpoint=hub.url, cache_dir=cache) == online
    assert pull("org/tiny", endpoint=hub.url, cache_dir=cache) == online
    model, cfg = load_from_hub("org/tiny@v1", endpoint=hub.url, cache_dir=cache, local_files_only=True)
    with torch.no_grad():
        assert torch.equal(model(clips), classifier(clips))
    with pytest.raises(ZooError, match=r"org/tiny@v9: it is not in the local cache .* pull it once while online"):
        pull("org/tiny@v9", endpoint=hub.url, cache_dir=cache)
    with pytest.raises(ZooError, match="not in the local cache"):
        pull("org/never-pulled", endpoint=hub.url, cache_dir=cache, local_files_only=True)


def test_hub_errors_are_clear(hub, saved, tmp_path, monkeypatch):
    with pytest.raises(ZooError, match=r"no model repository 'org/missing' on http://127\.0\.0\.1"):
        pull("org/missing", endpoint=hub.url, cache_dir=tmp_path / "c")
    monkeypatch.setenv("HF_TOKEN", "wrong-token")
    with pytest.raises(ZooError, match=r"cannot push to org/tiny: the Hub .* answered: .*401"):
        push_to_hub(saved, "org/tiny", endpoint=hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    push_to_hub(saved, "org/tiny", endpoint=hub.url, tag="v1")
    with pytest.raises(ZooError, match="tag 'v1' already exists in org/tiny"):
        push_to_hub(saved, "org/tiny", endpoint=hub.url, tag="v1")
    with pytest.raises(ZooError, match="is a commit sha; push to a branch"):
        push_to_hub(saved, "org/tiny", endpoint=hub.url, revision="0" * 40)
    with pytest.raises(ZooError, match="invalid repository id"):
        push_to_hub(saved, "no-slash", endpoint=hub.url)
    with pytest.raises(ZooError, match="cannot be reached"):
        push_to_hub(saved, "org/tiny", endpoint="http://127.0.0.1:9", token="x")


def test_pickles_are_never_downloaded(hub, saved, tmp_path, find_pickles):
    from huggingface_hub import HfApi
    api = HfApi(endpoint=hub.url)
    api.create_repo("org/mixed")
    api.upload_file(path_or_fileobj=b"\x80\x04fake pickle", path_in_repo="pytorch_model.bin", repo_id="org/mixed")
    with pytest.raises(ZooError, match="is not an asma model: it has no config.json"):
        pull("org/mixed", endpoint=hub.url, cache_dir=tmp_path / "c")
    api.upload_file(path_or_fileobj=saved / "config.json", path_in_repo="config.json", repo_id="org/mixed")
    with pytest.raises(ZooError, match="has no model.safetensors; asma only loads safetensors"):
        pull("org/mixed", endpoint=hub.url, cache_dir=tmp_path / "c")
    api.upload_file(path_or_fileobj=saved / "model.safetensors", path_in_repo="model.safetensors", repo_id="org/mixed")
    path = pull("org/mixed", endpoint=hub.url, cache_dir=tmp_path / "c")
    assert not (path / "pytorch_model.bin").exists()
    assert not find_pickles(tmp_path / "c")
    assert not any(p.endswith("pytorch_model.bin") for _, p, _ in hub.requests if "/resolve/" in p)


def test_push_validates_the_folder(hub, saved, tmp_path):
    (saved / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="missing weights file"):
        push_to_hub(saved, "org/tiny", endpoint=hub.url)
    assert not any("/commit/" in p for _, p, _ in hub.requests)


# ---------------------------------------------------------------------- names and the manifest
def test_model_names():
    assert parse_model_name("hf-hub:org/m@v1") == ModelRef("org/m", "v1")
    assert parse_model_name("org/m") == ModelRef("org/m", None)
    assert parse_model_name("org/m", revision="abc") == ModelRef("org/m", "abc")
    assert str(ModelRef("org/m", "v1")) == "hf-hub:org/m@v1"
    with pytest.raises(ZooError, match="names revision 'v1' but revision='v2'"):
        parse_model_name("org/m@v1", revision="v2")
    with pytest.raises(ZooError, match="invalid model name"):
        parse_model_name("hf-hub:org/m/extra")


def test_builtin_manifest_is_valid_and_honest():
    entries = {e.alias: e for e in read_manifest(builtin_manifest_path())}
    assert json.loads(builtin_manifest_path().read_text())["format_version"] == 2
    # the three real NTU-60 models: immutable URLs at 40-hex commits of their public repositories
    lineage = {a: e for a, e in entries.items() if e.url is not None}
    assert sorted(lineage) == ["actclr-ntu60-xview-joint", "aimclr-ntu60-xview-joint", "crosnnclr-ntu60-xview-joint"]
    for e in lineage.values():
        assert e.url.url == (f"https://raw.githubusercontent.com/{e.url.repository.split('github.com/')[1]}/"
                             f"{e.url.commit}/{e.url.path}")
        assert len(e.url.commit) == 40 and e.license.startswith("MIT") and "research" in e.license
        assert "of 12 real NTU-60 clips" in e.agreement["ntu60-real-samples"]
    assert lineage["actclr-ntu60-xview-joint"].metrics == {"ntu60-xview/linear": {"top1": 87.14, "top5": 98.63}}
    # nothing is claimed to be on a Hub; the ASMa models are recipes with the paper's numbers
    assert not any(e.hub for e in entries.values())
    student = entries["ntu60-student"]
    assert not student.pullable and student.recipe.expected == {"ntu60-xsub/distill": {"top1": 80.5}}
    assert student.recipe.stages == ["pretrain", "linear", "distill"] and student.recipe.export == "student"
    assert [e.alias for e in list_entries()] == sorted(entries)


@pytest.mark.parametrize("alias, layout, classes", [("ntu60-teacher", "ntu25", 60), ("ntu120-student", "ntu25", 120),
                                                    ("nwucla-teacher", "kinect20", 10),
                                                    ("utd-mhad-student", "kinect20", 27)])
def test_recipe_costs_are_those_of_the_architecture_they_train(alias, layout, classes):
    """The manifest's params / GFLOPs of a recipe: its preset's model on the dataset's layout and
    classes, one clip of the preset's length (asma.zoo.manifest_tool keeps them current)."""
    from asma.graph import get_layout
    from asma.train.config import make_config
    from asma.pretrained.architectures import build_model, model_costs
    from asma.pretrained.config import PretrainedConfig
    entry = resolve(alias)
    preset = make_config(entry.recipe.preset)
    backbone = ({"name": "stgcn", **preset.model.backbone_cfg} if entry.kind == "teacher"
                else {"name": "stgcn-student", **preset.distill.student_cfg})
    head = {"head": {"type": "alignment", "num_heads": preset.finetune.heads}} if entry.kind == "teacher" else {}
    cfg = PretrainedConfig(kind=entry.kind, backbone=backbone, layout=get_layout(layout).to_dict(), in_channels=3,
                           num_classes=classes, num_frames=preset.data.num_frames,
                           num_persons=1 if layout == "kinect20" else 2, **head)
    costs = model_costs(build_model(cfg), cfg)
    assert (entry.params, entry.gflops) == (costs["num_params"], costs["gflops"])
    if layout == "kinect20":  # the small real benchmarks: the small preset on 20-frame stores
        assert entry.recipe.preset == "small" and preset.data.num_frames == 20 and "--frames 20" in entry.recipe.data


def test_unknown_alias_lists_the_known_names():
    with pytest.raises(UnknownModelError) as e:
        pull("ntu61-student")
    msg = str(e.value)
    assert "no model named 'ntu61-student' in the zoo" in msg and "actclr-ntu60-xview-joint" in msg
    assert "hf-hub:org/name@revision" in msg
    with pytest.raises(ZooError, match="'ntu60-student' is not published on a Hub .a recipe."):
        pull("ntu60-student")


def test_manifest_files_and_env(tmp_path, monkeypatch):
    path = write_manifest(tmp_path / "org.json", [
        hub_entry("ntu60-student", "my-org/asma-ntu60-student", "v1.0", kind="student", description="5-layer")])
    assert resolve("ntu60-student", [path]).hub.repo_id == "my-org/asma-ntu60-student"  # replaces the recipe
    assert parse_model_name("ntu60-student", manifests=[path]) == ModelRef(
        "my-org/asma-ntu60-student", "v1.0", alias="ntu60-student")
    assert read_manifest(path) == [resolve("ntu60-student", [path])]  # round trip
    monkeypatch.setenv("ASMA_ZOO_MANIFEST", str(path))
    assert resolve("ntu60-student").source == str(path)
    with pytest.raises(ZooError, match="already defined by .*org.json"):
        add_entry(hub_entry("ntu60-student", "x/y", "v2", kind="student"))
    monkeypatch.setenv("ASMA_ZOO_MANIFEST", str(tmp_path / "gone.json"))
    with pytest.raises(FileNotFoundError, match=r"gone.json \(listed in \$ASMA_ZOO_MANIFEST\)"):
        list_entries()


_SHA = {"model.safetensors": "a" * 64}


@pytest.mark.parametrize("entry, expect", [
    ({"kind": "student", "hub": {"repo_id": "noslash", "revision": "v1", "sha256": _SHA}}, "field 'hub.repo_id'"),
    ({"kind": "student", "hub": {"repo_id": "a/b", "sha256": _SHA}}, "field 'hub': missing 1 required"),
    ({"kind": "student", "hub": {"repo_id": "a/b", "revision": "v1", "sha256": {}}}, "field 'hub.sha256'"),
    ({"kind": "student", "hub": {"repo_id": "a/b", "revision": "v1", "sha256": {"../x": "a" * 64}}},
     "field 'hub.sha256': '../x' is not a plain file name"),
    ({"kind": "detector", "hub": {"repo_id": "a/b", "revision": "v1", "sha256": _SHA}}, "field 'kind'"),
    ({"kind": "student"}, "field 'recipe': an entry needs a source .'hub' or 'url'. or a 'recipe'"),
    ({"kind": "classifier", "url": {"url": "https://x/y.pt", "sha256": "abc", "converter": "actclr"}},
     "field 'url.sha256'"),
    ({"kind": "classifier", "url": {"url": "https://x/y.pt", "sha256": "a" * 64, "converter": "moco"}},
     "field 'url.converter'"),
    ({"kind": "student", "hub": {"repo_id": "a/b", "revision": "v1", "sha256": _SHA}, "repo_id": "a/b"},
     "unknown field.s. 'repo_id'"),
])
def test_bad_manifest_entries(tmp_path, entry, expect):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"format_version": 2, "models": {"x": entry}}))
    with pytest.raises(ZooError, match=f"m.json: model 'x': {expect}"):
        read_manifest(path)
    with pytest.raises(ZooError, match="invalid alias 'Org/X'"):
        hub_entry("Org/X", "a/b", "v1")
    path.write_text(json.dumps({"format_version": 1, "models": {}}))
    with pytest.raises(ZooError, match="manifest format 1 is not supported"):
        read_manifest(path)
