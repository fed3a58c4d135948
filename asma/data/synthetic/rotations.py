"""Batched rotation matrices (Euler angles, rotation vectors, yaw and tilt) and their application."""
from __future__ import annotations

import numpy as np


def _rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Ry(ry) @ Rz(rz) @ Rx(rx)`` from radians ``(..., 3)`` = (rx, ry, rz).

    Flexion (about x) is applied first, then abduction (about z), then the horizontal swing
    (about y), which is the order the action generators (:mod:`.actions`) are written for."""
    cx, cy, cz = np.cos(angles[..., 0]), np.cos(angles[..., 1]), np.cos(angles[..., 2])
    sx, sy, sz = np.sin(angles[..., 0]), np.sin(angles[..., 1]), np.sin(angles[..., 2])
    R = np.empty(angles.shape[:-1] + (3, 3))
    # Product written out: three batched matmuls would cost ~3x more for large batches.
    R[..., 0, 0] = cy * cz
    R[..., 0, 1] = -cy * sz * cx + sy * sx
    R[..., 0, 2] = cy * sz * sx + sy * cx
    R[..., 1, 0] = sz
    R[..., 1, 1] = cz * cx
    R[..., 1, 2] = -cz * sx
    R[..., 2, 0] = -sy * cz
    R[..., 2, 1] = sy * sz * cx + cy * sx
    R[..., 2, 2] = -sy * sz * sx + cy * cx
    return R


def _axis_angle(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices from rotation vectors (axis * angle in radians), ``(..., 3)`` ->
    ``(..., 3, 3)``, by Rodrigues' formula."""
    theta = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    k = rotvec / np.maximum(theta[..., 0], 1e-12)
    K = np.zeros(rotvec.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    return np.eye(3) + np.sin(theta) * K + (1.0 - np.cos(theta)) * (K @ K)


def _yaw_tilt(yaw: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """``Rx(tilt) @ Ry(yaw)`` for radians of any equal shape; returns ``(..., 3, 3)``."""
    cy, sy, ct, st = np.cos(yaw), np.sin(yaw), np.cos(tilt), np.sin(tilt)
    R = np.zeros(np.shape(yaw) + (3, 3))
    R[..., 0, 0], R[..., 0, 2] = cy, sy
    R[..., 1, 0], R[..., 1, 1], R[..., 1, 2] = st * sy, ct, -st * cy
    R[..., 2, 0], R[..., 2, 1], R[..., 2, 2] = -ct * sy, st, ct * cy
    return R


def _rotate_points(R: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply one rotation ``R[i]`` ``(n, 3, 3)`` to all points of item ``i`` ``(n, ..., 3)``.

    A batched matmul on ``(n, P, 3)`` runs on BLAS, far faster than the equivalent einsum."""
    n = points.shape[0]
    flat = points.reshape(n, -1, 3) @ R.transpose(0, 2, 1)
    return flat.reshape(points.shape)
