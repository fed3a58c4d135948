from __future__ import annotations

import pytest
import torch

from asma.data.synthetic import SyntheticConfig, make_synthetic
from asma.models.heads import LinearClassifier
from asma.models.registry import create_backbone
from asma.train.config import ProbeConfig
from asma.train.evaluate import evaluate
from asma.models.alignment import AlignedClassifier
from asma.models.classifiers import EncoderClassifier
from asma.train.config import FinetuneConfig
from asma.train.finetune import finetune, finetune_aligned, fit_aligned_probe
from asma.train.probe import linear_evaluation

ENC = dict(hidden_channels=4, out_channels=16)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(SyntheticConfig(num_classes=4, clips_per_class=16, num_frames=16, num_persons=1))


def _enc(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return create_backbone("stgcn", "ntu25", 3, dropout=dropout, **ENC)


def test_defaults_are_the_papers():
    c = FinetuneConfig()
    assert (c.epochs, c.lr, c.batch_size, c.align_epochs, c.align_lr, c.heads) == (150, 5e-3, 128, 50, 1e-4, 4)


def test_finetuning_beats_the_untrained_encoder(data):
    enc = _enc()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    torch.manual_seed(0)
    untrained = evaluate(EncoderClassifier(enc, LinearClassifier(16, 4)), data).top1
    model, res = finetune(enc, data, data, FinetuneConfig(epochs=12, batch_size=16, lr=1e-2))
    assert res.name == "finetune" and res.logits.shape == (len(data), 4)
    assert res.top1 >= untrained + 30  # on the training clips, eval mode (measured: 25 -> 86..98)
    assert model.history[-1]["loss"] < 0.5 * model.history[0]["loss"]
    assert not model.training
    # the caller's encoder is untouched (finetune trains a copy)
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


def test_finetune_resume_reproduces_losses(tmp_path, data):
    # dropout and augmentation on: the per-epoch RNG replay must cover both
    cfg = FinetuneConfig(epochs=3, batch_size=16, lr=1e-2, augment=True)
    full, _ = finetune(_enc(dropout=0.5), data, data, cfg, run_dir=tmp_path / "a")
    finetune(_enc(dropout=0.5), data, data, cfg, run_dir=tmp_path / "b", max_epochs=1)
    resumed, _ = finetune(_enc(dropout=0.5), data, data, cfg, run_dir=tmp_path / "b", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history[1:]], rel=1e-5)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    assert (tmp_path / "a" / "finetune" / "latest.json").is_file()
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"stage": "finetune"' in lines[0]
    with pytest.raises(ValueError, match="no finetune checkpoint"):
        finetune(_enc(), data, data, cfg, run_dir=tmp_path / "none", resume=True)


def test_finetune_aligned_trains_on_frozen_encoders(tmp_path, data):
    cfg = FinetuneConfig(epochs=2, batch_size=16, lr=1e-2, align_epochs=4, align_lr=1e-2, heads=2)
    theta, _ = finetune(_enc(0), data, data, cfg, name="finetune-theta")
    phi, _ = finetune(_enc(1), data, data, cfg, seed=1, name="finetune-phi")
    frozen = {k: v.clone() for k, v in theta.state_dict().items()}
    model, res = finetune_aligned(theta, phi, data, data, cfg, run_dir=tmp_path / "a")
    assert isinstance(model, AlignedClassifier) and res.name == "finetune-aligned"
    assert model.history[-1]["loss"] < model.history[0]["loss"]
    assert all(torch.equal(frozen[k], v) for k, v in theta.state_dict().items())
    assert not any(p.requires_grad for p in model.enc_theta.parameters())
    # the module reproduces the reported logits end to end (tokens -> standardise -> align)
    direct = evaluate(model, data)
    assert torch.allclose(direct.logits, res.logits, atol=1e-4)
    assert direct.top1 == pytest.approx(res.top1)
    # resumption of the alignment stage
    finetune_aligned(theta, phi, data, data, cfg, run_dir=tmp_path / "b", max_epochs=2)
    resumed, _ = finetune_aligned(theta, phi, data, data, cfg, run_dir=tmp_path / "b", resume=True)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in model.history[2:]], rel=1e-5)


def test_aligned_probe_matches_linear_evaluation_row(data):
    cfg = ProbeConfig(epochs=3, batch_size=16, lr=1e-2, heads=2)
    enc_t, enc_p = _enc(0), _enc(1)
    rows = linear_evaluation({"theta": enc_t, "phi": enc_p}, data, data, cfg, seed=3)
    teacher, res = fit_aligned_probe(enc_t, enc_p, data, data, cfg, seed=3)
    aligned = next(r for r in rows if r.name == "theta+phi aligned")
    assert res.top1 == pytest.approx(aligned.top1)
    assert torch.allclose(res.logits, aligned.logits, atol=1e-5)
    # as a module (the §5.4 linear-probed teacher), same logits from raw clips
    assert torch.allclose(evaluate(teacher, data).logits, res.logits, atol=1e-4)
    assert teacher.features(torch.zeros(2, 3, 16, 25, 1)).shape == (2, 16)
