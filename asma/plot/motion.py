"""Fig. 1: per-joint motion intensity against joint degree on a labelled set of clips."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ..data.arrays import SkeletonArrays
from .common import PlotResult, draw_skeleton, finish, front_direction, png_path, pose_xy, pyplot


def joint_motion(data: np.ndarray, num_coords: int = 3) -> np.ndarray:
    r"""Mean displacement of every joint per frame, per clip: the Euclidean norm of
    :math:`x_{t+1,v} - x_{t,v}` over the coordinate channels, averaged over the frame pairs in
    which the first person is present in both frames (all-zero frames are padding).

    Shapes:
        - **data**: :math:`(N, C, T, V, M)` -> **output**: :math:`(N, V)` (NaN for a clip with no
          pair of present frames)
    """
    x = np.asarray(data[:, :num_coords, :, :, 0], dtype=np.float64)          # (N, C, T, V)
    present = np.abs(x).sum(axis=(1, 3)) > 0                                  # (N, T)
    pair = present[:, 1:] & present[:, :-1]                                   # (N, T-1)
    step = np.linalg.norm(x[:, :, 1:] - x[:, :, :-1], axis=1)                 # (N, T-1, V)
    count = pair.sum(axis=1)
    total = (step * pair[:, :, None]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 0, total / count[:, None], np.nan)


def motion_by_degree(arrays: SkeletonArrays) -> Dict[str, object]:
    """The numbers of Fig. 1: per joint its degree, the mean motion over all clips and per
    class, and the Spearman rank correlation between degree and motion.

    Returns:
        dict with ``joints`` (names), ``degree`` :math:`(V,)`, ``motion`` :math:`(V,)`,
        ``motion_per_class`` :math:`(K, V)` (lists; ``None`` for a class without clips),
        ``class_names``, ``spearman`` (rho, p-value) and ``num_clips``.
    """
    from scipy.stats import spearmanr
    skel = arrays.skeleton
    per_clip = joint_motion(arrays.data, arrays.num_coords)
    ok = ~np.isnan(per_clip).any(axis=1)
    if not ok.any():
        raise ValueError(f"{arrays.source}: no clip has two consecutive frames with a person; nothing to measure")
    per_clip, labels = per_clip[ok], arrays.labels[ok]
    degree = skel.degree().numpy()
    motion = per_clip.mean(axis=0)
    per_class = [per_clip[labels == k].mean(axis=0).tolist() if (labels == k).any() else None
                 for k in range(arrays.num_classes)]
    rho, p = spearmanr(degree, motion)
    return {"source": arrays.source, "layout": getattr(skel, "name", "custom"), "num_clips": int(ok.sum()),
            "joints": list(skel.joint_names), "degree": degree.tolist(), "motion": motion.tolist(),
            "class_names": list(arrays.class_names), "motion_per_class": per_class,
            "spearman": {"rho": float(rho), "p": float(p)}}


def mean_pose(arrays: SkeletonArrays, max_clips: int = 500) -> np.ndarray:
    """A neutral pose to draw the layout on: the average over clips of each clip's mean pose, seen
    from its front (:func:`~asma.plot.common.front_direction`, so clips of several camera views
    agree) and mirrored to agree with the first clip (the principal direction has no sign).

    Shapes:
        - **output**: :math:`(V, 2)`
    """
    poses, ref = [], None
    for clip in (np.asarray(c) for c in arrays.data[:max_clips]):
        present = np.flatnonzero(np.abs(clip[:, :, :, 0]).sum(axis=(0, 2)) > 0)
        if not len(present):
            continue
        front = front_direction(clip, arrays.num_coords)
        xy = np.mean([(lambda q: q - q.mean(axis=0))(pose_xy(clip, int(t), direction=front)) for t in present], axis=0)
        if ref is None:
            ref = xy
        elif float((xy[:, 0] * ref[:, 0]).sum()) < 0:
            xy[:, 0] = -xy[:, 0]
        poses.append(xy)
    if not poses:
        raise ValueError(f"{arrays.source}: every frame is empty")
    return np.mean(poses, axis=0)


def plot_motion_degree(arrays: SkeletonArrays, out, title: Optional[str] = None) -> PlotResult:
    """Fig. 1 as a PNG: (a) the skeleton coloured by degree, (b) mean motion per joint
    (bars coloured by degree), (c) motion per joint and class. Writes ``out`` and
    ``<stem>.json`` / ``<stem>.csv`` (one row per joint: degree, mean motion, per class)."""
    png_path(out)
    plt = pyplot()
    d = motion_by_degree(arrays)
    skel = arrays.skeleton
    degree, motion = np.array(d["degree"]), np.array(d["motion"])
    cmap = plt.get_cmap("viridis", int(degree.max()) + 1)
    colors = cmap(degree.astype(int))
    V = len(degree)
    fig = plt.figure(figsize=(max(12, 0.55 * V + 4), 8.5))
    gs = fig.add_gridspec(2, 2, width_ratios=[1, 2.6], height_ratios=[1, 1.1], hspace=0.55, wspace=0.12)
    ax0 = fig.add_subplot(gs[:, 0])
    draw_skeleton(ax0, mean_pose(arrays), skel, colors=colors, size=70, labels=True,
                  image_y=arrays.num_coords < 3)
    ax0.set_title("(a) joints coloured by degree\n(mean pose, front view)")
    for k in sorted(set(degree.astype(int).tolist())):
        ax0.scatter([], [], color=cmap(k), s=50, edgecolors="k", linewidths=0.4, label=f"degree {k}")
    ax0.legend(loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    ax1 = fig.add_subplot(gs[0, 1])
    ax1.bar(np.arange(V), motion, color=colors, edgecolor="k", linewidth=0.4)
    centre = int(skel.center)
    if motion[centre] < 1e-9 * max(float(motion.max()), 1e-12):
        ax1.annotate("centre joint: subtracted\nby preprocessing", (centre, 0), xytext=(0, 45),
                     textcoords="offset points", ha="center", fontsize=7, arrowprops={"arrowstyle": "->"},
                     bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
    ax1.set_xticks(np.arange(V))
    ax1.set_xticklabels([f"{v + 1} {n}" for v, n in enumerate(d["joints"])], rotation=60, ha="right", fontsize=7)
    ax1.set_ylabel("mean displacement\nper frame (data units)")
    rho = d["spearman"]["rho"]
    ax1.set_title(f"(b) motion intensity per joint, {d['num_clips']} clips (Spearman ρ(degree, motion) = {rho:.2f})")
    ax2 = fig.add_subplot(gs[1, 1])
    rows = [r if r is not None else [np.nan] * V for r in d["motion_per_class"]]
    im = ax2.imshow(np.array(rows), aspect="auto", cmap="magma")
    ax2.set_xticks(np.arange(V))
    ax2.set_xticklabels([str(v + 1) for v in range(V)], fontsize=7)
    ax2.set_yticks(np.arange(len(rows)))
    ax2.set_yticklabels(d["class_names"], fontsize=7)
    ax2.set_xlabel("joint (1-based, as in (a))")
    ax2.set_title("(c) motion intensity per joint and class")
    fig.colorbar(im, ax=ax2, fraction=0.03, pad=0.01, label="mean displacement per frame")
    fig.suptitle(title or f"Joint degree vs motion intensity ({d['layout']} layout)", fontsize=12)
    header = ["joint", "name", "degree", "motion"] + [f"motion[{c}]" for c in d["class_names"]]
    table = [[v + 1, d["joints"][v], int(degree[v]), float(motion[v])] +
             [float(r[v]) if r is not None else "" for r in d["motion_per_class"]] for v in range(V)]
    return finish(fig, out, d, (header, table))
