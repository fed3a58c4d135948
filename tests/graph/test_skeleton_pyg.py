"""Skeleton is plain torch (no torch_geometric import) and converts to a PyG ``Data``."""
from __future__ import annotations

import subprocess
import sys

import torch

from asma.graph import from_edges, get_layout


def test_to_pyg_keeps_the_graph_and_metadata():
    from torch_geometric.data import Data
    from torch_geometric.utils import coalesce, to_undirected
    s = get_layout("ntu25")
    d = s.to_pyg()
    assert isinstance(d, Data) and d.num_nodes == 25 and torch.equal(d.edge_index, s.edge_index)
    assert d.joint_names == s.joint_names and d.center == s.center and torch.equal(d.flip_perm, s.flip_perm)
    # the edge list is PyG's coalesce(to_undirected(.)) of the bones
    hand = from_edges([(3, 1), (0, 1), (1, 2), (1, 0)], joint_names=["wrist", "mcp", "pip", "tip"])
    ref = coalesce(to_undirected(torch.tensor([[3, 0, 1], [1, 1, 2]]), num_nodes=4), num_nodes=4)
    assert torch.equal(hand.edge_index, ref)


def test_layouts_do_not_import_torch_geometric():
    code = "import sys; from asma.graph import get_layout; get_layout('ntu25'); print('torch_geometric' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_degree_equals_pyg_degree_on_every_layout():
    from torch_geometric.utils import degree
    from asma.graph import list_layouts
    for name in list_layouts():
        s = get_layout(name)
        ref = degree(s.to_pyg().edge_index[0], num_nodes=s.num_nodes)
        assert torch.equal(s.degree(), ref), name
