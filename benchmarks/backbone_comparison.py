"""Table-4-style comparison: every registered backbone pretrained and probed under ASMa on the
embedded dataset with the same budget (same data, epochs, batch, projector, masking).

Prints accuracy (linear probe of each encoder and of the aligned pair), parameters, FLOPs per
(3, T, 25, M) clip, and pretraining samples/s relative to stgcn (ratios; machines are noisy).

    python benchmarks/backbone_comparison.py [--preset tiny|quick] [--epochs N] [--backbones stgcn,gin,dgcnn]
"""
from __future__ import annotations

import argparse
import tempfile

import torch
from rich.console import Console
from rich.table import Table

from asma.models import count_flops, count_parameters, create_backbone
from asma.train import make_config, run_train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tiny")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--backbones", default="stgcn,gin,dgcnn")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    console = Console(width=160)
    rows = []
    for name in args.backbones.split(","):
        cfg = make_config(args.preset)
        cfg.model.backbone = name
        cfg.seed = args.seed
        cfg.stages = ["pretrain", "linear"]  # the comparison is of linear probes
        if args.epochs:
            cfg.pretrain.epochs = args.epochs
        with tempfile.TemporaryDirectory() as tmp:
            cfg.run_dir = tmp
            res = run_train(cfg, progress=False)
        enc = create_backbone(name, cfg.data.layout, 3, **cfg.model.backbone_cfg)
        x = torch.zeros(1, 3, cfg.data.num_frames, 25, cfg.data.num_persons)
        rate = sum(h["samples_per_s"] for h in res.pretrain_history[1:]) / max(1, len(res.pretrain_history) - 1)
        acc = {r.name: r.top1 for r in res.rows}
        rows.append((name, acc, count_parameters(enc), count_flops(enc, x), rate))
    base_rate = rows[0][4]
    cfg = make_config(args.preset)
    table = Table(title=f"ASMa with each backbone, embedded data ({args.preset} preset, "
                        f"{args.epochs or cfg.pretrain.epochs} epochs, seed {args.seed}), linear probe top-1 %")
    for col in ("backbone", "random init", "f_theta", "f_phi", "average", "aligned", "params/encoder",
                "GFLOPs/clip", f"samples/s vs {rows[0][0]}"):
        table.add_column(col, justify="left" if col == "backbone" else "right")
    for name, acc, params, flops, rate in rows:
        table.add_row(name, f"{acc['random-init probe']:.1f}", f"{acc['theta probe']:.1f}", f"{acc['phi probe']:.1f}",
                      f"{acc['theta+phi average']:.1f}", f"{acc['theta+phi aligned']:.1f}", f"{params:,}",
                      f"{flops / 1e9:.3f}", f"{rate / base_rate:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
