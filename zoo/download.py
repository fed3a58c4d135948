"""The local zoo cache, and pulling ``url`` entries: download, verify the sha256, convert, cache.

Models that do not live in the Hub cache (converted ``url`` downloads, models built with
``asma zoo build``) are zoo folders in ``<zoo cache>/<alias>/`` (``$ASMA_ZOO_CACHE``, default
``~/.cache/asma/zoo``). A ``url`` entry is downloaded once with
:func:`torch.hub.download_url_to_file` (progress bar), checked against the manifest's sha256
*before* it is read, converted with ``torch.load(weights_only=True)`` (:mod:`asma.zoo.convert`)
and the downloaded pickle is deleted; afterwards the folder is used with no network, and its
``model.safetensors`` is verified against the sha256 in its ``config.json`` on every use.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from .cache import zoo_cache_dir
from .integrity import verified_folder
from .registry import ZooEntry, ZooError

PathLike = Union[str, os.PathLike]


def _download(url: str, dst: Path, progress: bool) -> None:
    import torch.hub
    try:
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=None, progress=progress)
    except Exception as e:  # urllib's URLError/HTTPError, socket timeouts, ...
        reason = getattr(e, "reason", None) or e
        raise ZooError(f"cannot download {url}: {reason}") from None


def pull_url(entry: ZooEntry, cache: Optional[PathLike] = None, offline: bool = False,
             progress: bool = True) -> Path:
    """The zoo folder of a ``url`` entry: from the cache, or downloaded, verified and converted.

    Args:
        entry: a manifest entry with ``url``.
        cache: zoo cache folder (default :func:`zoo_cache_dir`).
        offline: never touch the network.
        progress: show a download progress bar.

    Raises:
        ZooError: offline and not cached, download failure.
        asma.io.CheckpointError: the downloaded file's sha256 is not the manifest's (the file is
            deleted), or a cached file was modified.
    """
    from asma.io import CheckpointError, sha256_file

    from .convert import import_checkpoint

    src = entry.url
    folder = zoo_cache_dir(cache) / entry.alias
    if (folder / "config.json").is_file():
        from .integrity import read_json_bounded
        data = read_json_bounded(folder / "config.json")
        recorded = (data.get("source") or {}).get("sha256") if isinstance(data, dict) else None
        if recorded == src.sha256:
            return verified_folder(folder, entry.alias)
        if offline:
            raise ZooError(f"{entry.alias}: the cached copy in {folder} is of another file (sha256 {recorded}, the "
                           f"manifest names {src.sha256}); go online to pull the new one")
    if offline:
        raise ZooError(f"{entry.alias} is not in the local zoo cache ({folder}) and offline mode is on; pull it "
                       f"once while online (it downloads {src.url})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{entry.alias}-", dir=folder.parent) as tmp:
        raw = Path(tmp) / "checkpoint.pt"  # a fixed name: nothing from the manifest becomes a path
        _download(src.url, raw, progress)
        actual = sha256_file(raw)
        if actual != src.sha256:
            raise CheckpointError(f"{src.url}: sha256 {actual}, the manifest records {src.sha256}; "
                                  "refusing the download (it was deleted)")
        staged = Path(tmp) / "model"
        import_checkpoint(raw, staged, src.converter, license="other", dataset=entry.dataset,
                          metrics=entry.metrics, paper=entry.paper,
                          description=f"{entry.description}. Licence: {entry.license}.",
                          source={"file": src.path.rsplit("/", 1)[-1], "url": src.url, "repository": src.repository,
                                  "commit": src.commit, "path": src.path, "alias": entry.alias})
        raw.unlink()  # the pickle is not kept: only the converted safetensors folder is used
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staged, folder)
    return verified_folder(folder, entry.alias)
