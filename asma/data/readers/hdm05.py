"""HDM05 motion capture (Acclaim ASF skeletons + AMC motions, 120 fps) to joint positions.

- ``HDM_<actor>.asf``: one skeleton per actor: ``:units`` (``length 0.45`` = 1/0.45 inch per
  unit, the Acclaim/CMU convention; ``angle deg``), the root's channel ``order`` and ``axis``, and
  per bone a unit ``direction``, a ``length``, an ``axis`` (Euler angles + their order, the bone's
  local frame) and its rotational ``dof``; then the ``:hierarchy``.
- ``HDM_<actor>_<motion>_<nnn>_120.amc``: per frame a frame number, then one line per bone with
  its dof values (root: the ``order`` channels, e.g. ``TX TY TZ RX RY RZ``).

Forward kinematics (the Acclaim rule): a bone's world rotation is
``L = L_parent C R C^-1`` with ``C`` the ``axis`` rotation and ``R`` the frame's dof rotation,
both composed in the order the ASF lists their axes (``XYZ``: first about x, so
``R = Rz Ry Rx``); its far end is ``p_parent + length * L direction``. Joint positions are
returned in metres (y up) in the ``hdm05`` layout: the root and the far end of each of the 30
ASF bones (:data:`HDM05_BONES`).

M. Müller et al., "Documentation Mocap Database HDM05", Tech. Report CG-2007-2, Universität Bonn.
The labelled subset used here (11 "HDM05 cut" classes, 5 actors) is split by actor: bd, bk, dg
train, mm and tr test.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataFormatError, EmptySequenceError
from ._text import Source, read_source, split_lines
from .clips import ClipSource, Item, RawClip, find_named_files, one_person

HDM05_CLASS_NAMES = ("depositFloorR", "elbowToKnee1RepsLelbowStart", "grabHighR", "hopBothLegs1hops",
                     "jogLeftCircle4StepsRstart", "kickLFront1Reps", "lieDownFloor", "rotateArmsBothBackward1Reps",
                     "sneak2StepsLStart", "squat1Reps", "throwBasketball")
HDM05_ACTORS = ("bd", "bk", "dg", "mm", "tr")
HDM05_TRAIN_ACTORS = ("bd", "bk", "dg")
HDM05_META_KEYS = ("actor", "take", "length")
INCH = 0.0254
_NAME = re.compile(r"^HDM_([a-z]{2})_(.+)_(\d{3})_(\d+)$", re.I)


@dataclass
class AsfBone:
    """One ASF bone: unit ``direction`` (3,), ``length`` (ASF units), ``axis`` (3,) angles,
    ``axis_order`` (e.g. ``"XYZ"``), ``dof`` channels in file order (e.g. ``("rx", "rz")``)."""

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dof: Tuple[str, ...]


@dataclass
class AsfSkeleton:
    """A parsed ASF file: bones, ``parent`` of each bone (``"root"`` at the top), the root's
    channel ``root_order``, its ``root_orientation`` angles (3,) in ``root_axis`` order, and the units (metres per length unit, radians per
    angle unit)."""

    bones: Dict[str, AsfBone]
    parent: Dict[str, str]
    root_order: Tuple[str, ...]
    root_axis: str
    root_orientation: np.ndarray
    metres_per_unit: float
    radians_per_unit: float
    path: str


def _rot(axis: str, a: np.ndarray) -> np.ndarray:
    """Rotations by angles ``a`` (radians) about one axis. Shapes: ``(F,) -> (F, 3, 3)``."""
    c, s = np.cos(a), np.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    R = np.zeros(a.shape + (3, 3))
    R[..., 3 - i - j, 3 - i - j] = 1.0
    R[..., i, i], R[..., i, j], R[..., j, i], R[..., j, j] = c, -s, s, c
    return R


def euler(angles: Dict[str, np.ndarray], order: str, frames: int) -> np.ndarray:
    """Compose rotations about the axes of ``order`` (first letter applied first).

    Shapes: ``angles[axis]`` ``(F,)`` radians (missing axes: 0) -> ``(F, 3, 3)``.
    """
    out = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
    for ax in order.lower():
        if ax in angles:
            out = _rot(ax, angles[ax]) @ out
    return out


def _asf_sections(text: str) -> Dict[str, List[Tuple[int, List[str]]]]:
    sections: Dict[str, List[Tuple[int, List[str]]]] = {}
    current = None
    for ln, line in enumerate(split_lines(text), 1):
        toks = line.split()
        if not toks or toks[0].startswith("#"):
            continue
        if toks[0].startswith(":"):
            current = toks[0][1:].lower()
            sections.setdefault(current, [])
            if len(toks) > 1:
                sections[current].append((ln, toks[1:]))
        elif current is not None:
            sections[current].append((ln, toks))
    return sections


def _floats(toks: List[str], n: int, path: str, ln: int, what: str) -> np.ndarray:
    if len(toks) < n:
        raise DataFormatError(f"{what}: expected {n} numbers, got {len(toks)}", path, ln)
    try:
        v = np.array([float(t) for t in toks[:n]])
    except ValueError:
        raise DataFormatError(f"{what}: not a number in {' '.join(toks[:n])!r}", path, ln) from None
    if not np.isfinite(v).all():
        raise DataFormatError(f"{what}: non-finite value", path, ln)
    return v


def _parse_bone(block: List[Tuple[int, List[str]]], path: str, ln0: int) -> AsfBone:
    f: Dict[str, Tuple[int, List[str]]] = {toks[0].lower(): (ln, toks[1:]) for ln, toks in block}
    for key in ("name", "direction", "length", "axis"):
        if key not in f:
            raise DataFormatError(f"bone without '{key}'", path, ln0)
    name = f["name"][1][0] if f["name"][1] else ""
    direction = _floats(f["direction"][1], 3, path, f["direction"][0], f"bone {name} direction")
    length = float(_floats(f["length"][1], 1, path, f["length"][0], f"bone {name} length")[0])
    ln, toks = f["axis"]
    axis = _floats(toks, 3, path, ln, f"bone {name} axis")
    order = toks[3].upper() if len(toks) > 3 else "XYZ"
    if sorted(order) != ["X", "Y", "Z"]:
        raise DataFormatError(f"bone {name}: axis order {order!r} is not a permutation of XYZ", path, ln)
    dof = tuple(t.lower() for t in f.get("dof", (0, []))[1])
    if any(d not in ("rx", "ry", "rz") for d in dof):
        raise DataFormatError(f"bone {name}: unsupported dof {' '.join(dof)!r} (rx, ry, rz only)", path,
                              f["dof"][0])
    norm = float(np.linalg.norm(direction))
    if norm == 0 and length != 0:
        raise DataFormatError(f"bone {name}: zero direction", path, f["direction"][0])
    return AsfBone(name, direction / (norm or 1.0), length, axis, order, dof)


def _parse_units(sections, path: str) -> Tuple[float, float]:
    units = {toks[0].lower(): (ln, toks[1:]) for ln, toks in sections.get("units", []) if toks}
    metres = INCH
    if "length" in units:
        ln, toks = units["length"]
        unit = float(_floats(toks, 1, path, ln, "units length")[0])
        if unit <= 0:
            raise DataFormatError(f"units length must be > 0, got {unit}", path, ln)
        metres = INCH / unit
    angle = units.get("angle", (0, ["deg"]))[1]
    rad = np.pi / 180 if not angle or angle[0].lower().startswith("deg") else 1.0
    return metres, rad


def read_asf(source: Source, *, name: Optional[str] = None) -> AsfSkeleton:
    """Parse an Acclaim ASF skeleton.

    Raises:
        DataFormatError: a missing section or field, a bad number, a bone in the hierarchy that
            is not defined, a bone that is unreachable from the root.
    """
    raw, path = read_source(source, name)
    sec = _asf_sections(raw.decode("latin-1"))
    for s in ("root", "bonedata", "hierarchy"):
        if s not in sec:
            raise DataFormatError(f"no :{s} section", path)
    root = {toks[0].lower(): toks[1:] for _, toks in sec["root"]}
    root_order = tuple(t.lower() for t in root.get("order", ["TX", "TY", "TZ", "RX", "RY", "RZ"]))
    root_axis = (root.get("axis") or ["XYZ"])[0].upper()
    if sorted(root_axis) != ["X", "Y", "Z"]:
        raise DataFormatError(f"root axis {root_axis!r} is not a permutation of XYZ", path)
    orient = _floats(root.get("orientation", ["0", "0", "0"]), 3, path, 0, "root orientation")
    bones: Dict[str, AsfBone] = {}
    block: List[Tuple[int, List[str]]] = []
    start = 0
    for ln, toks in sec["bonedata"]:
        if toks[0].lower() == "begin":
            block, start = [], ln
        elif toks[0].lower() == "end":
            b = _parse_bone(block, path, start)
            bones[b.name] = b
        else:
            block.append((ln, toks))
    parent: Dict[str, str] = {}
    for ln, toks in sec["hierarchy"]:
        if toks[0].lower() in ("begin", "end"):
            continue
        for child in toks[1:]:
            if child not in bones:
                raise DataFormatError(f"hierarchy names bone {child!r}, which :bonedata does not define", path, ln)
            if toks[0] != "root" and toks[0] not in bones:
                raise DataFormatError(f"hierarchy names bone {toks[0]!r}, which :bonedata does not define", path, ln)
            parent[child] = toks[0]
    lost = sorted(set(bones) - set(parent))
    if lost:
        raise DataFormatError(f"bones not in the hierarchy: {', '.join(lost)}", path)
    metres, rad = _parse_units(sec, path)
    return AsfSkeleton(bones, parent, root_order, root_axis, orient, metres, rad, path)


def read_amc(source: Source, asf: AsfSkeleton, *, name: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Parse an AMC motion for ``asf``.

    Returns:
        ``{"root": (F, 6) in the root's channel order, bone: (F, len(dof))}`` in file units
        (angles still in the file's unit).

    Raises:
        DataFormatError: naming the line: an unknown bone, a wrong number of values, a bad number,
            a frame without all bones, frame numbers out of sequence.
    """
    raw, path = read_source(source, name)
    lines = split_lines(raw.decode("latin-1"))  # the header comment is ISO-8859-1
    ndof = {b: len(v.dof) for b, v in asf.bones.items() if v.dof}
    ndof["root"] = len(asf.root_order)
    rows: Dict[str, List[List[str]]] = {b: [] for b in ndof}
    where: Dict[str, List[int]] = {b: [] for b in ndof}
    frame = 0
    seen: set = set()

    def close_frame(ln: int) -> None:
        if frame and seen != set(ndof):
            raise DataFormatError(f"frame {frame} lacks bone(s) {', '.join(sorted(set(ndof) - seen))}", path, ln)

    for ln, line in enumerate(lines, 1):
        toks = line.split()
        if not toks or toks[0].startswith(("#", ":")):
            continue
        if len(toks) == 1 and toks[0].isdigit():
            close_frame(ln)
            if int(toks[0]) != frame + 1:
                raise DataFormatError(f"frame number {toks[0]} after frame {frame}", path, ln)
            frame, seen = frame + 1, set()
            continue
        bone = toks[0]
        if frame == 0:
            raise DataFormatError(f"bone line before the first frame number: {line[:40]!r}", path, ln)
        if bone not in ndof:
            raise DataFormatError(f"unknown bone {bone!r} (not a bone with dof in {Path(asf.path).name})", path, ln)
        if bone in seen:
            raise DataFormatError(f"bone {bone} twice in frame {frame}", path, ln)
        if len(toks) - 1 != ndof[bone]:
            raise DataFormatError(f"bone {bone}: expected {ndof[bone]} values, got {len(toks) - 1}", path, ln)
        rows[bone].append(toks[1:])
        where[bone].append(ln)
        seen.add(bone)
    close_frame(len(lines))
    if frame == 0:
        raise EmptySequenceError("no frames", path)
    out = {}
    for b, r in rows.items():
        try:  # numpy parses the strings in one go; on failure find the line
            arr = np.array(r, dtype=np.float64).reshape(frame, ndof[b])
        except ValueError:
            arr = None
        if arr is None or not np.isfinite(arr).all():
            for toks, ln in zip(r, where[b]):
                _floats(toks, ndof[b], path, ln, f"bone {b}")
        out[b] = arr
    return out


