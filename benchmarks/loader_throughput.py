"""DataLoader throughput over a memory-mapped store: clips/s with 0, 1 and 2 workers.

Usage::

    python benchmarks/loader_throughput.py [--store PATH] [--clips 8192] [--batch 128] [--epochs 2]

Without ``--store`` a temporary store of ``--clips`` random NTU-shaped clips ``(3, 50, 25, 2)``
is written first (same format as ``asma data prepare``). Each configuration iterates the
shuffled ``ClipDataset`` for ``--epochs`` epochs with ``pin_memory=True`` (a no-op without an
accelerator) and reports the best epoch. For scale: the paper's encoder trains at a few hundred
clips/s at most on this kind of CPU, so the loader must deliver well above that.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from asma.data.arrays import ClipDataset
from asma.data.store import StoreWriter, open_store


def make_store(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    w = StoreWriter(path, (3, 50, 25, 2), "ntu25", [f"class_{i}" for i in range(60)], ["subject"])
    for s in range(0, n, 1024):
        e = min(n, s + 1024)
        w.append(rng.normal(size=(e - s, 3, 50, 25, 2)).astype(np.float32), rng.integers(0, 60, e - s),
                 {"subject": np.ones(e - s, np.int64)}, [f"c{i:06d}" for i in range(s, e)])
    return w.commit({"dataset": "benchmark"})


def run(store: Path, workers: int, batch: int, epochs: int) -> float:
    arrays = open_store(store)
    ds = ClipDataset(arrays)
    dl = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=True,
                    drop_last=False, persistent_workers=workers > 0)
    best = 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        n = 0
        for x, y in dl:
            n += x.shape[0]
        best = max(best, n / (time.perf_counter() - t))
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--clips", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    torch.set_num_threads(1)
    tmp = None
    store = args.store
    if store is None:
        tmp = Path(tempfile.mkdtemp(prefix="asma-bench-loader-"))
        store = make_store(tmp / "store", args.clips)
    try:
        n = len(open_store(store))
        print(f"# DataLoader throughput ({platform.machine()}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}, torch {torch.__version__}); store {n} clips of (3, 50, 25, 2), "
              f"batch {args.batch}, shuffled, pin_memory=True\n")
        print("| workers | clips/s | MB/s |")
        print("|---|---|---|")
        for w in args.workers:
            cps = run(store, w, args.batch, args.epochs)
            print(f"| {w} | {cps:,.0f} | {cps * 3 * 50 * 25 * 2 * 4 / 1e6:,.0f} |")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
