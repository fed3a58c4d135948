"""Publishable models and their on-disk format: ``config.json`` + ``model.safetensors`` + ``README.md``.

:func:`save_pretrained` / :func:`load_pretrained` write and read a model folder. Weights are
only ever read from safetensors (pickled ``*.bin``/``*.pt`` files are refused), and a checkpoint
that does not fit the model (layout, channels, backbone, classes) fails with an error naming both
sides.

The config <-> model mapping (:func:`~asma.zoo.architectures.config_for_model`,
:func:`~asma.zoo.architectures.build_model`, :func:`~asma.zoo.architectures.check_compatible`) is in
:mod:`asma.zoo.architectures`, the model card in :mod:`asma.zoo.card`. Users load models with
:func:`asma.create_model`, which reads folders with :func:`load_pretrained`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

from torch import Tensor, nn

import asma
from asma.io import atomic_write_text, load_tensors, save_tensors

from .architectures import build_model, check_compatible
from .card import model_card
from .config import PretrainedConfig

PathLike = Union[str, Path]

#: Weight files that hold pickles and are never loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar")


def save_pretrained(model: nn.Module, config: PretrainedConfig, directory: PathLike, *,
                    repo_id: Optional[str] = None, card: bool = True) -> Path:
    """Write ``directory/model.safetensors``, ``README.md`` (model card) and ``config.json``.

    Every file is written atomically (temporary file + rename); an existing ``config.json`` is
    removed first and the new one written last, so a folder with a ``config.json`` always has
    complete, matching weights. Nothing is pickled.

    Args:
        model: a :class:`~asma.models.Backbone`, :class:`~asma.models.EncoderClassifier` or :class:`~asma.models.AlignedClassifier`.
        config: its :class:`PretrainedConfig` (see :func:`config_for_model`); it must describe the model.
        directory: target folder (created).
        repo_id: the intended Hub repository, used in the card's usage section.
        card: also write ``README.md``.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``config`` does not describe ``model``.
    """
    config.validate()
    check_compatible(model, config, source="the config")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # An older config.json goes first: a crash mid-way leaves a folder without config.json
    # (clearly incomplete), never an old config next to new weights.
    (directory / "config.json").unlink(missing_ok=True)
    meta = {"format": "pt", "library": "asma", "asma_version": asma.__version__, "kind": config.kind}
    save_tensors(directory / "model.safetensors", model.state_dict(), metadata=meta)
    if card:
        atomic_write_text(directory / "README.md", str(model_card(config, repo_id)))
    config.to_json(directory / "config.json")
    return directory


def _pickles(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def load_state(directory: PathLike) -> Dict[str, Tensor]:
    """The tensors of ``directory/model.safetensors`` (or of the shards listed in
    ``model.safetensors.index.json``). Pickled weights are refused.

    Raises:
        ValueError: only pickled weight files (``*.bin``, ``*.pt``, ...) are present.
        FileNotFoundError: no weights.
    """
    directory = Path(directory)
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    if single.is_file():
        return load_tensors(single)
    if index.is_file():
        from asma.io import read_json
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
        state: Dict[str, Tensor] = {}
        for s in shards:
            if "/" in s or "\\" in s or not s.endswith(".safetensors"):
                raise ValueError(f"{index}: refusing shard {s!r} (only sibling .safetensors files)")
            state.update(load_tensors(directory / s))
        return state
    pickles = _pickles(directory)
    if pickles:
        raise ValueError(f"{directory} has only pickled weights ({', '.join(pickles)}); asma refuses to load "
                         "pickles (they can run arbitrary code): publish model.safetensors instead")
    raise FileNotFoundError(f"missing weights file: {single}")


def _load_checked(model: nn.Module, state: Mapping[str, Tensor], source: str, config: PretrainedConfig) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                parts.append(f"{label}: {', '.join(items[:4])}" + (f" (+{len(items) - 4} more)" if len(items) > 4 else ""))
        raise ValueError(f"{source}: weights do not fit the model built for {config.describe()}; " + "; ".join(parts))
    model.load_state_dict(state)


def load_pretrained(directory: PathLike, model: Optional[nn.Module] = None) -> Tuple[nn.Module, PretrainedConfig]:
    """Load a model folder written by :func:`save_pretrained` (or pulled from the Hub).

    Args:
        directory: folder with ``config.json`` and ``model.safetensors``.
        model: load into this existing model instead of building one; it must match the
            checkpoint (layout, in_channels, backbone options, classes), else a ``ValueError``
            names both sides.

    Returns:
        ``(model, config)``, the model in eval mode.

    Raises:
        FileNotFoundError: no such folder / no ``config.json`` / no weights.
        ConfigError: invalid ``config.json`` (names the file and field).
        ValueError: pickled weights only, or weights/model mismatch.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no model folder at {directory}")
    config = PretrainedConfig.from_json(directory / "config.json")
    source = f"checkpoint {directory}"
    if model is None:
        model = build_model(config)
    else:
        check_compatible(model, config, source=source)
    _load_checked(model, load_state(directory), source, config)
    model.eval()
    return model, config
