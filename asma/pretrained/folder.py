"""The one writer of a pretrained model folder: :func:`save_folder` (``config.json`` +
``model.safetensors``). :func:`asma.zoo.save_pretrained` adds the model card; a training run
writes its encoders with it directly (``<run>/encoders/<name>/``)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Union

from torch import nn

import asma
from asma.io import atomic_write_text, save_tensors, sha256_record

from .architectures import check_compatible
from .config import PretrainedConfig


def save_folder(model: nn.Module, config: PretrainedConfig, directory: Union[str, Path], *,
                files: Optional[Mapping[str, str]] = None) -> Path:
    """Write ``directory/model.safetensors``, the text ``files`` (``{name: text}``, e.g. the
    model card) and ``config.json`` with the weights' sha256 (``weights_sha256``, verified by
    every reader).

    Every file is written atomically; an existing ``config.json`` is removed first and the new
    one written last, so a folder with a ``config.json`` always has complete, matching weights.
    Nothing is pickled.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: ``config`` does not describe ``model`` (names both sides).
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
    config.weights_sha256 = sha256_record(directory, ["model.safetensors"])
    for name, text in (files or {}).items():
        atomic_write_text(directory / name, text)
    config.to_json(directory / "config.json")
    return directory
