"""fit(manual_backward=True): a loss back-propagated part by part (ASMa's per-encoder terms) trains
exactly like the joint backward, in one process and under DDP (no_sync for all parts but the last)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from asma.data.streams import to_stream
from asma.data.synthetic import SyntheticConfig, make_synthetic
from asma.data.transforms import Augment
from asma.losses import BarlowTwinsLoss
from asma.train import make_config, pretrain
from asma.train.loop import fit
from asma.train.optim import adam
from asma.train.pretrain import batch_views, build_model

WORLD = 2


def _cfg(shared_projector=False, bf16=False):
    cfg = make_config("tiny")
    cfg.pretrain.epochs, cfg.pretrain.batch_size, cfg.pretrain.warmup_epochs = 2, 8, 0
    cfg.model.backbone_cfg = {"hidden_channels": 4, "out_channels": 16, "dropout": 0.5}
    cfg.model.projector = [32, 32]
    cfg.model.shared_projector = shared_projector
    cfg.bf16 = bf16
    data = make_synthetic(SyntheticConfig(num_classes=3, clips_per_class=8, num_frames=16, num_persons=2))
    return cfg, data


def _joint_pretrain(cfg, data):
    """pretrain()'s step with one backward of the whole ASMa loss (the engine's default)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.skeleton, data.shape[1], data.num_coords)
    opt = adam(model.parameters(), lr=cfg.pretrain.lr, weight_decay=cfg.pretrain.weight_decay)
    augment = Augment(cfg.augment, data.skeleton.flip_perm, data.num_coords)
    clips = to_stream(torch.from_numpy(np.array(data.data, dtype=np.float32)), cfg.data.stream, data.skeleton,
                      data.num_coords)

    def batch_loss(net, batch, g):
        anchor, xj, xm = (v[batch.part] for v in batch_views(clips[batch.global_idx], augment, g))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss, parts = net(anchor, xj, xm, generator=g)
        return loss, {k: v.item() for k, v in parts.items()}

    hist = fit(model, opt, batch_loss, clips.shape[0], cfg.pretrain.batch_size, cfg.pretrain.epochs,
               warmup_epochs=cfg.pretrain.warmup_epochs, drop_last=True, seed=cfg.seed, stage="pretrain")
    return model, hist


@pytest.mark.parametrize("shared_projector", [False, True])
def test_per_encoder_backward_reproduces_the_joint_backward(shared_projector):
    cfg, data = _cfg(shared_projector)
    model = pretrain(cfg, data, None, progress=False)  # per-encoder forward + backward
    ref, ref_hist = _joint_pretrain(cfg, data)
    assert len(model.history) == 2
    for h, r in zip(model.history, ref_hist):
        assert set(h) == set(r)
        for k in ("loss", "theta/joint", "theta/frame", "phi/joint", "phi/frame"):
            assert h[k] == pytest.approx(r[k], rel=1e-5, abs=1e-6), k
    assert model.history[0]["loss"] != pytest.approx(model.history[1]["loss"], rel=1e-3)  # it trained
    # a convolution bias right before BatchNorm has a zero gradient in exact arithmetic: Adam
    # turns its float noise into full-size steps of either sign (and BN's running mean follows)
    noise = ("tcn.2.bias", "tcn.3.running_mean", "residual.0.bias", "residual.1.running_mean")
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        if not k.endswith(noise):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_per_encoder_backward_under_bf16_autocast():
    cfg, data = _cfg(bf16=True)
    model = pretrain(cfg, data, None, progress=False)
    _, ref_hist = _joint_pretrain(cfg, data)
    assert [h["loss"] for h in model.history] == pytest.approx([h["loss"] for h in ref_hist], rel=1e-3)


@pytest.mark.parametrize("mode", ["low", "min"])
def test_low_memory_pretraining_reproduces_the_fast_one(mode):
    """pretrain.memory = "low" / "min" (activations recomputed in backward) trains the same model."""
    cfg, data = _cfg()
    fast = pretrain(cfg, data, None, progress=False)
    cfg.pretrain.memory = mode
    low = pretrain(cfg, data, None, progress=False)
    assert any(getattr(m, "recompute" if mode == "low" else "checkpoint", False) for m in low.modules())
    for h, r in zip(low.history, fast.history):
        for k in ("loss", "theta/joint", "theta/frame", "phi/joint", "phi/frame"):
            assert h[k] == pytest.approx(r[k], rel=1e-6, abs=1e-7), k
    for (k, a), b in zip(low.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)


