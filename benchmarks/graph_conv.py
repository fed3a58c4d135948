"""The paper encoder (ST-GCN-16, 821,380 parameters) against PSTL's, on the same weights in the same
process: eval latency at batch 1 and forward + backward at a training batch.

    python benchmarks/graph_conv.py [--threads 1 2] [--batch 16] [--repeats 5]

PSTL's encoder is the lineage's ``st_gcn.Model`` (ST-GCN / AimCLR / PSTL ``net/st_gcn.py``),
reproduced below with plain ``nn`` modules: convolution-first graph convolution, BatchNorm modules
in eval, ``avg_pool2d`` pooling. asma's differs in the order of the graph product (aggregate first)
and, in eval without gradients, runs its cached channels-last inference plan
(:mod:`asma.models.inference`: every BatchNorm folded, one matmul per graph aggregation); the
"asma modules" column is the same model through its modules (``module_graph()``, BatchNorm folded
per block). All run interleaved, so each repeat's ratio is what to read on a shared machine; the
table gives the range over the repeats.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, List, Tuple

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.nn import functional as F

from asma.models import create_backbone
from asma.models.inference import module_graph
from asma.models.stgcn import STGCN


class LineageBlock(nn.Module):
    """The lineage's ``st_gcn`` block with ``ConvTemporalGraphical`` (temporal kernel 1)."""

    def __init__(self, c_in: int, c_out: int, K: int, stride: int, residual: bool):
        super().__init__()
        self.K = K
        self.gcn = nn.Module()
        self.gcn.conv = nn.Conv2d(c_in, c_out * K, 1)
        self.tcn = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                                 nn.Conv2d(c_out, c_out, (9, 1), (stride, 1), (4, 0)),
                                 nn.BatchNorm2d(c_out), nn.Dropout(0.5, inplace=True))
        if not residual:
            self.residual = lambda x: 0
        elif c_in == c_out and stride == 1:
            self.residual = lambda x: x
        else:
            self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        y = self.gcn.conv(x)
        n, kc, t, v = y.size()
        y = torch.einsum("nkctv,kvw->nctw", (y.view(n, self.K, kc // self.K, t, v), A)).contiguous()
        return F.relu(self.tcn(y) + res)


class LineageSTGCN(nn.Module):
    """``st_gcn.Model`` without its classifier: the pooled :math:`(N, D)` feature.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`; **output**: :math:`(N, D)`
    """

    def __init__(self, model: STGCN):
        super().__init__()
        self.register_buffer("A", model.A.clone())
        self.data_bn = nn.BatchNorm1d(model.data_bn.num_features)
        K, c_in = model.A.size(0), model.in_channels
        blocks = []
        for i, (c, s) in enumerate(zip(model.channels, model.strides)):
            blocks.append(LineageBlock(c_in, c, K, s, residual=i > 0))
            c_in = c
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones_like(model.A)) for _ in blocks])
        state = {k.replace("blocks.", "st_gcn_networks.", 1): v for k, v in model.state_dict().items()}
        self.load_state_dict({**state, "A": model.A}, strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, T, V, M = x.size()
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(N * M, V * C, T)
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).contiguous().view(N * M, C, T, V)
        for gcn, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = gcn(x, self.A * importance)
        x = F.avg_pool2d(x, x.size()[2:])
        return x.view(N, M, -1).mean(dim=1)


def _seconds(fn: Callable[[], None], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def paired_ms(fns: List[Callable[[], None]], repeats: int, calls: int) -> Tuple[List[float], ...]:
    """Mean milliseconds per call of each of ``fns``, interleaved, one value each per repeat."""
    for fn in fns:
        _seconds(fn, max(2, calls // 5))
    rows = [[1e3 * _seconds(fn, calls) for fn in fns] for _ in range(repeats)]
    return tuple([row[i] for row in rows] for i in range(len(fns)))


def models(seed: int = 0) -> Tuple[STGCN, LineageSTGCN]:
    """The paper encoder with non-trivial BatchNorm statistics, and the lineage's on its weights."""
    torch.manual_seed(seed)
    model = create_backbone("stgcn")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return model, LineageSTGCN(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--calls", type=int, default=50, help="batch-1 calls per repeat")
    args = ap.parse_args()
    model, ref = models()
    x = torch.randn(args.batch, 3, 50, 25, 2)
    one = x[:1]
    with torch.no_grad():
        diff = (model.eval()(one)[0] - ref.eval()(one)).abs().max().item()

    def infer(m: nn.Module, plan: bool = True) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                if plan:
                    m(one)
                else:
                    with module_graph():
                        m(one)
        return run

    def step(m: nn.Module, out: Callable) -> Callable[[], None]:
        def run() -> None:
            m.zero_grad(set_to_none=True)
            out(m(x)).sum().backward()
        return run

    table = Table(title=f"paper encoder vs PSTL's (same weights, pooled features differ by {diff:.1e}): "
                        f"eval at batch 1 (no grad), fwd+bwd at batch {args.batch}; {args.repeats} repeats")
    for col in ("threads", "PSTL batch-1 ms", "asma batch-1 ms", "asma / PSTL", "asma modules / PSTL",
                "PSTL fwd+bwd ms", "asma fwd+bwd ms", "asma / PSTL "):
        table.add_column(col, justify="right")
    for threads in args.threads:
        torch.set_num_threads(threads)
        model.eval(), ref.eval()
        r1, a1, g1 = paired_ms([infer(ref), infer(model), infer(model, plan=False)], args.repeats, args.calls)
        model.train(), ref.train()
        r2, a2 = paired_ms([step(ref, lambda y: y), step(model, lambda y: y[0])], args.repeats, 1)
        q1, q2 = sorted(a / r for a, r in zip(a1, r1)), sorted(a / r for a, r in zip(a2, r2))
        qg = sorted(g / r for g, r in zip(g1, r1))
        table.add_row(str(threads), f"{min(r1):.2f}", f"{min(a1):.2f}", f"{q1[0]:.2f}-{q1[-1]:.2f}x",
                      f"{qg[0]:.2f}-{qg[-1]:.2f}x",
                      f"{min(r2):.0f}", f"{min(a2):.0f}", f"{q2[0]:.2f}-{q2[-1]:.2f}x")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
