"""Import linear-evaluation checkpoints of the SSL lineage (SkeletonCLR, AimCLR, CrosSCLR, ActCLR,
PSTL) as zoo folders: :func:`import_checkpoint` (``asma zoo import``).

Their ``*.pt`` files are plain ``state_dict`` s of the lineage's ``net/st_gcn.Model`` (as the
query encoder ``encoder_q``) plus the linear-evaluation head ``encoder_q.fc``. asma's ``stgcn``
backbone is that network, so the import is a renaming, checked key by key and shape by shape:

=========================================  ==========================================
lineage key                                asma key (the ``classifier`` kind's model)
=========================================  ==========================================
``encoder_q.data_bn.*``                    ``<encoder>.data_bn.*``
``encoder_q.st_gcn_networks.<i>.*``        ``<encoder>.blocks.<i>.*``
``encoder_q.edge_importance.<i>``          ``<encoder>.edge_importance.<i>``
``encoder_q.fc.{weight,bias}``             ``<head>.fc.{weight,bias}`` (ActCLR's 1x1 Conv2d
                                           head ``(K, D, 1, 1)`` is flattened to ``(K, D)``)
``encoder_q.A``                            compared with asma's ``ntu25`` spatial partition,
                                           not stored (asma rebuilds it from the layout)
=========================================  ==========================================

PSTL saves the bare ``st_gcn.Model`` (the same keys without ``encoder_q.``, no head): it is
imported as an ``encoder``. The files are only ever read with ``torch.load(weights_only=True)``; unknown keys (a pretext
checkpoint's key encoder and queue, a projection MLP), missing keys, shape mismatches and a
different graph are refused, naming them. The formats differ only in the head: ActCLR's code has
a Conv2d head, the others an ``nn.Linear``; both are accepted whatever ``--from`` says, since
checkpoints are often trained with another method's code (the AimCLR file in the ActCLR
repository has the Conv2d head).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor

from asma.pretrained.config import PretrainedConfig

PathLike = Union[str, Path]

#: The lineage code bases whose checkpoints :func:`import_checkpoint` reads, with their paper.
LINEAGE_FORMATS: Dict[str, str] = {
    "skeletonclr": "SkeletonCLR (Li et al., CVPR 2021, github.com/LinguoLi/CrosSCLR)",
    "crossclr": "CrosSCLR (Li et al., CVPR 2021, github.com/LinguoLi/CrosSCLR)",
    "aimclr": "AimCLR (Guo et al., AAAI 2022, github.com/Levigty/AimCLR)",
    "actclr": "ActCLR (Lin et al., CVPR 2023, github.com/LanglandsLin/ActCLR)",
    "pstl": "PSTL (Zhou et al., AAAI 2023, github.com/YujieOuO/PSTL)",
}
#: The lineage's NTU preprocessing ("NTU60_frame50"): asma's exact re-implementation.
LINEAGE_PREPROCESSING = {"length": 50, "frames": "lineage", "max_frames": None, "center": "frame",
                         "align": "frame-y", "center_joint": 20, "shoulders": [4, 8], "coord_channels": 3}
_PREFIX = "encoder_q."
_BLOCK_RE = re.compile(r"^st_gcn_networks\.(\d+)\.(.+)$")
_EDGE_RE = re.compile(r"^edge_importance\.(\d+)$")


class CheckpointImportError(ValueError):
    """A checkpoint that cannot be imported; the message names the file and the keys."""


def read_checkpoint(path: PathLike) -> Dict[str, Tensor]:
    """The tensors of a lineage ``*.pt`` file, read with ``torch.load(weights_only=True)``
    (never an unrestricted unpickle). A ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper is unwrapped.

    Raises:
        FileNotFoundError: no such file. CheckpointImportError: not a tensor dict, or it needs code to unpickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused an object that needs code to rebuild
        raise CheckpointImportError(f"{path}: cannot be read with torch.load(weights_only=True): it holds objects "
                                    "other than tensors, and asma never runs a checkpoint's code") from None
    except Exception as e:  # a damaged or truncated file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointImportError(f"{path}: cannot be read with torch.load(weights_only=True): {first}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointImportError(f"{path}: expected a state_dict of tensors, got {type(obj).__name__}")
    return {str(k): v for k, v in obj.items()}


