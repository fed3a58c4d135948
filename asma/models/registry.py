"""Backbone registry: ``@register_backbone`` builders, ``create_backbone``, ``list_backbones``.

Every backbone maps a clip batch ``(N, C, T, V, M)`` to ``(pooled (N, D), tokens (N, T', D))``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import Tensor, nn

from ..graph import Skeleton, get_layout

_BACKBONES: Dict[str, Callable[..., "Backbone"]] = {}


class Backbone(nn.Module):
    """Base class of all encoders.

    Subclasses set ``out_dim`` and implement :meth:`forward`. ``self.config`` records how to rebuild
    the module (``name``, ``in_channels`` and keyword arguments); the layout is stored separately.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)`
        - **output**: ``pooled`` :math:`(N, D)`, ``tokens`` :math:`(N, T', D)`
    """

    out_dim: int
    layout: Skeleton
    in_channels: int

    def __init__(self, layout: Union[str, Skeleton], in_channels: int):
        super().__init__()
        self.layout = get_layout(layout)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.in_channels = int(in_channels)
        self.config: Dict[str, Any] = {}

    def check_input(self, x: Tensor) -> None:
        """Raise a clear ``ValueError`` when ``x`` does not match the layout / channels."""
        check_clip(x, self.in_channels, self.layout.num_joints, getattr(self.layout, "name", "custom"),
                   f"the {self.config.get('name', 'model')} backbone")


def check_clip(x: Tensor, in_channels: int, num_joints: int, layout_name: str, what: str) -> None:
    """Raise ``ValueError`` naming both sides when ``x`` is not a clip batch with ``in_channels``
    channels and ``num_joints`` joints (``what`` names the model side, e.g. ``"the checkpoint"``).

    Shapes:
        - **x**: :math:`(N, C, T, V, M)`
    """
    if x.dim() != 5:
        raise ValueError(f"expected a clip batch (N, C, T, V, M) for {what}, got shape {tuple(x.shape)}")
    _, c, _, v, _ = x.shape
    if v != num_joints:
        raise ValueError(f"input has V={v} joints but {what} was built for layout {layout_name!r} "
                         f"with V={num_joints} joints")
    if c != in_channels:
        raise ValueError(f"input has C={c} channels but {what} was built for in_channels={in_channels}")


def register_backbone(name: str = None) -> Callable:
    """Decorator registering a builder ``fn(layout, in_channels, **cfg) -> Backbone`` under ``name``
    (default: the function name with ``_`` replaced by ``-``). Third-party code may register too.

    Example::

        @register_backbone("my-gcn")
        def my_gcn(layout, in_channels=3, **cfg):
            return MyGCN(layout, in_channels, **cfg)
    """
    def deco(fn: Callable[..., Backbone]) -> Callable[..., Backbone]:
        key = name or fn.__name__.replace("_", "-")
        _BACKBONES[key] = fn
        return fn
    return deco


#: Built-in backbones -> the module that registers them, imported only when one is built (GIN's
#: module imports torch_geometric, which inference with the other backbones does not need).
BUILTIN_BACKBONES: Dict[str, str] = {"stgcn": "stgcn", "stgcn-student": "student", "gin": "gin",
                                     "dgcnn": "dgcnn"}


def _ensure_builtin(name: Optional[str] = None) -> None:
    """Import the module of built-in backbone ``name`` (all of them when ``None``)."""
    names = BUILTIN_BACKBONES if name is None else [name] if name in BUILTIN_BACKBONES else []
    for n in names:
        importlib.import_module(f"{__package__}.{BUILTIN_BACKBONES[n]}")


def list_backbones() -> List[str]:
    """Names of all registered backbones (the built-in ones without importing their modules)."""
    return sorted(set(_BACKBONES) | set(BUILTIN_BACKBONES))


def import_plugin(path: str) -> None:
    """Import a module (``pkg.mod``) or a file (``path/to/file.py``) so its ``@register_backbone``
    decorators run. Used by the CLI's ``--plugin`` option."""
    import importlib.util
    import os
    import sys
    if path.endswith(".py") or os.path.sep in path:
        if not os.path.isfile(path):
            raise ValueError(f"plugin file not found: {path}")
        name = "asma_plugin_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        try:
            importlib.import_module(path)
        except ModuleNotFoundError as e:
            raise ValueError(f"cannot import plugin module {path!r}: {e}") from e


def create_backbone(name: str, layout: Union[str, Skeleton] = "ntu25", in_channels: int = 3,
                    **cfg: Any) -> Backbone:
    """Build a registered backbone.

    Args:
        name: a name from :func:`list_backbones`.
        layout: layout name or :class:`~asma.graph.Skeleton`.
        in_channels: input channels :math:`C`.
        **cfg: backbone-specific options.

    Raises:
        ValueError: unknown name (lists the registered ones) or invalid options.
    """
    _ensure_builtin(name)
    if name not in _BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; registered backbones: {', '.join(list_backbones())}")
    try:
        model = _BACKBONES[name](layout, in_channels=in_channels, **cfg)
    except TypeError as e:
        raise ValueError(f"invalid options for backbone {name!r}: {e}") from e
    model.config = {"name": name, "in_channels": int(in_channels), **model.config, **cfg}
    model.config["name"] = name
    return model


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_flops(module: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass (``torch.utils.flop_counter``: 2 FLOPs per multiply-accumulate,
    convolutions and matrix products, including the graph einsum), in eval mode, no grad."""
    from torch.utils.flop_counter import FlopCounterMode
    was_training = module.training
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    module.train(was_training)
    return int(counter.get_total_flops())
