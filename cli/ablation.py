"""``asma sweep --over pairings|n_joints|n_frames``: the masking ablations (Fig. 3, Table 7)
rendered as tables; the sweeps themselves are :mod:`asma.train.ablation`."""
from __future__ import annotations

from typing import List, Optional

from rich.console import Console
from rich.table import Table


def _cell(row: dict) -> str:
    return f"{row['top1_mean']:.1f} ± {row['top1_std']:.1f}" if len(row["top1"]) > 1 else f"{row['top1_mean']:.1f}"


def pairing_grid(rows: List[dict], title: str) -> Table:
    """Fig. 3 layout: spatial strategies as rows, temporal strategies as columns."""
    from asma.train.ablation import PAIRING_STRATEGIES
    table = Table(title=title)
    table.add_column("spatial \\ temporal")
    for t in PAIRING_STRATEGIES:
        table.add_column(f"{t}-motion" if t != "random" else "random", justify="right")
    for s in PAIRING_STRATEGIES:
        cells = []
        for t in PAIRING_STRATEGIES:
            row = next((r for r in rows if r["spatial"] == s and r["temporal"] == t), None)
            cells.append("-" if row is None else _cell(row))
        table.add_row(f"{s}-degree" if s != "random" else "random", *cells)
    return table


def run_ablation(run_dir: str, what: str, values: Optional[str], seeds: Optional[str], epochs: Optional[int],
                 device: Optional[str], console: Console) -> None:
    """Parse the options, run :func:`asma.train.ablation.ablation_sweep` and print its table."""
    from asma.train.ablation import ablation_sweep
    from asma.train.engine import is_main_process
    vals = None
    if values:
        items = [v.strip() for v in values.split(",") if v.strip()]
        try:
            vals = items if what == "pairings" else [int(v) for v in items]
        except ValueError:
            raise ValueError(f"--values expects comma-separated integers for {what}, got {values!r}") from None
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else [0]
    except ValueError:
        raise ValueError(f"--seeds expects comma-separated integers, got {seeds!r}") from None
    rows = ablation_sweep(run_dir, what, vals, seed_list, epochs=epochs, device=device, console=console)
    if not is_main_process():
        return
    title = f"linear probe top-1 % over seeds {seed_list}: {run_dir}/sweeps/{what}.json"
    if what == "pairings":
        console.print(pairing_grid(rows, f"masking pairings, one encoder (Fig. 3); {title}"))
        return
    table = Table(title=f"{what} sweep, aligned probe (Table 7); {title}")
    table.add_column(what, justify="right")
    table.add_column("top-1 %", justify="right")
    for r in rows:
        table.add_row(str(r[what]), _cell(r))
    console.print(table)
