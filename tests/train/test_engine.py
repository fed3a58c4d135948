"""The training engine's own rules: a non-finite loss stops with the epoch and step, drop_last,
and the lr recorded per epoch."""
import math

import pytest
import torch
from torch import nn

from asma.train.loop import fit
from asma.train.optim import adam


def _run(n=23, bs=5, epochs=3, blow_up_at=None, **kw):
    torch.manual_seed(0)
    x, y = torch.randn(n, 4), torch.randint(0, 2, (n,))
    lin = nn.Linear(4, 2)
    calls = []

    def batch_loss(net, batch, g):
        calls.append(batch.idx.tolist())
        loss = nn.functional.cross_entropy(net(x[batch.idx]), y[batch.idx])
        if blow_up_at is not None and len(calls) == blow_up_at:
            loss = loss * float("nan")
        return loss, {}
    return fit(lin, adam(lin.parameters(), lr=0.1), batch_loss, n, bs, epochs, stage="toy", **kw), calls


def test_a_non_finite_loss_names_the_stage_epoch_and_step():
    with pytest.raises(FloatingPointError, match=r"^toy loss became nan at epoch 1, step 2; lower the learning rate$"):
        _run(blow_up_at=5 + 3)  # 5 steps per epoch: the third step of the second epoch


def test_drop_last_keeps_full_batches_only_and_records_the_dropped_clips():
    hist, calls = _run(drop_last=True)
    assert len(calls) == 3 * 4 and all(len(c) == 5 for c in calls)  # 23 // 5 steps per epoch
    assert [h["dropped"] for h in hist] == [3, 3, 3]
    hist, calls = _run()
    assert len(calls) == 3 * 5 and len(calls[4]) == 3 and "dropped" not in hist[0]  # the partial batch is kept
    assert sorted(i for c in calls[:5] for i in c) == list(range(23))  # every clip once per epoch


def test_records_carry_the_lr_of_each_epochs_last_step():
    hist, _ = _run(n=20, bs=5, epochs=4, warmup_epochs=1)  # 4 steps per epoch, 16 in all, 4 of warm-up
    expected = [0.1 * 4 / 4] + [0.05 * (1 + math.cos(math.pi * (4 * e + 3 - 4) / 12)) for e in (1, 2, 3)]
    assert [h["lr"] for h in hist] == pytest.approx(expected, rel=1e-12)
