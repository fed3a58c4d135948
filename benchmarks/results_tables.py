"""The paper's Tables 1, 3 and 5 on data anyone can run here: the embedded synthetic dataset (no
download) and the real UTKinect-Action3D recordings (Kinect v1, 20 joints, cross-subject).

For each dataset one ``asma train`` pipeline (pretrain -> linear -> finetune -> distill from the
linear-probed teacher), then the student of the fine-tuned teacher added to the same run
(``--resume --stages distill --teacher finetune``). Writes ``docs/results.md`` (atomically) and
prints the tables.

    python benchmarks/results_tables.py                        # both datasets, ~1 h on 2 cores
    python benchmarks/results_tables.py --datasets embedded    # the embedded data only
    python benchmarks/results_tables.py --realdata ../shared/realdata --out docs/results.md

UTKinect is read from ``<realdata>/utkinect_action3d`` (research-only licence, not shipped) and
prepared with ``asma.data.prepare`` into ``<work>/data``; it is skipped, with the reason printed,
when absent.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
from rich.console import Console

from asma.io import atomic_write_text
from asma.train import make_config
from asma.train.config import STAGES, TrainConfig
from asma.train.run import run_train

REPO = Path(__file__).resolve().parents[1]


def embedded_config() -> TrainConfig:
    """The quick preset (the quick start's budget) with every stage."""
    cfg = make_config("quick")
    cfg.stages = list(STAGES)
    return cfg


def utkinect_config(data_dir: Path) -> TrainConfig:
    """UTKinect cross-subject (about 100 train / 100 test clips, 10 classes, T = 50, 20 joints):
    the quick preset's model, masking scaled to the smaller skeleton (7 of 20 joints, 10 of 50
    frames as in the paper) and batches of 25 so an epoch has 4 steps; epochs sized so the
    dataset takes about as long as the embedded one."""
    cfg = make_config("quick")
    cfg.stages = list(STAGES)
    cfg.data.dataset, cfg.data.data_dir = "utkinect-xsub", str(data_dir)
    cfg.model.n_joints, cfg.model.n_frames = 7, 10
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 30, 25
    cfg.probe.epochs, cfg.probe.batch_size = 100, 25
    cfg.finetune.epochs, cfg.finetune.batch_size, cfg.finetune.align_epochs = 20, 25, 20
    cfg.distill.epochs, cfg.distill.batch_size = 40, 25
    return cfg


def prepare_utkinect(realdata: Path, work: Path, console: Console) -> Optional[Path]:
    src = realdata / "utkinect_action3d"
    if not src.is_dir():
        console.print(f"[yellow]skipping UTKinect: {src} does not exist (real data is not shipped; pass --realdata)")
        return None
    out = work / "data"
    if not (out / "utkinect-xsub").is_dir():
        from asma.data.prepare import prepare_dataset
        prepare_dataset("utkinect", src, out, workers=1)
    return out


def run_dataset(cfg: TrainConfig, run_dir: Path, console: Console) -> Dict:
    """The whole pipeline plus the student of the fine-tuned teacher; returns results.json."""
    cfg.run_dir = str(run_dir)
    resume = (run_dir / "config.json").is_file()  # a re-run continues where it stopped
    run_train(cfg, resume=resume, console=console, progress=False)
    ft = copy.deepcopy(cfg)
    ft.stages, ft.distill.teacher = ["distill"], "finetune"
    run_train(ft, resume=True, console=console, progress=False)
    return json.loads((run_dir / "results.json").read_text())


def _row(rows: List[Dict], name: str) -> Dict:
    return next(r for r in rows if r["name"].startswith(name))


def _acc(r: Dict) -> str:
    return f"{r['top1']:.1f} | {r['top5']:.1f}"


def tables(name: str, res: Dict) -> str:
    lin, ft, d_lp, d_ft = res["linear"], res["finetune"], res["distill"], res["distill-ft"]
    m = res["models"]
    out = [f"### {name}\n"]
    out += ["**Table 1 analogue: ASMa under linear probing (LP) and fine-tuning (FT)** (top-1 | top-5 %)\n",
            "| protocol | f_θ | f_φ | ASMa (aligned) |", "|---|---:|---:|---:|",
            f"| LP | {_acc(_row(lin, 'theta probe'))} | {_acc(_row(lin, 'phi probe'))} | "
            f"{_acc(_row(lin, 'theta+phi aligned'))} |",
            f"| FT | {_acc(_row(ft, 'theta fine-tuned'))} | {_acc(_row(ft, 'phi fine-tuned'))} | "
            f"{_acc(_row(ft, 'theta+phi fine-tuned aligned'))} |", ""]
    out += ["**Table 3 analogue: linear evaluation of the frozen encoders** (top-1 | top-5 %)\n",
            "| random init | f_θ (high-degree joints, low-motion frames) | f_φ (low-degree, high-motion) | "
            "average of f_θ, f_φ | aligned (cross-attention) |", "|---:|---:|---:|---:|---:|",
            "| " + " | ".join(_acc(_row(lin, n)) for n in ("random-init", "theta probe", "phi probe",
                                                          "theta+phi average", "theta+phi aligned")) + " |", ""]
    out += ["**Table 5 analogue: distillation into stgcn-student (no labels)** (top-1 | top-5 %)\n",
            "| model | top-1 | top-5 | params | GFLOPs/clip |", "|---|---:|---:|---:|---:|",
            f"| teacher, linear-probed (LP) | {_acc(d_lp[0])} | {m['teacher']['params']:,} | {m['teacher']['gflops']:.3f} |",
            f"| teacher, fine-tuned (FT) | {_acc(d_ft[0])} | {m['teacher']['params']:,} | {m['teacher']['gflops']:.3f} |",
            f"| student of the LP teacher | {_acc(d_lp[1])} | {m['student']['params']:,} | {m['student']['gflops']:.3f} |",
            f"| student of the FT teacher | {_acc(d_ft[1])} | {m['student']['params']:,} | {m['student']['gflops']:.3f} |",
            ""]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="embedded,utkinect")
    p.add_argument("--realdata", default=str(REPO.parent / "shared" / "realdata"))
    p.add_argument("--work", default="runs/results", help="Run directories (re-running resumes them).")
    p.add_argument("--out", default=str(REPO / "docs" / "results.md"))
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    console = Console(width=140)
    work = Path(args.work)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections, t0 = [], time.time()
    for name in args.datasets.split(","):
        if name == "embedded":
            sections.append(tables("Embedded synthetic data (quick preset, 10 classes, xsub)",
                                   run_dataset(embedded_config(), work / "embedded", console)))
        elif name == "utkinect":
            data = prepare_utkinect(Path(args.realdata), work, console)
            if data is not None:
                sections.append(tables("UTKinect-Action3D (real Kinect v1 recordings, 10 classes, cross-subject)",
                                       run_dataset(utkinect_config(data), work / "utkinect", console)))
        else:
            raise SystemExit(f"unknown dataset {name!r}; use embedded and/or utkinect")
    header = RESULTS_HEADER.format(date=time.strftime("%Y-%m-%d"), cores=os.cpu_count(), torch=torch.__version__,
                                   python=platform.python_version(), minutes=(time.time() - t0) / 60)
    text = header + "\n".join(sections) + RESULTS_FOOTER
    atomic_write_text(Path(args.out), text)
    console.print(text)


