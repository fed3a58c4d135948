"""The ``device`` option: name resolution (CUDA availability monkeypatched: this machine has no
GPU) and ``device="cpu"`` giving bit-identical results to the default everywhere."""
from __future__ import annotations

import pytest
import torch

from asma.data.synthetic import SyntheticConfig, make_synthetic
from asma.models.registry import create_backbone
from asma.train import make_config, pretrain
from asma.train.config import DistillConfig, FinetuneConfig, ProbeConfig
from asma.train.distill import distill
from asma.train.distributed import DistInfo, backend_for, init_for_device
from asma.train.engine import module_device, resolve_device
from asma.train.evaluate import evaluate
from asma.train.finetune import finetune, finetune_aligned, fit_aligned_probe
from asma.train.probe import extract_tokens, linear_evaluation

CPU = torch.device("cpu")


@pytest.fixture
def single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend two CUDA devices are visible (only names are resolved; nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("spec", [None, "cpu", " CPU ", torch.device("cpu")])
def test_cpu_names(spec, single_process):
    assert resolve_device(spec) == CPU


def test_without_cuda(no_gpu, single_process):
    assert resolve_device("auto") == CPU
    for spec in ("cuda", "cuda:0", torch.device("cuda", 1)):
        with pytest.raises(ValueError, match=r"requested but torch\.cuda\.is_available\(\) is False"):
            resolve_device(spec)
    with pytest.raises(ValueError, match=r"device 'cuda' requested but torch\.cuda\.is_available\(\) is False"):
        resolve_device("cuda")


def test_with_cuda(fake_gpus, single_process):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"'cuda:2' requested but only 2 CUDA device\(s\)"):
        resolve_device("cuda:2")
    with pytest.raises(ValueError, match="expected cuda:<index>"):
        resolve_device("cuda:x")


def test_under_torchrun_each_process_owns_its_local_gpu(fake_gpus, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"cuda:<LOCAL_RANK> \(cuda:1 here\)"):
        resolve_device("cuda:0")
    assert resolve_device("cpu") == CPU


@pytest.mark.parametrize("spec", ["gpu", "mps", "cuda0", ""])
def test_unknown_names_list_the_valid_ones(spec):
    with pytest.raises(ValueError, match=r"valid values: cpu, cuda, cuda:<i>, auto"):
        resolve_device(spec)


def test_backend_follows_the_device(monkeypatch):
    assert backend_for(CPU) == "gloo"
    import asma.train.distributed as d
    monkeypatch.setattr(d, "init_distributed", lambda backend=None: DistInfo(0, 2, 0, "nccl", torch.device("cuda", 0)))
    with pytest.raises(ValueError, match="nccl backend, which only moves CUDA tensors, but the device is 'cpu'"):
        init_for_device(CPU)


def test_module_device():
    assert module_device(torch.nn.Linear(2, 2)) == CPU
    assert module_device(torch.nn.ReLU()) == CPU and module_device(lambda x: x) == CPU


# ----------------------------------------------------------------------------- device="cpu" == default


@pytest.fixture(scope="module")
def data():
    return make_synthetic(SyntheticConfig(num_classes=3, clips_per_class=8, num_frames=12, num_persons=1))


def _enc(seed=0):
    torch.manual_seed(seed)
    return create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=16, dropout=0.2)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _same_history(a, b) -> None:
    drop = lambda h: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in h]  # noqa: E731
    assert drop(a) == drop(b)


def test_pretrain_on_cpu_is_bit_identical_and_reads_cfg_device(data, tmp_path, single_process, no_gpu):
    cfg = make_config("tiny")
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 8
    cfg.model.backbone_cfg = {"hidden_channels": 4, "out_channels": 16, "dropout": 0.0}
    cfg.model.projector = [32, 32]
    ref = pretrain(cfg, data, tmp_path / "a", progress=False)
    cfg.device = "cuda"  # the argument wins over the config
    again = pretrain(cfg, data, tmp_path / "b", progress=False, device="cpu")
    _same_state(ref, again)
    _same_history(ref.history, again.history)
    with pytest.raises(ValueError, match="device 'cuda' requested"):  # cfg.device is read
        pretrain(cfg, data, None, progress=False)


def test_finetune_and_distill_on_cpu_are_bit_identical(data, single_process):
    cfg = FinetuneConfig(epochs=1, batch_size=8, lr=1e-2, augment=True, align_epochs=1, align_lr=1e-2, heads=2)
    results = {}
    for dev in (None, "cpu"):
        ft, ft_res = finetune(_enc(0), data, data, cfg, device=dev)
        al, al_res = finetune_aligned(ft, _enc(1), data, data, cfg, device=dev)
        pr, pr_res = fit_aligned_probe(_enc(0), _enc(1), data, data, ProbeConfig(epochs=2, batch_size=8, heads=2),
                                       device=dev)
        st, st_res = distill(al, data, data, DistillConfig(tau=2.0, epochs=1, batch_size=8, augment=True,
                                                           student_cfg={"width": 8}), device=dev)
        results[dev] = [(ft, ft_res), (al, al_res), (pr, pr_res), (st, st_res)]
    for (m0, r0), (m1, r1) in zip(results[None], results["cpu"]):
        _same_state(m0, m1)
        _same_history(getattr(m0, "history", []), getattr(m1, "history", []))
        assert torch.equal(r0.logits, r1.logits) and r0.top1 == r1.top1
        assert all(t.device == CPU for t in m1.state_dict().values()) and r1.logits.device == CPU


def test_evaluation_helpers_on_cpu_are_bit_identical(data):
    enc = _enc(0).eval()
    assert torch.equal(extract_tokens(enc, data), extract_tokens(enc, data, device="cpu"))
    probe = ProbeConfig(epochs=2, batch_size=8, heads=2)
    rows0 = linear_evaluation({"theta": _enc(0), "phi": _enc(1)}, data, data, probe)
    rows1 = linear_evaluation({"theta": _enc(0), "phi": _enc(1)}, data, data, probe, device="cpu")
    assert [(r.name, r.top1) for r in rows0] == [(r.name, r.top1) for r in rows1]
    assert all(torch.equal(a.logits, b.logits) for a, b in zip(rows0, rows1))
    from asma.models.heads import LinearClassifier
    from asma.models.classifiers import EncoderClassifier
    torch.manual_seed(0)
    model = EncoderClassifier(_enc(0), LinearClassifier(16, 3))
    assert torch.equal(evaluate(model, data).logits, evaluate(model, data, device="cpu").logits)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        evaluate(model, data, device="gpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        finetune(_enc(0), data, data, FinetuneConfig(epochs=1), device="gpu")
