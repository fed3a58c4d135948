"""ST-GCN graph convolution, aggregate-first (asma) vs convolution-first (the lineage's order), on the
paper encoder: forward + backward per training batch, and eval latency at batch 1.

    python benchmarks/graph_conv.py [--threads 1 2] [--batch 16] [--repeats 5]

Both orders run in the same process on the same weights (the convolution-first forward is swapped
in for the measurement only), so the ratio column is what to read on a shared machine.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List

import torch
from rich.console import Console
from rich.table import Table

from asma.models import create_backbone
from asma.models.stgcn import GraphConv

AGGREGATE_FIRST = GraphConv.forward


def convolution_first(self: GraphConv, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """The lineage's order: 1x1 convolution to K*C_out channels, then the graph einsum."""
    n, _, t, v = x.shape
    y = self.conv(x).view(n, self.num_partitions, self.out_channels, t, v)
    return torch.einsum("nkctv,kvw->nctw", y, A)


def _median_ms(fn: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times: List[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def measure(order: Callable, threads: int, batch: int, repeats: int) -> dict:
    """Median milliseconds of one fwd+bwd at ``batch`` and one eval forward at batch 1.

    Shapes:
        - clips :math:`(B, 3, 50, 25, 2)`
    """
    torch.set_num_threads(threads)
    GraphConv.forward = order
    try:
        torch.manual_seed(0)
        model = create_backbone("stgcn")
        x = torch.randn(batch, 3, 50, 25, 2)

        def train_step() -> None:
            model.train()
            model.zero_grad(set_to_none=True)
            model(x)[0].sum().backward()

        one = x[:1]

        def infer() -> None:
            with torch.inference_mode():
                model.eval()(one)

        return {"train": _median_ms(train_step, repeats), "b1": _median_ms(infer, 10 * repeats, warmup=5)}
    finally:
        GraphConv.forward = AGGREGATE_FIRST


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    table = Table(title=f"paper encoder (821,380 parameters), fwd+bwd at batch {args.batch}, eval at batch 1")
    for col in ("threads", "conv-first fwd+bwd ms", "aggregate-first fwd+bwd ms", "speed-up",
                "conv-first batch-1 ms", "aggregate-first batch-1 ms", "speed-up "):
        table.add_column(col, justify="right")
    for threads in args.threads:
        ref = measure(convolution_first, threads, args.batch, args.repeats)
        new = measure(AGGREGATE_FIRST, threads, args.batch, args.repeats)
        table.add_row(str(threads), f"{ref['train']:.0f}", f"{new['train']:.0f}", f"{ref['train'] / new['train']:.2f}x",
                      f"{ref['b1']:.1f}", f"{new['b1']:.1f}", f"{ref['b1'] / new['b1']:.2f}x")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