def forward_kinematics(asf: AsfSkeleton, motion: Dict[str, np.ndarray], bones: Tuple[str, ...],
                       radians_per_unit: Optional[float] = None) -> np.ndarray:
    """Joint positions in metres: the root, then the far end of each bone in ``bones``.

    Shapes: ``motion`` as :func:`read_amc` returns -> ``(F, 1 + len(bones), 3)``.
    """
    rad = asf.radians_per_unit if radians_per_unit is None else radians_per_unit
    root = motion["root"]
    F = root.shape[0]
    ch = {c: root[:, i] for i, c in enumerate(asf.root_order)}
    pos = {"root": np.stack([ch.get(t, np.zeros(F)) for t in ("tx", "ty", "tz")], axis=1)}
    C0 = euler({a: np.full(1, v * rad) for a, v in zip("xyz", asf.root_orientation)}, asf.root_axis, 1)[0]
    R0 = euler({c[1]: ch[c] * rad for c in ("rx", "ry", "rz") if c in ch},
               "".join(c[1] for c in asf.root_order if c.startswith("r")), F)
    rot = {"root": C0 @ R0 @ C0.T}
    todo = [b for b in asf.bones]
    while todo:  # parents first
        rest = []
        for b in todo:
            p = asf.parent[b]
            if p not in rot:
                rest.append(b)
                continue
            bone = asf.bones[b]
            C = euler({a: np.full(1, v * rad) for a, v in zip("xyz", bone.axis)}, bone.axis_order, 1)[0]
            vals = motion.get(b)
            R = euler({d[1]: vals[:, i] * rad for i, d in enumerate(bone.dof)} if vals is not None else {},
                      "".join(d[1] for d in bone.dof) or "xyz", F)
            rot[b] = rot[p] @ (C @ R @ C.T)
            pos[b] = pos[p] + bone.length * (rot[b] @ bone.direction)
        if len(rest) == len(todo):
            raise DataFormatError(f"bones unreachable from the root: {', '.join(sorted(rest))}", asf.path)
        todo = rest
    missing = [b for b in bones if b not in pos]
    if missing:
        raise DataFormatError(f"the skeleton has no bone(s) {', '.join(missing)} of the hdm05 layout", asf.path)
    return np.stack([pos["root"]] + [pos[b] for b in bones], axis=1) * asf.metres_per_unit


