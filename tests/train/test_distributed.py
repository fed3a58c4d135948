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
from asma.train.distributed import (init_distributed, is_distributed, per_rank_batch_size, shard_indices,
                                    unwrap, world_size)

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
        idx = shard_indices(order, rank, world)
        loss = _loss(ddp, x1[idx], x2[idx])
        loss.backward()
        grads = {f"grad.{n}": p.grad.detach().clone() for n, p in unwrap(ddp).named_parameters()
                 if p.grad is not None}
        save_file({"loss": loss.detach().reshape(1), **grads}, os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        cleanup()


def test_two_processes_match_one_process_with_double_batch(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(WORLD, str(tmp_path / "init"), str(out)), nprocs=WORLD, join=True)

    model = _build()
    x1, x2 = _views()
    ref_loss = _loss(model, x1, x2)
    ref_loss.backward()
    ref = {f"grad.{n}": p.grad for n, p in model.named_parameters() if p.grad is not None}

    results = [load_file(str(out / f"rank{r}.safetensors")) for r in range(WORLD)]
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


def test_shard_indices_are_contiguous_and_cover_the_batch():
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shards = [shard_indices(order, r, 3) for r in range(3)]
    assert all(s.shape == (4,) for s in shards)
    assert torch.equal(torch.cat(shards), order)  # rank order restores the global batch
    with pytest.raises(ValueError, match="cannot be split evenly"):
        shard_indices(order, 0, 5)
    with pytest.raises(ValueError, match="invalid shard"):
        shard_indices(order, 3, 3)
    assert per_rank_batch_size(128, 4) == 32
    with pytest.raises(ValueError, match="not a multiple"):
        per_rank_batch_size(10, 4)


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    info = init_distributed()
    assert not info.distributed and info.rank == 0 and info.world_size == 1 and info.is_main
    assert not is_distributed() and world_size() == 1
    from asma.train.distributed import wrap_ddp
    m = nn.Linear(2, 2)
    assert wrap_ddp(m) is m and unwrap(m) is m
