"""The paper's figures as functions (``asma plot``; needs ``pip install 'asma[plot]'``).

Every ``plot_*`` function writes a PNG and, next to it, the numbers it shows (``<stem>.json``,
and ``<stem>.csv`` for tables), and returns a :class:`PlotResult`.
"""
from .common import PlotResult

__all__ = ["PlotResult"]
