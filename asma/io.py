"""Safe, atomic persistence: safetensors for tensors, JSON for everything else (never pickle)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

PathLike = Union[str, os.PathLike]


def sha256_file(path: PathLike) -> str:
    """The hex sha256 digest of a file's bytes (read in chunks: weight files can be large)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``,
    so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: PathLike, obj: Any) -> None:
    # insertion order is kept: configs rely on it (e.g. the theta, phi encoder order)
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"missing file: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} line {e.lineno}: invalid JSON ({e.msg})") from None


def save_tensors(path: PathLike, tensors: Mapping[str, Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """Atomically write a safetensors file (tensors are made contiguous and un-shared)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(clean, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_tensors(path: PathLike) -> Dict[str, Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing weights file: {path}")
    return load_file(str(path))


def optimizer_to_files(opt: torch.optim.Optimizer) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able rest."""
    sd = opt.state_dict()
    tensors: Dict[str, Tensor] = {}
    scalars: Dict[str, Dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"{pid}.{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_files(opt: torch.optim.Optimizer, tensors: Dict[str, Tensor], meta: Dict[str, Any]) -> None:
    state: Dict[int, Dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for pid, st in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(directory: PathLike, tag: str, model: nn.Module, config: Mapping[str, Any],
                    state: Mapping[str, Any], optimizer: Optional[torch.optim.Optimizer] = None,
                    keep: int = 2) -> Path:
    """Write ``directory/<tag>/`` (``model.safetensors``, ``config.json``, ``state.json`` and the
    optimizer) into a temporary folder, rename it into place, then atomically point
    ``directory/latest.json`` at it. Older checkpoints beyond ``keep`` are removed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", dir=directory))
    try:
        save_tensors(tmp / "model.safetensors", model.state_dict())
        atomic_write_json(tmp / "config.json", dict(config))
        atomic_write_json(tmp / "state.json", dict(state))
        if optimizer is not None:
            t, meta = optimizer_to_files(optimizer)
            save_tensors(tmp / "optimizer.safetensors", t)
            atomic_write_json(tmp / "optimizer.json", meta)
        final = directory / tag
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(directory / "latest.json", {"tag": tag})
    tags = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in tags[:-keep] if keep > 0 else []:
        if old != tag:
            shutil.rmtree(directory / old, ignore_errors=True)
    return final


def latest_checkpoint(directory: PathLike) -> Optional[Path]:
    """The checkpoint folder ``latest.json`` points at, or ``None``."""
    pointer = Path(directory) / "latest.json"
    if not pointer.is_file():
        return None
    path = Path(directory) / read_json(pointer)["tag"]
    return path if path.is_dir() else None


def load_checkpoint(path: PathLike, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> Dict[str, Any]:
    """Restore ``model`` (and ``optimizer``) from a folder written by :func:`save_checkpoint`;
    returns its ``state.json``."""
    path = Path(path)
    model.load_state_dict(load_tensors(path / "model.safetensors"))
    if optimizer is not None and (path / "optimizer.safetensors").is_file():
        optimizer_from_files(optimizer, load_tensors(path / "optimizer.safetensors"),
                             read_json(path / "optimizer.json"))
    return read_json(path / "state.json")
