import math
import os
import platform
import subprocess
import sys

import pytest
import torch

from asma.train.optim import adam, warmup_cosine


def closed_form(step, total, warmup, base_lr):
    """The hand-written schedule the library used before torch's schedulers (kept as reference)."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * t))


@pytest.mark.parametrize("total,warmup", [(1, 0), (10, 0), (2, 1), (10, 1), (7, 2), (5, 5), (120, 12)])
def test_warmup_cosine_gives_the_closed_form_lr_at_every_step(total, warmup):
    opt = adam([torch.nn.Parameter(torch.zeros(3))], lr=0.05)
    sched = warmup_cosine(opt, total, warmup)
    for step in range(total):
        assert opt.param_groups[0]["lr"] == pytest.approx(closed_form(step, total, warmup, 0.05), rel=1e-12, abs=1e-15)
        opt.step()
        sched.step()


def test_warmup_cosine_replayed_after_a_resume_gives_identical_lrs():
    def lrs(start, total=30, warm=4):
        opt = adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = warmup_cosine(opt, total, warm)
        out = []
        for s in range(total):
            if s >= start:
                out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out
    assert lrs(0)[11:] == lrs(11)  # fast-forwarding the scheduler is bit-exact


def test_fused_adam_is_used_on_cpu_and_matches_the_loop_implementation():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    b = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    b.load_state_dict(a.state_dict())
    fused = adam(a.parameters(), lr=1e-2, weight_decay=1e-3)
    plain = torch.optim.Adam(b.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    assert fused.defaults["fused"] is True
    x = torch.randn(32, 6)
    for _ in range(5):
        for m, o in ((a, fused), (b, plain)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-7)
    assert not torch.equal(a[0].weight, torch.nn.Linear(6, 5).weight)


def test_adam_falls_back_when_fused_is_unsupported():
    opt = adam([torch.nn.Parameter(torch.zeros(2, dtype=torch.complex64))], lr=1e-3)
    assert not opt.defaults["fused"]


_FAULTS = """
import resource, sys, torch
from asma.allocator import tune_allocator
tuned = tune_allocator()
# 64 MiB, over glibc's mmap threshold. Tuned, the first few buffers can land beyond a slightly too
# small hole (posix_memalign asks for a little more than the freed chunk) until the holes merge.
for _ in range(16):
    x = torch.ones(64 * 2 ** 18); del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    x = torch.ones(64 * 2 ** 18); del x
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(env_value):
    env = {**os.environ, "ASMA_MALLOC_TUNING": env_value}
    for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(k, None)
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator tuning applies to glibc only")
def test_allocator_tuning_keeps_large_buffers_mapped_and_can_be_turned_off():
    tuned, faults = _faults("1")
    off, faults_off = _faults("0")
    assert tuned and not off
    # glibc's default re-maps (and the kernel re-zeroes) 5 x 16384 pages; tuned, the heap is reused
    assert faults_off > 5 * 16384 * 0.9
    assert faults < 5 * 16384 * 0.3
