"""The paper's figures as functions (``asma plot``; needs ``pip install 'asma[plot]'``).

Every ``plot_*`` function writes a PNG and, next to it, the numbers it shows (``<stem>.json``,
and ``<stem>.csv`` for tables), and returns a :class:`PlotResult`. matplotlib and scikit-learn
are imported only when a figure is drawn.
"""
from .common import PlotResult
from .embedding import plot_tsne, run_encoder, tsne_data
from .masks import mask_examples, plot_masks
from .motion import joint_motion, motion_by_degree, plot_motion_degree
from .runs import encoder_difference, plot_confusion, plot_curves, plot_encoder_difference, read_metrics
from .sweeps import plot_sweep, read_sweep

__all__ = ["PlotResult", "plot_tsne", "run_encoder", "tsne_data", "mask_examples", "plot_masks", "joint_motion",
           "motion_by_degree", "plot_motion_degree", "encoder_difference", "plot_confusion", "plot_curves",
           "plot_encoder_difference", "read_metrics", "plot_sweep", "read_sweep"]
