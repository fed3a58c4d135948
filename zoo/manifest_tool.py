"""Maintainer tool: recompute the measured facts of the zoo manifest from the code and the files.

``python -m asma.zoo.manifest_tool --lineage-dir DIR [--ntu-dir DIR] [--manifest FILE] --check|--write``

For every ``url`` entry it finds the checkpoint in ``--lineage-dir`` (by the file name of the
entry's ``url.path``) and recomputes, from that file: its ``sha256`` and ``size``, and on the
converted model (:func:`asma.zoo.convert.convert_lineage`, the converter of the entry) ``params``
and ``gflops`` (asma's counter, as a pulled folder's ``config.json`` records them) and, with
``--ntu-dir``, the agreement on the real NTU-60 samples (each ``.skeleton`` file once, bodies in
file order, the lineage preprocessing of the converted config). For every ``recipe`` entry
without a source it recomputes ``params`` and ``gflops`` of the architecture the recipe trains
(:func:`asma.zoo.recipes.recipe_costs`). ``--check`` lists the fields that differ (exit code 1);
``--write`` rewrites them in place (the file's other content and key order are kept).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import click

from .registry import ZooEntry, ZooError, builtin_manifest_path, read_manifest

PathLike = Union[str, os.PathLike]
#: The agreement key of the lineage entries and its sentence.
AGREEMENT_KEY = "ntu60-real-samples"
_AGREEMENT = ("{correct} of {n} real NTU-60 clips classified correctly (asma's lineage preprocessing; the {n} "
              "public samples of {setups})")


def real_ntu_samples(ntu_dir: PathLike) -> List[Tuple[Any, int, str]]:
    """The real NTU-60 samples under ``ntu_dir`` as raw clips with their 0-based labels and names,
    each ``.skeleton`` file name once (a sample shipped twice, e.g. as CRLF and LF copies, counts
    once), bodies in file order (as the lineage's ``gendata``), sorted by name.

    Shapes:
        - each clip: :math:`(3, F, 25, 2)` float32 (``F`` the file's frames)

    Raises:
        FileNotFoundError: no ``.skeleton`` file under ``ntu_dir``.
    """
    from asma.data.readers.ntu import read_ntu_clip
    files: Dict[str, Path] = {}
    for f in sorted(Path(ntu_dir).rglob("*.skeleton")):
        files.setdefault(f.name, f)
    if not files:
        raise FileNotFoundError(f"no NTU .skeleton files under {ntu_dir}")
    return [(read_ntu_clip(f, body_rule="file-order"), int(name[17:20]) - 1, name) for name, f in sorted(files.items())]


def _checkpoint(entry: ZooEntry, lineage_dir: Path) -> Path:
    name = entry.url.path.rsplit("/", 1)[-1]
    found = sorted(Path(lineage_dir).rglob(name))
    if len(found) != 1:
        what = "no file" if not found else f"{len(found)} files ({', '.join(map(str, found))})"
        raise ZooError(f"{entry.alias}: {what} named {name!r} under {lineage_dir} (the file of its url.path)")
    return found[0]


def agreement(model, config, samples) -> str:
    """The agreement sentence of a classifier on ``samples`` (:func:`real_ntu_samples`)."""
    import torch
    x = torch.cat([config.transforms().prepare_clip(clip) for clip, _, _ in samples])
    labels = torch.tensor([y for _, y, _ in samples])
    with torch.no_grad():
        correct = int((model(x).argmax(1) == labels).sum())
    setups = sorted(int(name[1:4]) for _, _, name in samples)
    return _AGREEMENT.format(correct=correct, n=len(samples), setups=f"S{setups[0]:03d}-S{setups[-1]:03d}")


def url_facts(entry: ZooEntry, lineage_dir: PathLike, samples=None) -> Dict[str, Any]:
    """``{"url.sha256", "url.size", "params", "gflops"[, "agreement.<key>"]}`` of a ``url`` entry,
    recomputed from its checkpoint file in ``lineage_dir``."""
    from asma.io import sha256_file

    from .convert import convert_lineage, read_checkpoint
    path = _checkpoint(entry, Path(lineage_dir))
    model, config = convert_lineage(read_checkpoint(path), entry.url.converter, str(path))
    facts = {"url.sha256": sha256_file(path), "url.size": path.stat().st_size, "params": config.num_params,
             "gflops": config.gflops}
    if samples is not None:
        facts[f"agreement.{AGREEMENT_KEY}"] = agreement(model.eval(), config, samples)
    return facts


def recipe_facts(entry: ZooEntry) -> Dict[str, Any]:
    """``{"params", "gflops"}`` of the model a recipe entry trains (:func:`~asma.zoo.recipes.recipe_costs`)."""
    from .recipes import recipe_costs
    costs = recipe_costs(entry.recipe, entry.kind)
    return {"params": costs["num_params"], "gflops": costs["gflops"]}


def manifest_facts(manifest: PathLike, lineage_dir: Optional[PathLike] = None,
                   ntu_dir: Optional[PathLike] = None) -> Tuple[Dict[str, Dict[str, Any]], List[str]]:
    """The recomputed facts of every entry of ``manifest`` (``{alias: {field: value}}``, fields
    as dotted paths into the entry) and the entries that were not checked, with the reason."""
    samples = real_ntu_samples(ntu_dir) if ntu_dir is not None else None
    facts: Dict[str, Dict[str, Any]] = {}
    skipped: List[str] = []
    for e in read_manifest(manifest):
        if e.url is not None:
            if lineage_dir is None:
                skipped.append(f"{e.alias} (url entry; pass --lineage-dir)")
            else:
                facts[e.alias] = url_facts(e, lineage_dir, samples)
        elif e.hub is None and e.recipe is not None:
            facts[e.alias] = recipe_facts(e)
        else:
            skipped.append(f"{e.alias} (published on a Hub: its facts are its repository's)")
    return facts, skipped


def _get(entry: Dict[str, Any], dotted: str) -> Any:
    node: Any = entry
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _set(entry: Dict[str, Any], dotted: str, value: Any) -> None:
    *head, last = dotted.split(".")
    for part in head:
        entry = entry.setdefault(part, {})
    entry[last] = value


def differences(manifest: PathLike, facts: Dict[str, Dict[str, Any]]) -> List[str]:
    """``"<alias>: <field>: manifest X, recomputed Y"`` for every fact the manifest gets wrong."""
    models = json.loads(Path(manifest).read_text(encoding="utf-8"))["models"]
    return [f"{alias}: {k}: manifest {_get(models[alias], k)!r}, recomputed {v!r}"
            for alias, fs in facts.items() for k, v in fs.items() if _get(models[alias], k) != v]


def write_facts(manifest: PathLike, facts: Dict[str, Dict[str, Any]]) -> Path:
    """Rewrite the facts in ``manifest`` (atomically; everything else as it was) and validate it."""
    from asma.io import atomic_write_text
    path = Path(manifest)
    data = json.loads(path.read_text(encoding="utf-8"))
    for alias, fs in facts.items():
        for k, v in fs.items():
            _set(data["models"][alias], k, v)
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    read_manifest(path)
    return path


@click.command(name="python -m asma.zoo.manifest_tool")
@click.option("--lineage-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder holding the url entries' checkpoint files (searched recursively).")
@click.option("--ntu-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of real NTU-60 .skeleton files (the agreement).")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=builtin_manifest_path(), help="Manifest file (default: the built-in one).")
@click.option("--check", "mode", flag_value="check", help="List the facts that differ; exit code 1 if any.")
@click.option("--write", "mode", flag_value="write", help="Rewrite the facts that differ.")
def main(lineage_dir: Optional[Path], ntu_dir: Optional[Path], manifest: Path, mode: Optional[str]) -> None:
    """Recompute the manifest's measured facts (sha256, size, params, GFLOPs, agreement) and check or rewrite them."""
    if mode is None:
        raise click.UsageError("pass --check or --write")
    try:
        facts, skipped = manifest_facts(manifest, lineage_dir, ntu_dir)
    except (ZooError, FileNotFoundError, ValueError) as e:
        error = click.ClickException(str(e))
        error.exit_code = 2  # 1 means "the manifest differs"
        raise error from None
    diffs = differences(manifest, facts)
    notes = [f"not checked: {s}" for s in skipped] + ([] if ntu_dir else ["not checked: agreement (pass --ntu-dir)"])
    for line in notes + [("fixed " if mode == "write" else "differs ") + d for d in diffs]:
        click.echo(line)
    if mode == "write" and diffs:
        write_facts(manifest, facts)
    click.echo(f"{len(facts)} entries recomputed, {len(diffs)} field(s) {'rewritten' if mode == 'write' else 'differ'}")
    if diffs and mode == "check":
        raise SystemExit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
