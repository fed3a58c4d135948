"""What may be read from a model folder, and whether its bytes are the recorded ones.

* :func:`confined`: a file name from ``config.json``, an index's ``weight_map`` or a manifest is
  a path inside the folder, or refused (``../../planted.txt``, absolute paths; for uploads also
  symlinks out);
* :func:`weight_files`: the weight files of a folder (``model.safetensors`` or the shards of
  ``model.safetensors.index.json``), all confined;
* :func:`verify_folder`: sha256 of each file against a record (``config.json``'s
  ``weights_sha256``, a manifest entry's ``sha256``), refusing with the file and both hashes;
* :func:`read_json_bounded`: a folder's JSON with a size bound and no deep-nesting traceback;
* :func:`verified_folder`: all of it for a model folder before anything is built from it.

The hashing itself is :func:`asma.io.sha256_file` / :func:`asma.io.verify_sha256`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Mapping, Optional, Union

PathLike = Union[str, Path]
INDEX_FILE = "model.safetensors.index.json"
#: Largest ``config.json`` / index file read (a real one is a few KB: the layout and class names).
MAX_JSON_BYTES = 4 * 1024 * 1024


class UnsafePathError(ValueError):
    """A file name that would leave the model folder."""


class UnverifiedWeightsError(ValueError):
    """A weight file whose sha256 is recorded nowhere (neither in ``config.json`` nor in a manifest)."""


def confined(folder: PathLike, name: Any, source: str, strict: bool = False) -> Path:
    """``folder/name``, refusing names that are not plain relative paths inside ``folder``.

    Names are checked as written (absolute, ``..``, empty parts, backslashes). With ``strict``
    (what is uploaded by ``push``), symlinks that resolve outside ``folder`` are refused too;
    reading allows them, since the Hub cache's snapshot files are symlinks to its blob store.

    Raises:
        UnsafePathError: naming ``source`` (the file the name came from) and the name.
    """
    root = Path(folder)
    bad = (not isinstance(name, str) or not name or "\\" in name or "\x00" in name or Path(name).is_absolute()
           or any(part in ("..", "") for part in name.split("/")))
    if not bad and strict:
        real, target = root.resolve(), (root / name).resolve()
        bad = real != target and real not in target.parents
    if bad:
        raise UnsafePathError(f"{source}: refusing file name {name!r}: it is not a file inside the model folder "
                              f"{root}")
    return root / name


def read_json_bounded(path: PathLike) -> Any:
    """Parse a small JSON file of a model folder.

    Raises:
        FileNotFoundError: no such file. ValueError: larger than :data:`MAX_JSON_BYTES`, invalid JSON or
        nested too deeply (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{path}: {size} bytes; a model's JSON file is at most {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} line {e.lineno}: invalid JSON ({e.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a model config") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None


def weight_files(folder: PathLike) -> List[str]:
    """Names of the weight files of a model folder: ``model.safetensors``, else the shards listed
    by ``model.safetensors.index.json``. An index is checked whenever it is present (each shard
    confined to the folder, ``.safetensors`` only), so a hostile one is never passed on.

    Raises:
        UnsafePathError: a shard outside the folder. ValueError: a malformed index.
        FileNotFoundError: no weights.
    """
    folder = Path(folder)
    index = folder / INDEX_FILE
    shards: List[str] = []
    if index.is_file():
        data = read_json_bounded(index)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: expected {{\"weight_map\": {{tensor: shard file}}}}")
        shards = sorted(set(weight_map.values()), key=str)
        for n in shards:
            confined(folder, n, str(index))
            if not n.endswith(".safetensors"):
                raise ValueError(f"{index}: refusing shard {n!r} (only .safetensors files are loaded)")
    if (folder / "model.safetensors").is_file():
        return ["model.safetensors"]
    if not shards:
        raise FileNotFoundError(f"missing weights file: {folder / 'model.safetensors'}")
    return shards


def verify_folder(folder: PathLike, record: Mapping[str, str], source: str) -> None:
    """Check the sha256 of each ``record`` file (``{name: hex}``) in ``folder``.

    Raises:
        UnsafePathError: a recorded name outside the folder.
        asma.io.CheckpointError: a file is missing or its bytes differ (names the file and both hashes).
    """
    from asma.io import verify_sha256
    for name in record:
        confined(folder, name, source)
    verify_sha256(folder, record)


def verified_folder(folder: Path, source: str, pinned: Optional[Mapping[str, str]] = None) -> Path:
    """``folder`` after checking its files against the sha256 of a manifest entry (``pinned``,
    may cover ``config.json`` too) and its weight files against ``config.json``'s
    ``weights_sha256``; ``config.json`` is read with size and nesting bounds and validated
    (sizes within :data:`asma.pretrained.schema.LIMITS`) before anything is built from it.

    Raises:
        UnverifiedWeightsError: a weight file whose sha256 is recorded nowhere. ValueError
            (``CheckpointError``): a file differs, naming it and both hashes; an invalid config.
    """
    from asma.pretrained.config import PretrainedConfig
    if pinned:
        verify_folder(folder, pinned, f"the manifest entry {source}")
    cfg = PretrainedConfig.from_dict(read_json_bounded(folder / "config.json"), source=str(folder / "config.json"))
    names = weight_files(folder)
    missing = [n for n in names if n not in cfg.weights_sha256 and n not in (pinned or {})]
    if missing:
        raise UnverifiedWeightsError(f"{source}: no sha256 is recorded for {', '.join(missing)} (neither in {folder / 'config.json'} "
                       "nor in a manifest); refusing unverified weights")
    verify_folder(folder, {n: cfg.weights_sha256[n] for n in names if n in cfg.weights_sha256},
                  str(folder / "config.json"))
    return folder