def read_hdm05(amc: Source, asf: AsfSkeleton, *, name: Optional[str] = None) -> np.ndarray:
    """One AMC motion as ``(F, 31, 3)`` joint positions in metres in the ``hdm05`` layout."""
    from ...graph.layouts import HDM05_BONES  # here, not at the top: asma.graph imports torch
    raw, path = read_source(amc, name)
    head = raw[:2000].decode("latin-1").upper()
    rad = 1.0 if ":RADIANS" in head else np.pi / 180 if ":DEGREES" in head else None
    joints = forward_kinematics(asf, read_amc(raw, asf, name=path), HDM05_BONES, rad)
    if not np.isfinite(joints).all():
        raise DataFormatError("non-finite joint position", path)
    return joints


def _list_items(raw: Path, skipped: List[Dict[str, str]]) -> List[Item]:
    asfs = {stem[4:].lower(): p for p, stem, _ in find_named_files(raw, ".asf", re.compile(r"^HDM_[a-z]{2}$", re.I),
                                                                    [])}
    items = []
    for p, stem, m in find_named_files(raw, ".amc", _NAME, skipped):
        actor, motion = m.group(1).lower(), m.group(2)
        if motion not in HDM05_CLASS_NAMES:
            skipped.append({"file": p, "reason": f"motion {motion!r} is not one of the 11 classes"})
        elif actor not in asfs:
            skipped.append({"file": p, "reason": f"no skeleton HDM_{actor}.asf under the raw folder"})
        else:
            items.append((p, stem, asfs[actor]))
    return items


