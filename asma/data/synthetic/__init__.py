"""Procedurally generated skeleton action clips: the library's embedded default dataset.

The quick start needs data that is there without a download, that a self-supervised encoder can
learn something from, and that is not so easy that every method scores 100 %. This package
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

# Code map:
#   config.py     SyntheticConfig and its validation
#   rotations.py  batched rotation matrices
#   timing.py     per-performance time variables (_Timing)
#   body.py       kinematic tree, forward kinematics, canonical human, HUMAN_LAYOUT_JOINTS
#   actions.py    human pose builder, action generators, distractors, class tables
#   generic.py    custom-layout generator (random body, per-class rotation recipes)
#   classes.py    class plan and class_names
#   scene.py      subject/camera tables, posing and placing performers
#   sensor.py     camera view, noise, centring, dropped joints
#   make.py       make_synthetic
#   splits.py     split (xsub, xview), SPLIT_PROTOCOLS
from .body import HUMAN_LAYOUT_JOINTS
from .classes import class_names
from .config import SyntheticConfig
from .make import make_synthetic
from .splits import SPLIT_PROTOCOLS, split

__all__ = ["SyntheticConfig", "make_synthetic", "split", "class_names", "HUMAN_LAYOUT_JOINTS",
           "SPLIT_PROTOCOLS"]
