"""Backbones (registry), heads, classifiers, the alignment module and the ASMa pretraining model."""
from .registry import (Backbone, count_flops, count_parameters, create_backbone, import_plugin,
                       list_backbones, register_backbone)
from .alignment import AlignedClassifier, FeatureAlignment
from .classifiers import EncoderClassifier, FeatureStandardizer, feature_stats
from .dgcnn import DGCNN
from .gin import GIN
from .spatiotemporal import SpatioTemporalBlock, SpatioTemporalEncoder, TemporalConv
from .stgcn import STGCN, GraphConv
from .student import STGCNStudent

__all__ = ["Backbone", "create_backbone", "list_backbones", "register_backbone", "import_plugin",
           "count_parameters", "count_flops", "STGCN", "GraphConv", "SpatioTemporalEncoder", "SpatioTemporalBlock", "TemporalConv", "GIN", "DGCNN", "STGCNStudent",
           "EncoderClassifier", "AlignedClassifier", "FeatureAlignment", "FeatureStandardizer", "feature_stats"]
