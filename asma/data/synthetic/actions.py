"""The human action library: a joint-angle pose builder, the one-person and two-person action
generators, incidental gestures (distractors) and the class tables, in label order.

Each generator fills pose ``a`` (and ``b`` for interactions) from timing ``t``."""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from .body import _HUMAN_ARTICULATED
from .timing import _Timing


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
