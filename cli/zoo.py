"""``asma zoo``: list, pull, inspect and publish pretrained models (Hugging Face Hub).

A thin layer over :mod:`asma.zoo`; output goes through rich, errors are one line.
Run standalone as ``python -m asma.cli.zoo ...`` or, once registered, as ``asma zoo ...``.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True, log_path=False)


class ZooGroup(click.Group):
    """Turns zoo/library errors (bad names, missing models, unreachable Hub, bad configs) into one
    clear line and exit code 2 instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError) as e:
            msg = str(e).strip().replace("\n", " ")
            _console().print(f"[bold red]error:[/] {escape(msg)}")
            sys.exit(2)


_manifest_option = click.option(
    "--manifest", "manifests", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Extra manifest JSON file(s) defining aliases (also: $ASMA_ZOO_MANIFEST).")
_endpoint_option = click.option("--endpoint", default=None, help="Hub URL (default: $HF_ENDPOINT or huggingface.co).")
_cache_option = click.option("--cache-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
                             help="Hub cache folder (default: $HF_HUB_CACHE or $HF_HOME/hub).")
_token_option = click.option("--token", default=None,
                             help="Hub token. Prefer $HF_TOKEN or 'hf auth login' (huggingface_hub's stored "
                                  "token): a token on the command line is visible in the process list.")
_offline_option = click.option("--offline", is_flag=True, help="Use the local cache only (no network).")
_zoo_cache_option = click.option(
    "--zoo-cache", default=None, type=click.Path(file_okay=False, path_type=Path),
    help="Local zoo cache of converted and built models (default: $ASMA_ZOO_CACHE or ~/.cache/asma/zoo).")


def _fetch_options(revision_help: str):
    """NAME and the options that find and download it (pull, info), in this --help order."""
    def apply(f):
        for option in reversed((click.argument("name"), click.option("--revision", default=None, help=revision_help),
                                _endpoint_option, _offline_option, _cache_option, _zoo_cache_option, _token_option,
                                _manifest_option)):
            f = option(f)
        return f
    return apply


@click.group(name="zoo", cls=ZooGroup)
def zoo():
    """Pretrained models: list, pull, info, import lineage checkpoints, build recipes, push, publish, export.

    NAME is a zoo name (see 'asma zoo list'), 'org/name[@revision]', 'hf-hub:org/name[@revision]'
    or a model folder. Every downloaded or cached file is checked against its recorded sha256.
    """


def _state(entry, zoo_cache=None) -> str:
    """``pullable``, ``cached`` (pulled: works offline), ``built`` (built locally) or ``recipe``."""
    from asma.zoo.cache import cached_folder
    cached = cached_folder(entry.alias, zoo_cache) is not None
    if entry.pullable:
        return "cached" if cached and entry.url else "pullable"
    return "built" if cached else "recipe"


def _entry_metric(entry, zoo_cache=None) -> str:
    """The headline top-1 (best protocol): measured for a local build, ``*`` for the paper's expected value."""
    from asma.zoo.cache import cached_folder
    metrics, mark = entry.metrics, ""
    folder = cached_folder(entry.alias, zoo_cache) if not entry.pullable else None
    if folder is not None:
        from asma.pretrained.config import PretrainedConfig
        metrics = PretrainedConfig.from_json(folder).metrics
    elif not metrics and entry.recipe is not None:
        metrics, mark = entry.recipe.expected, "*"
    scored = [(v["top1"], k.split("/")[-1]) for k, v in metrics.items() if "top1" in v]
    if not scored:
        return "-"
    top1, protocol = max(scored)
    return f"{top1:.1f} {protocol}{mark}"


_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,6}$")  # as wide as the column's header: mit, other
LEGEND = ("state: pullable = 'asma zoo pull NAME' downloads it; cached = pulled, works offline; built = made "
          "here by 'asma zoo build'; recipe = 'asma zoo build NAME --data-dir DIR' trains it. top-1: the headline "
          "result and its protocol; * = expected (the paper's or the quick start's number), not measured here.")


