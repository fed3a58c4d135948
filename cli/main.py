"""The ``asma`` command: a thin click layer over library functions, rendered with rich."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Tuple

import click
from rich.console import Console
from rich.table import Table

console = Console(log_path=False)  # users see what happened, not which source line logged it
#: ``--preset`` values: ``auto`` and :data:`asma.train.config.PRESETS` (not imported here: ``asma --help`` stays fast).
PRESET_CHOICES = ("auto", "paper", "quick", "small", "tiny")


class AsmaGroup(click.Group):
    """Turns library ``ValueError``s (bad options, bad data) into one clear line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, FloatingPointError) as e:  # the last: a non-finite loss
            console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
            sys.exit(2)


@click.group(cls=AsmaGroup)
@click.version_option(package_name="asma")
def main() -> None:
    """ASMa: asymmetric spatio-temporal masking for self-supervised skeleton action recognition."""


def _load_plugins(plugins: Tuple[str, ...]) -> None:
    from asma.models import import_plugin
    for p in plugins:
        import_plugin(p)


def results_table(rows, title: str) -> Table:
    table = Table(title=title)
    table.add_column("model")
    table.add_column("top-1 %", justify="right")
    table.add_column("top-5 %", justify="right")
    for r in rows:
        table.add_row(r.name, f"{r.top1:.1f}", f"{r.top5:.1f}")
    return table


def _train_options(f):
    """The options shared by `asma train` and `asma pretrain`."""
    for opt in reversed(_TRAIN_OPTIONS):
        f = opt(f)
    return f