def test_the_convolution_graph_product_trains_like_the_einsum(monkeypatch):
    """Training runs ST-GCN's graph product as a 1x1 convolution over the joints
    (asma.models.stgcn.aggregate); a fixed-seed pretraining run with the einsum instead gives
    the same losses and weights within float tolerance."""
    from asma.models import stgcn
    cfg, data = _cfg()
    fast = pretrain(cfg, data, None, progress=False)
    calls = []

    def einsum_only(x, A):
        calls.append(torch.is_grad_enabled())
        n, c, t, v = x.shape
        return torch.einsum("nctv,kvw->nkctw", x, A).reshape(n, A.shape[0] * c, t, v)

    monkeypatch.setattr(stgcn, "aggregate", einsum_only)
    ref = pretrain(cfg, data, None, progress=False)
    assert any(calls)  # the training forward went through the replacement
    # the first epoch to 1e-6; later ones to 1e-4: Adam turns the float noise in the gradients of
    # biases that BatchNorm cancels into full-size steps (see the test above)
    for h, r, rel in zip(fast.history, ref.history, (1e-6, 1e-4)):
        for k in ("loss", "theta/joint", "theta/frame", "phi/joint", "phi/frame"):
            assert h[k] == pytest.approx(r[k], rel=rel), k
    # weights within a tenth of one Adam step (lr): float noise there moves a weight by up to lr
    noise = ("tcn.2.bias", "tcn.3.running_mean", "residual.0.bias", "residual.1.running_mean")  # as above
    for (k, a), b in zip(fast.state_dict().items(), ref.state_dict().values()):
        if not k.endswith(noise):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=0.1 * cfg.pretrain.lr, msg=k)


def test_a_batch_step_without_backward_is_refused():
    lin = nn.Linear(2, 1)
    with pytest.raises(RuntimeError, match="never called its backward"):
        fit(lin, adam(lin.parameters(), lr=0.1), lambda net, b, g, backward: (torch.zeros(()), {}), 4, 2, 1,
            manual_backward=True)


class _Disjoint(nn.Module):
    """Two parts with their own parameters: part ``a`` uses ``a``, part ``b`` uses ``b``."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 4), nn.Linear(6, 4)

    def forward(self, x, name):
        return getattr(self, name)(x).pow(2).mean() + 0.1 * getattr(self, name).weight.abs().sum()


def _disjoint_run(step_parts: bool, seen=None, net=None):
    torch.manual_seed(5)
    model = net or _Disjoint()
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(6))

    def parts(net, batch, g, backward):
        total = torch.zeros(())
        for i, k in enumerate("ab"):
            with backward.part(last=i == 1):
                if seen is not None and k == "b":  # what part a left behind when part b starts
                    seen.append([p.grad is None for p in net.a.parameters()])
                loss = net(x[batch.idx], k)
                backward(loss)
            total = total + loss.detach()
        return total, {}

    opt = adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    hist = fit(model, opt, parts, 16, 4, 2, manual_backward=True, step_parts=step_parts, seed=2)
    return model, hist, opt


def test_stepping_each_part_frees_its_gradients_and_gives_the_same_updates():
    seen = []
    model, hist, opt = _disjoint_run(True, seen)
    ref, ref_hist, ref_opt = _disjoint_run(False)
    assert len(seen) == 8 and all(all(s) for s in seen)  # part a's gradients were gone during part b
    assert [h["loss"] for h in hist] == [h["loss"] for h in ref_hist]
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k  # bitwise: each parameter sees the same gradient and Adam update
    for p, q in zip(model.parameters(), ref.parameters()):
        assert opt.state[p]["step"] == ref_opt.state[q]["step"] == 8
        assert torch.equal(opt.state[p]["exp_avg_sq"], ref_opt.state[q]["exp_avg_sq"])


def test_stepping_each_part_refuses_parts_that_share_a_parameter():
    net = _Disjoint()
    net.b = net.a  # both parts now train the same Linear
    with pytest.raises(RuntimeError, match="same parameter"):
        _disjoint_run(True, net=net)


def test_bf16_autocast_runs_only_the_encoder_in_bf16():
    """The projections that feed Barlow Twins are computed in fp32 from the bf16 features."""
    cfg, data = _cfg(bf16=True)
    torch.manual_seed(0)
    model = build_model(cfg, data.skeleton, data.shape[1], data.num_coords).eval()  # no dropout draws
    x = torch.from_numpy(np.array(data.data[:8], dtype=np.float32))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        feats = model.encoders["theta"](x)[0]
        z = model._encode("theta", x)[0]
    assert feats.dtype == torch.bfloat16 and z.dtype == torch.float32
    with torch.no_grad():
        expected = model.projectors["theta"](feats.float())
    torch.testing.assert_close(z, expected)


# ----------------------------------------------------------------------------- DDP


class _TwoParts(nn.Module):
    """Two 'encoders' and a shared projector without BatchNorm (exact under DDP): part ``a`` uses
    ``a`` and ``proj``, part ``b`` uses ``b`` and ``proj``; ``a`` is unused in part ``b``."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(6, 8)
        self.proj = nn.Linear(8, 16, bias=False)  # a bias before standardisation gets no gradient
        self.bt = BarlowTwinsLoss(5e-3)

    def forward(self, x1, x2, names=("a", "b")):
        return sum(self.bt(self.proj(torch.tanh(getattr(self, k)(x1))),
                           self.proj(torch.tanh(getattr(self, k)(x2)))) for k in names)


