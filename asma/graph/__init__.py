"""Skeleton graphs (PyG ``Data`` conventions, :meth:`Skeleton.to_pyg`): built-in layouts, custom constructors,
partitions."""
from .layouts import (get_layout, layout_description, list_layouts, register_layout)
from .partition import normalize_columns, partition_adjacency
from .skeleton import Skeleton, flip_permutation_from_names, from_edges, skeleton_from_dict

__all__ = ["Skeleton", "from_edges", "skeleton_from_dict", "flip_permutation_from_names", "get_layout", "list_layouts",
           "register_layout", "layout_description", "partition_adjacency", "normalize_columns"]
