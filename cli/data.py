"""``asma data``: prepare raw datasets into memory-mapped stores, list and inspect them, check raw files.

A thin layer over :mod:`asma.data.prepare`, :mod:`asma.data.prepared`, :mod:`asma.data.store`
and the readers; all output goes through rich.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

DATASET_CHOICES = ["ntu60", "ntu120", "pku1", "pku2", "utkinect", "nwucla", "utd-mhad", "penn-action", "hdm05", "msrc12"]
CHECK_FORMATS = ["auto", "ntu", "pku", "pku-labels", "utkinect", "msr", "utd", "kinetics", "openpose", "coco",
                 "mediapipe"]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@click.group(name="data")
def data():
    """Datasets: prepare raw downloads, list prepared datasets, inspect stores, check raw files."""


@data.command("prepare")
@click.argument("dataset", type=click.Choice(DATASET_CHOICES))
@click.option("--raw", "raw_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder with the extracted raw data (searched recursively).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data folder receiving <dataset>-<benchmark>/{train,test} and the report.")
@click.option("--benchmark", "benchmarks", multiple=True,
              help="Only these benchmarks (xsub, xview, xset); default: all of the dataset.")
@click.option("--workers", default=2, show_default=True, help="Parallel worker processes (1: no pool).")
@click.option("--chunk-size", type=int, default=None, help="Raw files per resumable part (default per dataset).")
@click.option("--skip-bad", is_flag=True, help="Record bad files in the report and go on instead of stopping.")
@click.option("--missing-list", default=None,
              help="NTU missing-skeleton list (default: the official 302 / 535 samples, shipped with asma), "
                   "or 'none' to keep every file.")
@click.option("--labels", "labels_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="PKU-MMD label folder if not under --raw.")
@click.option("--splits", "splits_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the PKU-MMD split files if not under --raw.")
@click.option("--frames", "length", default=50, show_default=True, help="Frames per clip after resampling.")
@click.option("--frame-rule", type=click.Choice(["nonempty", "lineage"]), default=None,
              help="Which frames to keep before resampling (default nonempty; lineage with --lineage).")
@click.option("--center", type=click.Choice(["frame", "first", "none"]), default=None,
              help="Centring on the spine-shoulder joint: per frame (lineage), first frame, or none "
                   "(default: frame; none for the 2D Penn Action).")
@click.option("--align", type=click.Choice(["frame-y", "sequence-y", "none"]), default=None,
              help="Shoulder alignment about the y axis: per frame (lineage), one per clip, or none "
                   "(default: frame-y; none for the 2D Penn Action).")
@click.option("--max-frames", type=int, default=None, help="Centre-crop longer clips first (PKU default 300).")
@click.option("--body-rule", type=click.Choice(["activity", "file-order"]), default=None,
              help="NTU person slots: by body id, 2 most active (default), or file order (lineage).")
@click.option("--lineage", is_flag=True,
              help="Exact AimCLR/CrosSCLR preprocessing: --body-rule file-order --frame-rule lineage.")
@click.option("--persons", type=click.IntRange(min=1), default=None, help="Person slots M (default 2; UTKinect 1).")
@click.option("--utkinect-labels", default="actionLabel.txt", show_default=True,
              help="UTKinect label file (or actionLabel_modified.txt).")
@click.option("--limit", type=int, default=None, help="Only the first N raw files (smoke test).")
@click.option("--keep-work", is_flag=True, help="Keep the per-chunk part files after success.")
@click.option("--restart", is_flag=True, help="Do not reuse finished chunks of an interrupted run.")
def prepare(dataset, raw_dir, out_dir, benchmarks, workers, chunk_size, skip_bad, missing_list, labels_dir,
            splits_dir, length, frame_rule, center, align, max_frames, body_rule, lineage, persons,
            utkinect_labels, limit, keep_work, restart):
    """Prepare DATASET from --raw into memory-mapped stores under --out (resumable: re-run the
    same command after an interruption)."""
    from asma.data.errors import DataFormatError
    from asma.data.prepare import DATASETS, PrepareError, prepare_dataset

    con = _console()
    spec = DATASETS[dataset]
    base = spec.default_preprocess()
    cfg = base.replace(length=length, center=center or base.center, align=align or base.align,
                       frames=frame_rule or ("lineage" if lineage else "nonempty"),
                       max_frames=max_frames if max_frames is not None else base.max_frames)
    rule = body_rule or ("file-order" if lineage else "activity")
    con.print(f"[bold]Preparing {dataset}[/bold] from {raw_dir} -> {out_dir}  "
              f"({workers} worker{'s' if workers != 1 else ''}, body rule {rule}, "
              f"T={cfg.length}, centre={cfg.center}, align={cfg.align}, frames={cfg.frames})")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=con, transient=False) as bar:
        tasks = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = "parse + preprocess (files)" if stage == "parse" else "write stores (parts)"
                tasks[stage] = bar.add_task(label, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            s = prepare_dataset(dataset, raw_dir, out_dir, benchmarks=benchmarks or None, workers=workers,
                                chunk_size=chunk_size, skip_bad=skip_bad, preprocess=cfg, body_rule=rule,
                                max_persons=persons, missing_list=missing_list, labels_dir=labels_dir,
                                splits_dir=splits_dir, utkinect_labels=utkinect_labels, limit=limit,
                                keep_work=keep_work, restart=restart, progress=progress)
        except DataFormatError as exc:
            bar.stop()
            raise click.ClickException(
                f"bad input: {exc}\nRe-run with --skip-bad to skip and record bad files; finished chunks are "
                f"kept, so the re-run resumes.") from None
        except PrepareError as exc:
            bar.stop()
            raise click.ClickException(str(exc)) from None
    t = Table(title=f"{dataset} prepared")
    for col in ("store", "train", "test", "path"):
        t.add_column(col)
    for name, counts in s.stores.items():
        t.add_row(name, str(counts["train"]), str(counts["test"]), str(Path(s.out_dir) / name))
    con.print(t)
    con.print(f"{s.files_used} files -> {s.samples} samples in {s.seconds['total']:.1f} s "
              f"({s.files_per_second:.1f} files/s parsing with {s.workers} worker(s); "
              f"{s.resumed_chunks}/{s.chunks} chunks resumed)")
    if s.skipped:
        from collections import Counter

        reasons = Counter("duplicate" if d["reason"].startswith("duplicate of") else d["reason"] for d in s.skipped)
        con.print(f"[yellow]skipped {len(s.skipped)}[/yellow]: " + "; ".join(f"{n} x {r}" for r, n in reasons.most_common()))
    if s.bad:
        con.print(f"[red]bad {len(s.bad)}[/red], e.g. {s.bad[0]['error']}")
    if s.unassigned:
        con.print(f"[yellow]{len(s.unassigned)} videos in no split list[/yellow]")
    con.print(f"report: {s.report_path}")


@data.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder (default $ASMA_DATA_DIR or ~/.cache/asma/data).")
def list_cmd(data_dir):
    """List the known prepared datasets and whether they are prepared under --data-dir."""
    from asma.data.prepared import PREPARED_DATASETS, default_data_dir, prepare_command, prepared_status

    con = _console()
    status = prepared_status(data_dir)
    t = Table(title=f"prepared datasets in {data_dir or default_data_dir()}")
    for col in ("name", "status", "train", "test", "description"):
        t.add_column(col)
    for name, desc in PREPARED_DATASETS.items():
        st = status[name]
        if st is None:
            t.add_row(name, "[dim]missing[/dim]", "", "", desc)
        else:
            t.add_row(name, "[green]ready[/green]", str(st["train"]), str(st["test"]), desc)
    con.print(t)
    if any(v is None for v in status.values()):
        con.print(f"create one with: {prepare_command('DATASET', data_dir).replace('DATASET', '<dataset>')}")


@data.command("info")
@click.argument("target")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the raw info.json.")
def info(target, data_dir, as_json):
    """Show a store (a path) or a prepared dataset (a name such as ntu60-xsub)."""
    from asma.data.prepared import PREPARED_DATASETS, prepared_path
    from asma.data.store import StoreError, read_store_info

    con = _console()
    paths: List[Path]
    if target in PREPARED_DATASETS:
        root = prepared_path(target, data_dir)
        paths = [root / "train", root / "test"]
    else:
        p = Path(target)
        paths = [p / "train", p / "test"] if (p / "train").is_dir() else [p]
    for p in paths:
        try:
            inf = read_store_info(p)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            click.echo(json.dumps(inf, indent=2))
            continue
        t = Table(title=str(p), show_header=False)
        t.add_column("key")
        t.add_column("value")
        layout = inf["layout"] if isinstance(inf["layout"], str) else inf["layout"].get("name")
        split = inf.get("split", {})
        rows = [("samples", str(inf["num_samples"])), ("shape (N,C,T,V,M)", str(tuple(inf["shape"]))),
                ("layout", str(layout)), ("classes", str(inf["num_classes"])),
                ("split", f"{split.get('benchmark', '-')} / {split.get('part', '-')}"),
                ("metadata", ", ".join(inf.get("meta_keys", []))),
                ("preprocessing", json.dumps(inf.get("preprocessing", {}))),
                ("created", str(inf.get("created", "")))]
        for k, v in rows:
            t.add_row(k, v)
        con.print(t)


def _starts_like_json(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


def _guess_format(path: str, limits) -> str:
    name = os.path.basename(path).lower()
    if _starts_like_json(path):  # by content: a COCO results file is not Kinetics because it ends in .json
        from asma.data.readers.pose_json import guess_pose_format

        return guess_pose_format(path, limits=limits)
    if name.endswith(".skeleton"):
        return "ntu"
    if name.startswith("joints_s"):
        return "utkinect"
    if "skeleton" in name and name.endswith((".mat", ".csv")):
        return "utd"
    if "skeleton" in name and name.endswith(".txt"):
        return "msr"
    if name.endswith(".txt"):
        from asma.data.readers.pkummd import sniff_pku_file

        k = sniff_pku_file(path)
        return "pku-labels" if k == "labels" else "pku"
    raise click.ClickException(f"cannot guess the format of {path}; pass --format")


def _check_one(fmt: str, path: str, limits) -> str:
    import numpy as np

    if fmt == "ntu":
        from asma.data.readers.ntu import read_ntu_skeleton

        r = read_ntu_skeleton(path)
        return f"{r.num_frames} frames, {len(r.frame)} body entries, {len(r.body_ids)} body ids"
    if fmt == "pku":
        from asma.data.readers.pkummd import read_pku_sequence

        x = read_pku_sequence(path)
        two = int(np.any(x[..., 1] != 0, axis=(0, 2)).sum())
        return f"{x.shape[1]} frames, 2nd body in {two}"
    if fmt == "pku-labels":
        from asma.data.readers.pkummd import read_pku_labels

        return f"{len(read_pku_labels(path))} labelled actions"
    if fmt == "utkinect":
        from asma.data.readers.kinect_v1 import read_utkinect_joints

        fn, j = read_utkinect_joints(path)
        return f"{len(fn)} frames (numbers {fn.min()}..{fn.max()})"
    if fmt == "msr":
        from asma.data.readers.kinect_v1 import read_msr_skeleton

        return f"{read_msr_skeleton(path).shape[0]} frames"
    if fmt == "utd":
        from asma.data.readers.kinect_v1 import read_utd_mhad

        return f"{read_utd_mhad(path).shape[0]} frames"
    from asma.data.readers import read_coco_keypoints_json, read_kinetics_json, read_mediapipe_json, read_openpose_frames

    if fmt == "openpose":
        s = read_openpose_frames([path], limits=limits)
    else:
        reader = {"kinetics": read_kinetics_json, "coco": read_coco_keypoints_json,
                  "mediapipe": read_mediapipe_json}[fmt]
        s = reader(path, limits=limits)
    return f"{s.num_frames} frames, up to {s.max_people} people, layout {s.layout}"


@data.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(CHECK_FORMATS), default="auto", show_default=True,
              help="File format; auto: by content for JSON (Kinetics, OpenPose, COCO, MediaPipe), else by name.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Pose JSON: most frames (and frame-index span) accepted [default: 100000].")
@click.option("--max-people", type=click.IntRange(min=1), default=None,
              help="Pose JSON: most people in one frame [default: 64].")
@click.option("--max-file-mb", type=click.IntRange(min=1), default=None,
              help="Pose JSON: largest file in MiB [default: 64].")
def check(files, fmt, max_frames, max_people, max_file_mb):
    """Parse raw FILES and report, for each, OK with a summary or the error (file and line)."""
    from asma.data.errors import DataFormatError
    from asma.data.readers.pose_json import PoseLimits

    base = PoseLimits()
    limits = PoseLimits(max_file_bytes=(max_file_mb << 20) if max_file_mb else base.max_file_bytes,
                        max_frames=max_frames or base.max_frames, max_people=max_people or base.max_people)
    con = _console()
    bad, limited = 0, False
    for f in files:
        try:
            kind = _guess_format(f, limits) if fmt == "auto" else fmt
            msg = _check_one(kind, f, limits)
            con.print(f"[green]OK[/green]    {f}  [dim]({kind})[/dim] {msg}")
        except DataFormatError as exc:
            bad += 1
            limited = limited or "PoseLimits" in exc.reason
            con.print(f"[red]ERROR[/red] {exc}")
    if bad:
        hint = " (pose JSON limits: --max-frames, --max-people, --max-file-mb)" if limited else ""
        raise click.ClickException(f"{bad} of {len(files)} files are bad{hint}")
