"""Backbones (registry), heads, classifiers, the alignment module and the ASMa pretraining model.

``GIN`` and ``DGCNN`` are imported on first use (GIN needs torch_geometric, which building and
running the other backbones does not).
"""
from .registry import (Backbone, count_flops, count_parameters, create_backbone, import_plugin,
                       list_backbones, register_backbone)
from .alignment import AlignedClassifier, FeatureAlignment
from .classifiers import EncoderClassifier, FeatureStandardizer, feature_stats
from .spatiotemporal import SpatioTemporalBlock, SpatioTemporalEncoder, TemporalConv
from .stgcn import STGCN, GraphConv
from .student import STGCNStudent

_LAZY = {"GIN": "gin", "DGCNN": "dgcnn"}

__all__ = ["Backbone", "create_backbone", "list_backbones", "register_backbone", "import_plugin",
           "count_parameters", "count_flops", "STGCN", "GraphConv", "SpatioTemporalEncoder", "SpatioTemporalBlock",
           "TemporalConv", "GIN", "DGCNN", "STGCNStudent", "EncoderClassifier", "AlignedClassifier",
           "FeatureAlignment", "FeatureStandardizer", "feature_stats"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
