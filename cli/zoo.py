"""``asma zoo``: list, pull, inspect and publish pretrained models (Hugging Face Hub).

A thin layer over :mod:`asma.zoo`; output goes through rich, errors are one line.
Run standalone as ``python -m asma.cli.zoo ...`` or, once registered, as ``asma zoo ...``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


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
_token_option = click.option("--token", default=None, help="Hub token (default: $HF_TOKEN / the logged-in token).")
_offline_option = click.option("--offline", is_flag=True, help="Use the local cache only (no network).")


def _fetch_options(revision_help: str):
    """NAME and the options that find and download it (pull, info), in this --help order."""
    def apply(f):
        for option in reversed((click.argument("name"), click.option("--revision", default=None, help=revision_help),
                                _endpoint_option, _offline_option, _cache_option, _token_option, _manifest_option)):
            f = option(f)
        return f
    return apply


@click.group(name="zoo", cls=ZooGroup)
def zoo():
    """Pretrained teachers and students on the Hugging Face Hub: list, pull, info, push, export.

    NAME is a zoo alias (see 'asma zoo list'), 'org/name[@revision]' or 'hf-hub:org/name[@revision]'.
    """


@zoo.command("list")
@_manifest_option
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def list_cmd(manifests: Sequence[Path], as_json: bool) -> None:
    """List the named models of the manifest(s)."""
    from asma.zoo.registry import ENV_MANIFEST, list_models
    con = _console()
    entries = list_models(manifests)
    if as_json:
        click.echo(json.dumps({e.alias: e.to_dict() for e in entries}, indent=2, sort_keys=True))
        return
    if not entries:
        con.print(escape("no named models: no asma weights have been published to the Hub yet, so the built-in "
                         f"manifest is empty. Add aliases with --manifest FILE or ${ENV_MANIFEST}, or pull a "
                         "repository directly: asma zoo pull org/name[@revision]"))
        return
    table = Table(title="asma model zoo")
    for col in ("alias", "kind", "repository", "revision", "description"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.alias, e.kind, e.repo_id, e.revision, e.description)
    con.print(table)


@zoo.command("pull")
@_fetch_options("Tag, branch or commit (overrides an alias's pinned revision).")
def pull_cmd(name: str, revision: Optional[str], endpoint: Optional[str], offline: bool,
             cache_dir: Optional[Path], token: Optional[str], manifests: Sequence[Path]) -> None:
    """Download NAME into the Hub cache (or find it there) and print where it is."""
    from asma.zoo.config import PretrainedConfig
    from asma.zoo.hub import commit_of, parse_model_name, pull
    con = _console()
    ref = parse_model_name(name, revision, manifests)
    path = pull(str(ref), cache_dir=cache_dir, endpoint=endpoint, local_files_only=offline, token=token)
    cfg = PretrainedConfig.from_json(path / "config.json")
    con.print(f"[bold green]pulled[/] {escape(str(ref))} (commit {commit_of(path)})"
              + (f" [dim]alias {escape(ref.alias)}[/]" if ref.alias else ""))
    con.print(f"{cfg.kind}: {escape(cfg.describe())}, stream {cfg.stream}")
    con.print(f"path: {escape(str(path))}")


def _load_config(name: str, revision, endpoint, offline, cache_dir, token, manifests):
    from asma.zoo.config import PretrainedConfig
    from asma.zoo.hub import commit_of, parse_model_name, pull
    local = Path(name)
    if local.is_dir():
        return PretrainedConfig.from_json(local / "config.json"), str(local), None
    ref = parse_model_name(name, revision, manifests)
    path = pull(str(ref), cache_dir=cache_dir, endpoint=endpoint, local_files_only=offline, token=token)
    return PretrainedConfig.from_json(path / "config.json"), str(ref), commit_of(path)


def _classes(cfg) -> str:
    if not cfg.num_classes:
        return "-"
    names = cfg.class_names[:6]
    more = ", ..." if len(cfg.class_names) > 6 else ""
    return f"{cfg.num_classes} ({', '.join(names)}{more})" if names else str(cfg.num_classes)


@zoo.command("info")
@_fetch_options("Tag, branch or commit.")
@click.option("--json", "as_json", is_flag=True, help="Print config.json instead of tables.")
def info_cmd(name: str, revision, endpoint, offline, cache_dir, token, manifests, as_json: bool) -> None:
    """Show the config and metrics of NAME (a model folder, alias or Hub name)."""
    cfg, source, commit = _load_config(name, revision, endpoint, offline, cache_dir, token, manifests)
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
    from asma.zoo.schema import MODEL_FILES
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


if __name__ == "__main__":  # pragma: no cover
    zoo(prog_name="asma zoo")
