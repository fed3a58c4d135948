"""The local zoo cache: ``<zoo cache>/<alias>/`` folders of converted downloads and of models
built with ``asma zoo build`` (``$ASMA_ZOO_CACHE``, default ``~/.cache/asma/zoo``).

A leaf module (standard library only), so the registry, the downloader and the builder can all
use it without importing each other.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]
#: Environment variable naming the local zoo cache.
ENV_ZOO_CACHE = "ASMA_ZOO_CACHE"


def zoo_cache_dir(cache: Optional[PathLike] = None) -> Path:
    """``cache``, else ``$ASMA_ZOO_CACHE``, else ``~/.cache/asma/zoo``."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get(ENV_ZOO_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "asma" / "zoo"


def cached_folder(alias: str, cache: Optional[PathLike] = None) -> Optional[Path]:
    """``<zoo cache>/<alias>`` when it holds a model (a ``config.json``), else ``None``."""
    folder = zoo_cache_dir(cache) / alias
    return folder if (folder / "config.json").is_file() else None
