"""What the sensor records: the camera view of the world, noise, centring, dropped joints and
the channel layout of the output array."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .config import SyntheticConfig
from .rotations import _rotate_points, _yaw_tilt
from .scene import _Tables


def _view(world: np.ndarray, cams: np.ndarray, facing: np.ndarray, tables: _Tables,
          rng: np.random.Generator) -> np.ndarray:
    """Camera coordinates of each (performance, camera) clip.

    The frontal camera looks at the performer's front; yaw is about the vertical axis, tilt a
    small pitch. Kinect-like: x sideways, y up, z = depth (~3 m).

    Shapes:
        - **world**: :math:`(n, T, V, M, 3)`; **cams**, **facing**: :math:`(n,)`
        - **output**: :math:`(n, T, V, M, 3)`
    """
    n = len(cams)
    yaw = np.pi + tables.cam_yaw[cams] + facing + np.deg2rad(rng.uniform(-8.0, 8.0, n))
    tilt = tables.cam_tilt[cams] + np.deg2rad(rng.uniform(-2.0, 2.0, n))
    R = _yaw_tilt(yaw, tilt)
    shift = np.stack([np.zeros(n), -tables.cam_height[cams], tables.cam_dist[cams]], axis=1)
    return _rotate_points(R, world) + shift[:, None, None, None, :]


def _drop_mask(rng: np.random.Generator, shape: Tuple[int, ...], p: float) -> np.ndarray:
    """Kinect-like tracking loss, ``(n, T, V, M)`` bool: occlusion bursts of 1-3 frames on single
    joints plus rare whole-skeleton losses; about a fraction ``p`` of joint-frames overall."""
    if p == 0:
        return np.zeros(shape, dtype=bool)
    n, T, V, M = shape
    r = rng.random(shape)
    seed_p = 0.45 * p               # mean burst length 2 and 10 % from whole-body losses
    seed = r < seed_p
    length = 1 + np.floor(3.0 * r / seed_p).astype(np.int64)   # uniform 1..3 given a seed
    mask = seed.copy()
    for s in (1, 2):
        mask[:, s:] |= seed[:, :-s] & (length[:, :-s] > s)
    mask |= (rng.random((n, T, 1, M)) < 0.1 * p)
    return mask


def _sensor(cam: np.ndarray, persons: int, center: int, cfg: SyntheticConfig,
            rng: np.random.Generator) -> np.ndarray:
    """Noise, centring, dropped joints and channel selection; returns ``(n, C, T, V, M)`` float32.

    Only the first ``persons`` slots hold a person; the others stay exactly zero (as in NTU)."""
    n, T, V, M, _ = cam.shape
    x = np.zeros((n, T, V, M, cfg.channels + int(cfg.with_confidence)), dtype=np.float32)
    live = cam[:, :, :, :persons].astype(np.float32)
    live += cfg.noise_std * rng.standard_normal(live.shape, dtype=np.float32)
    if cfg.center:
        # Subtracting the (noisy) centre itself makes person 0's centre exactly zero.
        live -= live[:, :, center:center + 1, 0:1, :].copy()
    lost = _drop_mask(rng, (n, T, V, persons), cfg.drop_prob)
    live[lost] = 0.0
    x[..., :persons, :cfg.channels] = live[..., :cfg.channels]
    if cfg.with_confidence:
        x[..., :persons, cfg.channels] = ~lost
    return np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))
