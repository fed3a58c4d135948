"""The skeleton graph: joints, bones and body-layout metadata, in PyG's ``Data`` conventions
(``edge_index``, ``num_nodes``; :meth:`Skeleton.to_pyg` gives the PyG object).

Plain torch on purpose: building and running a model needs the layout, and importing
``torch_geometric`` (with sympy) would double an inference process's start-up time and memory.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Iterable, Optional, Sequence

import torch
from torch import Tensor


def undirected_edges(edges: Tensor, num_nodes: int) -> Tensor:
    r"""Both directions of every edge, without duplicates, sorted by (source, target) (PyG's
    ``coalesce(to_undirected(edges))``).

    Shapes:
        - **edges**: :math:`(2, E)` long -> :math:`(2, E')` long
    """
    both = torch.cat([edges, edges.flip(0)], dim=1)
    key = torch.unique(both[0] * num_nodes + both[1])  # sorted
    return torch.stack([key // num_nodes, key % num_nodes])


class Skeleton:
    r"""A skeleton layout as a graph, with the attributes of a PyG ``Data`` (``edge_index``,
    ``num_nodes``) and :meth:`to_pyg` for the PyG object itself.

    Nodes are joints, undirected edges are bones. Besides ``edge_index`` and ``num_nodes`` it
    records what skeleton-specific code needs: joint names, the centre joint (the root of the
    spatial partition and of the bone tree), the left/right flip permutation and bone pairs.

    Args:
        edge_index (LongTensor): ``[2, E]``, undirected (both directions), no duplicates, no self loops.
        num_nodes (int): number of joints :math:`V`.
        joint_names (list[str]): :math:`V` names.
        center (int): 0-based centre joint.
        flip_perm (LongTensor): ``[V]``; ``x[..., flip_perm]`` mirrors left and right
            (new index -> old index).
        bone_pairs (LongTensor): ``[V, 2]``; bone ``v`` is ``joint[pairs[v,0]] - joint[pairs[v,1]]``.
        name (str): layout name.

    Shapes:
        - **edge_index**: :math:`(2, E)`
        - **flip_perm**: :math:`(V,)`
        - **bone_pairs**: :math:`(V, 2)`
    """

    def __init__(self, edge_index: Optional[Tensor] = None, num_nodes: Optional[int] = None,
                 joint_names: Optional[Sequence[str]] = None, center: Optional[int] = None,
                 flip_perm: Optional[Tensor] = None, bone_pairs: Optional[Tensor] = None,
                 name: Optional[str] = None, **kwargs):
        self.edge_index = edge_index
        self.num_nodes = num_nodes
        for key, value in kwargs.items():
            setattr(self, key, value)
        if joint_names is not None:
            self.joint_names = list(joint_names)
        if center is not None:
            self.center = int(center)
        if flip_perm is not None:
            self.flip_perm = flip_perm
        if bone_pairs is not None:
            self.bone_pairs = bone_pairs
        if name is not None:
            self.name = name

    @property
    def num_joints(self) -> int:
        """Number of joints :math:`V`."""
        return int(self.num_nodes)

    @property
    def num_edges_undirected(self) -> int:
        """Number of bones (undirected edges)."""
        return int(self.edge_index.size(1)) // 2

    def degree(self) -> Tensor:
        r"""Degree centrality :math:`d_v` of every joint, from the graph (never a hard-coded list).

        Shapes:
            - **output**: :math:`(V,)` float
        """
        return torch.bincount(self.edge_index[0], minlength=self.num_joints).float()

    def adjacency(self) -> Tensor:
        """Dense binary symmetric adjacency without self loops, ``[V, V]`` float."""
        V = self.num_joints
        A = torch.zeros(V, V)
        A[self.edge_index[0], self.edge_index[1]] = 1.0
        return A

    def hop_distance(self, max_hop: Optional[int] = None) -> Tensor:
        r"""Shortest-path hop distances ``[V, V]`` (float, ``inf`` when unreachable).

        With ``max_hop`` set, distances above it are ``inf``: this is the ST-GCN lineage's
        ``get_hop_distance(max_hop)``, whose truncation shapes its "spatial" partition.
        """
        V = self.num_joints
        adj = self.adjacency().bool()
        dist = torch.full((V, V), float("inf"))
        dist.fill_diagonal_(0)
        reach = torch.eye(V, dtype=torch.bool)
        frontier = reach.clone()
        limit = V if max_hop is None else max_hop
        for d in range(1, limit + 1):
            frontier = (frontier.float() @ adj.float()).bool() & ~reach
            if not frontier.any():
                break
            dist[frontier] = float(d)
            reach |= frontier
        return dist

    def bfs_parents(self) -> Tensor:
        """Parent of every joint in the breadth-first tree rooted at the centre (``-1`` for the
        centre and for joints not connected to it), ``[V]`` long."""
        V = self.num_joints
        nbrs = [[] for _ in range(V)]
        for a, b in self.edge_index.t().tolist():
            nbrs[a].append(b)
        parent = [-1] * V
        seen = [False] * V
        seen[self.center] = True
        queue = deque([self.center])
        while queue:
            u = queue.popleft()
            for w in sorted(nbrs[u]):
                if not seen[w]:
                    seen[w] = True
                    parent[w] = u
                    queue.append(w)
        return torch.tensor(parent, dtype=torch.long)

    def validate(self) -> "Skeleton":
        """Check invariants; raises ``ValueError`` naming the problem."""
        V = self.num_joints
        ei = self.edge_index
        if ei.dim() != 2 or ei.size(0) != 2:
            raise ValueError(f"layout {self.name!r}: edge_index must be [2, E], got {tuple(ei.shape)}")
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= V):
            raise ValueError(f"layout {self.name!r}: edge_index refers to joints outside 0..{V - 1}")
        if bool((ei[0] == ei[1]).any()):
            raise ValueError(f"layout {self.name!r}: self loops are not allowed in edge_index")
        if len(self.joint_names) != V:
            raise ValueError(f"layout {self.name!r}: {len(self.joint_names)} joint names for {V} joints")
        if not 0 <= self.center < V:
            raise ValueError(f"layout {self.name!r}: centre {self.center} is not a joint index (0..{V - 1})")
        perm = self.flip_perm
        if sorted(perm.tolist()) != list(range(V)) or not torch.equal(perm[perm], torch.arange(V)):
            raise ValueError(f"layout {self.name!r}: flip_perm must be an involutive permutation of 0..{V - 1}")
        if tuple(self.bone_pairs.shape) != (V, 2):
            raise ValueError(f"layout {self.name!r}: bone_pairs must be [V, 2] = [{V}, 2]")
        return self

    def to_dict(self) -> dict:
        """JSON-able description (edges, names, centre, flip pairs, bone pairs) that
        :func:`skeleton_from_dict` turns back into an equal layout."""
        ei = self.edge_index
        und = ei[:, ei[0] < ei[1]].t().tolist()
        return {"name": getattr(self, "name", "custom"), "num_joints": self.num_joints,
                "edges": und, "joint_names": list(self.joint_names), "center": self.center,
                "flip_perm": self.flip_perm.tolist(), "bone_pairs": self.bone_pairs.tolist()}

    def same_as(self, other: "Skeleton") -> bool:
        """True when both layouts have the same joints, edges, centre, flip and bones."""
        return self.to_dict() | {"name": None} == other.to_dict() | {"name": None}

    def to_pyg(self):
        """This layout as a :class:`torch_geometric.data.Data` (same ``edge_index``, ``num_nodes``,
        joint names, centre, flip permutation, bone pairs and name)."""
        from torch_geometric.data import Data
        return Data(**vars(self))

    def __repr__(self) -> str:
        name = getattr(self, "name", "custom")
        return f"Skeleton(name={name!r}, joints={self.num_joints}, bones={self.num_edges_undirected}, center={self.center})"


_SIDE_SWAPS = [("Left", "Right"), ("left", "right"), ("LEFT", "RIGHT")]


def _mirror_name(name: str) -> str:
    for a, b in _SIDE_SWAPS:
        if a in name:
            return name.replace(a, b)
        if b in name:
            return name.replace(b, a)
    # short prefixes: l_/r_, L/R + Capital (OpenPose "LShoulder"), trailing _l/_r
    for pat, rep in ((r"^l_", "r_"), (r"^r_", "l_"), (r"^L(?=[A-Z])", "R"), (r"^R(?=[A-Z])", "L"),
                     (r"_l$", "_r"), (r"_r$", "_l")):
        if re.search(pat, name):
            return re.sub(pat, rep, name)
    return name


def flip_permutation_from_names(names: Sequence[str]) -> Tensor:
    """Left/right permutation derived from joint names (``Left``/``Right``, ``left``/``right``,
    ``l_``/``r_``, OpenPose ``L``/``R`` prefixes). Joints without a mirror map to themselves."""
    index = {n: i for i, n in enumerate(names)}
    perm = []
    for n in names:
        m = _mirror_name(n)
        perm.append(index.get(m, index[n]))
    return torch.tensor(perm, dtype=torch.long)


def from_edges(edges: Iterable[Sequence[int]], num_joints: Optional[int] = None, *,
               joint_names: Optional[Sequence[str]] = None, center: int = 0,
               flip_pairs: Optional[Iterable[Sequence[int]]] = None,
               bone_pairs: Optional[Iterable[Sequence[int]]] = None,
               one_based: bool = False, name: str = "custom") -> Skeleton:
    """Build a :class:`Skeleton` for any body, hand or robot from an edge list.

    Args:
        edges: pairs ``(a, b)`` of joint indices (each undirected edge once or both ways).
        num_joints: :math:`V`; defaults to ``max index + 1`` (pass it for isolated trailing joints).
        joint_names: names; default ``j0 .. j{V-1}``.
        center: centre joint (root for the spatial partition and the bone tree).
        flip_pairs: left/right joint pairs to swap on a flip; default: derived from the names.
        bone_pairs: ``V`` pairs ``(v, u)`` meaning bone ``v = joint v - joint u``; default: each
            joint minus its parent in the breadth-first tree from the centre, centre minus itself.
        one_based: indices in ``edges``, ``center``, ``flip_pairs`` and ``bone_pairs`` start at 1.

    Returns:
        A validated :class:`Skeleton`.

    Example::

        hand = from_edges([(0, 1), (1, 2), (2, 3)], joint_names=["wrist", "mcp", "pip", "tip"])
    """
    off = 1 if one_based else 0
    pairs = [(int(a) - off, int(b) - off) for a, b in edges]
    if any(a == b for a, b in pairs):
        raise ValueError(f"layout {name!r}: self loop in edges {[p for p in pairs if p[0] == p[1]]}")
    if any(a < 0 or b < 0 for a, b in pairs):
        raise ValueError(f"layout {name!r}: negative joint index in edges (one_based={one_based})")
    max_idx = max((max(p) for p in pairs), default=-1)
    V = num_joints if num_joints is not None else max_idx + 1
    if max_idx >= V:
        raise ValueError(f"layout {name!r}: edge joint index {max_idx} >= num_joints {V}")
    if V <= 0:
        raise ValueError(f"layout {name!r}: a skeleton needs at least one joint")
    names = list(joint_names) if joint_names is not None else [f"j{i}" for i in range(V)]
    if len(names) != V:
        raise ValueError(f"layout {name!r}: {len(names)} joint names for {V} joints")
    if len(set(names)) != V:
        raise ValueError(f"layout {name!r}: joint names must be unique")
    if pairs:
        ei = torch.tensor(pairs, dtype=torch.long).t()
        ei = undirected_edges(ei, V)
    else:
        ei = torch.empty(2, 0, dtype=torch.long)
    if flip_pairs is None:
        perm = flip_permutation_from_names(names)
    else:
        perm = torch.arange(V)
        for a, b in flip_pairs:
            a, b = int(a) - off, int(b) - off
            perm[a], perm[b] = b, a
    skel = Skeleton(edge_index=ei, num_nodes=V, joint_names=names, center=int(center) - off,
                    flip_perm=perm, bone_pairs=torch.zeros(V, 2, dtype=torch.long), name=name)
    if bone_pairs is None:
        if not 0 <= skel.center < V:
            raise ValueError(f"layout {name!r}: centre {center} is not a joint index")
        parent = skel.bfs_parents()
        own = torch.arange(V)
        skel.bone_pairs = torch.stack([own, torch.where(parent >= 0, parent, own)], dim=1)
    else:
        bp = torch.tensor([(int(a) - off, int(b) - off) for a, b in bone_pairs], dtype=torch.long)
        if bp.dim() != 2 or tuple(bp.shape) != (V, 2):
            raise ValueError(f"layout {name!r}: bone_pairs must have {V} pairs, got {len(bp)}")
        skel.bone_pairs = bp
    return skel.validate()


def skeleton_from_dict(d: dict) -> Skeleton:
    """Inverse of :meth:`Skeleton.to_dict`."""
    perm = d["flip_perm"]
    pairs = [(i, j) for i, j in enumerate(perm) if i < j]
    return from_edges(d["edges"], d["num_joints"], joint_names=d["joint_names"], center=d["center"],
                      flip_pairs=pairs, bone_pairs=d["bone_pairs"], name=d.get("name", "custom"))
