"""Clip normalisation: frame selection, centring, resampling to a fixed length, shoulder alignment.

Everything works on one clip ``x`` of shape ``(C, F, V, M)`` (channels first; the first
``coord_channels`` channels are x, y, z, any further channel such as a confidence is carried
along untouched), vectorised with numpy over frames, joints and persons.

The defaults reproduce the AimCLR / CrosSCLR ``preprocess_ntu`` pipeline that PSTL and ASMa's
lineage train on (``data_type='relative'``, ``t_length=50``, ``y_rotation``, ``sampling='resize'``):

1. frames: the lineage takes frames ``[0, L)`` with ``L`` = number of frames in which joint 0
   of person 0 is non-zero (``frames="lineage"``); the default ``frames="nonempty"`` keeps every
   frame in which any person is present (identical for clips without empty frames, and correct
   when person 0 is missing at the start, which the lineage rule mishandles).
2. centre: subtract the centre joint (NTU: joint 21 SpineShoulder) of the same person and frame
   from every joint (``center="frame"``). The centre joint becomes identically 0.
3. resample to ``length`` frames by linear interpolation with half-pixel centres (OpenCV
   ``INTER_LINEAR`` / ``align_corners=False``), per person, along time only.
4. shoulder alignment (``align="frame-y"``): per frame and person, rotate about the y axis by
   ``theta_t = arccos(v_x / (|v| + 1e-4))`` with ``v = right shoulder - left shoulder`` (``v_y``
   set to 0), negated for the whole clip when ``sum_t v_z >= 0``; the rotation matrix is
   ``[[cos, 0, -sin], [0, 1, 0], [sin, 0, cos]]``. This puts the shoulder line on +x.

Alternatives: ``center="first"`` / ``align="sequence-y"`` use one translation / one rotation
per clip (from person 0), keeping the global trajectory and the relative placement of two
people; ``center="none"`` / ``align="none"`` skip the step (2D inputs need ``align="none"``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import DataFormatError, EmptySequenceError

FRAME_RULES = ("nonempty", "lineage")
CENTER_MODES = ("frame", "first", "none")
ALIGN_MODES = ("frame-y", "sequence-y", "none")

_LEFT_SHOULDER_NAMES = ("ShoulderLeft", "left_shoulder", "LShoulder")
_RIGHT_SHOULDER_NAMES = ("ShoulderRight", "right_shoulder", "RShoulder")


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of :func:`preprocess_clip` (recorded in every store's ``info.json``).

    Attributes:
        length: output frames ``T`` (``None``: keep the selected frames, no resampling).
        frames: ``"nonempty"`` or ``"lineage"`` (see the module docstring).
        max_frames: clips longer than this are centre-cropped first (PKU-MMD lineage: 300).
        center: ``"frame"`` (lineage), ``"first"`` or ``"none"``.
        align: ``"frame-y"`` (lineage), ``"sequence-y"`` or ``"none"``.
        center_joint: 0-based centre joint (NTU 20 = SpineShoulder; Kinect v1 2 = ShoulderCenter).
        shoulders: 0-based ``(left, right)`` shoulder joints.
        coord_channels: how many leading channels are coordinates (3 for x, y, z).
    """

    length: Optional[int] = 50
    frames: str = "nonempty"
    max_frames: Optional[int] = None
    center: str = "frame"
    align: str = "frame-y"
    center_joint: int = 20
    shoulders: Tuple[int, int] = (4, 8)
    coord_channels: int = 3

    def __post_init__(self):
        if self.frames not in FRAME_RULES:
            raise ValueError(f"frames must be one of {FRAME_RULES}, got {self.frames!r}")
        if self.center not in CENTER_MODES:
            raise ValueError(f"center must be one of {CENTER_MODES}, got {self.center!r}")
        if self.align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {ALIGN_MODES}, got {self.align!r}")
        if self.length is not None and self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        object.__setattr__(self, "shoulders", tuple(int(s) for s in self.shoulders))

    @classmethod
    def lineage(cls, **overrides) -> "PreprocessConfig":
        """The exact AimCLR/CrosSCLR settings (``frames="lineage"``), with overrides."""
        return cls(**{"frames": "lineage", **overrides})

    @classmethod
    def for_layout(cls, layout, **overrides) -> "PreprocessConfig":
        """Centre joint from ``layout.center`` and shoulders found by joint name
        (``ShoulderLeft``/``left_shoulder``/``LShoulder`` and right), for any layout."""
        from ..graph import get_layout  # lazy: keeps worker processes free of torch imports

        skel = get_layout(layout)
        names = list(skel.joint_names)
        kw: Dict[str, Any] = {"center_joint": int(skel.center)}
        left = next((names.index(n) for n in _LEFT_SHOULDER_NAMES if n in names), None)
        right = next((names.index(n) for n in _RIGHT_SHOULDER_NAMES if n in names), None)
        if left is not None and right is not None:
            kw["shoulders"] = (left, right)
        elif overrides.get("align", "frame-y") != "none":
            raise ValueError(f"layout {getattr(skel, 'name', 'custom')!r} has no shoulder joints by name; "
                             "pass shoulders=(left, right) or align='none'")
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (as stored in ``info.json``)."""
        d = asdict(self)
        d["shoulders"] = list(self.shoulders)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "PreprocessConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: (tuple(v) if k == "shoulders" else v) for k, v in d.items()})

    def replace(self, **changes) -> "PreprocessConfig":
        """A copy with some fields changed."""
        return replace(self, **changes)


def _check_clip(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"a clip must be (C, F, V, M), got shape {x.shape}")
    return x


def crop_center(x: np.ndarray, max_frames: Optional[int]) -> np.ndarray:
    """Centre crop along time to at most ``max_frames`` frames (start ``(F - max) // 2``).

    Shapes: ``(C, F, V, M) -> (C, min(F, max_frames), V, M)``.
    """
    x = _check_clip(x)
    F = x.shape[1]
    if max_frames is None or F <= max_frames:
        return x
    s = (F - max_frames) // 2
    return x[:, s:s + max_frames]


def select_frames(x: np.ndarray, rule: str = "nonempty") -> np.ndarray:
    """0-based indices of the frames to keep.

    ``"nonempty"``: frames where any person has a non-zero value. ``"lineage"``: ``arange(L)``
    with ``L`` = number of frames where joint 0 of person 0 has a non-zero coordinate sum.

    Shapes: ``(C, F, V, M) -> (F',)`` int64.
    """
    x = _check_clip(x)
    if rule == "nonempty":
        return np.flatnonzero(np.any(x != 0, axis=(0, 2, 3)))
    if rule == "lineage":
        L = int(np.count_nonzero(x[:, :, 0, 0].sum(axis=0) != 0))
        return np.arange(L)
    raise ValueError(f"unknown frame rule {rule!r}; use one of {FRAME_RULES}")


def center_clip(x: np.ndarray, joint: int, mode: str = "frame", coord_channels: int = 3) -> np.ndarray:
    """Translate the coordinates so that ``joint`` is the origin.

    ``"frame"``: per frame and person (the joint becomes 0 everywhere). ``"first"``: subtract
    the joint of person 0 in its first present frame from every present person and frame
    (absent persons/frames stay 0). ``"none"``: unchanged.

    Shapes: ``(C, F, V, M) -> (C, F, V, M)``.
    """
    x = _check_clip(x)
    if mode == "none":
        return x
    return np.ascontiguousarray(_joints_last(_center(_joints_last(x), joint, mode, coord_channels)))


def _joints_last(x: np.ndarray) -> np.ndarray:
    """``(C, F, V, M)`` <-> ``(C, F, M, V)`` (a view). The steps run on joints-last copies: with the
    2-long person axis innermost, numpy's broadcasts over the joints loop 2 elements at a time
    (4-5x slower); every step is elementwise, so the values are the same bit for bit."""
    return x.transpose(0, 1, 3, 2)


def _center(x: np.ndarray, joint: int, mode: str, c: int) -> np.ndarray:
    """:func:`center_clip` on a joints-last ``(C, F, M, V)`` clip -> a C-contiguous float64 one."""
    if mode == "none":
        return x
    out = np.array(x, dtype=np.float64, order="C")
    if mode == "frame":
        out[:c] -= out[:c, :, :, joint:joint + 1].copy()
        return out
    if mode == "first":
        present = np.any(x[:c] != 0, axis=(0, 3))  # (F, M)
        frames0 = np.flatnonzero(present[:, 0])
        if frames0.size == 0:
            pm = np.flatnonzero(present.any(axis=0))
            if pm.size == 0:
                return out
            m0 = int(pm[0])
            frames0 = np.flatnonzero(present[:, m0])
        else:
            m0 = 0
        origin = out[:c, frames0[0], m0, joint].copy()
        out[:c] -= np.where(present[None, :, :, None], origin[:, None, None, None], 0.0)
        return out
    raise ValueError(f"unknown centre mode {mode!r}; use one of {CENTER_MODES}")


def resample_linear(x: np.ndarray, length: int) -> np.ndarray:
    """Resample along time to ``length`` frames: linear interpolation with half-pixel centres
    (``src = (t + 0.5) * F / length - 0.5``, clamped to ``[0, F - 1]``), which is OpenCV's
    ``INTER_LINEAR`` resize used by the lineage, and ``align_corners=False`` in torch.

    Shapes: ``(C, F, V, M) -> (C, length, V, M)`` (only axis 1 matters: any 4-D layout works);
    ``F`` must be >= 1.
    """
    x = _check_clip(x)
    F = x.shape[1]
    if F < 1:
        raise ValueError("cannot resample a clip with 0 frames")
    if F == length:
        return np.array(x, dtype=np.float64, copy=True)
    src = (np.arange(length, dtype=np.float64) + 0.5) * (F / length) - 0.5
    src = np.clip(src, 0.0, F - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, F - 1)
    w = (src - i0)[None, :, None, None]
    xf = x.astype(np.float64, copy=False)
    return xf[:, i0] * (1.0 - w) + xf[:, i1] * w


def _rotate_y(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rotate x/z of a joints-last ``(3+, F, M, V)`` clip by per-(frame, person) angles ``theta``
    ``(F, M)``."""
    c, s = np.cos(theta)[:, :, None], np.sin(theta)[:, :, None]  # (F, M, 1)
    out = np.array(x, dtype=np.float64, order="C")
    X, Z = x[0], x[2]
    out[0] = c * X - s * Z
    out[2] = s * X + c * Z
    return out


def align_shoulders(x: np.ndarray, shoulders: Sequence[int], mode: str = "frame-y") -> np.ndarray:
    """Rotate about the vertical (y) axis so that right - left shoulder points along +x.

    ``"frame-y"``: the lineage rule, one angle per frame and person (see the module docstring).
    ``"sequence-y"``: one angle for the whole clip from person 0's mean shoulder vector over its
    present frames. ``"none"``: unchanged. Needs x, y, z in channels 0-2.

    Shapes: ``(C, F, V, M) -> (C, F, V, M)``.
    """
    x = _check_clip(x)
    if mode == "none":
        return x
    return np.ascontiguousarray(_joints_last(_align(_joints_last(x), shoulders, mode)))


def _align(x: np.ndarray, shoulders: Sequence[int], mode: str) -> np.ndarray:
    """:func:`align_shoulders` on a joints-last ``(C, F, M, V)`` clip."""
    if mode == "none":
        return x
    if x.shape[0] < 3:
        raise ValueError("shoulder alignment about the y axis needs 3D coordinates (C >= 3); use align='none'")
    left, right = int(shoulders[0]), int(shoulders[1])
    v = x[:3, :, :, right] - x[:3, :, :, left]  # (3, F, M)
    vx, vz = v[0], v[2]
    if mode == "frame-y":
        norm = np.sqrt(vx ** 2 + vz ** 2)
        theta = np.arccos(np.clip(vx / (norm + 1e-4), -1.0, 1.0))  # (F, M)
        flip = vz.sum(axis=0) >= 0  # (M,)
        theta = np.where(flip[None, :], -theta, theta)
        return _rotate_y(x, theta)
    if mode == "sequence-y":
        present = np.any(x[:3] != 0, axis=(0, 3))[:, 0]
        if not present.any():
            return np.array(x, dtype=np.float64, order="C")
        mx, mz = vx[present, 0].mean(), vz[present, 0].mean()
        # rotation [[c,0,-s],[0,1,0],[s,0,c]] maps (mx, mz) to (|m|, 0) for theta = -atan2(mz, mx)
        theta = np.full(x.shape[1:3], -np.arctan2(mz, mx))
        return _rotate_y(x, theta)
    raise ValueError(f"unknown align mode {mode!r}; use one of {ALIGN_MODES}")


def preprocess_clip(x: np.ndarray, cfg: Optional[PreprocessConfig] = None,
                    name: Optional[str] = None) -> np.ndarray:
    """Apply the configured pipeline: crop -> frame selection -> centre -> resample -> align.

    Args:
        x: ``(C, F, V, M)`` clip, absent persons/frames all zero.
        cfg: settings (default :class:`PreprocessConfig()`, the NTU lineage pipeline).
        name: sample name for errors.

    Returns:
        ``(C, T, V, M)`` float32 with ``T = cfg.length`` (or the number of selected frames).

    Raises:
        EmptySequenceError: no frame survives the frame selection.
        DataFormatError: a non-finite input value, or a non-finite float32 output (inputs too
            large for float32 arithmetic).
    """
    cfg = cfg or PreprocessConfig()
    x = _check_clip(x)
    if not np.isfinite(x).all():
        raise DataFormatError("non-finite value in the clip", name)
    x = crop_center(x, cfg.max_frames)
    keep = select_frames(x[:cfg.coord_channels], cfg.frames)
    if keep.size == 0:
        raise EmptySequenceError(f"no frame with a skeleton (of {x.shape[1]})", name)
    x = _joints_last(x)[:, keep]  # one copy: the kept frames, joints last (see _joints_last)
    x = _center(x, cfg.center_joint, cfg.center, cfg.coord_channels)
    if cfg.length is not None:
        x = resample_linear(x, cfg.length)
    x = _align(x, cfg.shoulders, cfg.align)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(_joints_last(x), dtype=np.float32)
    if not np.isfinite(out).all():  # e.g. +-3.4e38 inputs: centring or rotation overflow float32
        c, t, v, m = (int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise DataFormatError(f"non-finite value after preprocessing (channel {c}, frame {t}, joint {v}, "
                              f"person {m}): coordinates too large for float32", name)
    return out
