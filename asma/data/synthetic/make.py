""":func:`make_synthetic`: generates the dataset, class by class."""
from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Optional, Union

import numpy as np

from ...graph import Skeleton, get_layout
from ..arrays import SkeletonArrays
from .actions import _HUMAN_PAIR, _HUMAN_SINGLE, _human_fill
from .body import _HUMAN_BODY, _human_joint_map, _restricted
from .classes import _class_plan, class_names
from .config import SyntheticConfig, _validate
from .generic import _GENERIC_PAIR, _GENERIC_SINGLE, _generic_body, _generic_fill, _generic_specs
from .scene import _class_scene, _make_tables
from .sensor import _sensor, _view


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
    cfg = _resolve_config(config, layout, overrides)
    skel = get_layout(cfg.layout)
    body, joint_map, fills = _class_fills(cfg, skel)
    names = class_names(cfg.num_classes, cfg.num_persons, cfg.layout)
    data, label_arr, meta_arr = _render(cfg, skel, body, joint_map, fills)
    clip_names = [f"C{c:03d}P{s:03d}R{r:03d}A{a + 1:03d}" for c, s, r, a in
                  zip(meta_arr["camera"], meta_arr["subject"], meta_arr["replication"], label_arr)]
    layout_name = cfg.layout if isinstance(cfg.layout, str) else getattr(skel, "name", "custom")
    return SkeletonArrays(
        data=data, labels=label_arr, layout=cfg.layout, class_names=names, meta=meta_arr,
        names=clip_names, source=f"synthetic(layout={layout_name}, seed={cfg.seed})")


def _resolve_config(config: Optional[SyntheticConfig], layout, overrides) -> SyntheticConfig:
    """The validated configuration: ``config`` (or the defaults) with ``overrides`` and ``layout``."""
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
    return replace(cfg, speed_range=tuple(float(s) for s in cfg.speed_range))


def _class_fills(cfg: SyntheticConfig, skel: Skeleton):
    """``(body, joint_map, fills)``: the body model, the layout's joints in it, and per class the
    motion generator and whether it is a two-person class (human layouts use the named actions)."""
    joint_map = _human_joint_map(skel)
    if joint_map is not None:
        body = _restricted(_HUMAN_BODY, joint_map)
        ns, npair = _class_plan(cfg.num_classes, cfg.num_persons, len(_HUMAN_SINGLE), len(_HUMAN_PAIR))
        fills = [(_human_fill(g), False) for _, g in _HUMAN_SINGLE[:ns]]
        fills += [(_human_fill(g), True) for _, g in _HUMAN_PAIR[:npair]]
        return body, joint_map, fills
    body = _generic_body(skel, cfg.seed)
    joint_map = np.arange(skel.num_joints)
    ns, npair = _class_plan(cfg.num_classes, cfg.num_persons, _GENERIC_SINGLE, _GENERIC_PAIR)
    specs = _generic_specs(body, int(skel.center), cfg.seed, ns + 2 * npair)
    A, extent = len(body.articulated), body.extent
    movable = [int(body.slot[j]) for j in body.articulated if j != int(skel.center)]
    fills = [(_generic_fill(specs[k], None, A, extent, movable), False) for k in range(ns)]
    fills += [(_generic_fill(specs[ns + 2 * k], specs[ns + 2 * k + 1], A, extent, movable), True)
              for k in range(npair)]
    return body, joint_map, fills


def _render(cfg: SyntheticConfig, skel: Skeleton, body, joint_map: np.ndarray, fills):
    """``(data (N, C, T, V, M), labels (N,), meta)`` of every class, performance and camera."""
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
    return data, np.concatenate(labels), meta_arr