_TRAIN_OPTIONS = [
    click.option("--dataset", default=None, help="'synthetic' (embedded, default) or a prepared dataset, e.g. ntu60-xsub."),
    click.option("--data-dir", default=None, type=click.Path(), help="Folder with prepared datasets."),
    click.option("--protocol", default=None, help="Split of the synthetic data: xsub or xview."),
    click.option("--backbone", default=None, help="Registered backbone (see 'asma backbones')."),
    click.option("--stream", default=None, type=click.Choice(["joint", "bone", "motion"]),
                 help="Input stream: joint coordinates, bone vectors or frame differences [default: joint]."),
    click.option("--streams", default=None, metavar="S1,S2,..",
                 help="Several streams, e.g. joint,bone,motion: one run each, then their logits fused (3s-ASMa)."),
    click.option("--fusion-weights", default=None, metavar="S=W,..",
                 help="Ensemble weight per stream (default joint=0.6,bone=0.6,motion=0.4)."),
    click.option("--stages", default=None, metavar="S1,S2,..",
                 help="Stages to run, from pretrain,linear,finetune,distill (default: the preset's)."),
    click.option("--teacher", default=None, type=click.Choice(["linear", "finetune"]),
                 help="Distillation teacher: the linear-probed or the fine-tuned ASMa classifier."),
    click.option("--transfer-to", default=None, metavar="DATASET",
                 help="Labelled stages on another dataset (transfer learning, Table 6), e.g. pku2-xsub."),
    click.option("--preset", default="auto", show_default=True, type=click.Choice(PRESET_CHOICES),
                 help="auto = quick for the synthetic data, small for a prepared dataset of fewer than 3,000 "
                      "training clips, paper otherwise."),
    click.option("--epochs", default=None, type=click.IntRange(min=1),
                 help="Pretraining epochs (more if needed for pretrain.min_steps steps: small preset)."),
    click.option("--batch-size", default=None, type=click.IntRange(min=1), help="Pretraining batch size."),
    click.option("--seed", default=None, type=click.IntRange(min=0)),
    click.option("--seeds", default=None, help="Comma-separated seeds: repeat the run and report mean ± std, e.g. 0,1,2,3,4."),
    click.option("--config", "config_files", multiple=True, type=click.Path(), help="YAML/JSON override file(s)."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any config field, e.g. --set probe.epochs=50."),
    click.option("--run-dir", default=None, type=click.Path(), help="Run directory (default runs/<dataset>-<backbone>-<time>)."),
    click.option("--resume", is_flag=True, help="Continue the run in --run-dir: finished stages are kept, "
                 "an interrupted one continues from its last checkpoint."),
    click.option("--device", default=None, help="cpu (default), cuda, cuda:<i> or auto."),
    click.option("--plugin", "plugins", multiple=True, help="Module or .py file that registers extra backbones."),
    click.option("--threads", default=None, type=click.IntRange(min=0),
                 help="torch threads (default or 0: torch's choice)."),
    click.option("--bf16", is_flag=True, default=None, help="bfloat16 autocast for pretraining."),
    click.option("--no-progress", is_flag=True, help="No progress bars."),
    click.option("--logger", "loggers", multiple=True, type=click.Choice(["jsonl", "csv", "tensorboard"]),
                 help="Where per-epoch metrics go (repeat for several) [default: jsonl = metrics.jsonl]; "
                      "tensorboard needs pip install 'asma[tensorboard]'."),
    click.option("--print-config", is_flag=True,
                 help="Print the resolved configuration (JSON) and exit: nothing is run or written.")]


@main.command()
@_train_options
def train(**options) -> None:
    """Run ASMa end to end: pretrain the two encoders (asymmetric masking), linear evaluation,
    fine-tuning and distillation into the student (the preset's stages, or --stages)."""
    _train(probe=True, **options)


@main.command()
@_train_options
def pretrain(**options) -> None:
    """Pretrain ASMa only: writes the run directory with its encoders (continue with
    'asma linear', 'asma finetune' or 'asma distill' on it)."""
    _train(probe=False, **options)


def _train(probe, plugins, seeds, resume, no_progress, print_config, loggers, **options) -> None:
    from asma.train.options import budget_warning, config_from_options
    from asma.train.engine import is_main_process
    from asma.train.run import run_seeds, run_train
    _load_plugins(plugins)
    cfg = config_from_options(resume=resume, **options)
    warning = None if resume or not is_main_process() else budget_warning(cfg)
    if warning:
        Console(stderr=True).print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
    if loggers:
        cfg.loggers = list(dict.fromkeys(loggers))
    if print_config:
        if not probe:
            cfg.stages = ["pretrain"]  # what run_train(probe=False) runs
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return
    if seeds:
        if resume:
            raise ValueError("--seeds cannot be combined with --resume; resume each seed-<s> run directory")
        if not probe:
            raise ValueError("--seeds repeats whole train runs; use 'asma train --seeds'")
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--seeds expects comma-separated integers, got {seeds!r}") from None
        if any(s < 0 for s in seed_list):
            raise ValueError(f"--seeds must be integers >= 0, got {seeds!r}")
        _, summary = run_seeds(cfg, seed_list, console=console, progress=not no_progress)
        table = Table(title=f"ASMa over seeds {seed_list}: mean ± std")
        for col in ("model", "top-1 %", "top-5 %"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for s in summary:
            table.add_row(s.name, f"{s.top1_mean:.1f} ± {s.top1_std:.1f}", f"{s.top5_mean:.1f} ± {s.top5_std:.1f}")
        console.print(table)
        return
    result = run_train(cfg, resume=resume, console=console, progress=not no_progress, probe=probe)
    if not is_main_process():
        return
    if not probe or not result.rows:  # pretraining only: no result rows to tabulate
        console.print(f"pretrained encoders in {result.run_dir / 'encoders'} ({result.seconds:.0f} s)")
        return
    what = "+".join(cfg.streams) if cfg.streams else cfg.data.stream
    console.print(results_table(result.rows, f"ASMa: {cfg.data.label}, {cfg.model.backbone}, {what}"))
    console.print(f"run directory: {result.run_dir}  ({result.seconds:.0f} s)")


def _print_rows(rows, title: str) -> None:
    from asma.train.engine import is_main_process
    if is_main_process():  # under torchrun every rank computes, rank 0 reports
        console.print(results_table(rows, title))


def _stage_config(run_dir: str, section: str, options: dict):
    """The run's ``finetune``/``distill`` config with the given command-line options applied."""
    import dataclasses

    from asma.train.rundir import read_config
    from asma.train.validation import check_section
    base = getattr(read_config(run_dir), section)
    stage_cfg = dataclasses.replace(base, **{k: v for k, v in options.items() if v is not None})
    check_section(stage_cfg, f"{section}.")
    return stage_cfg


_RUN_DIR = click.option("--run-dir", required=True, type=click.Path(exists=True), help="A pretraining run directory.")
_DEVICE = click.option("--device", default=None, help="cpu, cuda, cuda:<i> or auto [the run's device].")


@main.command()
@_RUN_DIR
@_DEVICE
def linear(run_dir: str, device: Optional[str]) -> None:
    """Linear evaluation of a run's frozen encoders (per encoder, averaged, aligned)."""
    from asma.train.stages import linear_run
    _print_rows(linear_run(run_dir, console=console, device=device), f"linear evaluation: {run_dir}")


@main.command()
@_RUN_DIR
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="Fine-tuning epochs per encoder [run config; paper 150].")
@click.option("--lr", default=None, type=float, help="[run config; paper 5e-3]")
@click.option("--batch-size", default=None, type=int, help="[run config; paper 128]")
@click.option("--align-epochs", default=None, type=int, help="[run config; paper 50]")
@click.option("--align-lr", default=None, type=float, help="[run config; paper 1e-4]")
@click.option("--resume", is_flag=True, help="Continue from the last fine-tuning checkpoints.")
@click.option("--no-progress", is_flag=True)
@_DEVICE
def finetune(run_dir, resume, no_progress, device, **options) -> None:
    """Fine-tune each encoder end to end, then the alignment module on top (paper §4). Unset
    options take the run's ``finetune`` config."""
    from asma.train.stages import finetune_run
    ft = _stage_config(run_dir, "finetune", options)
    rows = finetune_run(run_dir, ft, resume=resume, console=console, progress=not no_progress, device=device)
    _print_rows(rows, f"fine-tuning: {run_dir}")


@main.command()
@_RUN_DIR
@click.option("--teacher", default=None, type=click.Choice(["linear", "finetune"]),
              help="The linear-probed or the fine-tuned ASMa classifier [run config; default linear].")
@click.option("--tau", default=None, type=float, help="Temperature of Eq. 13 [run config; default 8].")
@click.option("--epochs", default=None, type=click.IntRange(min=1), help="[run config; paper 150]")
@click.option("--lr", default=None, type=float, help="Default 1e-2 (logits) or 1e-3 (features).")
@click.option("--batch-size", default=None, type=int, help="[run config; paper 128]")
@click.option("--layers", default=None, type=click.IntRange(min=1), help="Student depth [default 5].")
@click.option("--mode", type=click.Choice(["logits", "features"]), default=None, help="[default logits]")
@click.option("--resume", is_flag=True)
@click.option("--no-progress", is_flag=True)
@_DEVICE
def distill(run_dir, layers, resume, no_progress, device, **options) -> None:
    """Distil the run's ASMa teacher into stgcn-student, without labels. Unset options take the
    run's ``distill`` config."""
    from asma.train.stages import distill_run
    dc = _stage_config(run_dir, "distill", options)
    if layers is not None:
        dc.student_cfg = {**dc.student_cfg, "num_layers": layers}
    rows = distill_run(run_dir, dc, resume=resume, console=console, progress=not no_progress, device=device)
    _print_rows(rows, f"distillation: {run_dir}")


@main.command()
@_RUN_DIR
@click.option("--over", "what", type=click.Choice(["tau", "layers", "pairings", "n_joints", "n_frames"]),
              required=True, help="Temperature (Fig. 4 left) or student depth (Fig. 4 right); or pretrain once "
              "per masking pairing (Fig. 3) or per masked-joint/frame count (Table 7).")
@click.option("--values", default=None, metavar="V1,V2,..",
              help="Default: tau 1,2,4,6,8,9,10; layers 2,3,4,5,6,7; pairings all nine SPATIAL-TEMPORAL "
              "of random/high/low (e.g. low-high); n_joints 7,8,9,10; n_frames 7,8,9,10,11.")
@click.option("--seeds", default=None, metavar="S1,S2,..",
              help="pairings/n_joints/n_frames: one run per seed, mean ± std [0].")
@click.option("--teacher", default=None, type=click.Choice(["linear", "finetune"]), help="[run config]")
@click.option("--epochs", default=None, type=int,
              help="Distillation (tau, layers) or pretraining epochs per value, exactly (min_steps off) [run config].")
@click.option("--tau", default=None, type=float, help="Fixed tau of a depth sweep [run config].")
@_DEVICE
def sweep(run_dir, what, values, device, seeds, **options) -> None:
    """Distil the run's teacher once per value of tau or of the student depth (Fig. 4), or
    pretrain + linear-probe once per masking setting with the run's config (Fig. 3, Table 7)."""
    if what in ("pairings", "n_joints", "n_frames"):
        from .ablation import run_ablation
        return run_ablation(run_dir, what, values, seeds, options["epochs"], device, console)
    if seeds:
        raise ValueError("--seeds applies to --over pairings, n_joints or n_frames")
    from asma.train.distill import DEFAULT_DEPTHS, DEFAULT_TAUS
    from asma.train.engine import is_main_process
    from asma.train.stages import sweep_run
    dc = _stage_config(run_dir, "distill", options)
    if values:
        try:
            vals = [float(v) if what == "tau" else int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--values expects comma-separated {'numbers' if what == 'tau' else 'integers'}, "
                             f"got {values!r}") from None
    else:
        vals = list(DEFAULT_TAUS if what == "tau" else DEFAULT_DEPTHS)
    rows = sweep_run(run_dir, what, vals, dc, device=device)
    if not is_main_process():
        return
    table = Table(title=f"distillation sweep over {what} ({dc.teacher} teacher): {run_dir}")
    for col in (what, "top-1 %", "top-5 %", "student params", "agreement %"):
        table.add_column(col, justify="right")
    for r in rows:
        agree = r.get("final_agreement")
        table.add_row(f"{r[what]:g}", f"{r['top1']:.1f}", f"{r['top5']:.1f}", f"{r['params']:,}",
                      "-" if agree is None else f"{agree:.1f}")
    console.print(table)


@main.command()
@_RUN_DIR
@click.option("--stage", type=click.Choice(["finetune", "distill", "distill-ft"]), required=True,
              help="Which saved classifier of the run to evaluate.")
@click.option("--name", default=None, help="For --stage finetune: an encoder name (default theta) or 'aligned'.")
@_DEVICE
def evaluate(run_dir: str, stage: str, name: Optional[str], device: Optional[str]) -> None:
    """Top-1/top-5, per-class accuracy and confusion matrix of a run's classifier on its test split."""
    from asma.train.stages import evaluate_run
    res = evaluate_run(run_dir, stage, name, device)
    table = Table(title=f"evaluation: {res.name} ({run_dir})")
    for col in ("class", "accuracy %"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for cname, acc in zip(res.class_names, res.per_class):
        table.add_row(cname, "-" if acc is None else f"{acc:.1f}")
    console.print(table)
    console.print(f"top-1 {res.top1:.1f}%  top-5 {res.top5:.1f}%  (confusion matrix and logits in "
                  f"{Path(run_dir) / stage})")


@main.command()
def layouts() -> None:
    """List the built-in skeleton layouts."""
    from asma.graph import get_layout, layout_description, list_layouts
    table = Table(title="skeleton layouts")
    for col in ("name", "joints", "bones", "centre", "description"):
        table.add_column(col)
    for name in list_layouts():
        s = get_layout(name)
        table.add_row(name, str(s.num_joints), str(s.num_edges_undirected), s.joint_names[s.center],
                      layout_description(name))
    console.print(table)


@main.command()
@click.option("--layout", default="ntu25", show_default=True)
@click.option("--frames", default=50, show_default=True)
@click.option("--plugin", "plugins", multiple=True)
def backbones(layout: str, frames: int, plugins: Tuple[str, ...]) -> None:
    """List registered backbones with parameters and FLOPs per (3, T, V, 2) clip."""
    import torch

    from asma.graph import get_layout
    from asma.models import count_flops, count_parameters, create_backbone, list_backbones
    _load_plugins(plugins)
    skel = get_layout(layout)
    table = Table(title=f"backbones on {layout}, input (3, {frames}, {skel.num_joints}, 2)")
    for col in ("name", "params", "GFLOPs", "out dim"):
        table.add_column(col, justify="right" if col != "name" else "left")
    for name in list_backbones():
        m = create_backbone(name, skel, 3)
        flops = count_flops(m, torch.zeros(1, 3, frames, skel.num_joints, 2))
        table.add_row(name, f"{count_parameters(m):,}", f"{flops / 1e9:.3f}", str(m.out_dim))
    console.print(table)


from .data import data  # noqa: E402  (command groups in their own modules)
from .zoo import zoo  # noqa: E402
from .plot import plot  # noqa: E402
from .deploy import bench, export_cmd, predict  # noqa: E402

main.add_command(data)
main.add_command(zoo)
main.add_command(plot)
for _cmd in (bench, export_cmd, predict):
    main.add_command(_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
