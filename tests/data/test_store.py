"""The memory-mapped store, DataLoader use (workers, pinned memory) and PyG views of clips."""
from __future__ import annotations

import json
import os
import pickle
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from asma.data.arrays import ClipDataset, SkeletonArrays
from asma.data.pyg import SkeletonClipData, to_pyg
from asma.data.store import STORE_VERSION, StoreArray, StoreError, StoreWriter, open_store, read_store_info, write_store
from asma.graph import from_edges, get_layout


def _arrays(n=40, T=12, V=25, M=2, seed=0):
    rng = np.random.default_rng(seed)
    return SkeletonArrays(data=rng.normal(size=(n, 3, T, V, M)).astype(np.float32), labels=np.arange(n) % 5,
                          layout="ntu25", class_names=[f"c{i}" for i in range(5)],
                          meta={"subject": np.arange(n) + 1, "camera": np.arange(n) % 3 + 1},
                          names=[f"S{i:03d}" for i in range(n)], source="test")


def test_round_trip_memory_mapped(tmp_path):
    a = _arrays()
    write_store(tmp_path / "s", a, info={"split": {"benchmark": "xsub", "part": "train"}})
    b = open_store(tmp_path / "s")
    assert isinstance(b.data, StoreArray) and isinstance(b.data, np.memmap) and not b.data.flags.writeable
    np.testing.assert_array_equal(b.data, a.data)
    np.testing.assert_array_equal(b.labels, a.labels)
    assert b.meta.keys() == a.meta.keys() and all((b.meta[k] == a.meta[k]).all() for k in a.meta)
    assert b.names == a.names and b.class_names == a.class_names and b.layout == "ntu25"
    info = read_store_info(tmp_path / "s")
    assert info["version"] == STORE_VERSION and info["shape"] == [40, 3, 12, 25, 2]
    assert info["class_counts"] == [8] * 5 and info["split"]["part"] == "train"
    assert sorted(os.listdir(tmp_path / "s")) == ["data.npy", "info.json", "labels.npy", "meta", "names.npy"]
    assert sorted(os.listdir(tmp_path / "s" / "meta")) == ["camera.npy", "subject.npy"]
    sub = b.subset([3, 1])
    np.testing.assert_array_equal(sub.data, a.data[[3, 1]])
    assert sub.names == ["S003", "S001"]


def test_opens_in_milliseconds(tmp_path):
    n = 4000
    w = StoreWriter(tmp_path / "big", (3, 50, 25, 2), "ntu25", [f"c{i}" for i in range(60)],
                    ["setup", "camera", "subject", "replication", "length"])
    zeros = np.zeros(n, np.int64)
    w.append(np.zeros((n, 3, 50, 25, 2), np.float32), np.arange(n) % 60,
             {k: zeros for k in w.meta_keys}, [f"S{i:05d}" for i in range(n)])
    w.commit()
    open_store(tmp_path / "big")  # warm the imports
    t = time.perf_counter()
    s = open_store(tmp_path / "big")
    dt = time.perf_counter() - t
    assert len(s) == n and dt < 0.25, f"open took {dt * 1e3:.0f} ms"


def test_write_is_atomic(tmp_path):
    write_store(tmp_path / "s", _arrays(n=10))

    bad = _arrays(n=10)
    bad.names = None
    bad.meta = {"subject": np.arange(10)}

    class ExplodingData(np.ndarray):
        def __getitem__(self, item):
            raise KeyboardInterrupt

    bad.data = bad.data.view(ExplodingData)
    with pytest.raises(KeyboardInterrupt):
        write_store(tmp_path / "s", bad)
    # the old store is untouched and no temporary directory is left behind
    assert len(open_store(tmp_path / "s")) == 10 and "camera" in open_store(tmp_path / "s").meta
    assert sorted(os.listdir(tmp_path)) == ["s"]
    w = StoreWriter(tmp_path / "t", (3, 2, 25, 1), "ntu25", ["a"], ["subject"])
    with pytest.raises(ValueError, match=r"sample shape \(3, 3, 25, 1\) != store shape \(3, 2, 25, 1\)"):
        w.append(np.zeros((2, 3, 3, 25, 1), np.float32), np.zeros(2), {"subject": np.zeros(2)})
    with pytest.raises(ValueError, match=r"meta\['subject'\] has 1 entries for 2 samples"):
        w.append(np.zeros((2, 3, 2, 25, 1), np.float32), np.zeros(2), {"subject": np.zeros(1)})
    with pytest.raises(ValueError, match=r"meta\['subject'\] is missing"):
        w.append(np.zeros((2, 3, 2, 25, 1), np.float32), np.zeros(2))
    w.abort()
    assert sorted(os.listdir(tmp_path)) == ["s"]


def test_appended_store_grows_without_moving_its_data(tmp_path):
    """Samples appended in pieces (as the preparation writes each part) read back in order from
    a plain .npy whose header holds the final count; zero samples make a valid empty store."""
    rng = np.random.default_rng(0)
    w = StoreWriter(tmp_path / "s", (3, 4, 25, 2), "ntu25", ["a", "b", "c"], ["subject"])
    blocks = [rng.normal(size=(k, 3, 4, 25, 2)).astype(np.float32) for k in (3, 0, 7, 1)]
    for i, blk in enumerate(blocks):
        w.append(blk, np.full(len(blk), i % 3), {"subject": np.full(len(blk), i)},
                 [f"x{i}_{j}" for j in range(len(blk))])
    w.commit()
    s = open_store(tmp_path / "s")
    np.testing.assert_array_equal(np.load(tmp_path / "s" / "data.npy"), np.concatenate(blocks))
    np.testing.assert_array_equal(s.data[:], np.concatenate(blocks))
    assert s.labels.tolist() == [0] * 3 + [2] * 7 + [0] and s.meta["subject"].tolist() == [0] * 3 + [2] * 7 + [3]
    assert s.names[3] == "x2_0" and len(s) == 11
    header = (tmp_path / "s" / "data.npy").stat().st_size - s.data.nbytes
    assert header % 64 == 0 and header == s.data.offset  # the data starts 64-byte aligned
    w = StoreWriter(tmp_path / "e", (3, 4, 25, 2), "ntu25", ["a"])
    w.commit()
    assert len(open_store(tmp_path / "e")) == 0 and open_store(tmp_path / "e").data.shape == (0, 3, 4, 25, 2)


