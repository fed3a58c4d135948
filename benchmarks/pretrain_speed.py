"""The ASMa pretraining step in the paper configuration (two ST-GCN-16 encoders, three views,
6144-wide projectors, Adam) on (3, T, 25, 2) clips: counted GFLOP/s against this machine's
measured oneDNN convolution peak, the step breakdown, peak RSS, and the scaling with batch and
frames.

Every measurement runs in a fresh process (peak RSS is a per-process figure and the allocator
setting is per process). ``--variants`` compares the library's step (``tuned``: Gram-form Barlow
Twins, fused Adam, glibc allocator tuning) with the previous one (``untuned``: D x D
cross-correlation, unfused Adam, glibc defaults).

    python benchmarks/pretrain_speed.py [--batch 32 64] [--frames 50] [--steps 3]
        [--variants tuned untuned] [--bf16] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

VARIANTS = ("tuned", "untuned")


def conv_peak(threads: int) -> Dict[str, float]:
    """GFLOP/s of oneDNN convolutions: a 2048^3 GEMM as a 1x1 convolution and a 9x1 temporal
    convolution of ST-GCN's widest shape; the peak the step is compared with."""
    torch.set_num_threads(threads)
    cases = {"1x1 conv (2048^3 GEMM)": (torch.randn(1, 2048, 2048, 1), torch.randn(2048, 2048, 1, 1), (0, 0)),
             "9x1 conv (16x256x50x25)": (torch.randn(16, 256, 50, 25), torch.randn(256, 256, 9, 1), (4, 0))}
    out = {}
    with torch.no_grad():
        for name, (x, w, pad) in cases.items():
            flops = 2 * w.numel() * x.shape[0] * x.shape[2] * x.shape[3]
            for _ in range(2):
                F.conv2d(x, w, padding=pad)
            reps, t = 5, time.perf_counter()
            for _ in range(reps):
                F.conv2d(x, w, padding=pad)
            out[name] = flops * reps / (time.perf_counter() - t) / 1e9
    return out


def worker(batch: int, frames: int, steps: int, variant: str, bf16: bool, threads: int) -> Dict[str, float]:
    """One configuration in this process: seconds per step and its parts, counted GFLOP/clip,
    peak RSS."""
    from asma.data.transforms import Augment, AugmentConfig
    from asma.graph import get_layout
    from asma.models import count_flops
    from asma.models.asma import ASMa
    from asma.train.allocator import tune_allocator
    from asma.train.optim import adam

    tuned = variant == "tuned"
    if tuned:
        tune_allocator()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    skel = get_layout("ntu25")
    x = torch.randn(batch, 3, frames, 25, 2)
    model = ASMa(skel, 3, projector=(6144,) * 3, backbone_cfg={"dropout": 0.5})
    model.loss_fn.form = "auto" if tuned else "cross"
    opt = adam(model.parameters(), lr=1e-4) if tuned else torch.optim.Adam(model.parameters(), lr=1e-4)
    aug = Augment(AugmentConfig(), skel.flip_perm, 3)
    g = torch.Generator().manual_seed(0)
    parts = {"augment+mask": 0.0, "encoders fwd": 0.0, "projector+loss fwd": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step(record: bool) -> None:
        clock = [time.perf_counter()]

        def lap(key: str) -> None:
            now = time.perf_counter()
            if record:
                parts[key] += now - clock[0]
            clock[0] = now
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            views = [aug(x, g) for _ in range(3)]
            masked = {k: (m.joint_view(views[1], g)[0], m.frame_view(views[2], g)[0]) for k, m in model.maskers.items()}
            lap("augment+mask")
            total = 0.0
            feats = {}
            for k, (xj, xm) in masked.items():  # as ASMa._encode: anchor and joint view share one pass
                enc = model.encoders[k]
                f = enc(torch.cat([views[0], xj]))[0]
                feats[k] = (f, enc(xm)[0])
            lap("encoders fwd")
            for k, (f, fm) in feats.items():
                proj = model.projectors[k]
                z = proj(f)
                z0, zj = z[:batch], z[batch:]
                zm = proj(fm)
                total = total + model.loss_fn(z0, zj) + model.loss_fn(z0, zm)
            lap("projector+loss fwd")
        opt.zero_grad(set_to_none=True)
        total.backward()
        lap("backward")
        opt.step()
        lap("optimizer")

    step(False)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step(True)
    step_s = (time.perf_counter() - t0) / steps
    enc = model.encoders["theta"]
    frame_view = model.maskers["theta"].frame_view(x[:1], g)[0]
    f_full, f_drop = count_flops(enc, x[:1]), count_flops(enc, frame_view)
    proj = sum(2 * m.in_features * m.out_features for m in model.projectors["theta"].modules()
               if isinstance(m, torch.nn.Linear))
    counted = 3 * 2 * (2 * f_full + f_drop + 3 * proj)  # x3: forward + backward (2 per MAC, from count_flops)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"step_s": step_s, "gflop_per_clip": counted / 1e9, "peak_rss_gib": peak_kib / 1024 ** 2,
            **{k: v / steps for k, v in parts.items()}}


