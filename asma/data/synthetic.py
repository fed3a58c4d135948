"""Procedurally generated skeleton action clips: the library's embedded default dataset.

The quick start needs data that is there without a download, that a self-supervised encoder can
learn something from, and that is not so easy that every method scores 100 %. This module
simulates an NTU-RGB+D-like recording campaign:

* Human layouts: actions are joint-angle trajectories on one canonical articulated body (a
  kinematic tree in metres, y up, the body facing +z with its left on +x). Forward kinematics
  gives 3D joints, which are mapped to a built-in layout (``ntu25``, ``ntu25-anatomical``,
  ``kinect20``, ``openpose18``, ``coco17``, ``mediapipe33``) by joint correspondence.
* Custom layouts (any :class:`~asma.graph.Skeleton`, e.g. from :func:`asma.graph.from_edges`): a
  seeded random rest pose on the breadth-first tree from ``skeleton.center`` and seeded
  per-class rotation trajectories on class-specific joints.
* Nuisance factors: per-subject bone lengths, posture and movement style; per-performance speed,
  phase, time warp and amplitude; per-camera view (yaw about the vertical axis plus a small tilt);
  sensor noise and Kinect-like dropped joints (zeros). Each performance is seen by every camera,
  like NTU, so cross-view splits test view generalisation on the same motions.

Everything is vectorised over the clips of one class; the Python loops run over classes, joints
and gesture types only. The same seed gives bit-identical arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..graph import Skeleton, get_layout
from .arrays import SkeletonArrays

__all__ = ["SyntheticConfig", "make_synthetic", "split", "class_names", "HUMAN_LAYOUT_JOINTS",
           "SPLIT_PROTOCOLS"]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Small numeric helpers
# --------------------------------------------------------------------------------------------

def _rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Ry(ry) @ Rz(rz) @ Rx(rx)`` from radians ``(..., 3)`` = (rx, ry, rz).

    Flexion (about x) is applied first, then abduction (about z), then the horizontal swing
    (about y), which is the order the action generators below are written for."""
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


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --------------------------------------------------------------------------------------------
# Bodies: a kinematic tree with rest offsets, and forward kinematics
# --------------------------------------------------------------------------------------------

@dataclass
class _Body:
    """A kinematic tree. Joint ``j`` sits at ``pos[parent] + G[j] @ offset[j]`` where the global
    rotation ``G[j] = G[parent] @ L[j]`` and ``L[j]`` is the local rotation of joint ``j``'s
    incoming bone (identity for joints not in ``articulated``). ``order`` lists parents first."""

    names: List[str]
    parents: List[int]          # -1 for the root
    offsets: np.ndarray         # (J, 3) rest bone vectors in metres
    segment: np.ndarray         # (J,) index of the length-scaling group of each bone
    num_segments: int
    articulated: List[int]      # joints with a local rotation, in slot order
    order: List[int]
    feet: List[int]             # joints that touch the ground (empty: floating body)
    euler: bool = True          # angles are (rx, ry, rz) Euler angles, else rotation vectors
    extent: float = 0.0         # floating bodies: rest-pose radius, used to space two of them

    def __post_init__(self):
        self.slot = np.full(len(self.names), -1)
        self.slot[self.articulated] = np.arange(len(self.articulated))
        self.index = {n: i for i, n in enumerate(self.names)}


