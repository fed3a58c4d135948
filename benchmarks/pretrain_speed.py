"""The ASMa pretraining step in the paper configuration (two ST-GCN-16 encoders, three views,
6144-wide projectors, Adam) on (3, T, 25, 2) clips against the reference PSTL step measured in the
same run: counted GFLOP/s, also against this machine's measured oneDNN convolution peak, the step
breakdown, peak RSS, and the scaling with batch and frames.

Every measurement runs in a fresh process (peak RSS is a per-process figure and the allocator
setting is per process). ``--variants``:

- ``tuned``: the library's step (:func:`asma.train.pretrain.asma_step`): one encoder's forward +
  backward at a time, its parameters stepped right after its backward (so the two encoders'
  gradients are never alive together), Gram-form Barlow Twins, fused Adam, glibc allocator tuning, aggregate-first
  graph convolution, cheap dropout masks (:func:`asma.models.spatiotemporal.keep_mask`), the
  temporal unit's BatchNorm + ReLU recomputed in backward (not stored);
- ``tuned-low``: ``tuned`` with ``pretrain.memory = "low"`` (:func:`asma.models.memory.set_memory`:
  each block's graph convolution output recomputed in backward too, only block inputs and
  temporal-convolution outputs stored);
- ``tuned-min``: ``tuned`` with ``pretrain.memory = "min"``: every block recomputed in backward
  (activation checkpointing), only block inputs stored;
- ``untuned``: the same model with one joint backward, D x D cross-correlation, unfused Adam and
  glibc defaults;
- ``pstl``: the reference PSTL step: ONE ST-GCN-16 encoder, the lineage's ``st_gcn.Model``
  (``LineageSTGCN`` of ``benchmarks/graph_conv.py``: convolution-first graph convolution,
  ``nn.Dropout``), the three views (anchor, joint-masked, frame-masked)
  encoded one by one, one 256-6144-6144-6144 projector, D x D cross-correlation Barlow Twins,
  ``torch.optim.Adam`` defaults, glibc defaults. Its FLOPs are counted the same way.

``--ops`` also times one more step operator by operator (a ``TorchDispatchMode`` around every
aten call, forward and backward; FLOPs by ``torch.utils.flop_counter``'s formulas) and prints
where its time goes: convolutions (with ASMa's graph products, which run as convolutions in
training), matrix products, BatchNorm, element-wise work, ..., each group's GFLOP/s against the
convolution peak. (``torch.profiler`` is not used: in one comparison its self times for the large
BatchNorm calls were 2-6x these.)

    python benchmarks/pretrain_speed.py [--batch 32 64] [--frames 50] [--steps 3]
        [--variants tuned tuned-low tuned-min untuned pstl] [--bf16] [--threads 2] [--ops]
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
from torch import nn
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from asma.losses import BarlowTwinsLoss
from asma.train.loop import Backward

VARIANTS = ("tuned", "tuned-low", "tuned-min", "untuned", "pstl")


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


#: operator groups of ``--ops`` (an aten op name -> its group; unlisted ops are "element-wise & other")
OP_GROUPS = {"convolution": "convolution forward", "convolution_backward": "convolution backward",
             "mm": "mm (projectors, loss)", "addmm": "mm (projectors, loss)",
             "bmm": "bmm (einsums)", "baddbmm": "bmm (einsums)",
             "native_batch_norm": "BatchNorm (forward, backward)",
             "native_batch_norm_backward": "BatchNorm (forward, backward)",
             "random_": "random draws (dropout masks)", "uniform_": "random draws (dropout masks)",
             "bernoulli_": "random draws (dropout masks)", "_fused_adam_": "optimizer",
             "copy_": "copies", "clone": "copies", "cat": "copies", "_to_copy": "copies"}


class OpTimes(TorchDispatchMode):
    """Calls, seconds and FLOPs per :data:`OP_GROUPS` group of every aten operator dispatched while
    active (forward and backward: the autograd engine runs CPU backward on the calling thread).
    FLOPs come from ``torch.utils.flop_counter``'s per-operator formulas."""

    def __init__(self):
        super().__init__()
        self.groups: Dict[str, List[float]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t = time.perf_counter()
        out = func(*args, **kwargs)
        dt = time.perf_counter() - t
        name = func.overloadpacket.__name__
        flops = flop_registry[func.overloadpacket](*args, **kwargs, out_val=out) if func.overloadpacket in flop_registry else 0
        g = self.groups.setdefault(OP_GROUPS.get(name, "element-wise & other"), [0, 0.0, 0])
        g[0], g[1], g[2] = g[0] + 1, g[1] + dt, g[2] + flops
        return out


class PSTLStep(nn.Module):
    """The reference PSTL model (one encoder, three views, one projector, cross-form Barlow Twins)
    with ASMa's ``forward(anchor, view_j, view_m, generator, names)`` interface, so that the same
    step function (:func:`~asma.train.pretrain.asma_step`) and timers drive it."""

    def __init__(self, skel):
        super().__init__()
        from graph_conv import LineageSTGCN  # benchmarks/graph_conv.py: the lineage's st_gcn.Model
        from asma.masking import Masker, MaskSpec
        from asma.models import create_backbone
        from asma.models.heads import Projector
        enc = LineageSTGCN(create_backbone("stgcn", skel, 3, dropout=0.5))
        enc.out_dim = 256
        self.encoders = nn.ModuleDict({"pstl": enc})
        self.projectors = nn.ModuleDict({"pstl": Projector(enc.out_dim, (6144,) * 3)})
        self.maskers = {"pstl": Masker(MaskSpec("high", "high", 9, 10, "drop"), skel.degree())}
        self.loss_fn = BarlowTwinsLoss(2e-4, form="cross")

    def forward(self, anchor, view_j, view_m, generator=None, names=None):
        with torch.no_grad():
            xj = self.maskers["pstl"].joint_view(view_j, generator)[0]
            xm = self.maskers["pstl"].frame_view(view_m, generator)[0]
        enc, proj = self.encoders["pstl"], self.projectors["pstl"]
        z, zj, zm = (proj(enc(v)) for v in (anchor, xj, xm))
        l1, l2 = self.loss_fn(z, zj), self.loss_fn(z, zm)
        return l1 + l2, {"pstl/joint": l1.detach(), "pstl/frame": l2.detach()}


class Timers:
    """Seconds spent in the parts of a step, summed over the recorded steps (while ``record``)."""

    def __init__(self):
        self.s: Dict[str, float] = {}
        self.record = False

    def wrap(self, fn, key: str):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.record:
                    self.s[key] = self.s.get(key, 0.0) + time.perf_counter() - t
        return timed

    def backward(self, net: nn.Module, optimizer=None) -> Backward:
        """The engine's :class:`~asma.train.loop.Backward` (stepping ``optimizer`` after each part
        when given) with its calls timed as ``backward``."""
        timers = self

        class TimedBackward(Backward):
            def __call__(self, loss: torch.Tensor) -> None:
                timers.wrap(super().__call__, "backward")(loss)
        return TimedBackward(net, optimizer=optimizer)


def build(variant: str, skel, timers: Timers):
    """The model, optimizer and encoder groups of ``variant``, with timers on its parts."""
    from asma.models.asma import ASMa
    from asma.models.memory import set_memory
    from asma.train.optim import adam
    if variant == "pstl":
        model = PSTLStep(skel)
    else:
        model = ASMa(skel, 3, projector=(6144,) * 3, backbone_cfg={"dropout": 0.5})
        model.loss_fn.form = "cross" if variant == "untuned" else "auto"
        set_memory(model, variant[len("tuned-"):] if variant in ("tuned-low", "tuned-min") else "fast")
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-4) if variant in ("untuned", "pstl") else adam(params, lr=1e-4)
    for enc in model.encoders.values():
        enc.forward = timers.wrap(enc.forward, "encoders fwd")
    for m in model.maskers.values():
        m.joint_view, m.frame_view = timers.wrap(m.joint_view, "mask"), timers.wrap(m.frame_view, "mask")
    model.forward = timers.wrap(model.forward, "model fwd")
    groups = [tuple(model.encoders)] if variant in ("untuned", "pstl") else [(k,) for k in model.encoders]
    return model, opt, groups