def test_open_errors_name_the_path(tmp_path):
    with pytest.raises(StoreError, match=f"no skeleton store at {tmp_path / 'nope'}"):
        open_store(tmp_path / "nope")
    write_store(tmp_path / "s", _arrays(n=4))
    (tmp_path / "s" / "meta" / "camera.npy").unlink()
    with pytest.raises(StoreError, match=r"not a complete skeleton store: meta/camera.npy is missing"):
        open_store(tmp_path / "s")
    write_store(tmp_path / "s", _arrays(n=4))
    info = json.loads((tmp_path / "s" / "info.json").read_text())
    info["version"] = STORE_VERSION + 1
    (tmp_path / "s" / "info.json").write_text(json.dumps(info))
    with pytest.raises(StoreError, match="newer than this asma"):
        open_store(tmp_path / "s")
    (tmp_path / "s" / "info.json").write_text("{}")
    with pytest.raises(StoreError, match="not an asma-skeleton-store"):
        open_store(tmp_path / "s")
    (tmp_path / "s" / "info.json").unlink()
    with pytest.raises(StoreError, match="info.json is missing"):
        open_store(tmp_path / "s")


def test_custom_layout_round_trip(tmp_path):
    hand = from_edges([(0, 1), (1, 2), (2, 3)], joint_names=["wrist", "mcp", "pip", "tip"], name="hand4")
    a = SkeletonArrays(data=np.ones((2, 2, 5, 4, 1), np.float32), labels=[0, 1], layout=hand)
    write_store(tmp_path / "h", a)
    b = open_store(tmp_path / "h")
    assert b.skeleton.joint_names == ["wrist", "mcp", "pip", "tip"] and b.skeleton.num_joints == 4
    assert torch.equal(b.skeleton.edge_index, hand.edge_index)
    assert torch.equal(b.skeleton.bone_pairs, hand.bone_pairs)


def test_memmap_pickles_as_a_file_reference(tmp_path):
    write_store(tmp_path / "s", _arrays(n=200, T=50))
    s = open_store(tmp_path / "s")
    blob = pickle.dumps(s.data)
    assert len(blob) < 1000  # not the 6 MB of data
    back = pickle.loads(blob)
    assert isinstance(back, StoreArray)
    np.testing.assert_array_equal(back, s.data)
    part = pickle.dumps(s.data[:2])  # a slice pickles as (a copy of) just that slice
    np.testing.assert_array_equal(pickle.loads(part), s.data[:2])
    assert len(pickle.dumps(s)) < 20000  # the whole SkeletonArrays (ClipDataset state) stays small


@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true but no accelerator")
@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_and_pinned_memory(tmp_path, workers):
    a = _arrays(n=64, T=50)
    write_store(tmp_path / "s", a)
    ds = ClipDataset(open_store(tmp_path / "s"))
    dl = DataLoader(ds, batch_size=16, shuffle=False, num_workers=workers, pin_memory=True,
                    persistent_workers=False)
    xs, ys = zip(*list(dl))
    x = torch.cat(xs)
    assert x.shape == (64, 3, 50, 25, 2) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), a.data)
    assert torch.cat(ys).tolist() == a.labels.tolist()


def test_to_pyg_views():
    from torch_geometric.data import Batch
    from torch_geometric.nn import GCNConv

    x = torch.randn(3, 50, 25, 2)
    x[..., 1] = 0  # empty second person
    graphs = to_pyg(x, "ntu25", y=7)
    assert len(graphs) == 1 and isinstance(graphs[0], SkeletonClipData)
    g = graphs[0]
    assert g.x.shape == (50, 25, 3) and g.num_nodes == 25 and g.person == 0 and g.y.tolist() == [7]
    assert torch.equal(g.x, x[..., 0].permute(1, 2, 0))
    assert torch.equal(g.edge_index, get_layout("ntu25").edge_index)
    assert len(to_pyg(x, "ntu25", keep_empty=True)) == 2
    two = to_pyg(torch.randn(3, 50, 25, 2), "ntu25", y=1)
    batch = Batch.from_data_list(graphs + two)
    assert batch.x.shape == (50, 75, 3) and batch.edge_index.max() == 74 and batch.y.tolist() == [7, 1, 1]
    conv = GCNConv(3, 8)  # message passing over joints, every frame at once (node_dim=-2)
    out = conv(batch.x, batch.edge_index)
    torch.testing.assert_close(out[:, 25:50], conv(two[0].x, two[0].edge_index))
    k20 = to_pyg(np.ones((3, 4, 20, 1), np.float32), "kinect20")
    assert k20[0].x.shape == (4, 20, 3) and k20[0].edge_index.shape[1] == 38
    with pytest.raises(ValueError, match="V=20 joints but layout 'ntu25' has 25"):
        to_pyg(np.ones((3, 4, 20, 1)), "ntu25")
