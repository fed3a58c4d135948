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
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from .registry import HubSource, Recipe, ZooEntry, ZooError, list_entries, read_manifest, resolve, write_manifest

PathLike = Union[str, os.PathLike]
_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


def _license_id(text: str) -> str:
    return text if _LICENSE_ID.match(text) else "other"


#: Config fields that do not change what a run computes: left out of the run key, so recipes
#: that differ only in them (the stages, where the data lives) share one run directory.
_NOT_KEYED = ("stages", "run_dir", "device", "threads", "loggers")
#: Seconds each stage of a shared build run took (``<run>/zoo-build.json``), kept across builds.
BUILD_RECORD = "zoo-build.json"


def recipe_config(recipe: Recipe, data_dir: Optional[PathLike] = None):
    """The :class:`~asma.train.config.TrainConfig` of ``recipe`` (preset, then its overrides,
    dataset, stages and ``data_dir``)."""
    from asma.train.config import make_config
    return make_config(recipe.preset, overrides=recipe.train_overrides(data_dir))


def run_key(recipe: Recipe, cfg=None) -> str:
    """The shared run directory name of a recipe: ``<dataset>-<preset>-<8 hex>``.

    The hex digits are a sha256 of the resolved config without the stages, the data folder and the
    device/threads/loggers (:data:`_NOT_KEYED`, ``distill.teacher``), so a teacher and a student
    of one dataset, preset and overrides pretrain once, and a changed override or preset
    definition gets a run of its own instead of silently reusing an old one."""
    d = (cfg or recipe_config(recipe)).to_dict()
    for k in _NOT_KEYED:
        d.pop(k, None)
    d["data"].pop("data_dir", None)
    d["distill"].pop("teacher", None)
    digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
    return f"{recipe.dataset}-{recipe.preset}-{digest}"


def _dataset_shape(cfg):
    """``(layout, classes, persons)`` of the recipe's data, without the data: the synthetic
    generator's settings or the prepared dataset's spec."""
    if cfg.data.dataset == "synthetic":
        return cfg.data.layout, cfg.data.num_classes, cfg.data.num_persons
    from asma.data.prepare.specs import DATASETS
    spec = DATASETS.get(cfg.data.dataset.rsplit("-", 1)[0])  # "<dataset>-<benchmark>"
    if spec is None:
        raise ZooError(f"recipe dataset {cfg.data.dataset!r} is neither 'synthetic' nor a prepared dataset "
                       f"(<dataset>-<benchmark> of: {', '.join(DATASETS)})")
    return spec.layout, len(spec.class_names), spec.num_persons


def recipe_costs(recipe: Recipe, kind: str) -> Dict[str, float]:
    """``{"num_params", "gflops"}`` of the model of kind ``kind`` that ``recipe`` builds, from the
    code: the preset's architecture on the recipe's dataset (layout, classes, persons) and clip
    length, counted as a built folder's ``config.json`` counts it
    (:func:`asma.pretrained.architectures.model_costs`: all parameters, one clip).

    Shapes:
        - the counted clip: :math:`(1, 3, T, V, M)`, ``T`` = the recipe's ``data.num_frames``
    """
    from asma.graph import get_layout

    from asma.pretrained.architectures import build_model, model_costs
    from asma.pretrained.config import PretrainedConfig

    cfg = recipe_config(recipe)
    layout, classes, persons = _dataset_shape(cfg)
    if recipe.export.startswith("student"):
        backbone = {"name": "stgcn-student", **cfg.distill.student_cfg}
    else:
        backbone = {"name": cfg.model.backbone, **cfg.model.backbone_cfg}
    head = {"type": "alignment", "num_heads": cfg.finetune.heads, "dropout": 0.0} if kind == "teacher" else None
    config = PretrainedConfig(kind=kind, backbone=backbone, layout=get_layout(layout).to_dict(), in_channels=3,
                              num_classes=classes, num_frames=cfg.data.num_frames, num_persons=persons,
                              **({"head": head} if head else {}))
    return model_costs(build_model(config), config)


def _check_frames(cfg, alias: str) -> None:
    """A prepared store fixes T when it is prepared; refuse one of another length than the recipe's."""
    from asma.data.prepared import prepare_command, prepared_path
    if cfg.data.dataset == "synthetic":
        return
    info = prepared_path(cfg.data.dataset, cfg.data.data_dir) / "train" / "info.json"
    if not info.is_file():
        return  # the pipeline names the missing store and the command that prepares it
    from asma.data.store import read_store_info
    frames = read_store_info(info.parent)["shape"][2]
    if frames != cfg.data.num_frames:
        raise ZooError(f"{alias} trains on clips of {cfg.data.num_frames} frames but {info.parent.parent} holds "
                       f"{frames}-frame clips; prepare it with: "
                       f"{prepare_command(cfg.data.dataset, cfg.data.data_dir)} --frames {cfg.data.num_frames}")


