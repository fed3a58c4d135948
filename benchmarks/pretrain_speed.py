"""Pretraining throughput on (3, 50, 25, 2) clips and the share of step time spent in
augmentation + masking.

Prints ratios that survive noisy machines: counted GFLOP/s as a fraction of this machine's fp32
GEMM rate measured in the same run, bf16 vs fp32, and augmentation/masking share of a step.

    python benchmarks/pretrain_speed.py [--batch 64] [--steps 4] [--projector 6144]
"""
from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from asma.data.transforms import Augment, AugmentConfig
from asma.graph import get_layout
from asma.models import count_flops
from asma.models.asma import ASMa


def gemm_rate(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def measure(model: ASMa, aug: Augment, x: torch.Tensor, steps: int, bf16: bool):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    aug_time = mask_time = 0.0

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = model(aug(x, g), aug(x, g), aug(x, g), generator=g)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    step_s = (time.perf_counter() - t0) / steps
    # augmentation and masking measured separately on the same batch (same work as in a step)
    t0 = time.perf_counter()
    for _ in range(steps):
        for _ in range(3):
            aug(x, g)
    aug_time = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    for _ in range(steps):
        for m in model.maskers.values():
            m.joint_view(x, g)
            m.frame_view(x, g)
    mask_time = (time.perf_counter() - t0) / steps
    return step_s, aug_time, mask_time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--projector", type=int, default=6144)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="also time bfloat16 autocast (slow on CPUs without fast bf16 conv)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    skel = get_layout("ntu25")
    x = torch.randn(args.batch, 3, 50, 25, 2)
    model = ASMa(skel, 3, projector=(args.projector,) * 3, backbone_cfg={"dropout": 0.5})
    aug = Augment(AugmentConfig(), skel.flip_perm, 3)
    enc = model.encoders["theta"]
    f_full = count_flops(enc, x[:1])
    f_drop = count_flops(enc, x[:1, :, :40])
    # forward FLOPs of one clip through both encoders' three views; training ~ 3x forward
    counted = 2 * (2 * f_full + f_drop) * 3
    peak = gemm_rate()
    console = Console()
    table = Table(title=f"ASMa pretraining step, batch {args.batch} of (3, 50, 25, 2), projector {args.projector}, "
                        f"{args.threads} threads")
    for col in ("precision", "samples/s", "counted GFLOP/s", "÷ fp32 GEMM rate", "augment share", "masking share"):
        table.add_column(col, justify="right")
    rates = {}
    for bf16 in ((False, True) if args.bf16 else (False,)):
        step_s, aug_s, mask_s = measure(model, aug, x, args.steps, bf16)
        rate = args.batch / step_s
        rates[bf16] = rate
        gflops = counted * args.batch / step_s / 1e9
        table.add_row("bf16 autocast" if bf16 else "fp32", f"{rate:.1f}", f"{gflops:.0f}", f"{gflops / peak:.2f}",
                      f"{100 * aug_s / step_s:.2f}%", f"{100 * mask_s / step_s:.2f}%")
    console.print(table)
    console.print(f"fp32 GEMM rate on this machine: {peak:.0f} GFLOP/s")
    if args.bf16:
        console.print(f"bf16/fp32 step speed ratio: {rates[True] / rates[False]:.2f}")
    console.print(f"counted work per clip: {counted / 1e9:.2f} GFLOP (2 encoders x (anchor + joint view at T=50 "
                  f"+ frame view at T=40), x3 for forward+backward; projector excluded)")


if __name__ == "__main__":
    main()
