"""The settings of the synthetic dataset (:class:`SyntheticConfig`) and their validation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from ...graph import Skeleton


@dataclass
class SyntheticConfig:
    """Settings of :func:`make_synthetic`. The defaults are the quick-start dataset.

    Attributes:
        layout: a layout name (see :func:`asma.graph.list_layouts`) or a custom :class:`Skeleton`.
        num_classes: number of action classes (at most 16 one-person + 5 two-person actions for
            human layouts, 24 + 8 for custom layouts).
        clips_per_class: clips per class; performances are ``ceil(clips_per_class / num_cameras)``
            per class, each seen by every camera.
        num_frames: frames per clip :math:`T`.
        num_persons: person slots :math:`M` (1 or 2); with 2, some classes are interactions.
        num_subjects: number of simulated subjects (performers), ids ``1..num_subjects``.
        num_cameras: number of cameras, ids ``1..num_cameras``; camera 1 faces the performance
            area, the others spread symmetrically up to 45 degrees to either side.
        channels: 3 for (x, y, z) or 2 for (x, y) as from a 2D pose estimator.
        with_confidence: append a confidence channel (1 visible, 0 dropped or absent).
        noise_std: standard deviation of the Gaussian sensor noise, metres.
        drop_prob: fraction of joint-frames lost by the sensor (set to zero).
        speed_range: ``(low, high)`` performance speed factor; 1 = nominal.
        seed: non-negative integer; the same seed gives bit-identical arrays.
        center: subtract the layout's centre joint of person 0 from every joint, per frame.

    Shapes:
        - the generated ``data``: :math:`(N, C, T, V, M)` with
          :math:`N` = ``num_classes * clips_per_class``, :math:`C` = ``channels`` (+1 with
          confidence), :math:`T` = ``num_frames``, :math:`V` = layout joints,
          :math:`M` = ``num_persons``.
    """

    layout: Union[str, Skeleton] = "ntu25"
    num_classes: int = 12
    clips_per_class: int = 120
    num_frames: int = 50
    num_persons: int = 2
    num_subjects: int = 20
    num_cameras: int = 3
    channels: int = 3
    with_confidence: bool = False
    noise_std: float = 0.01
    drop_prob: float = 0.02
    speed_range: Tuple[float, float] = (0.7, 1.4)
    seed: int = 0
    center: bool = True


def _check_int(name: str, value, low: int, high: Optional[int] = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _validate(cfg: SyntheticConfig) -> None:
    _check_int("num_frames", cfg.num_frames, 2)
    _check_int("num_persons", cfg.num_persons, 1, 2)
    _check_int("num_classes", cfg.num_classes, 1)
    _check_int("clips_per_class", cfg.clips_per_class, 1)
    _check_int("num_subjects", cfg.num_subjects, 1)
    _check_int("num_cameras", cfg.num_cameras, 1)
    _check_int("seed", cfg.seed, 0)
    if isinstance(cfg.channels, bool) or not isinstance(cfg.channels, (int, np.integer)) \
            or cfg.channels not in (2, 3):
        raise ValueError(f"channels must be 2 (x, y) or 3 (x, y, z), got {cfg.channels!r}")
    if not _is_real(cfg.noise_std) or not 0 <= cfg.noise_std < math.inf:
        raise ValueError(f"noise_std must be a finite number >= 0, got {cfg.noise_std!r}")
    if not _is_real(cfg.drop_prob) or not 0 <= cfg.drop_prob < 1:
        raise ValueError(f"drop_prob must be in [0, 1), got {cfg.drop_prob!r}")
    pair = tuple(cfg.speed_range) if isinstance(cfg.speed_range, (tuple, list)) else ()
    if len(pair) != 2 or not all(_is_real(v) for v in pair):
        raise ValueError(f"speed_range must be a pair (low, high), got {cfg.speed_range!r}")
    lo, hi = pair
    if not 0 < lo <= hi < math.inf:
        raise ValueError(f"speed_range must satisfy 0 < low <= high, got {cfg.speed_range!r}")
