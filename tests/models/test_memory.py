"""set_memory("low"): the cheap intermediate tensors of a training step are recomputed in backward
instead of stored, with the values, gradients and running statistics of the stored path."""
from __future__ import annotations

import pytest
import torch

from asma.models import create_backbone
from asma.models.memory import set_memory
from asma.models.spatiotemporal import TemporalConv


def _step(mode: str, hidden: int = 4, frames: int = 12, bf16: bool = False):
    torch.manual_seed(0)
    enc = set_memory(create_backbone("stgcn", "ntu25", 3, hidden_channels=hidden, out_channels=16, dropout=0.5), mode)
    x = torch.randn(3, 3, frames, 25, 2)
    torch.manual_seed(1)  # dropout masks
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pooled, tokens = enc(x)
    (pooled.float().square().sum() + tokens.float().sin().sum()).backward()
    return pooled.detach().float(), {k: p.grad for k, p in enc.named_parameters()}, enc.state_dict()


def test_low_memory_gives_the_values_gradients_and_running_statistics_of_the_fast_path():
    out_f, grads_f, state_f = _step("fast")
    out_l, grads_l, state_l = _step("low")
    torch.testing.assert_close(out_l, out_f, rtol=1e-6, atol=1e-7)
    assert set(grads_l) == set(grads_f)
    for k in grads_f:
        torch.testing.assert_close(grads_l[k], grads_f[k], rtol=1e-6, atol=1e-7, msg=k)
    for k in state_f:  # running statistics updated once per forward, as in the fast path
        torch.testing.assert_close(state_l[k], state_f[k], rtol=0, atol=0, msg=k)
    assert int(state_l["blocks.1.tcn.0.num_batches_tracked"]) == 1


def test_min_memory_gives_the_values_gradients_and_running_statistics_of_the_fast_path():
    """Every block recomputed in backward: the dropout masks are replayed and the running
    statistics are updated once (in forward), not again by the recomputation."""
    out_f, grads_f, state_f = _step("fast")
    out_m, grads_m, state_m = _step("min")
    torch.testing.assert_close(out_m, out_f, rtol=0, atol=0)
    assert set(grads_m) == set(grads_f)
    for k in grads_f:
        torch.testing.assert_close(grads_m[k], grads_f[k], rtol=1e-6, atol=1e-7, msg=k)
    for k in state_f:
        torch.testing.assert_close(state_m[k], state_f[k], rtol=0, atol=0, msg=k)
    assert int(state_m["blocks.1.tcn.0.num_batches_tracked"]) == 1


@pytest.mark.parametrize("mode", ["low", "min"])
def test_low_and_min_memory_under_bf16_autocast_match_the_fast_path(mode):
    out_f, grads_f, _ = _step("fast", bf16=True)
    out_l, grads_l, _ = _step(mode, bf16=True)
    torch.testing.assert_close(out_l, out_f, rtol=1e-3, atol=1e-3)
    for k in grads_f:
        torch.testing.assert_close(grads_l[k], grads_f[k], rtol=1e-2, atol=1e-3, msg=k)


def _saved_bytes(mode: str) -> int:
    torch.manual_seed(0)
    enc = set_memory(create_backbone("stgcn", "ntu25", 3, dropout=0.5), mode)  # the paper's widths
    params = {p.untyped_storage().data_ptr() for p in enc.parameters()}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        enc(torch.randn(2, 3, 20, 25, 2))
    return sum(storages.values())


def test_each_memory_mode_stores_fewer_activations(monkeypatch):
    fast, low = _saved_bytes("fast"), _saved_bytes("low")
    # the temporal unit's stored path (nn.Sequential: the ReLU output kept for the convolution)
    monkeypatch.setattr(TemporalConv, "forward", torch.nn.Sequential.forward)
    stored = _saved_bytes("fast")
    assert fast < 0.9 * stored, (fast, stored)  # 0.84 measured
    assert low < 0.45 * stored, (low, stored)  # 0.38 measured
    minimal = _saved_bytes("min")  # the checkpoints' inputs: each block's input (and the graph)
    assert minimal < 0.6 * low, (minimal, low)  # 0.28 measured


def test_eval_mode_and_no_grad_ignore_the_memory_mode():
    enc = set_memory(create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=16), "low").eval()
    ref = set_memory(create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=16), "fast").eval()
    ref.load_state_dict(enc.state_dict())
    x = torch.randn(2, 3, 12, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(enc(x)[0], ref(x)[0])


def test_frozen_batchnorm_statistics_keep_the_stored_path():
    """BatchNorms in eval inside a training encoder (fine-tuning with frozen statistics): no
    recomputation with batch statistics, the gradients of the fast path."""
    grads = {}
    for mode in ("fast", "low", "min"):
        torch.manual_seed(0)
        enc = set_memory(create_backbone("stgcn", "ntu25", 3, hidden_channels=4, out_channels=16, dropout=0.0), mode)
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.eval()
        enc(torch.randn(2, 3, 12, 25, 2))[0].square().sum().backward()
        grads[mode] = [p.grad for p in enc.parameters()]
    for mode in ("low", "min"):
        for a, b in zip(grads[mode], grads["fast"]):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_unknown_memory_mode_is_refused():
    with pytest.raises(ValueError, match="memory mode must be one of"):
        set_memory(torch.nn.Linear(2, 2), "tiny")