def counted_gflop_per_clip(model: nn.Module, x: torch.Tensor, g: torch.Generator) -> float:
    """Forward + backward FLOPs per clip (3x the forward's, 2 per multiply-accumulate): every encoder
    on the anchor, the joint view and the frame view, and 3 projections per encoder."""
    from asma.models import count_flops
    total = 0
    for k, enc in model.encoders.items():
        proj = model.projectors[k if k in model.projectors else "shared"]
        frame_view = model.maskers[k].frame_view(x[:1], g)[0]
        proj_flops = sum(2 * m.in_features * m.out_features for m in proj.modules() if isinstance(m, nn.Linear))
        total += 3 * (2 * count_flops(enc, x[:1]) + count_flops(enc, frame_view) + 3 * proj_flops)
    return total / 1e9


def worker(batch: int, frames: int, steps: int, variant: str, bf16: bool, threads: int,
           ops: bool = False) -> Dict[str, float]:
    """One configuration in this process: seconds per step and its parts, counted GFLOP/clip,
    peak RSS; with ``ops`` also one more step timed per operator group (``ops``: group ->
    ``[calls, s, flops]``, ``ops_step_s``: that step's wall time)."""
    from asma.data.transforms import Augment, AugmentConfig
    from asma.graph import get_layout
    from asma.allocator import tune_allocator
    from asma.train.pretrain import asma_step, batch_views

    if variant.startswith("tuned"):
        tune_allocator()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    skel = get_layout("ntu25")
    x = torch.randn(batch, 3, frames, 25, 2)
    timers = Timers()
    model, opt, groups = build(variant, skel, timers)
    aug = Augment(AugmentConfig(), skel.flip_perm, 3)
    views_of = timers.wrap(batch_views, "augment")
    g = torch.Generator().manual_seed(0)
    opt.step = timers.wrap(opt.step, "optimizer")  # also when Backward steps each part
    step_parts = variant.startswith("tuned")  # as the library's pretrain(): each encoder stepped after its backward

    def step() -> None:
        views = views_of(x, aug, g)
        opt.zero_grad(set_to_none=True)
        backward = timers.backward(model, opt if step_parts else None)
        asma_step(model, views, g, backward, groups, bf16)
        if not backward.stepped:
            opt.step()

    step()  # warm-up
    timers.record = True
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    step_s = (time.perf_counter() - t0) / steps
    t = {k: v / steps for k, v in timers.s.items()}
    parts = {"augment+mask": t["augment"] + t["mask"], "encoders fwd": t["encoders fwd"],
             "projector+loss fwd": t["model fwd"] - t["encoders fwd"] - t["mask"], "backward": t["backward"],
             "optimizer": t["optimizer"]}
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"step_s": step_s, "gflop_per_clip": counted_gflop_per_clip(model, x, g),
              "peak_rss_gib": peak_kib / 1024 ** 2, **parts}
    if ops:
        timers.record = False
        mode = OpTimes()
        t0 = time.perf_counter()
        with mode:
            step()
        result.update(ops=mode.groups, ops_step_s=time.perf_counter() - t0)
    return result