def _forward_kinematics(body: _Body, offsets: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Joint positions with the root at the origin.

    Shapes:
        - **offsets**: :math:`(n, J, 3)` per-performer rest bone vectors
        - **local**: :math:`(n, T, A, 3, 3)` local rotations of the articulated joints
        - **output**: :math:`(n, T, J, 3)`
    """
    n, T = local.shape[:2]
    pos = np.zeros((n, T, len(body.names), 3))
    glob: List[Optional[np.ndarray]] = [None] * len(body.names)   # None = identity
    for j in body.order:
        p = body.parents[j]
        G = glob[p] if p >= 0 else None
        if body.slot[j] >= 0:
            L = local[:, :, body.slot[j]]
            G = L if G is None else G @ L
        glob[j] = G
        if p < 0:
            continue
        off = offsets[:, j]
        step = off[:, None, :] if G is None else (G @ off[:, None, :, None])[..., 0]
        pos[:, :, j] = pos[:, :, p] + step
    return pos


# The canonical human: NTU / Kinect-v2-like proportions of a 1.75 m adult. Entries are
# (name, parent, rest offset from the parent, length group). Only the left side is listed; the
# right side mirrors it (x negated). Arms hang along the body, thumbs forward.
_HUMAN_SPEC = [
    ("pelvis", None, (0.0, 0.0, 0.0), "root"),
    ("spine_mid", "pelvis", (0.0, 0.24, -0.01), "spine"),
    ("chest", "spine_mid", (0.0, 0.25, 0.0), "spine"),
    ("neck", "chest", (0.0, 0.07, 0.0), "neck"),
    ("head", "neck", (0.0, 0.14, 0.02), "head"),
    ("nose", "head", (0.0, -0.02, 0.10), "head"),
    ("l_eye_inner", "head", (0.015, 0.02, 0.09), "head"),
    ("l_eye", "head", (0.033, 0.025, 0.085), "head"),
    ("l_eye_outer", "head", (0.05, 0.025, 0.075), "head"),
    ("l_ear", "head", (0.075, 0.0, 0.0), "head"),
    ("l_mouth", "head", (0.025, -0.055, 0.085), "head"),
    ("l_shoulder", "chest", (0.17, -0.02, -0.01), "shoulder"),
    ("l_elbow", "l_shoulder", (0.0, -0.28, 0.0), "upper_arm"),
    ("l_wrist", "l_elbow", (0.0, -0.25, 0.0), "forearm"),
    ("l_hand", "l_wrist", (0.0, -0.07, 0.0), "hand"),
    ("l_hand_tip", "l_hand", (0.0, -0.08, 0.0), "hand"),
    ("l_thumb", "l_hand", (0.0, -0.02, 0.05), "hand"),
    ("l_pinky", "l_hand", (0.01, -0.03, -0.02), "hand"),
    ("l_index", "l_hand", (0.0, -0.03, 0.03), "hand"),
    ("l_hip", "pelvis", (0.09, -0.03, 0.0), "hip"),
    ("l_knee", "l_hip", (0.0, -0.42, 0.0), "thigh"),
    ("l_ankle", "l_knee", (0.0, -0.41, -0.01), "shin"),
    ("l_heel", "l_ankle", (0.0, -0.05, -0.05), "foot"),
    ("l_foot", "l_ankle", (0.0, -0.06, 0.13), "foot"),
]
# Joints whose incoming bone rotates. With the bone convention of _Body, "l_elbow" carries the
# shoulder joint's motion (it turns the upper arm), "l_wrist" the elbow's, "l_knee" the hip's,
# "l_ankle" the knee's, "spine_mid"/"chest" the lower/upper back's, "pelvis" the whole body.
_HUMAN_ARTICULATED = ["pelvis", "spine_mid", "chest", "neck", "head", "l_elbow", "l_wrist",
                      "l_hand", "r_elbow", "r_wrist", "r_hand", "l_knee", "l_ankle", "r_knee",
                      "r_ankle"]


def _human_body() -> _Body:
    entries = []
    for name, parent, off, seg in _HUMAN_SPEC:
        entries.append((name, parent, off, seg))
        if name.startswith("l_"):
            rp = "r_" + parent[2:] if parent.startswith("l_") else parent
            entries.append(("r_" + name[2:], rp, (-off[0], off[1], off[2]), seg))
    names = [e[0] for e in entries]
    index = {n: i for i, n in enumerate(names)}
    segs = sorted({e[3] for e in entries})
    return _Body(
        names=names, parents=[index[e[1]] if e[1] else -1 for e in entries],
        offsets=np.array([e[2] for e in entries], dtype=np.float64),
        segment=np.array([segs.index(e[3]) for e in entries]), num_segments=len(segs),
        articulated=[index[n] for n in _HUMAN_ARTICULATED], order=list(range(len(names))),
        feet=[index[n] for n in ("l_ankle", "l_heel", "l_foot", "r_ankle", "r_heel", "r_foot")])


# Canonical joint for every joint of each built-in human layout, in the layout's joint order.
# OpenPose's "Neck" is the mid-shoulder point, which is the canonical "chest" (Kinect
# SpineShoulder); faces, fingers and feet are fixed offsets from the head, hand and ankle.
_NTU25_JOINTS = ["pelvis", "spine_mid", "neck", "head", "l_shoulder", "l_elbow", "l_wrist",
                 "l_hand", "r_shoulder", "r_elbow", "r_wrist", "r_hand", "l_hip", "l_knee",
                 "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle", "r_foot", "chest",
                 "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb"]
HUMAN_LAYOUT_JOINTS: Dict[str, List[str]] = {
    "ntu25": _NTU25_JOINTS,
    "ntu25-anatomical": _NTU25_JOINTS,
    "kinect20": ["pelvis", "spine_mid", "chest", "head", "l_shoulder", "l_elbow", "l_wrist",
                 "l_hand", "r_shoulder", "r_elbow", "r_wrist", "r_hand", "l_hip", "l_knee",
                 "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle", "r_foot"],
    "openpose18": ["nose", "chest", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
                   "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye",
                   "l_eye", "r_ear", "l_ear"],
    "coco17": ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
               "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
               "r_ankle"],
    "mediapipe33": ["nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye",
                    "r_eye_outer", "l_ear", "r_ear", "l_mouth", "r_mouth", "l_shoulder",
                    "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_pinky",
                    "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb", "l_hip", "r_hip",
                    "l_knee", "r_knee", "l_ankle", "r_ankle", "l_heel", "r_heel", "l_foot",
                    "r_foot"],
}
"""Layout name -> canonical human joint of each layout joint. Add an entry to make another
(registered) human layout use the human action generators instead of the generic ones."""


def _human_joint_map(skel: Skeleton) -> Optional[np.ndarray]:
    """Canonical-body index of every layout joint, or None if ``skel`` is not a known human layout.

    A skeleton counts as human only if its name has an entry here, its joint count matches and,
    for a registered layout, its joint names do too: a custom graph that happens to be called
    "ntu25" gets the generic generator instead of being mis-mapped silently."""
    name = getattr(skel, "name", None)
    joints = HUMAN_LAYOUT_JOINTS.get(name)
    if joints is None or len(joints) != skel.num_joints:
        return None
    try:
        registered = get_layout(name)
    except ValueError:          # a mapping added for a layout that is not registered
        registered = skel
    if list(registered.joint_names) != list(skel.joint_names):
        return None
    body_index = _HUMAN_BODY.index
    return np.array([body_index[j] for j in joints])


_HUMAN_BODY = _human_body()


def _restricted(body: _Body, joints: np.ndarray) -> _Body:
    """A copy of ``body`` whose forward kinematics only computes ``joints``, the feet and their
    ancestors (the others stay at zero): a layout without a face or fingers skips them."""
    needed = set()
    for j in list(joints) + body.feet:
        while j >= 0 and j not in needed:
            needed.add(int(j))
            j = body.parents[j]
    return replace(body, order=[j for j in body.order if j in needed])


def _generic_body(skel: Skeleton, seed: int) -> _Body:
    """A seeded random rest pose on the breadth-first tree of ``skel`` from its centre.

    Bones continue roughly in their parent's direction so chains look like limbs; joints not
    connected to the centre are rigidly attached to it at a random offset."""
    V, root = skel.num_joints, int(skel.center)
    parents = skel.bfs_parents().tolist()
    reachable = [v for v in range(V) if v == root or parents[v] >= 0]
    if len(reachable) < 2:
        raise ValueError(
            f"layout {getattr(skel, 'name', 'custom')!r}: no bone is connected to the centre joint "
            f"{root}, so nothing can move; the synthetic generator needs at least one edge there")
    depth = [0] * V
    for v in _bfs_order(parents, root, V):
        if v != root and parents[v] >= 0:
            depth[v] = depth[parents[v]] + 1
    order = sorted(reachable, key=lambda v: depth[v]) + [v for v in range(V) if v not in reachable]
    rng = np.random.default_rng([seed, 3])
    dirs, offsets = np.zeros((V, 3)), np.zeros((V, 3))
    fk_parents = list(parents)
    for v in order:
        if v == root:
            continue
        if parents[v] >= 0:
            base = dirs[parents[v]]
            d = base + 0.8 * rng.normal(size=3)
            length = rng.uniform(0.08, 0.2)
        else:
            fk_parents[v] = root
            d = rng.normal(size=3)
            length = rng.uniform(0.1, 0.3)
        dirs[v] = d / max(np.linalg.norm(d), 1e-9)
        offsets[v] = dirs[v] * length
    body = _Body(names=list(skel.joint_names), parents=fk_parents, offsets=offsets,
                 segment=np.arange(V), num_segments=V, articulated=sorted(reachable),
                 order=order, feet=[], euler=False)
    A = len(body.articulated)
    rest = _forward_kinematics(body, offsets[None], np.broadcast_to(np.eye(3), (1, 1, A, 3, 3)))
    body.extent = float(np.linalg.norm(rest, axis=-1).max())
    return body


def _bfs_order(parents: List[int], root: int, V: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for v, p in enumerate(parents):
        if p >= 0:
            children.setdefault(p, []).append(v)
    out, frontier = [root], [root]
    while frontier:
        frontier = [c for u in frontier for c in children.get(u, [])]
        out.extend(frontier)
    return out


# --------------------------------------------------------------------------------------------
# Timing and pose builders used by the action generators
# --------------------------------------------------------------------------------------------

class _Timing:
    """Per-performance time variables, each ``(n, T)`` or ``(n, 1)``.

    ``u`` is warped clip time in [0, 1]; one-shot actions run on the progress ``p`` (0 before
    the action window, 1 after it); periodic actions use :meth:`osc`."""

    def __init__(self, rng: np.random.Generator, n: int, T: int, speed: np.ndarray):
        u = np.linspace(0.0, 1.0, T)[None, :]
        # A smooth monotone warp (|a| < 1 keeps du/dt > 0): performers speed up and slow down.
        a = rng.uniform(-0.5, 0.5, (n, 1))
        self.u = u + a * np.sin(2 * np.pi * u) / (2 * np.pi)
        self.speed = speed[:, None]
        self.phase = rng.uniform(0.0, 1.0, (n, 1))
        # Faster performers finish in a shorter window; where the window starts is random.
        window = np.clip(0.8 / self.speed, 0.35, 1.0)
        start = rng.uniform(0.0, 1.0, (n, 1)) * (1.0 - window)
        self.p = np.clip((self.u - start) / window, 0.0, 1.0)
        self.sign = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
        self.gap = rng.uniform(1.3, 1.7, (n, 1))     # initial distance between two persons, m

    def osc(self, cycles: float, shift: float = 0.0) -> np.ndarray:
        """``sin`` with ``cycles`` periods per clip at nominal speed."""
        return np.sin(2 * np.pi * (cycles * self.speed * self.u + self.phase + shift))

    def ramp(self, a: float, b: float) -> np.ndarray:
        """0 before progress ``a``, 1 after ``b``, smooth in between."""
        return _smoothstep((self.p - a) / (b - a))

    def bump(self, a: float = 0.0, b: float = 1.0) -> np.ndarray:
        """0 -> 1 -> 0 over the progress interval ``[a, b]``."""
        q = np.clip((self.p - a) / (b - a), 0.0, 1.0)
        return np.sin(np.pi * q) ** 2

    def hold(self, rise: float = 0.2) -> np.ndarray:
        """A plateau over the action window: rises over ``rise``, holds, falls over ``rise``."""
        return self.ramp(0.0, rise) * (1.0 - self.ramp(1.0 - rise, 1.0))


class _Pose:
    """Joint angles (degrees, ``(n, T, A, 3)`` as rx, ry, rz) and root motion ``(n, T, 3)`` in
    the body frame (forward = +z), written by the human action generators.

    Right-side calls are mirrored (ry and rz negated), so generators are written for one side."""

    def __init__(self, n: int, T: int):
        self.ang = np.zeros((n, T, len(_HUMAN_ARTICULATED), 3))
        self.root = np.zeros((n, T, 3))

    def _add(self, joint: str, rx=0.0, ry=0.0, rz=0.0) -> None:
        a = self.ang[:, :, _HUMAN_ARTICULATED.index(joint)]
        a[..., 0] += rx
        a[..., 1] += ry
        a[..., 2] += rz

    def arm(self, side: str, flex=0.0, abd=0.0, adduct=0.0, elbow=0.0, elbow_up=0.0) -> None:
        """Shoulder flexion (forward raise), abduction (sideways raise), horizontal adduction
        (towards the midline), elbow flexion (forearm forward) and elbow_up (forearm turned
        upwards in the plane of an abducted arm, as when waving)."""
        s = 1.0 if side == "l" else -1.0
        self._add(f"{side}_elbow", rx=-flex, ry=-s * adduct, rz=s * abd)
        self._add(f"{side}_wrist", rx=-elbow, rz=s * elbow_up)

    def leg(self, side: str, flex=0.0, abd=0.0, knee=0.0) -> None:
        """Hip flexion (thigh forward), hip abduction and knee flexion (shin backward)."""
        s = 1.0 if side == "l" else -1.0
        self._add(f"{side}_knee", rx=-flex, rz=s * abd)
        self._add(f"{side}_ankle", rx=knee)

    def spine(self, bow=0.0, side=0.0, twist=0.0) -> None:
        """Forward bend, bend to the body's left, twist to the left; split over two vertebrae."""
        for j in ("spine_mid", "chest"):
            self._add(j, rx=0.5 * bow, ry=0.5 * twist, rz=-0.5 * side)

    def head(self, nod=0.0, turn=0.0) -> None:
        self._add("head", rx=nod, ry=turn)

    def turn(self, yaw) -> None:
        """Whole-body rotation about the vertical axis (positive = to the left)."""
        self._add("pelvis", ry=yaw)

    def move(self, forward=0.0, up=0.0) -> None:
        """Root translation in metres, in the body frame."""
        self.root[..., 2] += forward
        self.root[..., 1] += up


# --------------------------------------------------------------------------------------------
# Human action generators. Each fills pose ``a`` (and ``b`` for interactions) from timing ``t``.
# --------------------------------------------------------------------------------------------

_Generator = Callable[[_Pose, Optional[_Pose], _Timing], None]


def _wave(side: str) -> _Generator:
    def gen(a, b, t):
        env = t.hold()
        a.arm(side, abd=100 * env, elbow_up=env * (55 + 30 * t.osc(2.5)))
    return gen


def _kick(side: str) -> _Generator:
    def gen(a, b, t):
        h = t.bump()
        # The knee is bent while the thigh swings up and straightens at the top of the kick.
        a.leg(side, flex=80 * h, knee=70 * t.bump(0.0, 0.55))
        for s in "lr":
            a.arm(s, abd=20 * h)
        a.spine(bow=-10 * h)
    return gen


def _squat(a, b, t):
    d = t.bump()
    for s in "lr":
        a.leg(s, flex=95 * d, knee=120 * d)
        a.arm(s, flex=80 * d)
    a.spine(bow=35 * d)


def _bow(a, b, t):
    d = t.bump()
    a.spine(bow=75 * d)
    a.head(nod=15 * d)
    for s in "lr":          # the arms keep hanging roughly vertically while the trunk bends
        a.arm(s, flex=60 * d)


def _clap(a, b, t):
    env = t.hold()
    c = 0.5 * (1.0 + t.osc(3.0))
    for s in "lr":
        a.arm(s, flex=75 * env, adduct=env * (5 + 25 * c), elbow=35 * env)


def _punch(a, b, t):
    env = t.hold()
    s = t.osc(1.5)
    q = {"l": np.clip(s, 0, 1) ** 2, "r": np.clip(-s, 0, 1) ** 2}
    for side in "lr":   # guard at the chin, alternating straight punches
        a.arm(side, flex=env * (55 + 35 * q[side]), adduct=15 * env, elbow=env * 110 * (1 - q[side]))
    a.spine(twist=-15 * env * (q["l"] - q["r"]))


def _jump(a, b, t):
    crouch = t.bump(0.0, 0.4) + 0.5 * t.bump(0.7, 1.0)
    air = t.bump(0.3, 0.75)
    for s in "lr":
        a.leg(s, flex=60 * crouch, knee=90 * crouch)
        a.arm(s, flex=150 * air - 30 * t.bump(0.0, 0.4))
    a.spine(bow=20 * crouch)
    a.move(up=0.35 * air)


def _side_bend(a, b, t):
    env = t.hold()
    a.spine(side=35 * env * t.osc(1.0))
    for s in "lr":
        a.arm(s, abd=15 * env)


def _raise_arms(a, b, t):
    h = t.hold(0.3)
    for s in "lr":
        a.arm(s, flex=165 * h, abd=15 * h)


def _turn_around(a, b, t):
    a.turn(t.sign * 180 * t.ramp(0.1, 0.9))
    stepping = t.bump(0.1, 0.9)
    s = t.osc(3.0)
    a.leg("l", flex=20 * stepping * np.clip(s, 0, 1), knee=35 * stepping * np.clip(s, 0, 1))
    a.leg("r", flex=20 * stepping * np.clip(-s, 0, 1), knee=35 * stepping * np.clip(-s, 0, 1))


def _arm_circles(a, b, t):
    env = t.hold()
    c, s = t.osc(2.0, 0.25), t.osc(2.0)
    for side in "lr":
        a.arm(side, abd=env * (85 + 25 * c), flex=env * 25 * s)


def _march(a, b, t):
    env = t.hold()
    s = t.osc(2.0)
    q = {"l": np.clip(s, 0, 1), "r": np.clip(-s, 0, 1)}
    for side, other in (("l", "r"), ("r", "l")):   # each arm swings with the opposite knee
        a.leg(side, flex=65 * q[side] * env, knee=85 * q[side] * env)
        a.arm(side, flex=30 * (q[other] - q[side]) * env)


def _throw(a, b, t):
    cock = t.ramp(0.0, 0.45) * (1.0 - t.ramp(0.55, 0.7))
    release = t.bump(0.5, 0.9)
    a.arm("r", abd=110 * cock + 40 * release, elbow_up=100 * cock, flex=110 * release,
          elbow=20 * release)
    a.arm("l", flex=40 * cock)
    a.spine(twist=-30 * cock + 25 * release)
    a.leg("l", flex=25 * release)


def _hands_on_head(a, b, t):
    h = t.hold(0.25)
    for s in "lr":
        a.arm(s, abd=120 * h, flex=25 * h, elbow_up=130 * h)
    a.head(nod=10 * h)


# Interactions: person a stands left, b right, facing each other ``t.gap`` metres apart.

def _approach(p: _Pose, t: _Timing, final_gap: float, a0: float = 0.0, a1: float = 0.35):
    p.move(forward=0.5 * (t.gap - final_gap) * t.ramp(a0, a1))


def _handshake(a, b, t):
    h = t.hold(0.3)
    for p in (a, b):
        _approach(p, t, 0.85)
        p.arm("r", flex=(55 + 8 * t.osc(3.0)) * h, adduct=12 * h, elbow=25 * h)


def _push(a, b, t):
    guard, push = t.hold(0.2), t.ramp(0.35, 0.5)
    a.move(forward=0.3 * t.ramp(0.0, 0.4) + 0.2 * push)
    for s in "lr":
        a.arm(s, flex=80 * guard, adduct=10 * guard, elbow=90 * (1 - push) * guard)
    hit = t.bump(0.45, 0.9)
    b.move(forward=-0.4 * t.ramp(0.45, 0.7))
    b.spine(bow=-15 * hit)
    for s in "lr":
        b.arm(s, abd=35 * hit)


def _hug(a, b, t):
    h = t.hold(0.3)
    for p in (a, b):
        _approach(p, t, 0.4, 0.0, 0.4)
        p.spine(bow=10 * h)
        for s in "lr":
            p.arm(s, flex=80 * h, abd=20 * h, adduct=50 * h, elbow=60 * h)


def _high_five(a, b, t):
    u = t.bump(0.25, 0.85)
    for p in (a, b):
        _approach(p, t, 1.0)
        p.arm("r", flex=150 * u, adduct=10 * u, elbow=20 * u)


def _kick_person(a, b, t):
    a.move(forward=0.2 * t.ramp(0.0, 0.3))
    a.leg("r", flex=75 * t.bump(0.2, 0.7), knee=70 * t.bump(0.2, 0.45))
    hit = t.bump(0.45, 1.0)
    b.spine(bow=35 * hit)
    b.move(forward=-0.25 * t.ramp(0.45, 0.7))
    for s in "lr":
        b.arm(s, flex=40 * hit, elbow=60 * hit)


# Incidental gestures that real performers mix into any action (scratching the head, touching
# the face, looking around, shifting weight, a small step). They are class-independent nuisance:
# a fraction of performances get one of them, at a random moment.
def _scratch_head(a, t):
    d = t.bump()
    a.arm("r", abd=120 * d, flex=25 * d, elbow_up=130 * d)


def _touch_face(a, t):
    d = t.bump()
    a.arm("l", flex=60 * d, adduct=30 * d, elbow=130 * d)


def _look_around(a, t):
    a.head(turn=40 * t.sign * t.bump())


def _shift_weight(a, t):
    a.spine(side=12 * t.sign * t.bump())


def _small_step(a, t):
    d = t.bump()
    a.leg("l", flex=30 * d, knee=50 * d)


_DISTRACTORS = [_scratch_head, _touch_face, _look_around, _shift_weight, _small_step]
_DISTRACTOR_PROB = 0.4


# The order matters: the first classes are used for small num_classes.
_HUMAN_SINGLE: List[Tuple[str, _Generator]] = [
    ("wave_right_hand", _wave("r")), ("wave_left_hand", _wave("l")),
    ("kick_right_leg", _kick("r")), ("squat", _squat), ("bow", _bow), ("clap", _clap),
    ("punch_forward", _punch), ("jump", _jump), ("side_bend", _side_bend),
    ("raise_both_arms", _raise_arms), ("turn_around", _turn_around),
    ("kick_left_leg", _kick("l")), ("arm_circles", _arm_circles), ("march_in_place", _march),
    ("throw_overhand", _throw), ("hands_on_head", _hands_on_head),
]
_HUMAN_PAIR: List[Tuple[str, _Generator]] = [
    ("handshake", _handshake), ("push", _push), ("hug", _hug), ("high_five", _high_five),
    ("kick_other_person", _kick_person),
]
_GENERIC_SINGLE, _GENERIC_PAIR = 24, 8


def _class_plan(num_classes: int, num_persons: int, n_single: int, n_pair: int) -> Tuple[int, int]:
    """How many one-person and two-person classes to use.

    With two persons about a quarter of the classes are interactions (at least one), so the
    default 12 classes hold 9 one-person actions and 3 interactions."""
    limit = n_single + (n_pair if num_persons == 2 else 0)
    if num_classes > limit:
        raise ValueError(
            f"num_classes={num_classes} but only {limit} distinct action generators exist for "
            f"num_persons={num_persons} ({n_single} one-person"
            + (f" + {n_pair} two-person actions)" if num_persons == 2 else
               f" actions; num_persons=2 adds {n_pair} interactions)"))
    if num_persons == 1 or num_classes < 2:
        return num_classes, 0
    pairs = max(min(n_pair, max(1, num_classes // 4)), num_classes - n_single)
    return num_classes - pairs, pairs


def class_names(num_classes: int, num_persons: int,
                layout: Union[str, Skeleton, None] = None) -> List[str]:
    """The class names :func:`make_synthetic` uses for these settings, in label order.

    Args:
        num_classes: number of classes.
        num_persons: 1 (one-person actions only) or 2 (about a quarter are interactions, listed
            after the one-person actions).
        layout: for a custom (non-human) layout the generic names ``motion_XX`` /
            ``pair_motion_XX`` are returned; default: a human layout.

    Shapes:
        - **output**: a list of ``num_classes`` strings; label ``k`` is ``output[k]``.

    Raises:
        ValueError: if ``num_classes`` exceeds the number of distinct generators (the message
            says how many exist).
    """
    _check_int("num_classes", num_classes, 1)
    _check_int("num_persons", num_persons, 1, 2)
    human = layout is None or _human_joint_map(get_layout(layout)) is not None
    if human:
        ns, npair = _class_plan(num_classes, num_persons, len(_HUMAN_SINGLE), len(_HUMAN_PAIR))
        return [n for n, _ in _HUMAN_SINGLE[:ns]] + [n for n, _ in _HUMAN_PAIR[:npair]]
    ns, npair = _class_plan(num_classes, num_persons, _GENERIC_SINGLE, _GENERIC_PAIR)
    return [f"motion_{k:02d}" for k in range(ns)] + [f"pair_motion_{k:02d}" for k in range(npair)]


# --------------------------------------------------------------------------------------------
# Generic (custom-layout) action generators
# --------------------------------------------------------------------------------------------

@dataclass
class _GenericTerm:
    joint: int            # slot in body.articulated
    axis: np.ndarray      # (3,) unit rotation axis in the parent's (rest) frame
    amplitude: float      # degrees
    cycles: float         # > 0: periodic with this many cycles per clip; 0: one-shot bump
    start: float          # one-shot: progress interval start (its end is start + 0.5)
    shift: float          # periodic: phase shift in cycles


def _generic_specs(body: _Body, root: int, seed: int, count: int) -> List[List[_GenericTerm]]:
    """Seeded motion recipes, one list of terms per class.

    Every class gets a primary joint (round robin over the movable joints, so small graphs still
    use all of them), one of two rotation axes perpendicular to that joint's bone (a twist about
    the bone itself would be invisible on a leaf) and a rhythm (one-shot, 1, 2 or 3 cycles per
    clip); 0-2 secondary joints add detail. Classes sharing a primary joint thus differ in axis
    or rhythm; the 8 combinations per joint cover all 32 generic classes from 4 joints up."""
    rng = np.random.default_rng([seed, 4])
    movable = [j for j in body.articulated if j != root]
    order = rng.permutation(movable)
    rhythms = [0.0, 1.0, 2.0, 3.0]

    def perpendicular_axes(j: int) -> Tuple[np.ndarray, np.ndarray]:
        d = body.offsets[j] / np.linalg.norm(body.offsets[j])
        e1 = np.cross(d, rng.normal(size=3))
        e1 /= np.linalg.norm(e1)
        return e1, np.cross(d, e1)

    specs = []
    for k in range(count):
        m = len(order)
        primary, combo = int(order[k % m]), k // m
        axis = perpendicular_axes(primary)[combo % 2]
        cycles = rhythms[(combo // 2 + k % m) % len(rhythms)]
        terms = [_GenericTerm(int(body.slot[primary]), axis, rng.uniform(45, 75), cycles,
                              rng.uniform(0.0, 0.5), rng.uniform())]
        others = [j for j in movable if j != primary]
        for j in rng.permutation(others)[:rng.integers(0, 3)]:
            e1, e2 = perpendicular_axes(int(j))
            a = rng.uniform(0, 2 * np.pi)
            terms.append(_GenericTerm(int(body.slot[j]), np.cos(a) * e1 + np.sin(a) * e2,
                                      rng.uniform(15, 35), float(rng.choice(rhythms)),
                                      rng.uniform(0.0, 0.5), rng.uniform()))
        specs.append(terms)
    return specs


def _generic_angles(terms: Sequence[_GenericTerm], t: _Timing, n_art: int,
                    lag: float = 0.0) -> np.ndarray:
    """Degrees ``(n, T, A, 3)`` for one recipe; ``lag`` delays a partner's response."""
    n, T = t.p.shape
    ang = np.zeros((n, T, n_art, 3))
    for term in terms:
        if term.cycles > 0:
            wave = t.hold() * t.osc(term.cycles, term.shift - lag)
        else:
            a = min(term.start + lag, 0.5)
            wave = t.bump(a, a + 0.5)
        ang[:, :, term.joint] += term.amplitude * wave[..., None] * term.axis
    return ang


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

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


def _rotate_points(R: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply one rotation ``R[i]`` ``(n, 3, 3)`` to all points of item ``i`` ``(n, ..., 3)``.

    A batched matmul on ``(n, P, 3)`` runs on BLAS, far faster than the equivalent einsum."""
    n = points.shape[0]
    flat = points.reshape(n, -1, 3) @ R.transpose(0, 2, 1)
    return flat.reshape(points.shape)


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


def _human_fill(gen: _Generator):
    def fill(t: _Timing, persons: int, rng: np.random.Generator):
        n, T = t.p.shape
        poses = [_Pose(n, T) for _ in range(persons)]
        gen(poses[0], poses[1] if persons == 2 else None, t)
        for pose in poses:
            # Distractors are short (about a third of the clip) and independent of the action.
            quick = _Timing(rng, n, T, 2.5 * t.speed[:, 0])
            which = rng.integers(0, len(_DISTRACTORS), n)
            which[rng.random(n) >= _DISTRACTOR_PROB] = -1
            for i, gesture in enumerate(_DISTRACTORS):
                extra = _Pose(n, T)
                gesture(extra, quick)
                pose.ang += (which == i)[:, None, None, None] * extra.ang
        return np.stack([p.ang for p in poses]), np.stack([p.root for p in poses])
    return fill


def _generic_distractor(rng: np.random.Generator, t: _Timing, n_art: int,
                        movable: List[int]) -> np.ndarray:
    """Class-independent nuisance: a fraction of performances make one short random joint
    movement at a random moment, ``(n, T, A, 3)`` degrees."""
    n, T = t.p.shape
    quick = _Timing(rng, n, T, 2.5 * t.speed[:, 0])
    ang = np.zeros((n, T, n_art, 3))
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    size = rng.uniform(15.0, 35.0, (n, 1)) * (rng.random((n, 1)) < _DISTRACTOR_PROB)
    joint = np.asarray(movable)[rng.integers(0, len(movable), n)]
    ang[np.arange(n), :, joint] = (size * quick.bump())[..., None] * axis[:, None, :]
    return ang


def _generic_fill(terms_a: List[_GenericTerm], terms_b: Optional[List[_GenericTerm]], n_art: int,
                  extent: float, movable: List[int]):
    def fill(t: _Timing, persons: int, rng: np.random.Generator):
        angles = [_generic_angles(terms_a, t, n_art) + _generic_distractor(rng, t, n_art, movable)]
        roots = [np.zeros(t.p.shape + (3,))]
        if persons == 2:
            # The partner answers with its own recipe, delayed; both lean in towards each other.
            angles.append(_generic_angles(terms_b, t, n_art, lag=0.25)
                          + _generic_distractor(rng, t, n_art, movable))
            approach = np.zeros(t.p.shape + (3,))
            approach[..., 2] = 0.5 * extent * t.bump(0.1, 0.9)
            roots = [approach, approach.copy()]
        return np.stack(angles), np.stack(roots)
    return fill


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


def make_synthetic(config: Optional[SyntheticConfig] = None, layout: Union[str, Skeleton, None] = None,
                   **overrides) -> SkeletonArrays:
    """Generate a labelled synthetic skeleton action dataset.

    Args:
        config: settings; default :class:`SyntheticConfig` ().
        layout: shortcut overriding ``config.layout`` (a name or a custom :class:`Skeleton`).
        **overrides: any :class:`SyntheticConfig` field, e.g. ``num_classes=8, seed=1``.

    Returns:
        :class:`~asma.data.arrays.SkeletonArrays` with ``layout`` the name (built-in) or the
        Skeleton object (custom), ``class_names`` from :func:`class_names`, per-clip ``names``
        like ``C001P003R002A005`` and ``meta`` int64 arrays ``subject`` (1-based), ``camera``
        (1-based), ``replication`` (1-based repetition of a class by a subject) and ``length``
        (= ``num_frames``; clips are not padded). Clips are ordered by class, then performance,
        then camera.

    Shapes:
        - **data**: :math:`(N, C, T, V, M)` float32, :math:`N` = ``num_classes *
          clips_per_class``, :math:`C` = ``channels`` (+1 with ``with_confidence``)
        - **labels**: :math:`(N,)` int64

    Raises:
        ValueError: for invalid settings, unknown layouts or too many classes.

    Example::

        from asma.data.synthetic import make_synthetic, split
        train, test = split(make_synthetic(num_classes=8, seed=1), "xsub")
    """
    if config is not None and not isinstance(config, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig or None, got {type(config).__name__}")
    known = {f.name for f in fields(SyntheticConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown SyntheticConfig field(s) {unknown}; known: {sorted(known)}")
    cfg = replace(config or SyntheticConfig(), **overrides)
    if layout is not None:
        cfg = replace(cfg, layout=layout)
    _validate(cfg)
    cfg = replace(cfg, speed_range=tuple(float(s) for s in cfg.speed_range))

    skel = get_layout(cfg.layout)
    joint_map = _human_joint_map(skel)
    human = joint_map is not None
    if human:
        body = _restricted(_HUMAN_BODY, joint_map)
        ns, npair = _class_plan(cfg.num_classes, cfg.num_persons, len(_HUMAN_SINGLE), len(_HUMAN_PAIR))
        fills = [(_human_fill(g), False) for _, g in _HUMAN_SINGLE[:ns]]
        fills += [(_human_fill(g), True) for _, g in _HUMAN_PAIR[:npair]]
    else:
        body = _generic_body(skel, cfg.seed)
        joint_map = np.arange(skel.num_joints)
        ns, npair = _class_plan(cfg.num_classes, cfg.num_persons, _GENERIC_SINGLE, _GENERIC_PAIR)
        specs = _generic_specs(body, int(skel.center), cfg.seed, ns + 2 * npair)
        A, extent = len(body.articulated), body.extent
        movable = [int(body.slot[j]) for j in body.articulated if j != int(skel.center)]
        fills = [(_generic_fill(specs[k], None, A, extent, movable), False) for k in range(ns)]
        fills += [(_generic_fill(specs[ns + 2 * k], specs[ns + 2 * k + 1], A, extent, movable), True)
                  for k in range(npair)]
    names = class_names(cfg.num_classes, cfg.num_persons, cfg.layout)
    tables = _make_tables(cfg, body)

    S, C, K = cfg.num_subjects, cfg.num_cameras, cfg.clips_per_class
    n_perf = math.ceil(K / C)
    perf = np.repeat(np.arange(n_perf), C)[:K]         # performance of each clip
    cams = np.tile(np.arange(C), n_perf)[:K]           # 0-based camera of each clip
    center = int(skel.center)
    chunks, labels, meta = [], [], {"subject": [], "camera": [], "replication": []}
    for k, (fill, pair) in enumerate(fills):
        rng = np.random.default_rng([cfg.seed, 2, k])
        # Offsetting by class spreads subjects evenly when a class has fewer performances than
        # subjects; each subject's repetitions of a class are numbered 1, 2, ...
        q = np.arange(n_perf)
        subject = (q + k * n_perf) % S
        replication = q // S + 1
        world = _class_scene(pair, cfg, body, tables, subject, rng, fill)
        world = world[:, :, joint_map]
        # Like NTU, a subject's successive repetitions face camera 2 and camera 3 (+-45 degrees;
        # which comes first is random per subject): cameras 2 and 3 see front and side views,
        # camera 1 oblique ones, and no split is biased towards one side.
        first = np.where(rng.random(S) < 0.5, 1.0, -1.0)[subject]
        turn = first * np.where(replication % 2 == 1, 45.0, -45.0)
        facing = np.deg2rad(turn + rng.uniform(-20.0, 20.0, n_perf))
        cam = _view(world[perf], cams, facing[perf], tables, rng)
        chunks.append(_sensor(cam, 2 if pair else 1, center, cfg, rng))
        labels.append(np.full(K, k, dtype=np.int64))
        meta["subject"].append(subject[perf] + 1)
        meta["camera"].append(cams + 1)
        meta["replication"].append(replication[perf])

    data = np.concatenate(chunks)
    meta_arr = {key: np.concatenate(v).astype(np.int64) for key, v in meta.items()}
    meta_arr["length"] = np.full(len(data), cfg.num_frames, dtype=np.int64)
    label_arr = np.concatenate(labels)
    clip_names = [f"C{c:03d}P{s:03d}R{r:03d}A{a + 1:03d}" for c, s, r, a in
                  zip(meta_arr["camera"], meta_arr["subject"], meta_arr["replication"], label_arr)]
    layout_name = cfg.layout if isinstance(cfg.layout, str) else getattr(skel, "name", "custom")
    return SkeletonArrays(
        data=data, labels=label_arr, layout=cfg.layout, class_names=names, meta=meta_arr,
        names=clip_names, source=f"synthetic(layout={layout_name}, seed={cfg.seed})")


# --------------------------------------------------------------------------------------------
# Evaluation splits
# --------------------------------------------------------------------------------------------

SPLIT_PROTOCOLS = ("xsub", "xview")


def split(arrays: SkeletonArrays, protocol: str = "xsub") -> Tuple[SkeletonArrays, SkeletonArrays]:
    """Train / test split of a synthetic dataset.

    Protocols:
        - ``"xsub"`` (cross-subject): train on the odd-numbered subjects 1, 3, 5, ..., test on
          the even-numbered ones.
        - ``"xview"`` (cross-view, NTU convention): test on camera 1, train on all other cameras
          (cameras 2 and 3 by default).

    Args:
        arrays: clips with ``meta["subject"]`` (xsub) or ``meta["camera"]`` (xview).
        protocol: ``"xsub"`` or ``"xview"``.

    Returns:
        ``(train, test)``, each a :class:`SkeletonArrays` (copies).

    Shapes:
        - **train.data**: :math:`(N_{train}, C, T, V, M)`, **test.data**:
          :math:`(N_{test}, C, T, V, M)` with :math:`N_{train} + N_{test} = N`.

    Raises:
        ValueError: unknown protocol, missing metadata, or a split with an empty side.
    """
    if protocol == "xsub":
        key, what = "subject", "subjects"
    elif protocol == "xview":
        key, what = "camera", "cameras"
    else:
        raise ValueError(f"unknown split protocol {protocol!r}; known: {', '.join(SPLIT_PROTOCOLS)}")
    if key not in arrays.meta:
        raise ValueError(f"{arrays.source}: protocol {protocol!r} needs meta[{key!r}], "
                         "which is missing")
    ids = np.asarray(arrays.meta[key])
    train = ids % 2 == 1 if protocol == "xsub" else ids != 1
    if train.all() or not train.any():
        raise ValueError(f"{arrays.source}: protocol {protocol!r} leaves one side empty "
                         f"({what} present: {sorted(set(ids.tolist()))})")
    return arrays.subset(np.flatnonzero(train)), arrays.subset(np.flatnonzero(~train))