def detect_format(state: Mapping[str, Tensor], source: str = "checkpoint") -> str:
    """The code base of a lineage state_dict, from its key names: ``pstl`` for a bare encoder
    state_dict (PSTL saves ``st_gcn.Model`` itself: no ``encoder_q.`` prefix, no head), ``actclr``
    when the head ``encoder_q.fc`` is a 1x1 Conv2d, else ``skeletonclr`` (SkeletonCLR, AimCLR and
    CrosSCLR share ``net/st_gcn.Model`` as ``encoder_q`` with a Linear ``fc``).

    Raises:
        CheckpointImportError: not an ST-GCN lineage checkpoint (names what was found).
    """
    if any(k.startswith("st_gcn_networks.") for k in state):
        return "pstl"
    if not any(k.startswith(_PREFIX + "st_gcn_networks.") for k in state):
        sample = ", ".join(sorted(state)[:3])
        raise CheckpointImportError(f"{source}: not a lineage ST-GCN checkpoint (no '{_PREFIX}st_gcn_networks.*' or "
                                    f"'st_gcn_networks.*' keys; found e.g. {sample})")
    fc = state.get(_PREFIX + "fc.weight")
    return "actclr" if fc is not None and fc.dim() == 4 else "skeletonclr"


def _prefixed(state: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """A bare encoder state_dict (PSTL) under the ``encoder_q.`` prefix the other code bases use."""
    if any(k.startswith(_PREFIX) for k in state):
        return dict(state)
    return {_PREFIX + k: v for k, v in state.items()}


def _prefixes(own: Mapping[str, Tensor]) -> Tuple[str, Optional[str]]:
    """The encoder's and the head's key prefixes in the model :func:`build_model` made (no head:
    ``None``)."""
    enc = next(k[:-len("data_bn.weight")] for k in own if k.endswith("data_bn.weight"))
    head = next((k[:-len("weight")] for k in own if not k.startswith(enc) and k.endswith("fc.weight")), None)
    return enc, head


def _rename(state: Mapping[str, Tensor], enc: str, head: Optional[str]) -> Tuple[Dict[str, Tensor], List[str]]:
    """Lineage keys -> asma keys under the ``enc`` / ``head`` prefixes; returns (renamed, unknown keys)."""
    out: Dict[str, Tensor] = {}
    unknown: List[str] = []
    for key, value in state.items():
        rest = key[len(_PREFIX):] if key.startswith(_PREFIX) else None
        if rest == "A":  # the fixed graph, compared separately
            continue
        block, edge = _BLOCK_RE.match(rest or ""), _EDGE_RE.match(rest or "")
        if rest is None:
            unknown.append(key)
        elif rest.startswith("data_bn.") or edge:
            out[enc + rest] = value
        elif block:
            out[f"{enc}blocks.{block.group(1)}.{block.group(2)}"] = value
        elif rest in ("fc.weight", "fc.bias") and head is not None:
            if rest == "fc.weight" and value.dim() == 4 and tuple(value.shape[2:]) == (1, 1):
                value = value.flatten(1)  # ActCLR's 1x1 Conv2d head is a Linear layer
            out[head + rest[len("fc."):]] = value
        else:
            unknown.append(key)
    return out, unknown


def _architecture(state: Mapping[str, Tensor], source: str) -> Dict[str, int]:
    """``in_channels``, ``num_joints``, ``hidden_channels``, ``out_channels``, ``num_classes``
    read from the shapes (the lineage's 10-block plan is then checked key by key)."""
    def shape(key: str) -> Tuple[int, ...]:
        if _PREFIX + key not in state:
            raise CheckpointImportError(f"{source}: missing key {_PREFIX + key!r} (not a checkpoint of the lineage's "
                                        "ST-GCN encoder)")
        return tuple(state[_PREFIX + key].shape)

    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK_RE.match(k[len(_PREFIX):]))})
    last = blocks[-1] if blocks else 0
    A = shape("A")
    fc = state.get(_PREFIX + "fc.weight")  # none in a bare encoder (PSTL) or a pretext checkpoint
    return {"num_joints": A[-1], "in_channels": shape("data_bn.weight")[0] // A[-1],
            "hidden_channels": shape("st_gcn_networks.0.tcn.2.weight")[0],
            "out_channels": shape(f"st_gcn_networks.{last}.tcn.2.weight")[0],
            "num_classes": int(fc.shape[0]) if fc is not None else None}


