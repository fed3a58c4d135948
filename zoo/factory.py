"""The one entry point to every model: :func:`create_model` and :func:`list_models` (timm-style;
exported as ``asma.create_model`` / ``asma.list_models``).

A ``name`` is, tried in this order:

* ``hf-hub:org/repo[@revision]``: a model repository on a Hub (pulled and cached);
* a registered backbone (``stgcn``, ``gin``, ``dgcnn``, ``stgcn-student`` and plugins); keyword
  arguments go to its constructor;
* a local model folder (``config.json`` + ``model.safetensors``, as written by ``save_pretrained``);
* a run directory (``RUN``: its distilled student; ``RUN:<what>`` with ``what`` one of
  ``student``, ``student-ft``, ``teacher``, ``classifier-<encoder>``, ``encoder-<name>``, as
  ``asma zoo export``), built in memory;
* a zoo alias from the manifests (``asma zoo list``).

A model that comes with weights (``pretrained=True``, or any folder / run) is returned in eval
mode with ``model.pretrained_cfg``, its :class:`~asma.pretrained.config.PretrainedConfig` (layout, input
spec, stream, class names, preprocessing, metrics, licence, source, parameters, GFLOPs).
"""
from __future__ import annotations

import difflib
import fnmatch
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .hub import HF_HUB_PREFIX
from .registry import UnknownModelError, ZooError

#: Keyword arguments a model with weights accepts (they say where to fetch it from).
FETCH_OPTIONS = ("revision", "cache_dir", "zoo_cache", "endpoint", "offline", "token", "progress", "manifests")


def _backbones() -> List[str]:
    from asma.models.registry import list_backbones
    return list_backbones()


def _entries(manifests=None) -> List[Any]:
    from .registry import list_entries
    return list_entries(manifests)


def list_models(pattern: Optional[str] = None, pretrained: bool = False, manifests=None) -> List[str]:
    """Names :func:`create_model` accepts: the registered backbones and the zoo aliases, sorted.

    Args:
        pattern: ``fnmatch`` pattern (``"stgcn*"``, ``"*ntu60*"``).
        pretrained: only names that come with weights (zoo aliases that can be pulled or were
            built locally; a bare backbone has none).
        manifests: extra manifest files.
    """
    names = [] if pretrained else _backbones()
    names += [e.alias for e in _entries(manifests) if not pretrained or e.has_weights]
    names = sorted(set(names))
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def _unknown(name: str, manifests=None) -> UnknownModelError:
    known = list_models(manifests=manifests)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return UnknownModelError(
        f"unknown model {name!r}: not a backbone, zoo alias, model folder or run directory; {hint}"
        f"known names: {', '.join(known) or 'none'} (asma.list_models(); a Hub repository is "
        "'hf-hub:org/name[@revision]', a folder or run directory a path that exists)")


def _split_run(name: str) -> Tuple[Optional[Path], Optional[str]]:
    """``RUN`` or ``RUN:what`` -> (run directory, what) when ``RUN`` is a run directory."""
    path, what = Path(name), None
    if not path.exists() and ":" in name:
        head, _, tail = name.rpartition(":")
        path, what = Path(head), tail
    if path.is_dir() and (path / "config.json").is_file() and (path / "status.json").is_file():
        return path, what
    return None, None


def _check_options(name: str, options: Dict[str, Any], allowed: Tuple[str, ...]) -> None:
    extra = sorted(set(options) - set(allowed))
    if extra:
        accepted = ", ".join(allowed) if allowed else "none"
        raise TypeError(f"create_model({name!r}) got unexpected option(s) {', '.join(extra)}: a model with "
                        f"weights is not rebuilt with other options (accepted here: {accepted})")


def _fetch(name: str, options: Dict[str, Any]) -> Path:
    """The local folder of an alias or ``hf-hub:`` name (downloaded and cached if needed)."""
    from .hub import fetch
    return fetch(name, **options)


def _with_costs(model, config):
    """``config`` with ``num_params`` filled in when the folder did not record it. A missing
    ``gflops`` stays ``None``: counting FLOPs imports sympy (through ``torch.utils.flop_counter``),
    which inference does not otherwise need (:func:`asma.pretrained.architectures.model_costs` counts them)."""
    if config.num_params is None:
        config.num_params = sum(p.numel() for p in model.parameters())
    return config


def _finish(model, config, pretrained: bool):
    if not pretrained:  # the architecture only, freshly initialised (as timm's pretrained=False)
        from asma.pretrained.architectures import build_model
        return build_model(config)
    model.pretrained_cfg = _with_costs(model, config)
    return model.eval()


def create_model(name: str, pretrained: bool = False, **overrides: Any):
    """Build a model by name (see the module docstring for what ``name`` may be).

    Args:
        name: backbone, ``hf-hub:org/repo[@rev]``, model folder, ``RUN[:what]`` or zoo alias.
        pretrained: load the weights (folders and runs always hold weights; with
            ``pretrained=False`` their architecture is built freshly initialised, as timm does).
            A bare backbone has no weights of its own: ``pretrained=True`` is an error.
        **overrides: for a backbone, its constructor options (``layout``, ``in_channels``,
            ``hidden_channels``, ...); for a Hub name or alias, where to fetch it from
            (:func:`asma.zoo.hub.fetch`'s ``revision``, ``cache_dir``, ``zoo_cache``, ``endpoint``,
            ``offline``, ``token``, ``progress``, ``manifests``).

    Returns:
        The ``nn.Module``; with weights, in eval mode and with ``model.pretrained_cfg``.

    Raises:
        UnknownModelError: no such name (lists close matches and the known names).
        ZooError / ValueError: the source exists but cannot be loaded (names the file and problem).
        TypeError: options a model with weights cannot take.
    """
    from .model import load_pretrained
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"create_model needs a model name, got {name!r}")
    name = name.strip()
    if name.startswith(HF_HUB_PREFIX):
        _check_options(name, overrides, FETCH_OPTIONS)
        return _finish(*load_pretrained(_fetch(name, overrides)), pretrained)
    if name in _backbones():
        if pretrained:
            have = list_models(pretrained=True)
            raise ZooError(f"backbone {name!r} has no pretrained weights of its own; models with weights: "
                           f"{', '.join(have) or 'none yet'} (or a model folder / run directory)")
        from asma.models.registry import create_backbone
        return create_backbone(name, **overrides)
    run, what = _split_run(name)
    if run is not None:
        from .export import build_export, default_export
        _check_options(name, overrides, ())
        return _finish(*build_export(run, what or default_export(run)), pretrained)
    path = Path(name)
    if path.is_dir():
        _check_options(name, overrides, ())
        if not (path / "config.json").is_file():
            raise ZooError(f"{path} is neither a model folder (no config.json) nor a run directory (no status.json)")
        return _finish(*load_pretrained(path), pretrained)
    if name in {e.alias for e in _entries(overrides.get("manifests"))}:
        _check_options(name, overrides, FETCH_OPTIONS)
        return _finish(*load_pretrained(_fetch(name, overrides)), pretrained)
    raise _unknown(name, overrides.get("manifests"))