def run_case(batch: int, frames: int, steps: int, variant: str, bf16: bool, threads: int) -> Dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", "--batch", str(batch), "--frames", str(frames), "--steps", str(steps),
           "--variants", variant, "--threads", str(threads)] + (["--bf16"] if bf16 else [])
    env = {**os.environ, "ASMA_MALLOC_TUNING": "1" if variant == "tuned" else "0"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    p.add_argument("--frames", type=int, nargs="+", default=[50])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast instead of fp32")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.batch[0], args.frames[0], args.steps, args.variants[0], args.bf16, args.threads)))
        return
    console = Console()
    peaks = conv_peak(args.threads)
    peak = max(peaks.values())
    rows: List[tuple] = []
    for frames in args.frames:
        for batch in args.batch:
            for variant in args.variants:
                rows.append((variant, batch, frames, run_case(batch, frames, args.steps, variant, args.bf16,
                                                              args.threads)))
    prec = "bf16 autocast" if args.bf16 else "fp32"
    table = Table(title=f"ASMa pretraining step (paper configuration), {prec}, {args.threads} threads, "
                        f"mean of {args.steps} steps")
    for col in ("variant", "batch", "T", "s/step", "clips/s", "GFLOP/s", "÷ conv peak", "peak RSS GiB"):
        table.add_column(col, justify="right")
    for variant, batch, frames, r in rows:
        gflops = r["gflop_per_clip"] * batch / r["step_s"]
        table.add_row(variant, str(batch), str(frames), f"{r['step_s']:.2f}", f"{batch / r['step_s']:.1f}",
                      f"{gflops:.0f}", f"{gflops / peak:.2f}", f"{r['peak_rss_gib']:.2f}")
    console.print(table)
    parts = [k for k in rows[0][3] if k not in ("step_s", "gflop_per_clip", "peak_rss_gib")]
    breakdown = Table(title="step breakdown (share of the step)")
    for col in ("variant", "batch", "T", *parts):
        breakdown.add_column(col, justify="right")
    for variant, batch, frames, r in rows:
        breakdown.add_row(variant, str(batch), str(frames), *(f"{100 * r[k] / r['step_s']:.1f}%" for k in parts))
    console.print(breakdown)
    console.print("oneDNN convolution rates: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    for variant in args.variants:
        base = next(r for v, b, t, r in rows if v == variant)
        b0, t0 = next((b, t) for v, b, t, r in rows if v == variant)
        scal = [f"b{b} T{t}: {r['step_s'] / base['step_s'] / (b * t / (b0 * t0)):.2f}"
                for v, b, t, r in rows if v == variant]
        console.print(f"{variant}: step time / (batch x frames), relative to b{b0} T{t0} (1.00 = linear): "
                      + ", ".join(scal))
    console.print(f"counted work per clip at T={args.frames[0]}: {rows[0][3]['gflop_per_clip']:.2f} GFLOP (2 encoders x "
                  "(anchor + joint view + frame view) + 2 x 3 projections, x3 for forward + backward)")


if __name__ == "__main__":
    main()