def zoo_table(entries, zoo_cache=None, wide: bool = False) -> Tuple[Table, List[str]]:
    """The ``asma zoo list`` table and the lines printed under it.

    Readable at 80 columns: a licence that is not a short id (``mit``, ``other``) appears as a
    footnote mark (``[1]``) explained under the table; ``wide`` adds the kind and prints
    licences in full (about 120 columns). The state, size, cost and metric cells never wrap.
    """
    table = Table(title="asma model zoo", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))
    table.add_column("name", no_wrap=True)
    if wide:
        table.add_column("kind", no_wrap=True)
    for col in ("state", "params", "GFLOPs", "top-1 %"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("params", "GFLOPs") else "left")
    table.add_column("licence", overflow="fold", no_wrap=not wide)
    notes: Dict[str, str] = {}
    for e in entries:
        lic = e.license if wide or _LICENSE_ID.match(e.license) else notes.setdefault(e.license, f"[{len(notes) + 1}]")
        cells = [e.alias] + ([e.kind] if wide else []) + [
            _state(e, zoo_cache), f"{e.params / 1e6:.2f} M" if e.params else "-",
            f"{e.gflops:.3g}" if e.gflops else "-", _entry_metric(e, zoo_cache), lic]
        table.add_row(*map(escape, cells))
    lines = [LEGEND] + [f"{mark} {text}" for text, mark in notes.items()]
    return table, lines


@zoo.command("list")
@_manifest_option
@_zoo_cache_option
@click.option("--wide", is_flag=True, help="Add the kind column and print licences in full (about 120 columns).")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def list_cmd(manifests: Sequence[Path], zoo_cache: Optional[Path], wide: bool, as_json: bool) -> None:
    """List the named models: state (pullable, cached, built, recipe), size, cost, metric, licence."""
    from asma.zoo.registry import list_entries
    entries = list_entries(manifests)
    if as_json:
        click.echo(json.dumps({e.alias: {**e.to_dict(), "state": _state(e, zoo_cache)} for e in entries}, indent=2,
                              sort_keys=True))
        return
    table, lines = zoo_table(entries, zoo_cache, wide)
    con = Console(highlight=False)  # word-wrapped at the terminal width (the legend is prose)
    con.print(table)
    for line in lines:
        con.print(escape(line))


@zoo.command("pull")
@_fetch_options("Tag, branch or commit (overrides an alias's pinned revision).")
def pull_cmd(name: str, revision: Optional[str], endpoint: Optional[str], offline: bool,
             cache_dir: Optional[Path], zoo_cache: Optional[Path], token: Optional[str],
             manifests: Sequence[Path]) -> None:
    """Download NAME (or find it in the cache), verify every file's sha256, and print where it is."""
    from asma.pretrained.config import PretrainedConfig
    from asma.zoo.hub import commit_of, fetch
    con = _console()
    path = fetch(name, revision=revision, manifests=manifests, cache_dir=cache_dir, zoo_cache=zoo_cache,
                 endpoint=endpoint, offline=offline, token=token)
    cfg = PretrainedConfig.from_json(path / "config.json")
    commit = commit_of(path)
    con.print(f"[bold green]pulled[/] {escape(name)}" + (f" (commit {commit})" if commit else "")
              + " [dim]sha256 verified[/]")
    con.print(f"{cfg.kind}: {escape(cfg.describe())}, stream {cfg.stream}")
    for key, vals in sorted(cfg.metrics.items()):
        con.print(f"  {escape(key)}: top-1 {vals.get('top1', float('nan')):.2f} %")
    con.print(f"path: {escape(str(path))}")


def _load_config(name: str, revision, endpoint, offline, cache_dir, zoo_cache, token, manifests):
    from asma.pretrained.config import PretrainedConfig
    from asma.zoo.hub import commit_of, fetch
    path = fetch(name, revision=revision, manifests=manifests, cache_dir=cache_dir, zoo_cache=zoo_cache,
                 endpoint=endpoint, offline=offline, token=token)
    return PretrainedConfig.from_json(path / "config.json"), name, commit_of(path)


