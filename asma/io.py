"""Safe, atomic persistence: safetensors for tensors, JSON for everything else (never pickle)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A checkpoint, weight file or run folder that cannot be used as it is (damaged, modified
    after it was written, a dangling pointer, weights of another model); the message names the
    file."""


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
    except RecursionError:  # e.g. 100,000 nested brackets in a downloaded config.json
        raise ValueError(f"{path}: JSON nested too deeply") from None


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
    """The tensors of a safetensors file.

    Raises:
        FileNotFoundError: the file is missing.
        CheckpointError: the file is empty, truncated or its header is damaged (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing weights file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (an interrupted copy?); it holds no weights")
    try:
        return load_file(str(path))
    except SafetensorError as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); it is truncated or "
                              "damaged") from None


#: The file of a folder that records the sha256 of the weight files :func:`save_weights` wrote.
WEIGHTS_RECORD = "sha256.json"


def save_weights(path: PathLike, tensors: Mapping[str, Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """:func:`save_tensors`, then record the file's sha256 in ``sha256.json`` of its folder
    (:data:`WEIGHTS_RECORD`), which :func:`load_weights_file` verifies."""
    path = Path(path)
    save_tensors(path, tensors, metadata)
    record_path = path.parent / WEIGHTS_RECORD
    record = read_json(record_path) if record_path.is_file() else {}
    atomic_write_json(record_path, {**(record if isinstance(record, dict) else {}), path.name: sha256_file(path)})


def load_weights_file(path: PathLike) -> Dict[str, Tensor]:
    """The tensors of a file written by :func:`save_weights`, after checking its sha256.

    Raises:
        CheckpointError: no sha256 recorded for it, or its bytes changed (names the file and
            both hashes); see also :func:`load_tensors`.
    """
    path = Path(path)
    record_path = path.parent / WEIGHTS_RECORD
    record = read_json(record_path) if record_path.is_file() else {}
    if not isinstance(record, dict) or not isinstance(record.get(path.name), str):
        raise CheckpointError(f"{record_path} records no sha256 for {path.name}; refusing unverified weights")
    verify_sha256(path.parent, {path.name: record[path.name]})
    return load_tensors(path)


def sha256_record(folder: PathLike, names: Sequence[str]) -> Dict[str, str]:
    """``{name: sha256}`` of the files ``folder/<name>`` (what :func:`verify_sha256` checks)."""
    return {name: sha256_file(Path(folder) / name) for name in names}


def verify_sha256(folder: PathLike, record: Mapping[str, str]) -> None:
    """Check the files of a :func:`sha256_record` against it.

    Raises:
        CheckpointError: a file is missing or its bytes changed (names the file and both hashes).
    """
    for name, expected in record.items():
        path = Path(folder) / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing (its sha256 is recorded, so it was written)")
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(f"{path} was modified or damaged after it was written: sha256 {actual}, "
                                  f"recorded {expected}; refusing to load it")


def load_state_dict_checked(module: nn.Module, tensors: Mapping[str, Tensor], source: PathLike,
                            what: str) -> nn.Module:
    """``module.load_state_dict(tensors)`` (strict), with a one-line error that names ``source``,
    ``what`` it should fit and the first differing keys and shapes instead of torch's
    multi-line ``Error(s) in loading state_dict``.

    Raises:
        CheckpointError: missing or unexpected keys, or a shape that differs.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    shapes = [f"{k} is {list(tensors[k].shape)} in the file but {list(v.shape)} in the model"
              for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems = [f"{len(keys)} {kind} key(s) ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                for kind, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es), e.g. {shapes[0]}")
    if problems:
        raise CheckpointError(f"{source} does not fit {what}: {'; '.join(problems)}")
    module.load_state_dict(tensors)
    return module


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


#: The key of ``state.json`` that records the sha256 of every other file of a checkpoint.
CHECKPOINT_HASHES = "files_sha256"


def resolve_tag(directory: PathLike, tag: Any) -> Path:
    """``directory/<tag>``, for a tag that names a checkpoint folder directly inside ``directory``.

    Raises:
        CheckpointError: for a tag that is not a plain folder name (``..``, a path, a hidden or
            temporary name) or that leads outside ``directory`` through a link.
    """
    directory = Path(directory)
    if not isinstance(tag, str) or not tag or tag in (".", "..") or tag.startswith(".") \
            or "/" in tag or "\\" in tag or os.sep in tag:
        raise CheckpointError(f"checkpoint tag {tag!r} in {directory} is not a plain folder name; tags are "
                              "confined to the checkpoint directory (e.g. 'epoch-0003')")
    path = directory / tag
    if path.exists() and path.resolve().parent != directory.resolve():
        raise CheckpointError(f"checkpoint {path} leads outside {directory} (a link to "
                              f"{path.resolve()}); refusing to use it")
    return path


def save_checkpoint(directory: PathLike, tag: str, model: nn.Module, config: Mapping[str, Any],
                    state: Mapping[str, Any], optimizer: Optional[torch.optim.Optimizer] = None,
                    keep: int = 2) -> Path:
    """Write ``directory/<tag>/`` (``model.safetensors``, ``config.json``, the optimizer and
    ``state.json``, which records the sha256 of every other file under
    :data:`CHECKPOINT_HASHES`) into a temporary folder, rename it into place, then atomically
    point ``directory/latest.json`` at it. Older checkpoints beyond ``keep`` are removed.

    ``state`` must hold the finished ``epoch`` (an integer >= 0): resuming continues after it.
    """
    directory = Path(directory)
    final = resolve_tag(directory, tag)
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"save_checkpoint: state['epoch'] must be the finished epoch (an integer >= 0), got {epoch!r}")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", dir=directory))
    try:
        save_tensors(tmp / "model.safetensors", model.state_dict())
        atomic_write_json(tmp / "config.json", dict(config))
        names = ["model.safetensors", "config.json"]
        if optimizer is not None:
            t, meta = optimizer_to_files(optimizer)
            save_tensors(tmp / "optimizer.safetensors", t)
            atomic_write_json(tmp / "optimizer.json", meta)
            names += ["optimizer.safetensors", "optimizer.json"]
        atomic_write_json(tmp / "state.json", {**state, CHECKPOINT_HASHES: sha256_record(tmp, names)})
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
    """The checkpoint folder ``directory/latest.json`` points at, or ``None`` when there is no
    ``latest.json`` (nothing was saved yet).

    Raises:
        CheckpointError: ``latest.json`` is malformed, names a tag outside ``directory`` or a
            checkpoint that does not exist (never a silent restart from epoch 0).
    """
    directory = Path(directory)
    pointer = directory / "latest.json"
    if not pointer.is_file():
        return None
    data = read_json(pointer)
    if not isinstance(data, dict) or "tag" not in data:
        raise CheckpointError(f'{pointer}: expected {{"tag": "<checkpoint folder>"}}, got {data!r}')
    path = resolve_tag(directory, data["tag"])
    if not path.is_dir():
        found = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise CheckpointError(f"{pointer} names checkpoint {data['tag']!r} but {path} does not exist "
                              f"(checkpoints there: {', '.join(found) or 'none'}); point latest.json at one of "
                              f"them, or remove {directory} to start this stage again")
    return path