def _read_item(item: Item, max_persons: int) -> Tuple[List[RawClip], List[Dict[str, Any]]]:
    path, stem, asf_path = item
    m = _NAME.match(stem)
    joints = read_hdm05(path, read_asf(asf_path))
    actor = m.group(1).lower()
    meta = {"actor": HDM05_ACTORS.index(actor) if actor in HDM05_ACTORS else -1, "take": int(m.group(3)),
            "length": joints.shape[0]}
    return [RawClip(one_person(joints, max_persons), HDM05_CLASS_NAMES.index(m.group(2)), meta, stem, path)], []


def hdm05_train_mask(benchmark: str, meta: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``"xsub"``: actors bd, bk, dg train; mm, tr (and any other) test."""
    if benchmark != "xsub":
        raise ValueError(f"HDM05 has no benchmark {benchmark!r}; known: xsub")
    train_ids = [HDM05_ACTORS.index(a) for a in HDM05_TRAIN_ACTORS]
    return np.isin(meta["actor"], train_ids), {"rule": "actors bd, bk, dg train; mm, tr test",
                                               "train_actors": list(HDM05_TRAIN_ACTORS)}


SOURCE = ClipSource(HDM05_CLASS_NAMES, HDM05_META_KEYS, _list_items, _read_item, hdm05_train_mask, ("xsub",))
