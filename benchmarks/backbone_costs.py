"""Parameters, FLOPs and relative training speed of the registered backbones.

Prints Markdown tables (recorded in ``docs/backbones.md``):

1. params and FLOPs per stream (one ``(3, 50, 25, 2)`` clip, ``asma.models.count_flops``: 2 FLOPs
   per multiply-accumulate, convolutions and matrix products incl. the graph product) and for
   three streams, next to the paper's 3s-ASMa (6.3M / 4.5G) and 3s-ASMa-Distill (0.54M / 1.26G);
2. the student depth sweep (paper Fig. 4, right), L = 2..7;
3. forward+backward samples/s of each backbone *relative to stgcn* (train mode, same batch;
   rounds interleave the models so machine load affects all alike; ratios, not absolute claims).

Usage::

    python benchmarks/backbone_costs.py [--batch 16] [--rounds 5] [--threads N] [--no-speed]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Dict, List

import torch

from asma.models import count_flops, count_parameters, create_backbone
from asma.models.student import STUDENT_PLANS

BACKBONES = ["stgcn", "gin", "dgcnn", "stgcn-student"]
PAPER = {  # Table 1/2 of the paper (three streams)
    "stgcn": "3s-ASMa 6.3M / 4.5G (2 encoders per stream + alignment)",
    "stgcn-student": "3s-ASMa-Distill 0.54M / 1.26G",
}
CLIP = (1, 3, 50, 25, 2)


def cost_table() -> List[str]:
    x = torch.randn(*CLIP)
    rows = ["| backbone | params / stream | GFLOPs / clip | params ×3 | GFLOPs ×3 | paper (3 streams) |",
            "|---|---:|---:|---:|---:|---|"]
    for name in BACKBONES:
        m = create_backbone(name)
        p, f = count_parameters(m), count_flops(m, x)
        rows.append(f"| {name} | {p:,} | {f / 1e9:.3f} | {3 * p / 1e6:.3f}M | {3 * f / 1e9:.2f} | "
                    f"{PAPER.get(name, '–')} |")
    t = create_backbone("stgcn")
    p, f = count_parameters(t), count_flops(t, x)
    rows.append(f"| stgcn ×2 encoders (ASMa teacher, no alignment) | {2 * p:,} | {2 * f / 1e9:.3f} | "
                f"{6 * p / 1e6:.3f}M | {6 * f / 1e9:.2f} | 3s-ASMa 6.3M / 4.5G |")
    return rows


def depth_table() -> List[str]:
    x = torch.randn(*CLIP)
    rows = ["| layers | channels | strides | params / stream | GFLOPs / clip | params ×3 | GFLOPs ×3 |",
            "|---:|---|---|---:|---:|---:|---:|"]
    for depth, (channels, strides) in STUDENT_PLANS.items():
        m = create_backbone("stgcn-student", num_layers=depth)
        p, f = count_parameters(m), count_flops(m, x)
        mark = " (default)" if depth == 5 else ""
        rows.append(f"| {depth}{mark} | {', '.join(map(str, channels))} | {', '.join(map(str, strides))} | "
                    f"{p:,} | {f / 1e9:.3f} | {3 * p / 1e6:.3f}M | {3 * f / 1e9:.2f} |")
    return rows


def speed_table(batch: int, rounds: int) -> List[str]:
    models = {n: create_backbone(n).train() for n in BACKBONES}
    x = torch.randn(batch, *CLIP[1:])
    times: Dict[str, List[float]] = {n: [] for n in BACKBONES}

    def step(m):
        for p in m.parameters():
            p.grad = None
        pooled, tokens = m(x)
        (pooled.square().mean() + tokens.mean()).backward()

    for m in models.values():  # warm-up
        step(m)
    for _ in range(rounds):
        for n, m in models.items():
            t0 = time.perf_counter()
            step(m)
            times[n].append(time.perf_counter() - t0)
    base = batch / statistics.median(times["stgcn"])
    rows = [f"| backbone | fwd+bwd samples/s relative to stgcn (batch {batch}, median of {rounds}) |",
            "|---|---:|"]
    for n in BACKBONES:
        rows.append(f"| {n} | {batch / statistics.median(times[n]) / base:.2f}× |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("## Parameters and FLOPs (one (3, 50, 25, 2) clip, ntu25)\n")
    print("\n".join(cost_table()))
    print("\n## Student depth sweep\n")
    print("\n".join(depth_table()))
    if not args.no_speed:
        print(f"\n## Relative training speed ({torch.get_num_threads()} CPU threads)\n")
        print("\n".join(speed_table(args.batch, args.rounds)))


if __name__ == "__main__":
    main()
