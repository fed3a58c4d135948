"""save_pretrained / load_pretrained: identical outputs, model card, no pickles, clear mismatch errors."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from asma.models import AlignedClassifier, EncoderClassifier, FeatureAlignment
from asma.pretrained.architectures import config_for_model
from asma.pretrained.config import PretrainedConfig
from asma.pretrained.schema import ConfigError
from asma.zoo import load_pretrained, model_card, save_pretrained


def _teacher(make_backbone, num_classes):
    return AlignedClassifier(make_backbone(), make_backbone(), FeatureAlignment(16, num_classes, num_heads=2))


def test_round_trip_gives_identical_logits(saved, classifier, classifier_config, clips, find_pickles):
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    model, cfg = load_pretrained(saved)
    assert isinstance(model, EncoderClassifier) and not model.training
    assert cfg == classifier_config
    with torch.no_grad():
        assert torch.equal(model(cfg.preprocess(clips)), classifier(classifier_config.preprocess(clips)))
    with safe_open(str(saved / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["kind"] == "classifier" and meta["library"] == "asma"
    assert not find_pickles(saved)
    assert not list(saved.glob(".*"))  # no temporary files left behind


def test_token_statistics_travel_with_the_weights(tmp_path, make_backbone, randomize, class_names, clips):
    teacher = randomize(_teacher(make_backbone, len(class_names)))
    teacher.norm_theta.fit(torch.randn(50, 4, 16) * 3 + 1)
    teacher.norm_phi.set_stats(torch.full((16,), 0.5), torch.full((16,), 2.0))
    d = save_pretrained(teacher, config_for_model(teacher, class_names=class_names), tmp_path / "m")
    model, _ = load_pretrained(d)
    assert torch.equal(model.norm_theta.mean, teacher.norm_theta.mean)
    assert torch.equal(model.norm_phi.std, torch.full((16,), 2.0))
    with torch.no_grad():
        assert torch.equal(model(clips), teacher(clips))


@pytest.mark.parametrize("kind", ["encoder", "teacher", "student"])
def test_other_kinds_round_trip(tmp_path, kind, make_backbone, randomize, class_names, clips):
    if kind == "encoder":
        model = randomize(make_backbone())
        cfg = config_for_model(model, stream="joint")
    elif kind == "teacher":
        model = randomize(_teacher(make_backbone, len(class_names)))
        cfg = config_for_model(model, class_names=class_names)
        assert cfg.head == {"type": "alignment", "num_heads": 2, "dropout": 0.0}
    else:
        model = randomize(EncoderClassifier.linear(make_backbone(name="stgcn-student"), len(class_names)))
        cfg = config_for_model(model, kind="student", class_names=class_names, base_model="my-org/asma-teacher")
    d = save_pretrained(model, cfg, tmp_path / kind)
    loaded, back = load_pretrained(d)
    assert type(loaded) is type(model) and back.kind == kind
    with torch.no_grad():
        a, b = model(clips), loaded(clips)
    if kind == "encoder":  # (pooled, tokens)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    else:
        assert torch.equal(a, b)


def test_model_card_metadata(saved, classifier_config):
    from huggingface_hub import ModelCard
    card = ModelCard.load(saved / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "asma" and data["pipeline_tag"] == "video-classification"
    assert "skeleton-based-action-recognition" in data["tags"] and "layout-ntu25" in data["tags"]
    assert data["license"] == "cc-by-nc-4.0" and data["datasets"] == ["ntu60-xsub"]
    assert data["metrics"] == ["accuracy"] and "base_model" not in data
    results = data["model-index"][0]["results"]
    values = {m["name"]: m["value"] for r in results for m in r["metrics"]}
    assert values == {"top-1 accuracy": 81.5, "top-5 accuracy": 96.25}
    assert "asma zoo pull" in card.text and "| stream | bone |" in card.text and "drink water" in card.text
    # the pretrained_cfg facts of config.json are in the card too
    assert "| input (C, T, V, M) | 3, 16, 25, 2 |" in card.text
    assert f"| parameters | {classifier_config.num_params:,} |" in card.text
    assert f"| GFLOPs per clip | {classifier_config.gflops:g} |" in card.text
    assert "asma.create_model(" in card.text


def test_student_card_has_base_model(make_backbone, class_names):
    model = EncoderClassifier.linear(make_backbone(name="stgcn-student"), len(class_names))
    cfg = config_for_model(model, kind="student", class_names=class_names, base_model="my-org/asma-teacher")
    card = model_card(cfg, "my-org/asma-student")
    assert card.data.base_model == "my-org/asma-teacher" and "asma-student" in card.data.tags
    assert "my-org/asma-student" in card.text and "Distilled from the teacher `my-org/asma-teacher`" in card.text


def test_layout_mismatch_names_both_sides(saved, make_backbone, class_names):
    other = EncoderClassifier.linear(make_backbone("coco17"), len(class_names))
    with pytest.raises(ValueError) as e:
        load_pretrained(saved, model=other)
    msg = str(e.value)
    assert "mismatch in layout" in msg and "layout 'ntu25' (25 joints)" in msg and "layout 'coco17' (17 joints)" in msg
    two_ch = EncoderClassifier.linear(make_backbone(in_channels=2), len(class_names))
    with pytest.raises(ValueError, match=r"mismatch in in_channels.*in_channels=3.*in_channels=2"):
        load_pretrained(saved, model=two_ch)
    with pytest.raises(ValueError, match=r"mismatch in num_classes.*5 classes.*7 classes"):
        load_pretrained(saved, model=EncoderClassifier.linear(make_backbone(), 7))
    model, _ = load_pretrained(saved, model=EncoderClassifier.linear(make_backbone(), len(class_names)))
    with pytest.raises(ValueError, match=r"V=17 joints but the stgcn backbone was built for layout 'ntu25' with V=25 joints"):
        model(torch.zeros(1, 3, 16, 17, 2))


def test_save_refuses_a_config_of_another_model(tmp_path, classifier_config, make_backbone, class_names):
    other = EncoderClassifier.linear(make_backbone("coco17"), len(class_names))
    with pytest.raises(ValueError, match="the config does not fit the model"):
        save_pretrained(other, classifier_config, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_weights_that_do_not_fit_the_config(tmp_path, saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["backbone"]["out_channels"] = 32
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"weights do not fit the model built for .*shape mismatch"):
        load_pretrained(saved)


def test_pickles_are_refused(tmp_path, saved, classifier):
    d = tmp_path / "pickled"
    d.mkdir()
    (d / "config.json").write_text((saved / "config.json").read_text())
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ValueError, match=r"only pickled weights \(pytorch_model.bin\); asma refuses to load pickles"):
        load_pretrained(d)
    (d / "pytorch_model.bin").unlink()
    with pytest.raises(FileNotFoundError, match="missing weights file"):
        load_pretrained(d)


def test_unregistered_backbone_is_a_clear_error(tmp_path, saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["backbone"]["name"] = "my-plugin-gcn"
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"unknown backbone 'my-plugin-gcn'.*import_plugin"):
        load_pretrained(saved)


def test_config_for_model_rejects_wrong_kind(make_backbone):
    with pytest.raises(ValueError, match="published as kind encoder, not 'teacher'"):
        config_for_model(make_backbone(), kind="teacher")
    assert isinstance(config_for_model(make_backbone()), PretrainedConfig)


# ---------------------------------------------------------------------- asma.create_model
def _sha256(path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_create_model_from_a_folder(saved, classifier, classifier_config, clips):
    import asma
    model = asma.create_model(str(saved), pretrained=True)
    assert not model.training and model.pretrained_cfg == classifier_config
    cfg = model.pretrained_cfg
    assert cfg.num_params == sum(p.numel() for p in classifier.parameters()) and cfg.gflops > 0
    assert cfg.input_spec == {"C": 3, "T": 16, "V": 25, "M": 2} and cfg.license == "cc-by-nc-4.0"
    with torch.no_grad():
        assert torch.equal(model(cfg.preprocess(clips)), classifier(classifier_config.preprocess(clips)))
    fresh = asma.create_model(str(saved))  # pretrained=False: the architecture, freshly initialised
    assert isinstance(fresh, EncoderClassifier) and not hasattr(fresh, "pretrained_cfg")
    assert fresh.state_dict().keys() == model.state_dict().keys()
    with torch.no_grad():
        assert not torch.equal(fresh.eval()(clips), model(clips))
    with pytest.raises(TypeError, match="unexpected option.*hidden_channels"):
        asma.create_model(str(saved), pretrained=True, hidden_channels=8)


def test_create_model_from_a_folder_without_costs(tmp_path, saved, classifier, clips):
    import asma
    data = json.loads((saved / "config.json").read_text())
    for k in ("num_params", "gflops", "source"):
        del data[k]
    data["format_version"] = 1  # written by an older asma: the costs are measured on load
    (saved / "config.json").write_text(json.dumps(data))
    model = asma.create_model(str(saved), pretrained=True)
    assert model.pretrained_cfg.num_params == sum(p.numel() for p in classifier.parameters())
    assert model.pretrained_cfg.gflops is None  # counting FLOPs would import sympy on the inference path
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty is neither a model folder"):
        asma.create_model(str(tmp_path / "empty"))


def test_create_model_from_the_hub_and_an_alias(hub, saved, classifier, clips, tmp_path):
    import asma
    from asma.zoo import push_to_hub
    sha = push_to_hub(saved, "org/tiny", endpoint=hub.url, tag="v1")
    opts = {"endpoint": hub.url, "cache_dir": tmp_path / "cache"}
    model = asma.create_model("hf-hub:org/tiny@v1", pretrained=True, **opts)
    with torch.no_grad():
        assert torch.equal(model(clips), classifier(clips))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format_version": 2, "models": {"tiny-test": {"kind": "classifier", "hub": {
        "repo_id": "org/tiny", "revision": "v1", "sha256": {"model.safetensors": _sha256(saved / "model.safetensors")}}}}}))
    assert "tiny-test" in asma.list_models("tiny*", pretrained=True, manifests=[manifest])
    aliased = asma.create_model("tiny-test", pretrained=True, manifests=[manifest], **opts)
    assert not aliased.training and aliased.pretrained_cfg.num_classes == 5
    assert sha in str(list((tmp_path / "cache").glob("models--org--tiny/snapshots/*"))[0])
    with torch.no_grad():
        assert torch.equal(aliased(clips), classifier(clips))
    with pytest.raises(KeyError, match="unknown model 'tiny-tset'.*did you mean tiny-test"):
        asma.create_model("tiny-tset", manifests=[manifest])
