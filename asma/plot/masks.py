"""What each masking strategy masks on one real clip: HDSM / LDSM / random joints on the
skeleton, HMTM / LMTM / random frames on a strip of the clip's frames (asma.masking, §3.2)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..data.arrays import SkeletonArrays
from ..masking import joint_mask_probs, motion_scores, sample_frame_mask, sample_joint_mask
from .common import (PlotResult, draw_skeleton, finish, front_direction, png_path, pose_xy, pyplot,
                     undirected_edges)

SPATIAL = {"high": "HDSM (high degree)", "low": "LDSM (low degree)", "random": "random joints"}
TEMPORAL = {"high": "HMTM (high motion)", "low": "LMTM (low motion)", "random": "random frames"}


def mask_examples(clip: np.ndarray, skeleton, n_joints: int = 9, n_frames: int = 10, seed: int = 0,
                  num_coords: int = 3, draws: int = 4000) -> Dict[str, object]:
    """Masks of every strategy on one clip, drawn with :mod:`asma.masking` from
    ``torch.Generator().manual_seed(seed)`` in the order: spatial high, low, random (one
    mask each, then ``draws`` masks each for the empirical per-joint frequency), then temporal
    high, low, random.

    Shapes:
        - **clip**: :math:`(C, T, V, M)`

    Returns:
        dict with ``joint_masks`` (strategy -> masked joint indices), ``joint_probs`` (strategy
        -> Eq. 1/2 probabilities), ``joint_frequency`` (strategy -> fraction of ``draws`` masks
        containing each joint), ``motion`` (:math:`a_t`, Eqs. 3-4) and ``frame_masks``
        (strategy -> masked frame indices).
    """
    x = torch.from_numpy(np.array(clip, dtype=np.float32))[None]  # a copy: memmapped stores are read-only
    degree = skeleton.degree()
    g = torch.Generator().manual_seed(seed)
    out: Dict[str, Dict] = {"joint_masks": {}, "joint_probs": {}, "joint_frequency": {}, "frame_masks": {}}
    for s in SPATIAL:
        p = joint_mask_probs(degree, s)
        out["joint_masks"][s] = torch.nonzero(sample_joint_mask(1, p, n_joints, g)[0]).flatten().tolist()
        out["joint_probs"][s] = p.tolist()
        out["joint_frequency"][s] = sample_joint_mask(draws, p, n_joints, g).float().mean(0).tolist()
    scores = motion_scores(x, num_coords)
    for t in TEMPORAL:
        out["frame_masks"][t] = torch.nonzero(sample_frame_mask(scores, n_frames, t, g)[0]).flatten().tolist()
    return {"n_joints": n_joints, "n_frames": n_frames, "seed": seed, "draws": draws,
            "degree": degree.tolist(), "motion": scores[0].tolist(), **out}


def _frame_strip(ax, clip: np.ndarray, skeleton, masked: Sequence[int], step: float, front: np.ndarray) -> None:
    """Every frame's pose side by side; masked frames in red, the others grey."""
    T = clip.shape[1]
    edges = undirected_edges(skeleton)
    for t in range(T):
        xy = pose_xy(clip, t, direction=front)
        if not np.abs(xy).any():
            continue
        xy = xy + np.array([t * step - xy[:, 0].mean(), 0.0])  # frame t centred at t * step
        hit = t in masked
        for a, b in edges:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="red" if hit else "0.65", lw=1.3 if hit else 0.7)
    ax.set_aspect("equal", adjustable="box")
    ax.set_yticks([])
    ticks = list(range(0, T, 5))
    ax.set_xticks([t * step for t in ticks])
    ax.set_xticklabels([])


def plot_masks(arrays: SkeletonArrays, out, index: int = 0, n_joints: int = 9, n_frames: int = 10,
               seed: int = 0, title: Optional[str] = None) -> PlotResult:
    """Draw :func:`mask_examples` for clip ``index`` of ``arrays``: one skeleton per spatial
    strategy (masked joints as red crosses, empirical masking frequency per joint underneath)
    and one frame strip per temporal strategy (masked frames in red, :math:`a_t` as bars underneath).
    Writes ``out`` and ``<stem>.json``."""
    if not 0 <= index < len(arrays):
        raise ValueError(f"clip index {index} is out of range: {arrays.source} has {len(arrays)} clips")
    png_path(out)
    plt = pyplot()
    skel = arrays.skeleton
    clip = np.asarray(arrays.data[index])
    d = mask_examples(clip, skel, n_joints, n_frames, seed, arrays.num_coords)
    d.update(clip=index, clip_name=(arrays.names[index] if arrays.names else str(index)),
             label=arrays.class_names[int(arrays.labels[index])], joints=list(skel.joint_names))
    T, V = clip.shape[1], skel.num_joints
    front = front_direction(clip, arrays.num_coords)
    image_y = arrays.num_coords < 3
    xy = pose_xy(clip, T // 2, direction=front)
    fig = plt.figure(figsize=(17, 16))
    gs = fig.add_gridspec(8, 3, height_ratios=[2.6, 0.9] + [0.8, 0.5] * 3, hspace=0.5, wspace=0.25)
    for i, s in enumerate(SPATIAL):
        ax = fig.add_subplot(gs[0, i])
        hit = np.zeros(V, bool)
        hit[d["joint_masks"][s]] = True
        draw_skeleton(ax, xy, skel, colors=plt.get_cmap("viridis")(np.array(d["degree"]) / max(d["degree"])),
                      highlight=hit, labels=True, image_y=image_y)
        ax.set_title(f"{SPATIAL[s]}: {n_joints} of {V} joints masked\n(red crosses, frame {T // 2})", fontsize=10)
        axf = fig.add_subplot(gs[1, i])
        axf.bar(np.arange(1, V + 1), d["joint_frequency"][s], color="tab:red", alpha=0.75)
        axf.set_ylim(0, 1)
        axf.set_xticks(range(1, V + 1, 2 if V > 20 else 1))
        axf.tick_params(labelsize=7)
        axf.set_xlabel("joint", fontsize=8)
        axf.set_ylabel(f"P(masked)\n{d['draws']} draws", fontsize=8)
    step = 1.15 * max(max(float(np.ptp(pose_xy(clip, t, direction=front)[:, 0])) for t in range(T)), 1e-6)
    a = np.array(d["motion"])
    for r, t in enumerate(TEMPORAL):
        ax = fig.add_subplot(gs[2 + 2 * r, :])
        _frame_strip(ax, clip, skel, d["frame_masks"][t], step, front)
        if image_y:
            ax.invert_yaxis()
        ax.set_title(f"{TEMPORAL[t]}: {n_frames} of {T} frames masked (red)", fontsize=10, loc="left")
        ax.set_xlim(-step, T * step)
        am = fig.add_subplot(gs[3 + 2 * r, :])
        masked = np.array(d["frame_masks"][t], dtype=int)
        am.bar(np.arange(T), a, width=0.8, color="0.7")
        am.bar(masked, a[masked], width=0.8, color="red")
        am.set_xlim(-1, T)
        am.set_ylabel("motion $a_t$", fontsize=8)
        am.tick_params(labelsize=7)
        am.set_xlabel("frame", fontsize=8)
        ax.apply_aspect()  # the equal-aspect strip may be narrower than its cell: align the bars with it
        p, q = ax.get_position(), am.get_position()
        am.set_position([p.x0, q.y0, p.width, q.height])
    fig.suptitle(title or f"Masking strategies on clip {d['clip_name']} ({d['label']}, {getattr(skel, 'name', '')}); "
                 f"seed {seed}", fontsize=12)
    return finish(fig, out, d)
