"""Publishable models and their on-disk format: ``config.json`` + ``model.safetensors`` + ``README.md``.

:func:`save_pretrained` / :func:`load_pretrained` write and read a model folder. Weights are
only ever read from safetensors (pickled ``*.bin``/``*.pt`` files are refused), and a checkpoint
that does not fit the model (layout, channels, backbone, classes) fails with an error naming both
sides.

The config <-> model mapping (:func:`~asma.pretrained.architectures.config_for_model`,
:func:`~asma.pretrained.architectures.build_model`, :func:`~asma.pretrained.architectures.check_compatible`) is in
:mod:`asma.pretrained.architectures`, the folder writer in :mod:`asma.pretrained.folder`, the model card in
:mod:`asma.zoo.card`. Users load models with
:func:`asma.create_model`, which reads folders with :func:`load_pretrained`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

from torch import Tensor, nn

from asma.io import load_tensors
from asma.pretrained.architectures import build_model, check_compatible
from asma.pretrained.config import PretrainedConfig
from asma.pretrained.folder import save_folder

from .card import model_card

PathLike = Union[str, Path]

#: Weight files that hold pickles and are never loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar")


def save_pretrained(model: nn.Module, config: PretrainedConfig, directory: PathLike, *,
                    repo_id: Optional[str] = None, card: bool = True) -> Path:
    """Write ``directory/model.safetensors``, ``README.md`` (model card) and ``config.json``.

    Written by :func:`asma.pretrained.folder.save_folder` (atomic files, ``config.json`` last with
    the weights' sha256; nothing is pickled).

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
    files = {"README.md": str(model_card(config, repo_id))} if card else None
    return save_folder(model, config, directory, files=files)


def _pickles(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def load_state(directory: PathLike, sha256: Optional[Mapping[str, str]] = None) -> Dict[str, Tensor]:
    """The tensors of ``directory/model.safetensors`` (or of the shards listed in
    ``model.safetensors.index.json``, each confined to the folder). Pickled weights are refused.

    Args:
        sha256: ``{file: hex}`` (``config.json``'s ``weights_sha256``); when given, every weight
            file must be listed and match before it is read.

    Raises:
        ValueError: only pickled weight files (``*.bin``, ``*.pt``, ...) are present, a shard
            outside the folder, or a file whose sha256 is unrecorded or differs (names the file
            and both hashes).
        FileNotFoundError: no weights.
    """
    from .integrity import verify_folder, weight_files
    directory = Path(directory)
    try:
        names = weight_files(directory)
    except FileNotFoundError:
        pickles = _pickles(directory) if directory.is_dir() else []
        if pickles:
            raise ValueError(f"{directory} has only pickled weights ({', '.join(pickles)}); asma refuses to load "
                             "pickles (they can run arbitrary code): publish model.safetensors instead") from None
        raise
    if sha256:
        unrecorded = [n for n in names if n not in sha256]
        if unrecorded:
            raise ValueError(f"{directory / 'config.json'}: no sha256 recorded for weight file(s) "
                             f"{', '.join(unrecorded)}; refusing to load unverified weights")
        verify_folder(directory, {n: sha256[n] for n in names}, str(directory / "config.json"))
    state: Dict[str, Tensor] = {}
    for n in names:
        state.update(load_tensors(directory / n))
    return state


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
    _load_checked(model, load_state(directory, config.weights_sha256), source, config)
    model.eval()
    return model, config
