"""Bodies: a kinematic tree with rest offsets, forward kinematics, the canonical human body and
its joint correspondence to the built-in human layouts."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional

import numpy as np

from ...graph import Skeleton, get_layout


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