def read_checkpoint_state(path: PathLike) -> Dict[str, Any]:
    """``state.json`` of a checkpoint folder, checked: a mapping with an integer ``epoch`` >= 0
    and the sha256 record of the checkpoint's files (see :func:`save_checkpoint`).

    Raises:
        CheckpointError: naming ``state.json`` and the missing or malformed field.
    """
    p = Path(path) / "state.json"
    if not p.is_file():
        raise CheckpointError(f"{p} is missing: {Path(path)} is not a complete checkpoint")
    state = read_json(p)
    if not isinstance(state, dict):
        raise CheckpointError(f"{p}: expected a JSON object, got {type(state).__name__}")
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{p}: field 'epoch' must be the finished epoch (an integer >= 0), got "
                              f"{epoch!r}" + ("" if "epoch" in state else " (the field is missing)"))
    record = state.get(CHECKPOINT_HASHES)
    if not isinstance(record, dict) or "model.safetensors" not in record \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in record.items()):
        raise CheckpointError(f"{p}: field {CHECKPOINT_HASHES!r} (the sha256 of the checkpoint's files) is "
                              "missing or malformed; the checkpoint cannot be verified")
    for name in record:
        resolve_tag(path, name)  # recorded names are files of this folder
    return state


def load_checkpoint(path: PathLike, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> Dict[str, Any]:
    """Restore ``model`` (and ``optimizer``) from a folder written by :func:`save_checkpoint`
    after verifying the sha256 of its files; returns the ``state`` it was saved with.

    Raises:
        CheckpointError: a damaged or modified file (names it and both hashes), a ``state.json``
            without ``epoch``, weights of another model (names the differing keys/shapes), or
            no optimizer state when ``optimizer`` is given.
    """
    path = Path(path)
    state = read_checkpoint_state(path)
    record = state.pop(CHECKPOINT_HASHES)
    verify_sha256(path, record)
    load_state_dict_checked(model, load_tensors(path / "model.safetensors"), path / "model.safetensors",
                            f"the {type(model).__name__} being resumed (the run's configuration)")
    if optimizer is not None:
        if "optimizer.safetensors" not in record:
            raise CheckpointError(f"{path} holds no optimizer state; it cannot be resumed exactly")
        try:
            optimizer_from_files(optimizer, load_tensors(path / "optimizer.safetensors"),
                                 read_json(path / "optimizer.json"))
        except CheckpointError:
            raise
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path / 'optimizer.json'} does not fit the optimizer being resumed: "
                                  f"{str(e).splitlines()[0]}") from None
    return state
