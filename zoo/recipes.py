"""Recipes: how a zoo model is made, :func:`build` (``asma zoo build``) and :func:`publish`.

A manifest entry's ``recipe`` (:class:`~asma.zoo.registry.Recipe`) names a dataset, a training
preset, the stages, config overrides, the model of the run to keep and the paper's metrics.
:func:`build` runs it through the library's pipeline (:func:`asma.train.pipeline.run_pipeline`,
resumable), exports the model (:func:`asma.zoo.export.export_run`, so its card carries the
*measured* metrics) into the local zoo cache, where ``fetch(NAME)`` / ``create_model(NAME,
pretrained=True)`` / ``asma zoo pull NAME`` find it. :func:`publish` pushes that folder to a Hub
and writes the entry with its ``hub`` source (repository, revision, sha256) to a manifest.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from .registry import HubSource, ZooEntry, ZooError, list_entries, read_manifest, resolve, write_manifest

PathLike = Union[str, os.PathLike]
_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


def _metrics_text(metrics: Dict[str, Dict[str, float]]) -> str:
    return ", ".join(f"{k} top-1 {v['top1']:.1f} %" for k, v in sorted(metrics.items()) if "top1" in v) or "none"


def not_built_message(entry: ZooEntry, manifests: Optional[Sequence[PathLike]] = None) -> str:
    """What a recipe-only entry is: not trained by anyone yet, the build command, the data it
    needs, its cost, the expected metrics, and the models of the zoo that *can* be pulled."""
    r = entry.recipe
    family = (entry.dataset or r.dataset).split("-")[0]
    pullable = [e for e in list_entries(manifests) if e.pullable]
    near = [e for e in pullable if (e.dataset or "").startswith(family)] or pullable
    offer = "; ".join(f"{e.alias} ({_metrics_text(e.metrics)})" for e in near) or "none yet"
    return (f"{entry.alias!r} is a recipe: no one has trained it yet, so there are no weights to pull. "
            f"Build it with: asma zoo build {entry.alias} --data-dir DATA_DIR (data: {r.data or r.dataset}; "
            f"expected cost: {r.cost or 'not measured'}; expected metrics: {_metrics_text(r.expected)}). "
            f"Models that can be pulled now: {offer}")


def _license_id(text: str) -> str:
    return text if _LICENSE_ID.match(text) else "other"


def build(name: str, *, data_dir: Optional[PathLike] = None, manifests: Optional[Sequence[PathLike]] = None,
          zoo_cache: Optional[PathLike] = None, run_dir: Optional[PathLike] = None, console=None,
          progress: bool = True) -> Path:
    """Train the recipe of ``name`` and install the model in the local zoo cache.

    The run goes to ``run_dir`` (default ``<zoo cache>/.runs/<name>``); re-running after an
    interruption resumes it. The folder written to ``<zoo cache>/<name>`` has the run's measured
    metrics in ``config.json`` and the card, and ``source`` records the recipe, the run directory
    and the build time in seconds.

    Returns:
        The model folder.

    Raises:
        ZooError: the entry has no recipe. ValueError / FileNotFoundError: the dataset is not
            prepared (names the ``asma data prepare`` command) or the recipe is invalid.
    """
    from asma.train.config import make_config
    from asma.train.pipeline import run_pipeline

    from asma.pretrained.config import PretrainedConfig
    from .download import zoo_cache_dir
    from .export import export_run
    from .card import model_card

    entry = resolve(name, manifests)
    if entry.recipe is None:
        raise ZooError(f"{name!r} has no recipe to build (it is published: asma zoo pull {name})")
    recipe = entry.recipe
    cache = zoo_cache_dir(zoo_cache)
    cfg = make_config(recipe.preset, overrides=recipe.train_overrides(data_dir))
    cfg.run_dir = str(Path(run_dir) if run_dir else cache / ".runs" / entry.alias)
    t0 = time.perf_counter()
    run_pipeline(cfg, resume=(Path(cfg.run_dir) / "config.json").is_file(), console=console, progress=progress)
    seconds = round(time.perf_counter() - t0, 1)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{entry.alias}-", dir=cache) as tmp:
        staged = Path(tmp) / "model"
        export_run(cfg.run_dir, recipe.export, staged, license=_license_id(entry.license),
                   description=entry.description or None, paper=entry.paper)
        config = PretrainedConfig.from_json(staged)
        config.source = {"recipe": entry.alias, "preset": recipe.preset, "stages": list(recipe.stages),
                         "overrides": recipe.overrides, "expected": recipe.expected, "run_dir": cfg.run_dir,
                         "build_seconds": seconds}
        config.to_json(staged)
        from asma.io import atomic_write_text
        atomic_write_text(staged / "README.md", str(model_card(config)))
        target = cache / entry.alias
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    return target


def publish(name: str, repo_id: str, *, manifest_out: PathLike, tag: Optional[str] = None,
            endpoint: Optional[str] = None, token: Optional[str] = None, private: bool = False,
            manifests: Optional[Sequence[PathLike]] = None, zoo_cache: Optional[PathLike] = None) -> ZooEntry:
    """Push the locally built model ``name`` to ``repo_id`` and record the published entry.

    The entry written to ``manifest_out`` (other entries of that file are kept) is the recipe
    entry plus ``hub``: the repository, the revision (``tag``, else the commit sha) and the sha256
    of ``config.json`` and every weight file, so a later ``asma zoo pull NAME --manifest FILE``
    checks each downloaded byte; its metrics become the measured ones.

    Returns:
        The new :class:`ZooEntry`.
    """
    from asma.io import sha256_record

    from asma.pretrained.config import PretrainedConfig
    from .download import cached_folder
    from .integrity import verified_folder
    from .hub import push_to_hub
    from .integrity import weight_files

    entry = resolve(name, manifests)
    folder = cached_folder(entry.alias, zoo_cache)
    if folder is None:
        raise ZooError(f"{name!r} is not built locally; build it first: asma zoo build {name}")
    verified_folder(folder, entry.alias)
    sha = push_to_hub(folder, repo_id, endpoint=endpoint, token=token, private=private, tag=tag)
    config = PretrainedConfig.from_json(folder)
    hashes = sha256_record(folder, ["config.json"] + weight_files(folder))
    published = dataclasses.replace(entry, hub=HubSource(repo_id, tag or sha, hashes), url=None,
                                    metrics=config.metrics, params=config.num_params, gflops=config.gflops,
                                    source=str(manifest_out))
    out = Path(manifest_out)
    others = [e for e in read_manifest(out) if e.alias != entry.alias] if out.is_file() else []
    write_manifest(out, others + [published])
    return published

