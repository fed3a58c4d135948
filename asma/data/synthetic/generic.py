"""The generator for custom (non-human) layouts: a seeded random body on the skeleton's
breadth-first tree and seeded per-class rotation recipes on class-specific joints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...graph import Skeleton
from .actions import _DISTRACTOR_PROB
from .body import _Body, _forward_kinematics
from .timing import _Timing


# Distinct one-person and two-person recipes available for custom layouts.
_GENERIC_SINGLE, _GENERIC_PAIR = 24, 8


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
