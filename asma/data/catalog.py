"""Resolve a dataset name from a config to ``(train, test)`` arrays."""
from __future__ import annotations

from typing import Tuple

from .arrays import SkeletonArrays


def load_dataset(cfg) -> Tuple[SkeletonArrays, SkeletonArrays]:
    """Load the train/test split named by a :class:`~asma.train.config.DataConfig`.

    ``"synthetic"`` is the embedded generator (no download); other names are prepared datasets
    (``asma data prepare``) read from ``cfg.data_dir``.
    """
    if cfg.dataset == "synthetic":
        from .synthetic import SyntheticConfig, make_synthetic, split
        arrays = make_synthetic(SyntheticConfig(
            layout=cfg.layout, num_classes=cfg.num_classes, clips_per_class=cfg.clips_per_class,
            num_frames=cfg.num_frames, num_persons=cfg.num_persons, seed=cfg.synthetic_seed))
        return split(arrays, cfg.protocol)
    from .prepared import PREPARED_DATASETS, load_prepared
    if cfg.dataset not in PREPARED_DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; known: synthetic, "
                         f"{', '.join(sorted(PREPARED_DATASETS))}")
    if not cfg.data_dir:
        raise ValueError(f"dataset {cfg.dataset!r} needs --data-dir (the folder written by "
                         f"'asma data prepare')")
    return load_prepared(cfg.dataset, cfg.data_dir)
