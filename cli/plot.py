"""``asma plot``: the paper's figures from a run directory or a dataset (thin layer over
:mod:`asma.plot`; needs ``pip install 'asma[plot]'``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
from rich.console import Console

console = Console()

_OUT = click.option("--out", default=None, type=click.Path(dir_okay=False),
                    help="PNG to write (the data go next to it as .json/.csv) [<run>/plots/<figure>.png or "
                         "plots/<dataset>-<figure>.png].")
_RUN = click.option("--run-dir", default=None, type=click.Path(exists=True, file_okay=False), help="A run directory.")
_DATASET = [click.option("--dataset", default="synthetic", show_default=True,
                         help="'synthetic' (embedded) or a prepared dataset, e.g. utkinect-xsub."),
            click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                         help="Folder written by 'asma data prepare'."),
            click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)]


def _dataset_options(f):
    for opt in reversed(_DATASET):
        f = opt(f)
    return f


def _load(dataset: str, data_dir: Optional[str], split: str):
    from asma.data.catalog import load_dataset
    from asma.plot.common import join_splits
    from asma.train.config import DataConfig
    train, test = load_dataset(DataConfig(dataset=dataset, data_dir=data_dir))
    return train if split == "train" else test if split == "test" else join_splits(train, test)


def _out(out: Optional[str], run_dir: Optional[str], dataset: Optional[str], name: str) -> Path:
    if out:
        return Path(out)
    return Path(run_dir) / "plots" / f"{name}.png" if run_dir else Path("plots") / f"{dataset}-{name}.png"


def _done(res) -> None:
    console.print(f"wrote {res.png}  (data: {', '.join(str(p) for p in res.files.values())})", soft_wrap=True)


@click.group()
def plot() -> None:
    """Figures as PNG + the data behind them (JSON/CSV): t-SNE, motion vs degree, masks,
    encoder difference, training curves, confusion matrix."""
    from asma.plot.common import pyplot
    pyplot()  # fail here, with the install command, when matplotlib is missing


@plot.command()
@_RUN
@click.option("--encoder", "which", default="theta", show_default=True,
              help="With --run-dir: theta, phi (pretrained encoders), student, student-ft (distilled), "
              "teacher or teacher-ft (aligned feature of the linear-probed / fine-tuned teacher).")
@click.option("--model", default=None, help="Instead of --run-dir: any name asma.create_model loads with weights "
              "(model folder, RUN:what, hf-hub:..., zoo alias); embeds --dataset's test split.")
@click.option("--dataset", default=None, help="With --model: the dataset to embed (test split).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False))
@click.option("--classes", default=None, type=int, help="Show this many randomly chosen classes (Fig. 5: 9).")
@click.option("--seed", default=0, show_default=True, help="Class choice and t-SNE seed.")
@click.option("--perplexity", default=30.0, show_default=True)
@_OUT
def tsne(run_dir, which, model, dataset, data_dir, classes, seed, perplexity, out) -> None:
    """t-SNE of clip embeddings coloured by class (paper figures 5 and 7)."""
    from asma.plot.embedding import plot_tsne, run_encoder
    if (run_dir is None) == (model is None):
        raise ValueError("give either --run-dir (and --encoder) or --model (and --dataset)")
    if run_dir:
        from asma.train.rundir import downstream_data, read_config
        enc, arrays, stream = run_encoder(run_dir, which)
        dataset = downstream_data(read_config(run_dir)).dataset
        name, label = f"tsne-{which}", f"{which} of run {Path(run_dir).name}"
    else:
        import asma
        if not dataset:
            raise ValueError("--model needs --dataset (the clips to embed)")
        net = asma.create_model(model, pretrained=True)
        enc = net.features if hasattr(net, "features") else getattr(net, "encoder", net)
        stream = getattr(getattr(net, "pretrained_cfg", None), "stream", "joint")
        arrays = _load(dataset, data_dir, "test")
        name, label = f"tsne-{Path(model).name}", model
    res = plot_tsne(enc, arrays, _out(out, run_dir, dataset, name), stream, classes, seed, perplexity,
                    title=f"t-SNE of the {label} on {dataset} test clips")
    _done(res)


@plot.command()
@_dataset_options
@_OUT
def motion(dataset, data_dir, split, out) -> None:
    """Motion intensity of every joint against its degree (paper figure 1)."""
    from asma.plot.motion import plot_motion_degree
    arrays = _load(dataset, data_dir, split)
    _done(plot_motion_degree(arrays, _out(out, None, dataset, "motion-degree"),
                             title=f"Joint degree vs motion intensity: {dataset} ({split} clips)"))


@plot.command()
@_dataset_options
@click.option("--clip", "index", default=0, show_default=True, help="Index of the clip in the split.")
@click.option("--n-joints", default=9, show_default=True)
@click.option("--n-frames", default=10, show_default=True)
@click.option("--seed", default=0, show_default=True)
@_OUT
def masks(dataset, data_dir, split, index, n_joints, n_frames, seed, out) -> None:
    """What each masking strategy masks on one clip (HDSM/LDSM/HMTM/LMTM/random)."""
    from asma.plot.masks import plot_masks
    arrays = _load(dataset, data_dir, split)
    _done(plot_masks(arrays, _out(out, None, dataset, f"masks-{index}"), index, n_joints, n_frames, seed))


@plot.command()
@click.option("--run-dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--stage", type=click.Choice(["linear", "finetune"]), default="linear", show_default=True)
@click.option("--first", default="theta", show_default=True)
@click.option("--second", default="phi", show_default=True)
@_OUT
def encoders(run_dir, stage, first, second, out) -> None:
    """Per-class accuracy difference of the two encoders (paper figure 6).

    Positive bars: the second encoder (default phi) is better on that class."""
    from asma.plot.runs import plot_encoder_difference
    _done(plot_encoder_difference(run_dir, _out(out, run_dir, None, f"encoders-{stage}"), stage, first, second))


@plot.command()
@click.option("--run-dir", required=True, type=click.Path(exists=True, file_okay=False))
@_OUT
def curves(run_dir, out) -> None:
    """Training curves of every stage of a run (its metrics.jsonl files)."""
    from asma.plot.runs import plot_curves
    _done(plot_curves(run_dir, _out(out, run_dir, None, "curves")))


@plot.command()
@_RUN
@click.option("--stage", default="linear", show_default=True,
              help="With --run-dir: linear, finetune, distill or distill-ft.")
@click.option("--row", default=None, help="Result row of the stage [its last, e.g. 'theta+phi aligned'].")
@click.option("--eval", "eval_json", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Instead of --run-dir: an eval_*.json written by 'asma evaluate'.")
@click.option("--counts", is_flag=True, help="Show clip counts instead of % of each true class.")
@_OUT
def confusion(run_dir, stage, row, eval_json, counts, out) -> None:
    """Confusion matrix of a run stage or of an evaluation."""
    from asma.plot.runs import plot_confusion
    if (run_dir is None) == (eval_json is None):
        raise ValueError("give either --run-dir (and --stage/--row) or --eval EVAL_JSON")
    where = run_dir or str(Path(eval_json).parent)
    name = f"confusion-{stage}" if run_dir else f"confusion-{Path(eval_json).stem}"
    _done(plot_confusion(_out(out, where, None, name), run_dir, stage, row, eval_json, normalize=not counts))


@plot.command()
@click.option("--run-dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--over", "what", type=click.Choice(["pairings", "n_joints", "n_frames"]), default="pairings",
              show_default=True)
@_OUT
def sweep(run_dir, what, out) -> None:
    """The masking ablation of 'asma sweep' (paper figure 3, table 7)."""
    from asma.plot.sweeps import plot_sweep
    _done(plot_sweep(run_dir, _out(out, run_dir, None, f"sweep-{what}"), what))
