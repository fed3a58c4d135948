"""The paper's Tables 1, 3 and 5, the Fig. 3 pairing grid and the Table 7 counts sweep on real
recordings anyone can obtain: NW-UCLA (cross-view) and UTD-MHAD (cross-subject), at the budget
``--preset auto`` picks for them (the ``small`` preset), over several seeds.

For each dataset and seed: one 3-stream run (joint, bone, motion; pretrain -> linear -> finetune
-> distill from the linear-probed teacher, logits fused: 3s-ASMa), then the students of the
fine-tuned teachers added to the same run (``--resume --stages distill --teacher finetune``).
On NW-UCLA also the masking ablations (pretrain + linear per setting, :mod:`asma.train.ablation`)
at ``--ablation-epochs`` pretraining epochs (default: the tables' budget), each budget's runs under
``<work>/ablations/<store>/e<epochs>/``. Writes ``docs/results.md`` (atomically; the notes after
:data:`NOTES_MARK` are kept) and prints the tables. Every run lives in ``--work``; an
interrupted invocation resumes where it stopped and gives the same numbers.

    python benchmarks/results_tables.py --realdata ../shared/realdata --threads 1          # everything
    python benchmarks/results_tables.py --datasets nwucla --seeds 0 --ablations none       # one run
    python benchmarks/results_tables.py --only-ablations                                   # Fig. 3 / Table 7

The raw datasets are read from ``<realdata>/nw_ucla_ctrgcn`` and ``<realdata>/utd_mhad_skeleton``
(research-only licences, not shipped) and prepared with ``asma.data.prepare`` into
``<work>/data`` at 20 frames per clip; a dataset whose folder is absent is skipped with the reason
printed.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from rich.console import Console

from asma.io import atomic_write_text
from asma.train import make_config
from asma.train.ablation import PAIRING_STRATEGIES, count_sweep, pairing_sweep, parse_pairing
from asma.train.config import STAGES, TrainConfig, pretrain_epochs
from asma.train.options import auto_preset, train_size
from asma.train.rundir import read_config
from asma.train.run import run_train

REPO = Path(__file__).resolve().parents[1]
STREAMS = ["joint", "bone", "motion"]
FRAMES = 20
#: name -> (prepare dataset, raw folder under --realdata, store, title)
DATASETS = {
    "nwucla": ("nwucla", "nw_ucla_ctrgcn", "nwucla-xview", "NW-UCLA (cross-view, 10 classes, 1,020 / 464 clips)"),
    "utd-mhad": ("utd-mhad", "utd_mhad_skeleton", "utd-mhad-xsub",
                 "UTD-MHAD (cross-subject, 27 classes, 431 / 430 clips)"),
}
#: Table 7 analogue on 20 joints / 20 frames: n with k fixed, k with n fixed (the preset's 5 and 4).
COUNTS = {"n_joints": (3, 5, 7), "n_frames": (2, 4, 6)}
STUDENT_LP, STUDENT_FT = "student of linear teacher", "student of finetune teacher"


# ----------------------------------------------------------------------------- runs

def prepare(name: str, realdata: Path, work: Path, console: Console) -> Optional[Path]:
    """The prepared store folder of ``name`` (prepared at :data:`FRAMES` frames if absent)."""
    kind, folder, store, _ = DATASETS[name]
    out = work / "data"
    if (out / store).is_dir():
        return out
    src = realdata / folder
    if not src.is_dir():
        console.print(f"[yellow]skipping {name}: {src} does not exist (real data is not shipped; pass --realdata)")
        return None
    from asma.data.prepare import DATASETS as SPECS, prepare_dataset
    prepare_dataset(kind, src, out, workers=1, preprocess=SPECS[kind].default_preprocess().replace(length=FRAMES))
    return out


def dataset_config(name: str, data_dir: Path, threads: int) -> TrainConfig:
    """What ``asma train --dataset <store> --data-dir DATA --threads T`` runs: the auto preset."""
    probe = make_config("small").data
    probe.dataset, probe.data_dir = DATASETS[name][2], str(data_dir)
    cfg = make_config(auto_preset(probe, train_size(probe)))
    cfg.data.dataset, cfg.data.data_dir, cfg.threads = probe.dataset, probe.data_dir, threads
    cfg.stages = list(STAGES)
    return cfg


def run_seed(cfg: TrainConfig, run_dir: Path, console: Console) -> Dict:
    """One 3-stream run plus the fine-tuned teachers' students; an existing run is resumed with
    its own saved configuration. Returns its ``results.json``."""
    if (run_dir / "config.json").is_file():
        cfg = read_config(run_dir)  # as the last invocation saved it: maybe the FT students' call
        cfg.run_dir, cfg.stages, cfg.distill.teacher, resume = str(run_dir), list(STAGES), "linear", True
    else:
        cfg = copy.deepcopy(cfg)
        cfg.run_dir, cfg.streams, resume = str(run_dir), list(STREAMS), False
    run_train(cfg, resume=resume, console=console, progress=False)
    ft = copy.deepcopy(cfg)
    ft.stages, ft.distill.teacher = ["distill"], "finetune"
    run_train(ft, resume=True, console=console, progress=False)
    return json.loads((run_dir / "results.json").read_text())


def run_seconds(run_dir: Path) -> float:
    """Wall seconds of every stage of a run (over its sub-runs for 3 streams): each stage's
    ``seconds`` in ``status.json``; for runs that predate that record, pretraining from its epoch
    records in ``metrics.jsonl`` and every later stage as the time since the previous one finished."""
    subs = [d for d in run_dir.iterdir() if (d / "status.json").is_file()] if run_dir.is_dir() else []
    if (run_dir / "status.json").is_file():
        subs.append(run_dir)
    total = 0.0
    for d in subs:
        prev = None
        for stage, info in json.loads((d / "status.json").read_text()).items():
            if "seconds" in info:
                total += float(info["seconds"])
            elif stage == "pretrain":
                t = [r["time"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
                     if r.get("stage") == "pretrain"]
                total += (t[-1] - t[0]) * len(t) / max(len(t) - 1, 1)
            elif prev is not None:
                total += info["time"] - prev
            prev = info["time"]
    return total


SWEEPS = ("pairings", *COUNTS)


def sweep_epochs(text: Optional[str]) -> Dict[str, int]:
    """``--ablation-epochs``: ``E`` for every sweep or ``SWEEP=E,...``; the sweeps it names (a sweep
    not named gets the tables' budget). Checked before anything is prepared or run."""
    try:
        if not text:
            return {}
        if "=" not in text:
            return {w: int(text) for w in SWEEPS}
        given = {k: int(v) for k, v in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise SystemExit(f"--ablation-epochs {text!r}: give E or SWEEP=E,... with whole numbers") from None
    bad = sorted(set(given) - set(SWEEPS))
    if bad:
        raise SystemExit(f"--ablation-epochs: unknown sweep(s) {bad}; use {', '.join(SWEEPS)}")
    return given


def ablations(cfg: TrainConfig, out: Path, seeds: Sequence[int], epochs: Dict[str, int], console: Console,
              sweeps: Sequence[str] = SWEEPS, pairings: Optional[Sequence] = None) -> Dict[str, List]:
    """Fig. 3 (the nine pairings, one encoder) and Table 7 (n_joints, n_frames), each sweep's runs
    pretraining exactly ``epochs[sweep]`` epochs (as ``asma sweep --epochs``) under
    ``out/e<epochs>/``; ``pairings``: a subset of the grid (to share the work between processes)."""
    res = {}
    for what in sweeps:
        base = copy.deepcopy(cfg)
        base.pretrain.epochs, base.pretrain.min_steps = epochs[what], 0
        where = out / f"e{epochs[what]}"
        res[what] = (pairing_sweep(base, where, pairings, seeds=seeds, console=console) if what == "pairings" else
                     count_sweep(base, where, what, COUNTS[what], seeds, console=console))
    return res


# ----------------------------------------------------------------------------- tables

def _rows(rows: List[Dict], name: str) -> Dict:
    return next(r for r in rows if r["name"].split(": ", 1)[-1].startswith(name))


def _ms(values: Sequence[float], sign: str = "") -> str:
    """``mean ± sample std`` (one value: itself); ``sign="+"`` prints the mean's sign."""
    if len(values) == 1:
        return f"{values[0]:{sign}.1f}"
    return f"{statistics.fmean(values):{sign}.1f} ± {statistics.stdev(values):.1f}"


def _slash(values: Sequence[float]) -> str:
    """Each seed's value: ``a / b / c``."""
    return " / ".join(f"{v:.1f}" for v in values)


class Seeds:
    """The results.json of one dataset's seeds, read cell by cell as mean ± std."""

    def __init__(self, results: List[Dict]) -> None:
        self.res = results
        self.streams = list(results[0]["per_stream"])
        self.models = results[0]["per_stream"][self.streams[0]]["models"]

    def stream(self, s: str, stage: str, row: str, key: str = "top1") -> str:
        return _ms([_rows(r["per_stream"][s][stage], row)[key] for r in self.res])

    def fused(self, row: str, key: str = "top1") -> str:
        return _ms([_rows(r["fused"], row)[key] for r in self.res])

    def per_seed(self, s: Optional[str], stage: str, row: str) -> str:
        """``a / b / c``: the top-1 of each seed (``s=None``: the fused row)."""
        rows = [r["fused"] if s is None else r["per_stream"][s][stage] for r in self.res]
        return _slash([_rows(x, row)["top1"] for x in rows])


#: (column, stage, row) of the per-seed table
SEED_COLUMNS = (("random-init probe", "linear", "random-init probe"),
                ("random-init aligned", "linear", "random-init aligned"), ("f_θ probe", "linear", "theta probe"),
                ("f_φ probe", "linear", "phi probe"), ("θ+φ aligned", "linear", "theta+phi aligned"),
                ("FT aligned", "finetune", "theta+phi fine-tuned aligned"))


def seed_table(res: Seeds, seeds: Sequence[int]) -> str:
    """Every seed's top-1 of the main rows, per stream and fused (the ranges behind the tables)."""
    out = [f"**Per seed** (top-1 %, seeds {' / '.join(map(str, seeds))})\n",
           "| stream | " + " | ".join(c for c, _, _ in SEED_COLUMNS) + " |", "|---|" + "---:|" * len(SEED_COLUMNS)]
    for s in res.streams:
        out.append(f"| {s} | " + " | ".join(res.per_seed(s, st, row) for _, st, row in SEED_COLUMNS) + " |")
    out.append(f"| {len(res.streams)}s fused | " + " | ".join(
        "–" if row.startswith("random") else res.per_seed(None, st, row) for _, st, row in SEED_COLUMNS) + " |")
    return "\n".join(out) + "\n"


LINEAR_ROWS = (("random-init probe", "random-init probe"), ("random-init aligned", "random-init aligned"),
               ("f_θ probe (high-degree joints, low-motion frames)", "theta probe"),
               ("f_φ probe (low-degree joints, high-motion frames)", "phi probe"),
               ("average of f_θ, f_φ", "theta+phi average"), ("**θ+φ aligned**", "theta+phi aligned"))


def dataset_tables(title: str, res: Seeds) -> str:
    """Tables 1, 3 and 5 analogues of one dataset (top-1 %, mean ± std over the seeds)."""
    m, n, st = res.models, len(res.streams), res.streams
    lp, ft = "theta+phi aligned", "theta+phi fine-tuned aligned"
    out = [f"### {title}\n", f"**Table 1 analogue: {n}s-ASMa and {n}s-ASMa-Distill** (Lin. = frozen encoders + "
           "alignment, FT = fine-tuned; the student is distilled from the Lin. teacher in the Lin. column and from "
           "the FT teacher in the FT column)\n",
           "| model | Lin. | FT | params | GFLOPs/clip |", "|---|---:|---:|---:|---:|"]
    for s in st:
        out.append(f"| ASMa, {s} stream | {res.stream(s, 'linear', lp)} | {res.stream(s, 'finetune', ft)} | "
                   f"{m['teacher']['params']:,} | {m['teacher']['gflops']:.4f} |")
    out.append(f"| **{n}s-ASMa** | **{res.fused(lp)}** | **{res.fused(ft)}** | {n * m['teacher']['params']:,} | "
               f"{n * m['teacher']['gflops']:.4f} |")
    out.append(f"| **{n}s-ASMa-Distill** (students) | **{res.fused(STUDENT_LP)}** | **{res.fused(STUDENT_FT)}** | "
               f"{n * m['student']['params']:,} | {n * m['student']['gflops']:.4f} |\n")
    out += ["**Table 3 analogue: linear evaluation** (random-init aligned: two random encoders under the same "
            "alignment head and probe)\n", "| probe | " + " | ".join(st) + f" | {n}s fused |",
            "|---|" + "---:|" * (n + 1)]
    for label, row in LINEAR_ROWS:
        fused = "–" if row.startswith("random") else res.fused(row)
        out.append(f"| {label} | " + " | ".join(res.stream(s, "linear", row) for s in st) + f" | {fused} |")
    out += ["", "**Table 5 analogue: distillation into the student, logits only, no labels**\n",
            f"| model | joint stream | {n}s fused | params per stream |", "|---|---:|---:|---:|"]
    for label, row, key in (("teacher, linear-probed", lp, "teacher"), ("teacher, fine-tuned", ft, "teacher"),
                            ("student of the linear-probed teacher", STUDENT_LP, "student"),
                            ("student of the fine-tuned teacher", STUDENT_FT, "student")):
        stage = "linear" if row == lp else "finetune" if row == ft else \
            "distill" if row == STUDENT_LP else "distill-ft"
        out.append(f"| {label} | {res.stream(st[0], stage, row)} | {res.fused(row)} | {m[key]['params']:,} |")
    return "\n".join(out) + "\n"


def ablation_tables(res: Dict[str, List], steps: Dict[str, int], seeds: Sequence[int]) -> str:
    """Fig. 3 grid and Table 7 analogue as markdown (mean ± std over ``seeds``, then each seed's
    value; ``steps``: the pretraining steps of each sweep's runs)."""
    cell = (lambda r: f"{r['top1_mean']:.1f} ± {r['top1_std']:.1f} ({_slash(r['top1'])})"
            if len(seeds) > 1 else f"{r['top1_mean']:.1f}")
    grid = {(r["spatial"], r["temporal"]): cell(r) for r in res["pairings"]}
    seeds_txt = ", ".join(map(str, seeds))
    out = [f"**Fig. 3 analogue: one encoder per spatial x temporal pairing** (linear probe top-1 %, "
           f"{steps['pairings']} pretraining steps, seeds {seeds_txt})\n",
           "| spatial \\ temporal | " + " | ".join(PAIRING_STRATEGIES) + " |", "|---|---:|---:|---:|"]
    for sp in PAIRING_STRATEGIES:
        out.append(f"| {sp} | " + " | ".join(grid[(sp, tm)] for tm in PAIRING_STRATEGIES) + " |")
    if len(seeds) > 1:
        out += ["", paired_grid(res["pairings"])]
    out += ["", f"**Table 7 analogue: masked joints n (k = 4) and masked frames k (n = 5)** (θ+φ aligned probe "
            f"top-1 %, {steps['n_joints']} / {steps['n_frames']} pretraining steps, seeds {seeds_txt})\n",
            "| n (of 20 joints) | top-1 |", "|---:|---:|"]
    out += [f"| {r['n_joints']} | {cell(r)} |" for r in res["n_joints"]]
    out += ["", "| k (of 20 frames) | top-1 |", "|---:|---:|"]
    out += [f"| {r['n_frames']} | {cell(r)} |" for r in res["n_frames"]]
    return "\n".join(out) + "\n"


def paired_grid(rows: List[Dict]) -> str:
    """Each pairing minus random/random on the same seed (same initialisation and data order, only
    the masking differs), mean ± std over the seeds: the seed's own level cancels."""
    ref = next(r["top1"] for r in rows if (r["spatial"], r["temporal"]) == ("random", "random"))
    diff = {(r["spatial"], r["temporal"]): [a - b for a, b in zip(r["top1"], ref)] for r in rows}
    out = ["**The same grid, paired by seed:** each cell minus random/random of the same seed (points)\n",
           "| spatial \\ temporal | " + " | ".join(PAIRING_STRATEGIES) + " |", "|---|---:|---:|---:|"]
    for sp in PAIRING_STRATEGIES:
        out.append(f"| {sp} | " + " | ".join("–" if (sp, tm) == ("random", "random") else
                                             _ms(diff[(sp, tm)], "+") for tm in PAIRING_STRATEGIES) + " |")
    return "\n".join(out) + "\n"


def sweep_seconds(out: Path, epochs: Dict[str, int]) -> str:
    """Total wall hours of each sweep's runs."""
    hours = {w: sum(run_seconds(d) for d in (out / f"e{e}").glob(f"{w}/*/seed-*")) / 3600 for w, e in epochs.items()}
    return "the sweeps: " + ", ".join(f"{w} {h:.2f} h" for w, h in hours.items())


# ----------------------------------------------------------------------------- main

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="nwucla,utd-mhad", help=f"Any of {', '.join(DATASETS)}.")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ablation-seeds", default=None, help="Seeds of the sweeps (default: --seeds).")
    p.add_argument("--ablations", default="nwucla", help="Dataset of the Fig. 3 / Table 7 sweeps, or 'none'.")
    p.add_argument("--ablation-epochs", default=None,
                   help="Pretraining epochs per sweep run: E, or SWEEP=E,.. (e.g. n_joints=10,n_frames=10); "
                        "default and sweeps not named: the tables' budget (NW-UCLA: 39 epochs of 31 steps).")
    p.add_argument("--only-ablations", action="store_true", help="Run only the sweeps (the tables need both).")
    p.add_argument("--sweeps", default=",".join(SWEEPS),
                   help="With --only-ablations: which sweeps (two processes can share the work).")
    p.add_argument("--pairings", default=None,
                   help="With --only-ablations: these pairings of the grid only, e.g. high-low,low-high.")
    p.add_argument("--realdata", default=str(REPO.parent / "shared" / "realdata"))
    p.add_argument("--work", default="runs/results", help="Run directories (re-running resumes them).")
    p.add_argument("--out", default=str(REPO / "docs" / "results.md"))
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (the recorded tables: 1).")
    args = p.parse_args()
    console, work, t0 = Console(width=140), Path(args.work), time.time()
    seeds = [int(s) for s in args.seeds.split(",")]
    ab_seeds = [int(s) for s in (args.ablation_seeds or args.seeds).split(",")]
    given_epochs = sweep_epochs(args.ablation_epochs)
    try:
        pairs = [parse_pairing(t) for t in args.pairings.split(",")] if args.pairings else None
    except ValueError as e:
        raise SystemExit(f"--pairings: {e}") from None
    names = [n for n in args.datasets.split(",") if n]
    bad = [n for n in names + ([args.ablations] if args.ablations != "none" else []) if n not in DATASETS]
    if bad:
        raise SystemExit(f"unknown dataset(s) {bad}; use {', '.join(DATASETS)}")
    torch.set_num_threads(max(args.threads, 1))
    sections, costs = [], []
    for name in ([] if args.only_ablations else names):
        data = prepare(name, Path(args.realdata), work, console)
        if data is None:
            continue
        cfg = dataset_config(name, data, args.threads)
        results = [run_seed(cfg, work / DATASETS[name][2] / f"seed-{s}", console) for s in seeds]
        per = Seeds(results)
        sections += [dataset_tables(DATASETS[name][3], per), seed_table(per, seeds)]
        secs = [run_seconds(work / DATASETS[name][2] / f"seed-{s}") for s in seeds]
        costs.append(f"{DATASETS[name][2]}: {_ms(secs)} s per seed for the three streams and all stages")
    if args.ablations != "none":
        data = prepare(args.ablations, Path(args.realdata), work, console)
        if data is not None:
            out = work / "ablations" / DATASETS[args.ablations][2]
            cfg = dataset_config(args.ablations, data, args.threads)
            full = pretrain_epochs(cfg.pretrain, train_size(cfg.data))  # the tables' budget
            epochs = {w: given_epochs.get(w, full) for w in SWEEPS}
            res = ablations(cfg, out, ab_seeds, epochs, console,
                            args.sweeps.split(",") if args.only_ablations else SWEEPS, pairs)
            per_epoch = train_size(cfg.data) // cfg.pretrain.batch_size
            if set(res) == set(SWEEPS) and not pairs:
                sections.append(ablation_tables(res, {w: e * per_epoch for w, e in epochs.items()}, ab_seeds))
            costs.append(sweep_seconds(out, epochs))
    if args.only_ablations:
        console.print("\n".join(sections))
        return
    write_page(Path(args.out), sections, costs, seeds, args.threads, (time.time() - t0) / 60)


def write_page(out: Path, sections: List[str], costs: List[str], seeds: Sequence[int], threads: int,
               minutes: float) -> None:
    header = RESULTS_HEADER.format(date=time.strftime("%Y-%m-%d"), cores=os.cpu_count(), torch=torch.__version__,
                                   python=platform.python_version(), minutes=minutes, threads=threads,
                                   seeds=", ".join(map(str, seeds)), costs="; ".join(costs))
    text = header + "\n".join(sections)
    if out.is_file() and NOTES_MARK in out.read_text():  # the hand-written reading of the numbers is kept
        text += "\n" + NOTES_MARK + out.read_text().split(NOTES_MARK, 1)[1]
    atomic_write_text(out, text)
    Console(width=140).print(text)


RESULTS_HEADER = """# Results: the paper's tables and ablations on real recordings

Produced by `python benchmarks/results_tables.py` ({date}; {cores} CPU cores, torch {torch}, Python
{python}, {threads} torch thread per run; {minutes:.0f} min of wall time for this invocation, which
resumes finished runs). Wall time of the runs themselves, from each stage's record in the runs'
`status.json` (one torch thread each; the recorded runs shared the two cores with other jobs, so an
idle machine takes less): {costs}.

Top-1 % on the test split, **mean ± sample std over seeds {seeds}** (the sweeps state their own),
last epoch of every stage (no selection on the test set). Each run is deterministic for a given machine, torch build and thread
count; another thread count moves the low digits. The budget is what `--preset auto` picks for these
datasets, the `small` preset (see [training.md](training.md#budgets-on-small-datasets)): the tiny
ST-GCN (61k parameters per encoder), 1,200 pretraining steps at batch 32, probes of 100 epochs,
fine-tuning 30 epochs (alignment 50), distillation 30 epochs (τ = 4), clips stored at 20 frames. These are **not**
the paper's NTU/PKU numbers (full-size encoders, 150 epochs on 40k clips; see
[fidelity.md](fidelity.md)).

Published NW-UCLA self-supervised linear-evaluation references (as compiled in a third-party README,
not re-checked here): LongT GAN 74.3, P&C 84.9, GL-Transformer 90.4, Colorization 91.1; supervised
CTR-GCN 96.5. Those use full-size encoders and far more pretraining.

Reproduce: `asma data prepare nwucla --raw RAW --out DATA --frames 20`, then
`asma train --dataset nwucla-xview --data-dir DATA --streams joint,bone,motion --seed S --threads 1`
and `asma train --run-dir RUN --resume --stages distill --teacher finetune` (likewise `utd-mhad` /
`utd-mhad-xsub`); the sweeps: `asma sweep --run-dir RUN --over pairings|n_joints|n_frames --seeds 0,1,2`
--epochs E (exactly E pretraining epochs) as stated.

"""

#: Everything after this line of an existing results page is kept when the tables are rewritten.
NOTES_MARK = "<!-- notes: kept when benchmarks/results_tables.py rewrites the tables above -->"


if __name__ == "__main__":
    main()