def _run_stages(cfg, console, progress: bool) -> Dict[str, float]:
    """Run the stages of ``cfg.stages`` that the run has not finished, one at a time (resuming the
    run), and return ``{stage: seconds}`` for each of them, from ``<run>/zoo-build.json`` for the
    stages an earlier build ran."""
    from asma.io import atomic_write_json, read_json
    from asma.train.downstream import DISTILL_DIRS
    from asma.train.pipeline import check_stages, run_pipeline
    from asma.train.rundir import read_status

    run = Path(cfg.run_dir)
    stages = check_stages(cfg)
    keys = [DISTILL_DIRS[cfg.distill.teacher] if s == "distill" else s for s in stages]
    record = read_json(run / BUILD_RECORD) if (run / BUILD_RECORD).is_file() else {}
    for stage, key in zip(stages, keys):
        if key in read_status(run):
            continue
        cfg.stages = [stage]
        t0 = time.perf_counter()
        run_pipeline(cfg, resume=(run / "config.json").is_file(), console=console, progress=progress)
        record[key] = round(time.perf_counter() - t0, 1)
        atomic_write_json(run / BUILD_RECORD, record)
    cfg.stages = stages
    return {k: record.get(k) for k in keys}


def build(name: str, *, data_dir: Optional[PathLike] = None, manifests: Optional[Sequence[PathLike]] = None,
          zoo_cache: Optional[PathLike] = None, run_dir: Optional[PathLike] = None, threads: int = 0,
          console=None, progress: bool = True) -> Path:
    """Train the recipe of ``name`` and install the model in the local zoo cache.

    The run goes to ``run_dir`` (default ``<zoo cache>/.runs/<run_key(recipe)>``): recipes of one
    dataset, preset and overrides share it, so building ``nwucla-teacher`` then ``nwucla-student``
    pretrains once and the second build only adds its missing stages (``--resume``); re-running
    after an interruption resumes too. The folder written to ``<zoo cache>/<name>`` has the run's
    measured metrics in ``config.json`` and the card; ``source`` records the recipe, the run
    directory, ``build_seconds`` (this call), ``stage_seconds`` (each of the recipe's stages, also
    those an earlier build ran) and ``recipe_seconds`` (their sum: the cost of the recipe from
    scratch).

    Args:
        threads: torch intra-op threads (0 = torch's default; not part of the run key).

    Returns:
        The model folder.

    Raises:
        ZooError: the entry has no recipe, or the prepared clips have another length than the
            recipe's. ValueError / FileNotFoundError: the dataset is not prepared (names the
            ``asma data prepare`` command) or the recipe is invalid.
    """
    from asma.train.options import resolve_epochs

    from .cache import zoo_cache_dir

    entry = resolve(name, manifests)
    if entry.recipe is None:
        raise ZooError(f"{name!r} has no recipe to build (it is published: asma zoo pull {name})")
    cache = zoo_cache_dir(zoo_cache)
    cfg = recipe_config(entry.recipe, data_dir)
    cfg.threads = threads
    cfg.run_dir = str(Path(run_dir) if run_dir else cache / ".runs" / run_key(entry.recipe, cfg))
    _check_frames(cfg, entry.alias)
    resolve_epochs(cfg)  # as asma train does: the run's config.json and the card state the epochs
    t0 = time.perf_counter()
    stage_seconds = _run_stages(cfg, console, progress)
    seconds = round(time.perf_counter() - t0, 1)
    known = [s for s in stage_seconds.values() if s is not None]
    return _install(entry, cfg, cache, {"build_seconds": seconds, "stage_seconds": stage_seconds,
                                        "recipe_seconds": round(sum(known), 1) if len(known) == len(stage_seconds)
                                        else None})


def _install(entry: ZooEntry, cfg, cache: Path, timing: Dict) -> Path:
    """Export the recipe's model of the finished run into ``<cache>/<alias>`` (atomically)."""
    from asma.io import atomic_write_text

    from .card import model_card
    from asma.pretrained.config import PretrainedConfig
    from .export import export_run

    recipe = entry.recipe
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{entry.alias}-", dir=cache) as tmp:
        staged = Path(tmp) / "model"
        export_run(cfg.run_dir, recipe.export, staged, license=_license_id(entry.license),
                   description=entry.description or None, paper=entry.paper)
        config = PretrainedConfig.from_json(staged)
        config.source = {"recipe": entry.alias, "preset": recipe.preset, "stages": list(recipe.stages),
                         "overrides": recipe.overrides, "expected": recipe.expected, "run_dir": cfg.run_dir,
                         **timing}
        config.to_json(staged)
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
    from .cache import cached_folder
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

