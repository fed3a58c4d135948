"""The recorded scene: subject and camera tables, idle sway, posing performers with forward
kinematics and placing one or two of them in the world."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .body import _Body, _forward_kinematics
from .config import SyntheticConfig
from .rotations import _axis_angle, _rotate_points, _rotation, _yaw_tilt
from .timing import _Timing


@dataclass
class _Tables:
    """Subject and camera properties, shared by all classes."""

    seg_scale: np.ndarray   # (S, num_segments) bone length factors (height included)
    amp: np.ndarray         # (S,) movement amplitude style
    tempo: np.ndarray       # (S,) speed style
    posture: np.ndarray     # (S, A, 3) degrees of habitual posture
    cam_yaw: np.ndarray     # (C,) radians
    cam_tilt: np.ndarray    # (C,) radians
    cam_height: np.ndarray  # (C,) metres
    cam_dist: np.ndarray    # (C,) metres


def _camera_yaws(num_cameras: int) -> np.ndarray:
    """Camera 1 frontal, cameras 2, 3, ... alternating -/+ and spreading out to 45 degrees."""
    half = math.ceil((num_cameras - 1) / 2)
    yaws = [0.0]
    for k in range(2, num_cameras + 1):
        step = (k // 2) if k % 2 == 0 else (k - 1) // 2
        yaws.append((-1.0 if k % 2 == 0 else 1.0) * 45.0 * step / half)
    return np.deg2rad(np.array(yaws))


def _make_tables(cfg: SyntheticConfig, body: _Body) -> _Tables:
    rng = np.random.default_rng([cfg.seed, 1])
    S, C = cfg.num_subjects, cfg.num_cameras
    height = rng.uniform(0.85, 1.12, (S, 1))
    seg = height * np.clip(rng.normal(1.0, 0.07, (S, body.num_segments)), 0.8, 1.2)
    return _Tables(
        seg_scale=seg, amp=rng.uniform(0.7, 1.3, S), tempo=rng.uniform(0.85, 1.15, S),
        posture=rng.normal(0.0, 7.0, (S, len(body.articulated), 3)),
        cam_yaw=_camera_yaws(C), cam_tilt=np.deg2rad(rng.uniform(-10.0, 10.0, C)),
        cam_height=rng.uniform(0.9, 1.3, C), cam_dist=rng.uniform(2.6, 3.4, C))


def _sway(rng: np.random.Generator, n: int, T: int, A: int, degrees: float) -> np.ndarray:
    """Slow idle drift of every joint (two random low-frequency sinusoids), ``(n, T, A, 3)``."""
    u = np.linspace(0.0, 1.0, T)[None, :, None, None]
    out = np.zeros((n, T, A, 3))
    for _ in range(2):
        f = rng.uniform(0.3, 1.5, (n, 1, A, 3))
        ph = rng.uniform(0.0, 1.0, (n, 1, A, 3))
        out += degrees * rng.uniform(0.0, 1.0, (n, 1, A, 3)) * np.sin(2 * np.pi * (f * u + ph))
    return out


def _pose_people(body: _Body, angles: np.ndarray, root: np.ndarray,
                 seg_scale: np.ndarray) -> np.ndarray:
    """Body-frame joint positions of ``n`` performers with feet on the ground (y = 0).

    Shapes:
        - **angles**: :math:`(n, T, A, 3)` degrees; **root**: :math:`(n, T, 3)` metres
        - **seg_scale**: :math:`(n, \\text{segments})`
        - **output**: :math:`(n, T, J, 3)`
    """
    offsets = body.offsets[None] * seg_scale[:, body.segment, None]
    rad = np.deg2rad(angles)
    pos = _forward_kinematics(body, offsets, _rotation(rad) if body.euler else _axis_angle(rad))
    if body.feet:   # stand on the lowest foot joint, so squats lower the pelvis and jumps lift it
        pos[..., 1] -= pos[:, :, body.feet, 1].min(axis=2, keepdims=True)
    return pos + root[:, :, None, :]


def _place(pos: np.ndarray, yaw: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Rotate body-frame positions ``(n, T, J, 3)`` by ``yaw`` ``(n,)``, add ``offset`` ``(n, 3)``."""
    R = _yaw_tilt(yaw, np.zeros_like(yaw))
    return _rotate_points(R, pos) + offset[:, None, None, :]


def _class_scene(pair: bool, cfg: SyntheticConfig, body: _Body, tables: _Tables,
                 subject: np.ndarray, rng: np.random.Generator, fill: Callable) -> np.ndarray:
    """World positions ``(n, T, J, M, 3)`` for the ``n`` performances of one class.

    ``fill(timing, P, rng)`` returns the action's angles ``(P, n, T, A, 3)`` (degrees) and root
    motion ``(P, n, T, 3)`` for ``P`` = 1 or 2 persons."""
    n, T, M = len(subject), cfg.num_frames, cfg.num_persons
    lo, hi = cfg.speed_range
    speed = rng.uniform(lo, hi, n) * tables.tempo[subject]
    t = _Timing(rng, n, T, speed)
    angles, root = fill(t, 2 if pair else 1, rng)
    amp = (tables.amp[subject] * rng.uniform(0.8, 1.2, n))[None, :, None, None]
    angles = angles * amp[..., None]
    root = root * amp
    A = len(body.articulated)
    world = np.zeros((n, T, len(body.names), M, 3))
    for person in range(angles.shape[0]):
        ang = angles[person] + tables.posture[subject][:, None] + _sway(rng, n, T, A, 6.0)
        pos = _pose_people(body, ang, root[person], tables.seg_scale[subject])
        if pair:
            # Face each other along x; the generic bodies keep a gap of two body sizes.
            gap = t.gap[:, 0] + 2.0 * body.extent
            side = -0.5 if person == 0 else 0.5
            yaw = np.full(n, np.pi / 2 if person == 0 else -np.pi / 2)
            offset = np.stack([side * gap, np.zeros(n), np.zeros(n)], axis=1)
        else:
            yaw, offset = np.zeros(n), np.zeros((n, 3))
        world[:, :, :, person] = _place(pos, yaw, offset)
    if pair:
        # The sensor's body order is arbitrary (NTU orders bodies by tracking id): either
        # partner may land in slot 0, the slot the clip is centred on.
        swap = rng.random(n) < 0.5
        world[swap] = world[swap][:, :, :, ::-1]
    return world