def _two_part_run(manual: bool):
    torch.manual_seed(3)
    model = _TwoParts()
    x = torch.randn(24, 6, generator=torch.Generator().manual_seed(4))

    def views(batch, g):
        noise = torch.randn((2, *x[batch.global_idx].shape), generator=g)  # drawn for the global batch
        return ((x[batch.global_idx] + 0.3 * noise[i])[batch.part] for i in range(2))

    def joint(net, batch, g):
        return net(*views(batch, g)), {}

    def parts(net, batch, g, backward):
        x1, x2 = views(batch, g)
        total = torch.zeros(())
        for i, k in enumerate("ab"):
            with backward.part(last=i == 1):
                loss = net(x1, x2, names=(k,))
                backward(loss)
            total = total + loss.detach()
        return total, {}

    hist = fit(model, adam(model.parameters(), lr=1e-2), parts if manual else joint, 24, 8, 2,
               manual_backward=manual, seed=1)
    return {**{k: v.detach().clone() for k, v in model.state_dict().items()},
            "loss": torch.tensor([h["loss"] for h in hist], dtype=torch.float64)}


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    from asma.train.distributed import cleanup, init_distributed
    init_distributed("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        save_file(_two_part_run(manual=True), os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        cleanup()


def test_per_part_backward_under_ddp_equals_one_process_joint_backward(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_ddp_worker, args=(WORLD, str(tmp_path / "init"), str(out)), nprocs=WORLD, join=True)
    ref = _two_part_run(manual=False)
    assert ref["loss"][0] != pytest.approx(ref["loss"][1].item(), rel=1e-3)
    for r in range(WORLD):
        res = load_file(str(out / f"rank{r}.safetensors"))
        assert set(res) == set(ref)
        for k, v in ref.items():  # one all-reduce of the accumulated gradients: the joint gradient
            torch.testing.assert_close(res[k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_grouped_projection_equals_one_projector_call_per_group():
    from asma.models.asma import project_groups
    from asma.models.heads import Projector
    torch.manual_seed(0)
    proj, ref = Projector(16, [32, 32, 24]), Projector(16, [32, 32, 24])
    ref.load_state_dict(proj.state_dict())
    feats = [torch.randn(10, 16, requires_grad=True), torch.randn(5, 16, requires_grad=True)]
    out = project_groups(proj, feats)
    expected = [ref(f) for f in feats]  # BatchNorm over each group separately
    w = torch.randn(15, 24)
    torch.autograd.backward(out, list(w.split([10, 5])))
    grads = [f.grad.clone() for f in feats]
    for f in feats:
        f.grad = None
    torch.autograd.backward(expected, list(w.split([10, 5])))
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b)
    for a, f in zip(grads, feats):
        torch.testing.assert_close(a, f.grad)
    for (k, a), b in zip(proj.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)  # running statistics updated in the same order
    for pa, pb in zip(proj.parameters(), ref.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)
    assert not torch.allclose(out[1], ref(torch.cat(feats))[10:])  # one BatchNorm over both would differ


def test_dropout_by_a_bool_mask_product_equals_masked_fill_and_saves_a_bool_mask():
    from asma.models.spatiotemporal import Dropout, keep_mask
    drop = Dropout(0.3).train()
    x = torch.randn(4, 8, 10, 25, requires_grad=True)
    torch.manual_seed(5)
    y = drop(x)
    torch.manual_seed(5)
    ref = x.detach().masked_fill(~keep_mask(x, 0.3), 0.0).mul_(1.0 / 0.7)  # the same draws
    assert torch.equal(y, ref)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        drop(x)
    assert saved == [torch.bool]
