"""DDP equivalence: W processes x batch B == 1 process x batch W*B for the Barlow Twins loss.

BatchNorm choice: PyTorch's ``SyncBatchNorm`` rejects CPU tensors, and per-rank BatchNorm in train
mode normalises over B instead of W*B clips (a real, documented difference, see
``asma/train/distributed.py``). The equivalence is therefore checked with the model in **eval
mode** (BatchNorm uses its fixed running statistics, identical on every rank; dropout is 0 anyway):
what is under test is the global-batch all-gather of the loss plus DDP's gradient averaging.
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from asma.losses import BarlowTwinsLoss
from asma.models.heads import Projector
from asma.models.registry import create_backbone
from asma.train.distributed import init_distributed, is_distributed, split_batch, world_size

WORLD, B, LAMBDA = 2, 4, 5e-3


class _EncProj(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=16, dropout=0.0)
        self.proj = Projector(16, [32, 32])

    def forward(self, x):
        return self.proj(self.enc(x)[0])


def _build() -> nn.Module:
    torch.manual_seed(123)
    model = _EncProj()
    # Make the running statistics non-trivial (one train-mode pass), then freeze them via eval().
    with torch.no_grad():
        model.train()
        model(torch.randn(8, 3, 8, 25, 1, generator=torch.Generator().manual_seed(7)))
    return model.eval()


def _views():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(WORLD * B, 3, 8, 25, 1, generator=g)
    return x, x + 0.3 * torch.randn(x.shape, generator=g)


def _loss(model, x1, x2):
    z = model(torch.cat([x1, x2]))  # one forward (DDP: one forward per backward)
    z1, z2 = z.chunk(2)
    return BarlowTwinsLoss(LAMBDA)(z1, z2)


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    from asma.train.distributed import cleanup, wrap_ddp
    info = init_distributed("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        assert info.distributed and info.rank == rank and info.world_size == world and info.backend == "gloo"
        model = _build()
        ddp = wrap_ddp(model)
        x1, x2 = _views()
        order = torch.arange(world * B)  # the global batch, identical on every rank
        idx = order[split_batch(order.shape[0], world)[rank]]
        loss = _loss(ddp, x1[idx], x2[idx])
        loss.backward()
        grads = {f"grad.{n}": p.grad.detach().clone() for n, p in ddp.module.named_parameters()
                 if p.grad is not None}
        save_file({"loss": loss.detach().reshape(1), **grads}, os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        cleanup()


def _spawn(worker, tmp_path, *args):
    """Run ``worker(rank, WORLD, init_file, out_dir, *args)`` in WORLD processes; return what each
    rank saved to ``out_dir/rank<r>.safetensors``."""
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(worker, args=(WORLD, str(tmp_path / "init"), str(out), *args), nprocs=WORLD, join=True)
    return [load_file(str(out / f"rank{r}.safetensors")) for r in range(WORLD)]


def test_two_processes_match_one_process_with_double_batch(tmp_path):
    results = _spawn(_worker, tmp_path)

    model = _build()
    x1, x2 = _views()
    ref_loss = _loss(model, x1, x2)
    ref_loss.backward()
    ref = {f"grad.{n}": p.grad for n, p in model.named_parameters() if p.grad is not None}

    for res in results:
        # every rank computes the loss of the global batch ...
        assert res["loss"].item() == pytest.approx(ref_loss.item(), rel=1e-5)
        # ... and, after DDP's averaging, the single-process gradients of every parameter
        assert set(res) - {"loss"} == set(ref)
        for k, g in ref.items():
            # float32 reductions in a different order: errors ~1e-5 of the gradient scale
            torch.testing.assert_close(res[k], g, rtol=1e-3, atol=1e-4 * max(1.0, g.abs().max().item()),
                                       msg=k)
    # per-rank loss on its own half would differ: the gather is what makes them equal
    half = _loss(_build(), x1[:B], x2[:B]).item()
    assert abs(half - ref_loss.item()) > 1e-3


def test_split_batch_parts_are_contiguous_and_cover_the_batch():
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    parts = split_batch(12, 3)
    assert [p.stop - p.start for p in parts] == [4, 4, 4]
    assert torch.equal(torch.cat([order[p] for p in parts]), order)  # rank order restores the global batch
    assert [p.stop - p.start for p in split_batch(11, 3)] == [4, 4, 3]  # uneven: the first ranks get one more
    with pytest.raises(ValueError, match="invalid world size"):
        split_batch(12, 0)


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    info = init_distributed()
    assert not info.distributed and info.rank == 0 and info.world_size == 1 and info.is_main
    assert not is_distributed() and world_size() == 1
    from asma.train.distributed import wrap_ddp
    m = nn.Linear(2, 2)
    assert wrap_ddp(m) is m


# ----------------------------------------------------------------------------- fine-tuning / distillation
#
# fit keeps the last partial batch: each global batch is split with torch.tensor_split
# (uneven parts) and each rank's loss scaled by b_rank * W / b_global. Exact equivalence is checked
# on models without train-mode BatchNorm (the alignment module on frozen encoders, a linear model);
# models with BatchNorm are checked for identical weights on every rank and rank-0-only writing.

FT_BATCHES = (11, 16)  # 64 clips: 11 -> parts 6/5 and a last batch of 9 (5/4); 16 -> even parts


def _ft_data():
    from asma.data.synthetic import SyntheticConfig, make_synthetic
    return make_synthetic(SyntheticConfig(num_classes=4, clips_per_class=16, num_frames=16, num_persons=1))


def _ft_enc(seed, dropout=0.0):
    torch.manual_seed(seed)
    return create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=16, dropout=dropout)


def _aligned_run(data, batch_size):
    from asma.train.config import FinetuneConfig
    from asma.train.finetune import finetune_aligned
    cfg = FinetuneConfig(batch_size=batch_size, align_epochs=3, align_lr=1e-2, heads=2)
    model, res = finetune_aligned(_ft_enc(0), _ft_enc(1), data, data, cfg, seed=3)
    return {**{f"align.{k}": v.detach().clone() for k, v in model.align.state_dict().items()},
            "loss": torch.tensor([h["loss"] for h in model.history], dtype=torch.float64),
            "train_acc": torch.tensor([h["train_acc"] for h in model.history], dtype=torch.float64),
            "test_logits": res.logits}


def _augmented_linear_run(data, batch_size):
    """The engine (fit) on a linear model of augmented clips: the augmentations are drawn for the global
    batch and cut per rank (batch_clips), so W processes must reproduce one exactly."""
    from asma.data.transforms import Augment, AugmentConfig
    from asma.train.finetune import stream_tensor
    from asma.train.loop import batch_clips, fit
    clips = stream_tensor(data, "joint")
    labels = torch.as_tensor(data.labels, dtype=torch.long)
    augment = Augment(AugmentConfig(), data.skeleton.flip_perm, data.num_coords)
    torch.manual_seed(5)
    lin = nn.Linear(clips[0].numel(), data.num_classes)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-3)

    def batch_loss(net, batch, g):
        logits = net(batch_clips(clips, batch, augment, g, torch.device("cpu")).flatten(1))
        return nn.functional.cross_entropy(logits, labels[batch.idx]), {}

    hist = fit(lin, opt, batch_loss, len(clips), batch_size, 2, seed=1, rng_stream=3)
    return {**{f"lin.{k}": v.detach().clone() for k, v in lin.state_dict().items()},
            "loss": torch.tensor([h["loss"] for h in hist], dtype=torch.float64)}


def _exact_runs():
    data = _ft_data()
    out = {}
    for bs in FT_BATCHES:
        out.update({f"bs{bs}.{k}": v for k, v in _aligned_run(data, bs).items()})
    out.update({f"aug.{k}": v for k, v in _augmented_linear_run(data, 11).items()})
    return out


def _exact_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    from asma.train.distributed import cleanup
    init_distributed("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        save_file(_exact_runs(), os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        cleanup()


def test_finetune_aligned_two_processes_equal_one_process(tmp_path):
    results = _spawn(_exact_worker, tmp_path)
    ref = _exact_runs()  # one process, the same global batches
    for res in results:
        assert set(res) == set(ref)
        for k, v in ref.items():
            a, v = res[k].double(), v.double()
            if k.endswith("in_proj_bias"):
                # the attention's key bias has an exactly-zero gradient (softmax is shift invariant):
                # Adam turns its float32 round-off into full steps, so it is noise in any run; compare
                # the query and value biases only
                d = v.shape[0] // 3
                a, v = torch.cat([a[:d], a[2 * d:]]), torch.cat([v[:d], v[2 * d:]])
            # float32 sums in another order (split batch + DDP average): measured drift <= 8e-7
            torch.testing.assert_close(a, v, rtol=1e-5, atol=5e-6, msg=k)
    # the comparison is not vacuous: a different batch gives different weights
    assert not torch.allclose(ref["bs11.align.head.fc.weight"], ref["bs16.align.head.fc.weight"], atol=1e-3)


def _writes_worker(rank: int, world: int, init_file: str, out_dir: str, run_dir: str) -> None:
    torch.set_num_threads(1)
    from asma.train.config import DistillConfig, FinetuneConfig
    from asma.train.distill import distill
    from asma.train.distributed import cleanup
    from asma.train.finetune import finetune
    init_distributed("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        data = _ft_data()
        # batch 9 on 64 clips: a last batch of 1 clip cannot be split over 2 ranks and is dropped;
        # dropout and augmentation on (per-rank dropout masks, global-batch augmentations)
        cfg = FinetuneConfig(epochs=2, batch_size=9, lr=1e-2, augment=True)
        model, res = finetune(_ft_enc(0, dropout=0.3), data, data, cfg, run_dir=run_dir)
        # interrupted after one epoch, then resumed by both ranks from rank 0's checkpoint
        finetune(_ft_enc(0, dropout=0.3), data, data, cfg, run_dir=run_dir + "-b", max_epochs=1)
        resumed, _ = finetune(_ft_enc(0, dropout=0.3), data, data, cfg, run_dir=run_dir + "-b", resume=True)
        dc = DistillConfig(tau=2.0, lr=3e-3, epochs=2, batch_size=10, mode="features",
                           student_cfg={"width": 8, "dropout": 0.0})
        student, s_res = distill(model, data, data, dc, run_dir=run_dir)
        save_file({**{f"ft.{k}": v for k, v in model.state_dict().items()},
                   **{f"st.{k}": v for k, v in student.state_dict().items()},
                   **{f"resumed.{k}": v for k, v in resumed.state_dict().items()},
                   "resumed_loss": torch.tensor([h["loss"] for h in resumed.history], dtype=torch.float64),
                   "ft_loss": torch.tensor([h["loss"] for h in model.history], dtype=torch.float64),
                   "ft_logits": res.logits, "st_logits": s_res.logits,
                   "ft_dropped": torch.tensor([h.get("dropped", 0) for h in model.history])},
                  os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        cleanup()


def test_finetune_and_distill_under_two_processes_write_once(tmp_path):
    import json

    from asma.io import latest_checkpoint, load_tensors
    run = tmp_path / "run"
    r0, r1 = _spawn(_writes_worker, tmp_path, str(run))
    # DDP keeps the weights of both ranks identical (also the projection of feature distillation,
    # which is used outside the wrapped forward), and the final buffer broadcast the BN statistics
    assert set(r0) == set(r1)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert r0["ft_dropped"].tolist() == [1, 1]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # rank 0 alone writes: one record per epoch and stage, not one per process
    assert [(r["stage"], r["epoch"]) for r in records] == [("finetune", 0), ("finetune", 1),
                                                          ("distill", 0), ("distill", 1)]
    assert all(r["dropped"] == 1 for r in records[:2]) and "dropped" not in records[2]
    assert all(0 <= r["train_acc"] <= 100 for r in records[:2])
    assert sorted(p.name for p in (run / "finetune").iterdir() if p.is_dir()) == ["epoch-0000", "epoch-0001"]
    saved = load_tensors(latest_checkpoint(run / "finetune") / "model.safetensors")
    for k, v in saved.items():
        assert torch.equal(v, r0[f"ft.{k}"]), k
    assert latest_checkpoint(run / "distill") is not None
    # resumption under DDP continues the uninterrupted run
    assert _records(tmp_path / "run-b" / "metrics.jsonl") == [("finetune", 0), ("finetune", 1)]
    assert r0["resumed_loss"].tolist() == pytest.approx(r0["ft_loss"][1:].tolist(), rel=1e-5)
    for k in saved:
        torch.testing.assert_close(r0[f"resumed.{k}"].float(), r0[f"ft.{k}"].float(), rtol=0, atol=1e-5, msg=k)


def _records(path):
    import json
    return [(r["stage"], r["epoch"]) for r in map(json.loads, path.read_text().splitlines())]
