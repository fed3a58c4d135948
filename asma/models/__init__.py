"""Backbones (registry), heads, classifiers, the alignment module and the ASMa pretraining model."""
from .registry import (Backbone, count_flops, count_parameters, create_backbone, import_plugin,
                       list_backbones, register_backbone)
from .alignment import AlignedClassifier, FeatureAlignment
from .classifiers import EncoderClassifier, FeatureStandardizer, feature_stats
from .dgcnn import DGCNN
from .gin import GIN
from .stgcn import STGCN, GraphConv, STGCNBlock
from .student import STGCNStudent

__all__ = ["Backbone", "create_backbone", "list_backbones", "register_backbone", "import_plugin",
           "count_parameters", "count_flops", "STGCN", "STGCNBlock", "GraphConv", "GIN", "DGCNN", "STGCNStudent",
           "EncoderClassifier", "AlignedClassifier", "FeatureAlignment", "FeatureStandardizer", "feature_stats"]
