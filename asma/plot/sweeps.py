"""Fig. 3 and Table 7 as pictures: the masking ablations written by ``asma sweep --over
pairings|n_joints|n_frames`` (:mod:`asma.train.ablation`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..io import read_json
from .common import PlotResult, finish, png_path, pyplot


def read_sweep(run_dir, what: str) -> dict:
    """``<run>/sweeps/<what>.json`` of an ablation sweep.

    Raises:
        ValueError: when the sweep has not been run (names the command).
    """
    path = Path(run_dir) / "sweeps" / f"{what}.json"
    if not path.is_file():
        raise ValueError(f"{path} does not exist; run 'asma sweep --run-dir {run_dir} --over {what}' first")
    return read_json(path)


def plot_sweep(run_dir, out, what: str = "pairings", title: Optional[str] = None) -> PlotResult:
    """``pairings``: the 3 x 3 grid of Fig. 3 (spatial rows, temporal columns; mean ± std of the
    linear probe over the seeds; cells not run are blank; the data get ``grid``, rows spatial
    and columns temporal in :data:`~asma.train.ablation.PAIRING_STRATEGIES` order).
    ``n_joints`` / ``n_frames``: the Table 7 curve with error bars. Writes ``out`` and
    ``<stem>.json`` (the sweep's rows)."""
    from ..train.ablation import PAIRING_STRATEGIES
    png_path(out)
    plt = pyplot()
    d = read_sweep(run_dir, what)
    rows = d["rows"]
    seeds = len(d.get("seeds", [0]))
    if what == "pairings":
        S = PAIRING_STRATEGIES
        grid = np.full((3, 3), np.nan)
        std = np.zeros((3, 3))
        for r in rows:
            i, j = S.index(r["spatial"]), S.index(r["temporal"])
            grid[i, j], std[i, j] = r["top1_mean"], r["top1_std"]
        fig, ax = plt.subplots(figsize=(6.4, 5))
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis")
        for i in range(3):
            for j in range(3):
                if np.isnan(grid[i, j]):
                    ax.text(j, i, "not run", ha="center", va="center", fontsize=8, color="0.5")
                    continue
                text = f"{grid[i, j]:.1f}" + (f"\n± {std[i, j]:.1f}" if seeds > 1 else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=10,
                        color="white" if grid[i, j] < np.nanmean(grid) else "black")
        ax.set_xticks(range(3))
        ax.set_xticklabels([f"{s}-motion" if s != "random" else "random" for s in S])
        ax.set_yticks(range(3))
        ax.set_yticklabels([f"{s}-degree" if s != "random" else "random" for s in S])
        ax.set_xlabel("temporal masking (frames)")
        ax.set_ylabel("spatial masking (joints)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="linear probe top-1 %")
        default = f"Masking pairings, one encoder (Fig. 3): {d['dataset']}, {seeds} seed(s)"
        d = {**d, "grid": [[None if np.isnan(v) else float(v) for v in row] for row in grid],
             "grid_rows": [f"spatial={s}" for s in S], "grid_columns": [f"temporal={t}" for t in S]}
    else:
        x = [r[what] for r in rows]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.errorbar(x, [r["top1_mean"] for r in rows], yerr=[r["top1_std"] for r in rows], marker="o", capsize=4)
        ax.set_xticks(x)
        ax.set_xlabel({"n_joints": "masked joints n", "n_frames": "masked frames k"}[what])
        ax.set_ylabel("aligned linear probe top-1 %")
        ax.grid(alpha=0.3)
        fixed = "k" if what == "n_joints" else "n"
        default = (f"Masking count (Table 7): {d['dataset']}, {fixed} = "
                   f"{d['n_frames'] if what == 'n_joints' else d['n_joints']}, {seeds} seed(s)")
    ax.set_title(title or default, fontsize=10)
    return finish(fig, out, d)