def convert_lineage(state: Mapping[str, Tensor], fmt: Optional[str] = None, where: str = "checkpoint",
                    **config_fields: Any) -> Tuple[torch.nn.Module, PretrainedConfig]:
    """A lineage linear-evaluation state_dict as an asma :class:`SkeletonClassifier` + config.

    Args:
        state: the checkpoint's tensors (:func:`read_checkpoint`).
        fmt: one of :data:`LINEAGE_FORMATS` (default :func:`detect_format`).
        where: name used in errors (the file).
        config_fields: extra :class:`PretrainedConfig` fields (``license``, ``metrics``, ``source``, ...).

    Returns:
        ``(model, config)``: the classifier (an ``encoder`` when the file has no head, as PSTL's
        saved encoders; :func:`asma.pretrained.architectures.build_model`) in eval
        mode, its logits those of the lineage model (pooled ST-GCN features -> ``fc``); the config
        carries the ``ntu25`` layout, the input spec ``(3, 50, 25, 2)``, the NTU class names,
        :data:`LINEAGE_PREPROCESSING`, ``num_params`` and ``gflops``.

    Raises:
        CheckpointImportError: unknown format, not a lineage checkpoint, or a different graph.
        asma.io.CheckpointError: unknown or missing keys or shape mismatches (names them).
    """
    from asma.data.readers.ntu_files import NTU120_CLASS_NAMES
    from asma.graph import get_layout, partition_adjacency
    from asma.io import load_state_dict_checked

    from asma.pretrained.architectures import build_model, model_costs

    fmt = fmt or detect_format(state, where)
    if fmt not in LINEAGE_FORMATS:
        raise CheckpointImportError(f"unknown checkpoint format {fmt!r}; known: {', '.join(LINEAGE_FORMATS)}")
    state = _prefixed(state)
    arch = _architecture(state, where)
    K = arch["num_classes"]
    if arch["num_joints"] != 25 or K not in (None, 60, 120):
        raise CheckpointImportError(f"{where}: {arch['num_joints']} joints and {arch['num_classes']} classes; only NTU "
                                    "RGB+D checkpoints (25 joints, 60 or 120 classes) can be imported")
    layout = get_layout("ntu25")
    A = partition_adjacency(layout, "spatial", 1, "truncated")
    if tuple(state[_PREFIX + "A"].shape) != tuple(A.shape) or not torch.allclose(state[_PREFIX + "A"].float(), A):
        raise CheckpointImportError(f"{where}: the checkpoint's graph {_PREFIX}A differs from asma's ntu25 spatial "
                                    "partition")
    fields = {"class_names": list(NTU120_CLASS_NAMES[:K]) if K else [], "stream": "joint", "num_frames": 50,
              "num_persons": 2, "preprocessing": dict(LINEAGE_PREPROCESSING),
              "training": {"method": fmt, "body_rule": "file-order",
                           "protocol": "linear evaluation (frozen encoder)" if K else "self-supervised encoder"},
              "paper": LINEAGE_FORMATS[fmt], **config_fields}
    config = PretrainedConfig(kind="classifier" if K else "encoder", layout=layout.to_dict(),
                              in_channels=arch["in_channels"],
                              backbone={"name": "stgcn", "hidden_channels": arch["hidden_channels"],
                                        "out_channels": arch["out_channels"]}, **fields)
    model = build_model(config)
    own = model.state_dict()
    renamed, unknown = _rename(state, *_prefixes(own))
    # buffers the lineage model has no counterpart for (feature standardisation, if any) keep their identity
    # init; unknown keys go in under their own names, so the error names them as the checkpoint does
    keep = {k: v for k, v in own.items() if k.endswith((".mean", ".std"))}
    load_state_dict_checked(model, {**keep, **renamed, **{k: state[k] for k in unknown}}, where,
                            "asma's stgcn " + ("classifier (the lineage's encoder_q + fc)" if K else "encoder")).eval()
    for k, v in model_costs(model, config).items():
        setattr(config, k, v)
    return model, config


def import_checkpoint(path: PathLike, out_dir: PathLike, fmt: Optional[str] = None,
                      **config_fields: Any) -> PretrainedConfig:
    """Convert a lineage ``*.pt`` checkpoint into a zoo folder (``config.json``,
    ``model.safetensors`` with its sha256 in the config, ``README.md``).

    The config's ``source`` records the file name, its sha256 and the format (pass
    ``source={...}`` to add the public repository, commit and path).

    Returns:
        The written :class:`PretrainedConfig`.
    """
    from asma.io import sha256_file

    from .model import save_pretrained

    path = Path(path)
    state = read_checkpoint(path)
    fmt = fmt or detect_format(state, str(path))
    source = {"file": path.name, "sha256": sha256_file(path), "format": fmt, **config_fields.pop("source", {})}
    model, cfg = convert_lineage(state, fmt, str(path), source=source, **config_fields)
    cfg.description = cfg.description or (
        f"{LINEAGE_FORMATS[fmt].split(' (')[0]} ST-GCN encoder with its linear-evaluation head, "
        f"imported from {path.name} by asma zoo import.")
    save_pretrained(model, cfg, out_dir)
    return cfg