def _classes(cfg) -> str:
    if not cfg.num_classes:
        return "-"
    names = cfg.class_names[:6]
    more = ", ..." if len(cfg.class_names) > 6 else ""
    return f"{cfg.num_classes} ({', '.join(names)}{more})" if names else str(cfg.num_classes)


def _recipe_info(name: str, manifests, message: str, as_json: bool) -> None:
    """``asma zoo info`` of a recipe nobody has built: the entry, then what it is."""
    from asma.zoo.registry import resolve
    entry = resolve(name, manifests)
    if as_json:
        click.echo(json.dumps(entry.to_dict(), indent=2, sort_keys=True))
        return
    table = Table(title=escape(f"{name} (recipe)"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    r = entry.recipe
    for k, v in (("kind", entry.kind), ("description", entry.description), ("dataset", r.dataset),
                 ("preset", r.preset), ("stages", ", ".join(r.stages)), ("model kept", r.export),
                 ("overrides", json.dumps(r.overrides, sort_keys=True)), ("data", r.data), ("cost", r.cost),
                 ("expected", json.dumps(r.expected, sort_keys=True)), ("licence", entry.license)):
        table.add_row(k, escape(str(v)))
    con = _console()
    con.print(table)
    con.print(escape(message))


@zoo.command("info")
@_fetch_options("Tag, branch or commit.")
@click.option("--json", "as_json", is_flag=True, help="Print config.json instead of tables.")
def info_cmd(name: str, revision, endpoint, offline, cache_dir, zoo_cache, token, manifests, as_json: bool) -> None:
    """Show the config and metrics of NAME (a model folder, alias or Hub name)."""
    from asma.zoo.registry import NotBuiltError
    try:
        cfg, source, commit = _load_config(name, revision, endpoint, offline, cache_dir, zoo_cache, token, manifests)
    except NotBuiltError as e:
        return _recipe_info(name, manifests, str(e), as_json)
    if as_json:
        click.echo(cfg.to_json_string(), nl=False)
        return
    con = _console()
    title = source + (f" @ {commit[:12]}" if commit else "")
    table = Table(title=escape(title), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    kw = cfg.backbone_kwargs()
    rows = [("kind", cfg.kind),
            ("backbone", cfg.backbone["name"] + (f" {json.dumps(kw, sort_keys=True)}" if kw else "")),
            ("layout", f"{cfg.layout_name} ({cfg.num_joints} joints)"),
            ("in_channels", f"{cfg.in_channels} ({cfg.num_coords} coordinates)"),
            ("stream", cfg.stream), ("num_frames", str(cfg.num_frames or "any")),
            ("classes", _classes(cfg)),
            ("dataset", cfg.dataset or "-"), ("license", cfg.license),
            ("base_model", cfg.base_model or "-"), ("paper", cfg.paper or "-"),
            ("asma_version", cfg.asma_version)]
    if cfg.preprocessing:
        rows.append(("preprocessing", json.dumps(cfg.preprocessing, sort_keys=True)))
    if cfg.training:
        rows.append(("training", json.dumps(cfg.training, sort_keys=True)))
    if cfg.description:
        rows.append(("description", cfg.description))
    for k, v in rows:
        table.add_row(k, escape(str(v)))
    con.print(table)
    if cfg.metrics:
        mt = Table(title="metrics")
        mt.add_column("dataset / protocol")
        mt.add_column("top-1 %", justify="right")
        mt.add_column("top-5 %", justify="right")
        for key, vals in sorted(cfg.metrics.items()):
            mt.add_row(escape(key), *(f"{vals[m]:.2f}" if m in vals else "-" for m in ("top1", "top5")))
        con.print(mt)
    else:
        con.print("metrics: none recorded")


@zoo.command("push")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("repo_id")
@_endpoint_option
@click.option("--revision", default=None, help="Branch to commit to (created if missing; default main).")
@click.option("--tag", default=None, help="Also tag the new commit (e.g. v1.0) so aliases can pin it.")
@click.option("--private", is_flag=True, help="Create the repository private.")
@_token_option
@click.option("--message", default=None, help="Commit message.")
def push_cmd(directory: Path, repo_id: str, endpoint, revision, tag, private: bool, token, message) -> None:
    """Publish the model folder DIRECTORY (written by save_pretrained) to REPO_ID on the Hub."""
    from asma.zoo.hub import push_to_hub
    con = _console()
    sha = push_to_hub(directory, repo_id, revision=revision, endpoint=endpoint, token=token, private=private,
                      commit_message=message, tag=tag)
    con.print(f"[bold green]pushed[/] {escape(str(directory))} -> {escape(repo_id)} commit {sha}"
              + (f" (tag {escape(tag)})" if tag else ""))
    con.print(f"pull it with: asma zoo pull hf-hub:{escape(repo_id)}@{escape(tag or sha)}")


@zoo.command("export")
@click.option("--run-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A run directory written by 'asma train'.")
@click.option("--model", "what", required=True,
              help="student, student-ft, teacher, classifier-<encoder> or encoder-<name>.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The model folder to write (config.json, model.safetensors, README.md).")
@click.option("--license", "license_", default="unknown", show_default=True,
              help="Hub licence id of the weights (apache-2.0, cc-by-nc-4.0, other, ...).")
@click.option("--description", default=None, help="Model card description (default: generated from the run).")
@click.option("--paper", default=None, help="Paper reference (URL, arXiv id or citation).")
@click.option("--base-model", default=None, help="For a student: the teacher's Hub repository org/name.")
def export_cmd(run_dir: Path, what: str, out: Path, license_: str, description, paper, base_model) -> None:
    """Write one model of a finished run as a publishable model folder."""
    from asma.pretrained.schema import MODEL_FILES
    from asma.zoo.export import export_run
    con = _console()
    cfg = export_run(run_dir, what, out, license=license_, description=description, paper=paper,
                     base_model=base_model)
    con.print(f"[bold green]exported[/] {escape(what)} of {escape(str(run_dir))} -> {escape(str(out))}")
    con.print(f"{cfg.kind}: {escape(cfg.describe())}, stream {cfg.stream}, dataset {escape(str(cfg.dataset))}")
    for key, vals in sorted(cfg.metrics.items()):
        con.print(f"  {escape(key)}: top-1 {vals['top1']:.2f} %, top-5 {vals['top5']:.2f} %")
    con.print("files: " + ", ".join(f for f in MODEL_FILES if (out / f).is_file()))
    con.print(f"publish it with: asma zoo push {escape(str(out))} org/name")


@zoo.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "fmt", type=click.Choice(["aimclr", "skeletonclr", "crossclr", "actclr", "pstl"]),
              default=None, help="Code base of the checkpoint (default: detected from its key names).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The model folder to write (config.json, model.safetensors, README.md).")
@click.option("--license", "license_", default="other", show_default=True,
              help="Licence id of the weights (the lineage repos are MIT; NTU-trained weights are research-only).")
def import_cmd(file: Path, fmt: Optional[str], out: Path, license_: str) -> None:
    """Convert a lineage linear-evaluation checkpoint FILE (*.pt, read with weights_only=True) into a zoo folder."""
    from asma.zoo.convert import import_checkpoint
    con = _console()
    cfg = import_checkpoint(file, out, fmt, license=license_)
    con.print(f"[bold green]imported[/] {escape(str(file))} ({cfg.source['format']} format, every key mapped) "
              f"-> {escape(str(out))}")
    con.print(f"{cfg.kind}: {escape(cfg.describe())}; input (C, T, V, M) = {cfg.input_shape()[1:]}, "
              f"{cfg.num_params:,} parameters, {cfg.gflops:.2f} GFLOPs per clip")
    con.print("preprocessing: the lineage's NTU pipeline (asma data prepare ntu60 --lineage)")


@zoo.command("build")
@click.argument("name")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of prepared datasets ('asma data prepare ... --out DIR'); not needed for synthetic data.")
@click.option("--run-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default <zoo cache>/.runs/<dataset>-<preset>-<hash>, shared by the recipes of "
                   "one dataset, preset and overrides; an interrupted build resumes there).")
@click.option("--threads", default=0, type=click.IntRange(0, 256), show_default=True,
              help="Torch threads (0 = torch's default; 1 is often fastest on a loaded 2-core machine).")
@_zoo_cache_option
@_manifest_option
def build_cmd(name: str, data_dir: Optional[Path], run_dir: Optional[Path], threads: int, zoo_cache: Optional[Path],
              manifests: Sequence[Path]) -> None:
    """Train the recipe of NAME and install the model in the local zoo cache (with its measured metrics)."""
    from asma.pretrained.config import PretrainedConfig
    from asma.zoo.recipes import build
    con = _console()
    folder = build(name, data_dir=data_dir, manifests=manifests, zoo_cache=zoo_cache, run_dir=run_dir,
                   threads=threads, console=con)
    cfg = PretrainedConfig.from_json(folder)
    src = cfg.source
    order = ["pretrain", "linear", "finetune", "distill", "distill-ft"]
    stages = ", ".join(f"{k} {v:.0f} s" if v is not None else f"{k} not timed"
                       for k, v in sorted(src["stage_seconds"].items(), key=lambda kv: order.index(kv[0])))
    total = f"{src['recipe_seconds']:.0f} s" if src["recipe_seconds"] is not None else "unknown"
    con.print(f"[bold green]built[/] {escape(name)} in {src['build_seconds']:.0f} s -> {escape(str(folder))}")
    con.print(f"  cost of the recipe from scratch: {total} ({stages}; run {escape(src['run_dir'])})")
    for key, vals in sorted(cfg.metrics.items()):
        expected = src["expected"].get(key, {}).get("top1")
        con.print(f"  {escape(key)}: top-1 {vals['top1']:.2f} % measured"
                  + (f" (paper {expected:.1f} %)" if expected is not None else ""))
    con.print(f"use it: asma zoo pull {escape(name)}  |  asma.create_model({name!r}, pretrained=True)")


@zoo.command("publish")
@click.argument("name")
@click.argument("repo_id")
@click.option("--manifest-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Manifest file receiving the published entry (repository, revision, sha256).")
@click.option("--tag", default=None, help="Tag the commit (the entry pins it; default: the commit sha).")
@_endpoint_option
@_token_option
@click.option("--private", is_flag=True, help="Create the repository private.")
@_zoo_cache_option
@_manifest_option
def publish_cmd(name: str, repo_id: str, manifest_out: Path, tag, endpoint, token, private: bool,
                zoo_cache: Optional[Path], manifests: Sequence[Path]) -> None:
    """Push the locally built model NAME to REPO_ID and write its pinned entry to --manifest-out."""
    from asma.zoo.recipes import publish
    con = _console()
    entry = publish(name, repo_id, manifest_out=manifest_out, tag=tag, endpoint=endpoint, token=token,
                    private=private, manifests=manifests, zoo_cache=zoo_cache)
    con.print(f"[bold green]published[/] {escape(name)} -> {escape(repo_id)}@{escape(entry.hub.revision)}; "
              f"entry written to {escape(str(manifest_out))}")
    for f, h in sorted(entry.hub.sha256.items()):
        con.print(f"  sha256 {h}  {escape(f)}")
    con.print(f"pull it: asma zoo pull {escape(name)} --manifest {escape(str(manifest_out))}")


if __name__ == "__main__":  # pragma: no cover
    zoo(prog_name="asma zoo")