def run_case(batch: int, frames: int, steps: int, variant: str, bf16: bool, threads: int,
             ops: bool = False) -> Dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", "--batch", str(batch), "--frames", str(frames), "--steps", str(steps),
           "--variants", variant, "--threads", str(threads)] + (["--bf16"] if bf16 else []) + (["--ops"] if ops else [])
    env = {**os.environ, "ASMA_MALLOC_TUNING": "1" if variant.startswith("tuned") else "0"}
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
    p.add_argument("--ops", action="store_true",
                   help="also time one more step per operator group (convolutions, matrix products, BatchNorm, ...)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.batch[0], args.frames[0], args.steps, args.variants[0], args.bf16, args.threads,
                                args.ops)))
        return
    console = Console(width=160)
    peaks = conv_peak(args.threads)
    peak = max(peaks.values())
    rows: List[tuple] = []
    for frames in args.frames:
        for batch in args.batch:
            for variant in args.variants:
                rows.append((variant, batch, frames, run_case(batch, frames, args.steps, variant, args.bf16,
                                                              args.threads, args.ops)))
    prec = "bf16 autocast" if args.bf16 else "fp32"
    console.print(step_table(rows, peak, f"ASMa pretraining step (paper configuration) and PSTL's, {prec}, "
                                         f"{args.threads} threads, mean of {args.steps} steps"))
    console.print(breakdown_table(rows))
    if args.ops:
        for row in rows:
            console.print(ops_table(row, peak))
    console.print("oneDNN convolution rates: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    for variant in args.variants:
        mine = [(b, t, r) for v, b, t, r in rows if v == variant]
        b0, t0, base = mine[0]
        scal = [f"b{b} T{t}: {r['step_s'] / base['step_s'] / (b * t / (b0 * t0)):.2f}" for b, t, r in mine]
        console.print(f"{variant}: step time / (batch x frames), relative to b{b0} T{t0} (1.00 = linear): "
                      + ", ".join(scal))
        console.print(f"  counted work per clip at T={t0}: {base['gflop_per_clip']:.2f} GFLOP (per encoder: anchor + "
                      "joint view + frame view + 3 projections, x3 for forward + backward)")


def step_table(rows: List[tuple], peak: float, title: str) -> Table:
    """s/step, clips/s, GFLOP/s (also / the conv peak and / PSTL's in the same run), peak RSS
    (also / PSTL's at the same batch and frames)."""
    table = Table(title=title)
    for col in ("variant", "batch", "T", "s/step", "clips/s", "GFLOP/s", "÷ conv peak", "÷ PSTL GFLOP/s",
                "peak RSS GiB", "÷ PSTL RSS"):
        table.add_column(col, justify="right")
    rate = {(v, b, t): r["gflop_per_clip"] * b / r["step_s"] for v, b, t, r in rows}
    rss = {(v, b, t): r["peak_rss_gib"] for v, b, t, r in rows}
    for variant, batch, frames, r in rows:
        key, ref = (variant, batch, frames), ("pstl", batch, frames)
        table.add_row(variant, str(batch), str(frames), f"{r['step_s']:.2f}", f"{batch / r['step_s']:.1f}",
                      f"{rate[key]:.0f}", f"{rate[key] / peak:.2f}",
                      f"{rate[key] / rate[ref]:.2f}" if ref in rate else "-", f"{rss[key]:.2f}",
                      f"{rss[key] / rss[ref]:.2f}" if ref in rss else "-")
    return table


def breakdown_table(rows: List[tuple]) -> Table:
    """Each part's share of the step."""
    parts = [k for k in rows[0][3] if k not in ("step_s", "gflop_per_clip", "peak_rss_gib", "ops", "ops_step_s")]
    table = Table(title="step breakdown (share of the step)")
    for col in ("variant", "batch", "T", *parts):
        table.add_column(col, justify="right")
    for variant, batch, frames, r in rows:
        table.add_row(variant, str(batch), str(frames), *(f"{100 * r[k] / r['step_s']:.1f}%" for k in parts))
    return table

def ops_table(row: tuple, peak: float) -> Table:
    """One step of ``row`` per operator group: calls, seconds, share of the step, GFLOP, GFLOP/s
    and its ratio to the convolution peak."""
    variant, batch, frames, r = row
    step_s = r["ops_step_s"]
    table = Table(title=f"{variant}, batch {batch}, T={frames}: one step ({step_s:.2f} s) per operator group")
    for col in ("group", "calls", "s", "share of step", "GFLOP", "GFLOP/s", "÷ conv peak"):
        table.add_column(col, justify="right")
    groups = sorted(r["ops"].items(), key=lambda kv: -kv[1][1])
    for name, (calls, s, flops) in groups:
        table.add_row(name, str(calls), f"{s:.2f}", f"{100 * s / step_s:.1f}%", f"{flops / 1e9:.0f}" if flops else "-",
                      f"{flops / s / 1e9:.0f}" if flops else "-", f"{flops / s / 1e9 / peak:.2f}" if flops else "-")
    rest = step_s - sum(g[1] for g in r["ops"].values())
    table.add_row("outside operators (Python, autograd, timing)", "-", f"{rest:.2f}", f"{100 * rest / step_s:.1f}%",
                  "-", "-", "-")
    return table


if __name__ == "__main__":
    main()
