"""Preprocessing (lineage equivalence) and the resumable, parallel prepare pipeline."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from asma.data.errors import DataFormatError, EmptySequenceError
from asma.data.prepare import DATASETS, PrepareError, prepare_dataset
from asma.data.prepare.listing import official_missing_samples
from asma.data.prepared import PREPARED_DATASETS, load_prepared, prepared_status
from asma.data.preprocess import (PreprocessConfig, align_shoulders, center_clip, crop_center, preprocess_clip,
                                  resample_linear, select_frames)
from asma.data.readers.ntu import read_ntu_clip
from asma.data.readers.ntu_files import format_ntu_skeleton, read_missing_list
from asma.data.splits import (NTU60_XSUB_TRAIN_SUBJECTS, NTU120_XSET_TRAIN_SETUPS, NTU120_XSUB_TRAIN_SUBJECTS,
                              ntu_train_mask)
from asma.data.store import StoreError, open_store


# -------------------------------------------------------------------------------------------
# preprocessing


def _reference_lineage(x, T=50):
    """Straightforward per-frame loops following the AimCLR/CrosSCLR preprocess description."""
    C, F, V, M = x.shape
    L = sum(1 for t in range(F) if x[:, t, 0, 0].sum() != 0)
    y = x[:, :L].astype(np.float64).copy()
    for m in range(M):
        for t in range(L):
            y[:, t, :, m] = y[:, t, :, m] - y[:, t, 20:21, m]
    out = np.zeros((C, T, V, M))
    for t in range(T):  # OpenCV INTER_LINEAR along time
        fx = (t + 0.5) * L / T - 0.5
        sx = math.floor(fx)
        fx -= sx
        if sx < 0:
            sx, fx = 0, 0.0
        if sx >= L - 1:
            sx, fx = L - 1, 0.0
        out[:, t] = y[:, sx] * (1 - fx) + (y[:, sx + 1] * fx if fx > 0 else 0)
    for m in range(M):
        v = out[:, :, 8, m] - out[:, :, 4, m]  # right - left shoulder, (3, T)
        v[1] = 0
        theta = np.degrees(np.arccos(v[0] / (np.linalg.norm(v, axis=0) + 1e-4)))
        if v[2].sum() >= 0:
            theta = -theta
        for t in range(T):
            a = np.radians(theta[t])
            R = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
            out[:, t, :, m] = R @ out[:, t, :, m]
    return out


@pytest.fixture
def real_clips(realdata):
    d = realdata / "ntu60_raw_skeleton"
    return {p.stem: read_ntu_clip(p, body_rule="file-order") for p in sorted(d.glob("*/*.skeleton"))}


def test_lineage_preprocessing_matches_reference_on_real_clips(real_clips):
    cfg = PreprocessConfig.lineage()
    for name, x in real_clips.items():
        got = preprocess_clip(x, cfg)
        ref = _reference_lineage(x)
        assert got.shape == (3, 50, 25, 2) and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=2e-5, err_msg=name)
        assert np.abs(got[:, :, 20]).max() < 1e-6  # spine shoulder is the origin


def test_default_equals_lineage_without_empty_frames(real_clips):
    for x in real_clips.values():
        np.testing.assert_array_equal(preprocess_clip(x), preprocess_clip(x, PreprocessConfig.lineage()))


def test_shoulder_alignment_puts_shoulders_on_x():
    rng = np.random.default_rng(0)
    x = np.zeros((3, 30, 25, 1))
    x[:, :, :, 0] = rng.normal(size=(3, 1, 25)) * 0.1
    x[:, :, 4, 0] = [[-0.2], [0.4], [0.0]]  # left shoulder
    x[:, :, 8, 0] = [[0.2], [0.4], [0.0]]  # right shoulder
    ang = np.linspace(0.2, 1.0, 30)  # a person turning: rotate every frame about y by ang
    c, s = np.cos(ang), np.sin(ang)
    X, Z = x[0].copy(), x[2].copy()
    x[0] = c[:, None, None] * X + s[:, None, None] * Z
    x[2] = -s[:, None, None] * X + c[:, None, None] * Z
    for mode in ("frame-y",):
        y = align_shoulders(x, (4, 8), mode)
        v = y[:, :, 8, 0] - y[:, :, 4, 0]
        np.testing.assert_allclose(v[2], 0, atol=1e-3)  # not exact: the lineage's |v| + 1e-4
        assert (v[0] > 0.39).all()
        np.testing.assert_allclose(np.linalg.norm(y[:, :, 3, 0], axis=0), np.linalg.norm(x[:, :, 3, 0], axis=0))
    y = align_shoulders(x, (4, 8), "sequence-y")  # one rotation: the mean shoulder line on +x
    v = (y[:, :, 8, 0] - y[:, :, 4, 0]).mean(axis=1)
    assert abs(v[2]) < 1e-9 and v[0] > 0


def test_resample_frames_centre_and_crop():
    x = np.zeros((3, 10, 25, 2))
    x[0, :, :, 0] = np.arange(10)[:, None]
    np.testing.assert_allclose(resample_linear(x, 10), x)
    up = resample_linear(x, 20)
    np.testing.assert_allclose(up[0, :, 0, 0], np.clip((np.arange(20) + 0.5) / 2 - 0.5, 0, 9))
    np.testing.assert_allclose(resample_linear(x[:, :1], 5)[0, :, 0, 0], 0)
    y = np.ones((3, 7, 25, 2))
    y[:, [0, 3, 6]] = 0
    np.testing.assert_array_equal(select_frames(y, "nonempty"), [1, 2, 4, 5])
    np.testing.assert_array_equal(select_frames(y, "lineage"), [0, 1, 2, 3])
    assert crop_center(np.zeros((3, 400, 25, 2)), 300).shape[1] == 300
    z = np.random.default_rng(1).normal(size=(3, 5, 25, 2))
    z[..., 1] = 0
    first = center_clip(z, 20, "first")
    np.testing.assert_allclose(first[:, 0, 20, 0], 0, atol=1e-12)
    assert (first[..., 1] == 0).all()  # absent person stays zero
    with pytest.raises(EmptySequenceError, match="clipA: no frame with a skeleton"):
        preprocess_clip(np.zeros((3, 5, 25, 2)), name="clipA")
    bad = np.ones((3, 5, 25, 2))
    bad[0, 2, 3, 0] = np.nan
    with pytest.raises(DataFormatError, match="clipB: non-finite"):
        preprocess_clip(bad, name="clipB")


def test_preprocess_config_round_trip_and_layouts():
    cfg = PreprocessConfig(length=64, center="first", align="sequence-y", max_frames=300)
    assert PreprocessConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    k = PreprocessConfig.for_layout("kinect20")
    assert k.center_joint == 2 and k.shoulders == (4, 8)
    assert PreprocessConfig.for_layout("ntu25").center_joint == 20
    assert PreprocessConfig.for_layout("coco17", align="none").shoulders == (5, 6)
    with pytest.raises(ValueError, match="frames must be one of"):
        PreprocessConfig(frames="all")


# -------------------------------------------------------------------------------------------
# splits


def test_split_id_lists():
    assert len(NTU60_XSUB_TRAIN_SUBJECTS) == 20 and len(NTU120_XSUB_TRAIN_SUBJECTS) == 53
    assert set(NTU60_XSUB_TRAIN_SUBJECTS) < set(NTU120_XSUB_TRAIN_SUBJECTS)
    assert NTU120_XSET_TRAIN_SETUPS == tuple(range(2, 33, 2))
    meta = {"subject": np.array([1, 3, 45, 44]), "camera": np.array([1, 2, 3, 1]), "setup": np.array([1, 2, 18, 31])}
    np.testing.assert_array_equal(ntu_train_mask("ntu60", "xsub", meta), [True, False, False, False])
    np.testing.assert_array_equal(ntu_train_mask("ntu120", "xsub", meta), [True, False, True, False])
    np.testing.assert_array_equal(ntu_train_mask("ntu60", "xview", meta), [False, True, True, False])
    np.testing.assert_array_equal(ntu_train_mask("ntu120", "xset", meta), [False, True, True, False])
    with pytest.raises(ValueError, match="unknown NTU benchmark"):
        ntu_train_mask("ntu60", "xset", meta)


# -------------------------------------------------------------------------------------------
# prepare on the real files


@pytest.fixture
def missing60(realdata):
    return realdata / "ntu_missing_skeleton_lists" / "NTU_RGBD_samples_with_missing_skeletons.txt"


def test_prepare_ntu60_real_files(realdata, missing60, tmp_path):
    raw = realdata / "ntu60_raw_skeleton"
    s = prepare_dataset("ntu60", raw, tmp_path, missing_list=missing60, workers=2, chunk_size=3)
    assert s.files_found == 13 and s.files_used == 12 and s.samples == 12 and not s.bad
    assert s.stores == {"ntu60-xsub": {"train": 5, "test": 7}, "ntu60-xview": {"train": 7, "test": 5}}
    assert [d["reason"] for d in s.skipped] == [
        f"duplicate of {raw / 'gardiens' / 'S001C001P001R001A001.skeleton'}"]
    report = json.loads(Path(s.report_path).read_text())
    assert report["samples"] == 12 and report["skipped"] == s.skipped
    assert not (tmp_path / ".asma-work").exists()  # work dir cleaned
    train, test = load_prepared("ntu60-xsub", tmp_path)
    assert train.data.shape == (5, 3, 50, 25, 2) and isinstance(train.data, np.memmap)
    assert set(train.meta["subject"]) <= set(NTU60_XSUB_TRAIN_SUBJECTS)
    assert not set(test.meta["subject"]) & set(NTU60_XSUB_TRAIN_SUBJECTS)
    assert train.names == sorted(train.names)
    i = train.names.index("S001C001P001R001A050")
    assert train.labels[i] == 49 and train.meta["length"][i] == 74 and train.meta["bodies"][i] == 2
    assert train.meta["camera"][i] == 1 and train.meta["replication"][i] == 1
    expected = preprocess_clip(read_ntu_clip(raw / "photonictree" / "S001C001P001R001A050.skeleton"))
    np.testing.assert_array_equal(train.data[i], expected)
    assert train.class_names[49] == "punching/slapping other person" and train.num_classes == 60
    xv_train, xv_test = load_prepared("ntu60-xview", tmp_path)
    assert set(xv_train.meta["camera"]) <= {2, 3} and set(xv_test.meta["camera"]) == {1}
    info = json.loads((tmp_path / "ntu60-xsub" / "train" / "info.json").read_text())
    assert info["preprocessing"]["length"] == 50 and info["split"]["benchmark"] == "xsub"
    assert info["body_rule"] == "activity" and info["layout"] == "ntu25"
    status = prepared_status(tmp_path)
    assert status["ntu60-xsub"]["train"] == 5 and status["pku1-xsub"] is None


def test_one_worker_equals_two_and_lineage_rule(realdata, missing60, tmp_path):
    raw = realdata / "ntu60_raw_skeleton"
    prepare_dataset("ntu60", raw, tmp_path / "a", missing_list=missing60, workers=1, benchmarks=["xview"])
    prepare_dataset("ntu60", raw, tmp_path / "b", missing_list=missing60, workers=2, chunk_size=2,
                    benchmarks=["xview"])
    for part in ("train", "test"):
        a = np.load(tmp_path / "a" / "ntu60-xview" / part / "data.npy")
        b = np.load(tmp_path / "b" / "ntu60-xview" / part / "data.npy")
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "a" / "ntu60-xsub").exists()
    prepare_dataset("ntu60", raw, tmp_path / "c", missing_list=missing60, workers=1, benchmarks=["xview"],
                    body_rule="file-order", preprocess=PreprocessConfig.lineage())
    a, _ = load_prepared("ntu60-xview", tmp_path / "a")
    c, _ = load_prepared("ntu60-xview", tmp_path / "c")
    differ = [n for k, n in enumerate(a.names) if not np.array_equal(a.data[k], c.data[k])]
    # only two-person files whose first-listed body is not the most active change slots
    assert differ and all(n[-4:] in ("A050", "A055", "A057", "A058") for n in differ)
    assert json.loads((tmp_path / "c" / "ntu60-xview" / "test" / "info.json").read_text())["body_rule"] == "file-order"


def test_missing_list_shipped_and_applied(realdata, tmp_path):
    raw = realdata / "ntu60_raw_skeleton"
    official60 = read_missing_list(realdata / "ntu_missing_skeleton_lists" / "NTU_RGBD_samples_with_missing_skeletons.txt")
    official120 = read_missing_list(realdata / "ntu_missing_skeleton_lists"
                                    / "NTU_RGBD120_samples_with_missing_skeletons.txt")
    assert official_missing_samples("ntu60") == official60 and len(official60) == 302
    assert official_missing_samples("ntu120") == official120 and len(official120) == 535
    # the default excludes the shipped list: a real file renamed to a listed sample is left out
    raw2 = tmp_path / "raw2"
    raw2.mkdir()
    shutil.copy(raw / "levelca" / "S001C001P001R001A011.skeleton", raw2 / "S001C001P001R001A011.skeleton")
    shutil.copy(raw / "levelca" / "S002C001P003R001A003.skeleton", raw2 / "S001C002P005R002A008.skeleton")
    s = prepare_dataset("ntu60", raw2, tmp_path / "default", workers=1)
    assert s.samples == 1 and [Path(d["file"]).name for d in s.skipped] == ["S001C002P005R002A008.skeleton"]
    assert s.skipped[0]["reason"] == "in the official missing-skeleton list"
    ml = tmp_path / "my_missing.txt"
    ml.write_text("header line\r\n\r\nS001C001P001R001A050\r\nS017C003P020R002A054.skeleton\r\n")
    s = prepare_dataset("ntu60", raw, tmp_path / "out", missing_list=ml, workers=1)
    assert s.samples == 10
    reasons = {Path(d["file"]).stem: d["reason"] for d in s.skipped}
    assert reasons["S001C001P001R001A050"] == "in the official missing-skeleton list"
    s = prepare_dataset("ntu60", raw, tmp_path / "none", missing_list="none", workers=1)
    assert s.samples == 12


def _copy_raw(realdata, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for p in sorted((realdata / "ntu60_raw_skeleton").glob("*/*.skeleton")):
        if not (dest / p.name).exists():
            shutil.copy(p, dest / p.name)
    return dest


def test_bad_file_stops_then_skip_bad_resumes(realdata, missing60, tmp_path):
    raw = _copy_raw(realdata, tmp_path / "raw")
    bad = raw / "S003C001P015R001A034.skeleton"
    lines = bad.read_bytes().split(b"\r\n")
    lines[3] = b"24"  # joint count of the first body
    bad.write_bytes(b"\r\n".join(lines))
    trunc = raw / "S017C003P020R002A058.skeleton"
    trunc.write_bytes(trunc.read_bytes()[:5000])
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=r"S003C001P015R001A034.skeleton line 4: expected 25 joints, got 24"):
        prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=2, chunk_size=2)  # raised in a worker
    assert not (out / "ntu60-xsub").exists() and not (out / "ntu60-xview").exists()  # nothing half-valid
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]  # the stores being filled are removed
    parts = list((out / ".asma-work").glob("ntu60-*/part-*.npz"))
    assert 2 <= len(parts) <= 5  # the chunks finished (at least those before the bad file) are kept
    s = prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=2, chunk_size=2, skip_bad=True)
    assert s.resumed_chunks == len(parts) and s.samples == 10
    bad_files = {Path(b["file"]).name: b for b in s.bad}
    assert bad_files["S003C001P015R001A034.skeleton"]["line"] == 4
    assert "expected 25 joints, got 24" in bad_files["S003C001P015R001A034.skeleton"]["error"]
    assert "file ends early" in bad_files["S017C003P020R002A058.skeleton"]["error"]
    report = json.loads((out / "ntu60-prepare-report.json").read_text())
    assert len(report["bad"]) == 2
    train, test = load_prepared("ntu60-xsub", out)
    assert len(train) + len(test) == 10
    # fixing a file invalidates just its chunk on the next resumable run
    prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=1, chunk_size=2, skip_bad=True, keep_work=True)
    shutil.copy(realdata / "ntu60_raw_skeleton" / "levelca" / "S003C001P015R001A034.skeleton", bad)
    s = prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=1, chunk_size=2, skip_bad=True)
    assert s.resumed_chunks == s.chunks - 1 and s.samples == 11 and len(s.bad) == 1
    s = prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=1, chunk_size=2, skip_bad=True,
                        restart=True)
    assert s.resumed_chunks == 0 and s.samples == 11


def test_batched_reads_in_a_worker_equal_one_file_at_a_time(realdata, missing60, tmp_path, monkeypatch):
    """A chunk's NTU files are parsed 16 per call; with bad files among them (skipped), the
    stores and the bad-file records equal those of one call per file."""
    import asma.data.prepare.workers as workers

    raw = _copy_raw(realdata, tmp_path / "raw")
    bad = raw / "S003C001P015R001A034.skeleton"
    lines = bad.read_bytes().split(b"\r\n")
    lines[3] = b"24"
    bad.write_bytes(b"\r\n".join(lines))
    trunc = raw / "S017C003P020R002A058.skeleton"
    trunc.write_bytes(trunc.read_bytes()[:5000])
    got = {}
    for batch in (16, 1):
        monkeypatch.setattr(workers, "_NTU_BATCH", batch)
        s = prepare_dataset("ntu60", raw, tmp_path / f"out{batch}", missing_list=missing60, workers=1, chunk_size=16,
                            skip_bad=True)
        got[batch] = (s.samples, s.bad, open_store(tmp_path / f"out{batch}" / "ntu60-xsub" / "train"))
    assert got[16][0] == got[1][0] == 10 and got[16][1] == got[1][1] and len(got[16][1]) == 2
    np.testing.assert_array_equal(got[16][2].data[:], got[1][2].data[:])
    assert got[16][2].names == got[1][2].names


def test_parts_go_into_the_stores_while_the_next_are_parsed(realdata, missing60, tmp_path):
    """Each finished part is appended to the stores during the parse (in part order), not after
    it; the stores equal those of one part for all files."""
    raw = _copy_raw(realdata, tmp_path / "raw")
    events = []
    s = prepare_dataset("ntu60", raw, tmp_path / "a", missing_list=missing60, workers=1, chunk_size=3,
                        progress=lambda stage, done, total: events.append((stage, done)))
    writes = [i for i, (stage, _) in enumerate(events) if stage == "write"]
    last_parse = max(i for i, (stage, _) in enumerate(events) if stage == "parse")
    assert writes[0] < last_parse and [events[i][1] for i in writes] == list(range(1, s.chunks + 1))
    prepare_dataset("ntu60", raw, tmp_path / "b", missing_list=missing60, workers=1, chunk_size=100)
    for part in ("train", "test"):
        a, b = open_store(tmp_path / "a" / "ntu60-xview" / part), open_store(tmp_path / "b" / "ntu60-xview" / part)
        np.testing.assert_array_equal(a.data[:], b.data[:])
        assert a.names == b.names and a.labels.tolist() == b.labels.tolist()


@pytest.mark.parametrize("where", ["append", "sync"])
def test_a_failed_store_write_names_the_store(realdata, missing60, tmp_path, monkeypatch, where):
    """A full disk while the stores are filled: a PrepareError naming the store, nothing half
    written left behind, the finished parts kept for the re-run."""
    import errno

    from asma.data import store

    raw = _copy_raw(realdata, tmp_path / "raw")
    out = tmp_path / "out"

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.StoreWriter, where, full)
    with pytest.raises(PrepareError, match=r"cannot write the store ntu60-\w+/(train|test) under .*out: "
                                           r"No space left on device"):
        prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=1, chunk_size=4)
    assert sorted(p.name for p in out.iterdir()) == [".asma-work"]
    monkeypatch.undo()
    s = prepare_dataset("ntu60", raw, out, missing_list=missing60, workers=1, chunk_size=4)
    assert s.samples == 12 and s.resumed_chunks >= 1


def test_interrupted_prepare_resumes_and_replaces_old_store(realdata, missing60, tmp_path):
    raw = realdata / "ntu60_raw_skeleton"
    prepare_dataset("ntu60", raw, tmp_path, missing_list=missing60, workers=1, benchmarks=["xsub"],
                    preprocess=PreprocessConfig(length=20))
    old = open_store(tmp_path / "ntu60-xsub" / "train")
    assert old.data.shape[2] == 20
    calls = []

    def stop_after_two_chunks(stage, done, total):
        calls.append((stage, done))
        if stage == "parse" and done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("ntu60", raw, tmp_path, missing_list=missing60, workers=1, chunk_size=2,
                        benchmarks=["xsub"], progress=stop_after_two_chunks)
    # the old store is untouched and still complete
    assert open_store(tmp_path / "ntu60-xsub" / "train").data.shape[2] == 20
    s = prepare_dataset("ntu60", raw, tmp_path, missing_list=missing60, workers=2, chunk_size=2,
                        benchmarks=["xsub"])
    assert s.resumed_chunks == 2 and s.chunks == 6
    new = open_store(tmp_path / "ntu60-xsub" / "train")
    assert new.data.shape[2] == 50 and len(new) == 5
    assert not list(tmp_path.glob(".ntu60-xsub*"))  # no temporary directories left


def test_synthetic_ntu120_splits_and_setup_filter(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    names = ["S001C001P001R001A001", "S002C002P003R002A010", "S017C003P038R001A060",
             "S018C001P045R001A061", "S019C002P044R002A120", "S032C003P106R001A100"]
    for n in names:
        frames = [[(1, rng.normal(size=(25, 3)) * 0.3 + [0, 0, 3])] for _ in range(12)]
        (raw / f"{n}.skeleton").write_text(format_ntu_skeleton(frames))
    s60 = prepare_dataset("ntu60", raw, tmp_path / "o", missing_list="none", workers=1)
    assert s60.samples == 3  # S018+ belong to NTU120 only
    s = prepare_dataset("ntu120", raw, tmp_path / "o", missing_list="none", workers=2, chunk_size=2)
    assert s.stores == {"ntu120-xsub": {"train": 3, "test": 3}, "ntu120-xset": {"train": 3, "test": 3}}
    tr, te = load_prepared("ntu120-xset", tmp_path / "o")
    assert sorted(tr.names) == ["S002C002P003R002A010", "S018C001P045R001A061", "S032C003P106R001A100"]
    assert tr.num_classes == 120 and sorted(tr.labels.tolist()) == [9, 60, 99]


def test_prepare_utkinect_and_errors(realdata, tmp_path):
    s = prepare_dataset("utkinect", realdata / "utkinect_action3d", tmp_path, workers=2)
    assert s.stores == {"utkinect-xsub": {"train": 100, "test": 99}} and s.samples == 199
    assert any("NaN NaN" in d["reason"] for d in s.skipped)
    tr, te = load_prepared("utkinect-xsub", tmp_path)
    assert tr.data.shape == (100, 3, 50, 20, 1) and tr.layout == "kinect20"
    assert set(tr.meta["subject"] % 2) == {1} and set(te.meta["subject"] % 2) == {0}
    with pytest.raises(PrepareError, match="unknown dataset"):
        prepare_dataset("ntu90", tmp_path, tmp_path)
    with pytest.raises(PrepareError, match="has no benchmark 'xset'"):
        prepare_dataset("ntu60", tmp_path, tmp_path, benchmarks=["xset"])
    with pytest.raises(PrepareError, match="does not exist"):
        prepare_dataset("ntu60", tmp_path / "nope", tmp_path)
    with pytest.raises(PrepareError, match="no ntu60 files found"):
        prepare_dataset("ntu60", tmp_path / "ntu60-none-here" if False else _empty(tmp_path), tmp_path,
                        missing_list="none")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir(exist_ok=True)
    return d


def test_load_prepared_errors_name_path_and_command(tmp_path):
    with pytest.raises(StoreError) as info:
        load_prepared("ntu60-xsub", tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "ntu60-xsub" / "train") in msg
    assert f"asma data prepare ntu60 --raw RAW_DIR --out {tmp_path}" in msg
    with pytest.raises(ValueError, match="unknown prepared dataset 'ntu61-xsub'"):
        load_prepared("ntu61-xsub", tmp_path)
    assert set(PREPARED_DATASETS) >= {"ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub",
                                      "pku1-xview", "pku2-xsub", "pku2-xview", "utkinect-xsub"}
    for name in PREPARED_DATASETS:
        ds, bench = name.rsplit("-", 1)
        assert bench in DATASETS[ds].benchmarks
