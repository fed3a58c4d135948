"""HDM05 ASF/AMC: forward kinematics checked physically (bones, floor contact, left/right), counts, split,
errors naming file and line, prepare. The archive is unpacked into a temporary folder at run time."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.prepare import prepare_dataset
from asma.data.prepared import load_prepared
from asma.data.readers.hdm05 import HDM05_ACTORS, HDM05_CLASS_NAMES, SOURCE, read_amc, read_asf, read_hdm05
from asma.graph.layouts import HDM05_BONES
from asma.graph import get_layout

NAMES = ("root",) + HDM05_BONES
# (class folder, train clips, test clips) from PROVENANCE.md
SPLIT = [(1, 18, 14), (2, 18, 9), (3, 16, 13), (4, 30, 6), (5, 10, 7), (6, 18, 11), (7, 14, 6), (8, 10, 6),
         (9, 10, 6), (10, 36, 16), (11, 9, 5)]


@pytest.fixture(scope="module")
def hdm(tmp_path_factory, realdata_dir):
    archive = realdata_dir / "hdm05_subset_asf_amc" / "hdm05_subset_asf_amc.tar.xz"
    if not archive.is_file():
        pytest.skip(f"HDM05 archive not found at {archive} (set ASMA_REALDATA); research-only, never shipped")
    out = tmp_path_factory.mktemp("hdm05")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def _clip(hdm: Path, cls: int, k: int = 0):
    path = sorted((hdm / "amc").glob(f"*/{cls}/*"))[k]
    actor = path.name.split("_")[1]
    return path, read_hdm05(path, read_asf(hdm / "asf" / f"HDM_{actor}.asf"))


def _travel(J, name):
    return np.linalg.norm(np.diff(J[:, NAMES.index(name)], axis=0), axis=-1).sum()


def test_counts_classes_and_actor_split_equal_the_provenance(hdm):
    skipped = []
    items = SOURCE.list_items(hdm, skipped)
    assert len(items) == 288 and skipped == []
    assert any(Path(p).suffix == ".AMC" for p, *_ in items)  # the one upper-case extension is found
    meta = {"actor": np.array([HDM05_ACTORS.index(n.split("_")[1]) for _, n, _ in items])}
    train, _ = SOURCE.train_mask("xsub", meta)
    folders = [Path(p).parts[-3:-1] for p, *_ in items]  # ("train"|"test", class folder)
    assert [f[0] == "train" for f in folders] == train.tolist()  # actor rule = the repo's folders
    labels = [HDM05_CLASS_NAMES.index(n.split("_")[2]) for _, n, _ in items]
    assert all(int(f[1]) == y + 1 for f, y in zip(folders, labels))
    for cls, n_train, n_test in SPLIT:
        sel = np.array(labels) == cls - 1
        assert (int((sel & train).sum()), int((sel & ~train).sum())) == (n_train, n_test)


def test_forward_kinematics_bones_floor_and_height(hdm):
    asf = read_asf(hdm / "asf" / "HDM_bd.asf")
    assert asf.metres_per_unit == pytest.approx(0.0254 / 0.45)  # ":units length 0.45": 1/0.45 inch
    assert asf.bones["lfemur"].axis.tolist() == [0, 0, 20] and asf.bones["lclavicle"].dof == ("ry", "rz")
    skel = get_layout("hdm05")
    assert skel.joint_names == list(NAMES) and skel.num_edges_undirected == 30
    for cls in (10, 5):  # squat, jog: both feet keep touching the floor
        for k in range(3):
            path, J = _clip(hdm, cls, k)
            edges = skel.edge_index.t()[skel.edge_index[0] < skel.edge_index[1]].numpy()
            L = np.linalg.norm(J[:, edges[:, 0]] - J[:, edges[:, 1]], axis=-1)
            assert L.std(0).max() < 1e-9  # rigid bones over time
            actor = read_asf(hdm / "asf" / f"HDM_{path.name.split('_')[1]}.asf")
            ref = {b: actor.bones[b].length * actor.metres_per_unit for b in HDM05_BONES}
            for (a, b), length in zip(edges, L[0]):
                assert length == pytest.approx(ref[NAMES[max(a, b)]], abs=1e-9)
            feet = J[:, [NAMES.index(n) for n in ("lfoot", "rfoot", "ltoes", "rtoes")], 1].min(axis=1)
            # a wrong Euler composition (R = Rx Ry Rz) lifts the feet 0.1-0.5 m off the floor here
            assert 0.0 < feet.mean() < 0.06 and feet.std() < 0.035, path.name
            assert 1.5 < J[0, NAMES.index("head"), 1] < 1.9  # standing height in metres (y up)


def test_left_right_from_motion(hdm):
    for k in range(4):
        _, J = _clip(hdm, 6, k)  # kickLFront1Reps
        assert _travel(J, "ltoes") > 2 * _travel(J, "rtoes")
        _, J = _clip(hdm, 3, k)  # grabHighR
        assert _travel(J, "rhand") > 2 * _travel(J, "lhand")
    skel = get_layout("hdm05")
    assert NAMES[int(skel.flip_perm[NAMES.index("lhumerus")])] == "rhumerus"
    assert int(skel.flip_perm[NAMES.index("lowerback")]) == NAMES.index("lowerback")


def _corrupt(src: Path, dst: Path, line: int, text: str) -> None:
    lines = src.read_bytes().split(b"\n")
    lines[line - 1] = text.encode()
    dst.write_bytes(b"\n".join(lines))


def test_corrupt_copies_name_file_and_line(hdm, tmp_path):
    asf_path = hdm / "asf" / "HDM_bd.asf"
    asf = read_asf(asf_path)
    src = sorted((hdm / "amc" / "train" / "10").glob("HDM_bd*"))[0]
    p = tmp_path / src.name
    _corrupt(src, p, 6, "lowerback 12.39 oops -2.65\r")
    with pytest.raises(DataFormatError, match=rf"{src.name} line 6: bone lowerback: not a number"):
        read_amc(p, asf)
    _corrupt(src, p, 6, "lowerback 12.39\r")
    with pytest.raises(DataFormatError, match=rf"{src.name} line 6: bone lowerback: expected 3 values, got 1"):
        read_amc(p, asf)
    _corrupt(src, p, 6, "lowerbak 12.39 0.04 -2.65\r")
    with pytest.raises(DataFormatError, match=rf"{src.name} line 6: unknown bone 'lowerbak'"):
        read_amc(p, asf)
    _corrupt(src, p, 34, "3")  # frame 2 announced as 3
    with pytest.raises(DataFormatError, match=rf"{src.name} line 34: frame number 3 after frame 1"):
        read_amc(p, asf)
    lines = asf_path.read_text(encoding="latin-1").splitlines()
    at = lines.index("    lfemur ltibia")
    lines[at] = "    lfemur ltibai"
    q = tmp_path / "HDM_bd.asf"
    q.write_text("\n".join(lines), encoding="latin-1")
    with pytest.raises(DataFormatError, match=rf"HDM_bd.asf line {at + 1}: hierarchy names bone 'ltibai'"):
        read_asf(q)


@pytest.mark.slow
def test_prepare_subset_end_to_end(hdm, tmp_path):
    raw = tmp_path / "raw"
    (raw / "amc").mkdir(parents=True)
    (raw / "asf").mkdir()
    for p in (hdm / "asf").iterdir():
        (raw / "asf" / p.name).symlink_to(p)
    picked = [sorted((hdm / "amc" / part / str(c)).glob("*"))[0] for part in ("train", "test") for c in (6, 10)]
    for p in picked:
        (raw / "amc" / p.name).symlink_to(p)
    (raw / "amc" / "HDM_bd_walk4StepsRstart_001_120.amc").write_text("not a class of the subset\n")
    s = prepare_dataset("hdm05", raw, tmp_path / "out", workers=1)
    assert s.stores == {"hdm05-xsub": {"train": 2, "test": 2}}
    assert [Path(d["file"]).name for d in s.skipped] == ["HDM_bd_walk4StepsRstart_001_120.amc"]
    train, test = load_prepared("hdm05-xsub", tmp_path / "out")
    assert train.data.shape == (2, 3, 50, 31, 1) and train.layout == "hdm05"
    assert [train.class_names[y] for y in test.labels] == ["kickLFront1Reps", "squat1Reps"]
    assert np.allclose(train.data[:, :, :, NAMES.index("thorax")], 0)  # centred on the thorax