RESULTS_HEADER = """# Results: the paper's Tables 1, 3 and 5 on runnable data

Produced by `python benchmarks/results_tables.py` ({date}; {cores} CPU cores, torch {torch}, Python
{python}; {minutes:.0f} min of wall time for this invocation, which resumes finished runs). Every number below comes from one deterministic run (seed 0) and is
reproduced exactly by re-running the script on the same software versions. These are **not** the
paper's NTU/PKU numbers: those need the datasets and the paper's budget (150 epochs, 6144-wide
projector, 128-wide encoders trained on 40k clips), see [fidelity.md](fidelity.md). What the tables show is
the method's structure on data anyone can run: what each encoder learns, what the alignment adds,
what fine-tuning adds, and what the student keeps at a fraction of the cost.

Protocol: linear evaluation on frozen, standardised features and fine-tuning both report the
**last** epoch (no best-on-test selection). The student learns from the teacher's logits only
(Eqs. 13-14, τ = 8, no labels). Parameters and FLOPs: one forward pass of one clip of the
dataset (2 FLOPs per multiply-accumulate); the teacher is the two encoders plus the alignment module.

"""

RESULTS_FOOTER = """
## Reproducing one cell by hand

```bash
asma train --stages all --run-dir runs/emb                                  # embedded data, quick preset
asma train --run-dir runs/emb --resume --stages distill --teacher finetune  # the FT teacher's student
asma data prepare utkinect --raw <UTKinect folder> --out data/
asma train --dataset utkinect-xsub --data-dir data/ --preset quick --stages all \\
    --set model.n_joints=7 --set pretrain.batch_size=25 ...                 # see utkinect_config()
```
"""


if __name__ == "__main__":
    main()
