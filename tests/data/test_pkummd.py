"""PKU-MMD: the real continuous sequence, label files, clip cutting, split files, prepare."""
from __future__ import annotations

import numpy as np
import pytest

from asma.data.errors import DataFormatError, EmptySequenceError
from asma.data.prepare import PrepareError, prepare_dataset
from asma.data.prepared import load_prepared
from asma.data.readers.pkummd import (PKU_CLASS_NAMES, PkuAction, cut_pku_clips, parse_pku_name, read_pku_labels,
                                      read_pku_sequence, sniff_pku_file)
from asma.data.splits import pku_video_id, read_pku_split_file


@pytest.fixture
def seq_path(realdata):
    return realdata / "pkummd_samples" / "A10N08-L.txt"


def test_real_sequence(seq_path):
    x = read_pku_sequence(seq_path)
    assert x.shape == (3, 1040, 25, 2) and x.dtype == np.float32
    # line 1 starts "-0.304560 0.212575 2.728912 -0.290664 0.554507 2.689121"
    np.testing.assert_allclose(x[:, 0, 0, 0], [-0.304560, 0.212575, 2.728912], rtol=1e-6)
    np.testing.assert_allclose(x[:, 0, 1, 0], [-0.290664, 0.554507, 2.689121], rtol=1e-6)
    # line 1040: first joint of body 1 and last joint of body 2
    np.testing.assert_allclose(x[:, 1039, 0, 0], [-0.163397, -0.578468, 2.421849], rtol=1e-6)
    np.testing.assert_allclose(x[:, 1039, 24, 1], [0.874599, -0.111529, 2.425750], rtol=1e-6)
    second_absent = ~np.any(x[..., 1] != 0, axis=(0, 2))
    assert int(second_absent.sum()) == 312  # 30% of the rows have only one body
    assert sniff_pku_file(seq_path) == "skeleton"
    assert parse_pku_name(seq_path) == {"part": 2, "video": 1008, "view": 1}
    assert parse_pku_name("0291-R.txt") == {"part": 1, "video": 291, "view": 3}
    with pytest.raises(DataFormatError, match="not a PKU-MMD video id"):
        parse_pku_name("A10N08.txt")


def test_sequence_errors_name_line(seq_path):
    lines = seq_path.read_bytes().split(b"\n")
    bad = list(lines)
    bad[499] = b" ".join(bad[499].split()[:149])
    with pytest.raises(DataFormatError, match=r"A10N08-L.txt line 500: expected 150 values per frame .* got 149"):
        read_pku_sequence(b"\n".join(bad), name="A10N08-L.txt")
    bad = list(lines)
    bad[9] = b" ".join([b"nan"] + bad[9].split()[1:])
    with pytest.raises(DataFormatError, match=r"line 10: non-finite coordinate 'nan'"):
        read_pku_sequence(b"\n".join(bad), name="A10N08-L.txt")
    with pytest.raises(EmptySequenceError):
        read_pku_sequence(b"\n\n", name="A10N08-L.txt")


def test_labels_and_clips(seq_path):
    text = b"12,1,30,1\r\n3,100,161,2\r\n51,1000,1050,1\r\n"
    acts = read_pku_labels(text, name="A10N08-L.txt")
    assert [(a.action, a.start, a.end, a.confidence, a.line) for a in acts] == [
        (12, 1, 30, 1, 1), (3, 100, 161, 2, 2), (51, 1000, 1050, 1, 3)]
    seq = read_pku_sequence(seq_path)
    clips = cut_pku_clips(seq, acts)
    assert [c.shape[1] for _, c, _ in clips] == [30, 62, 41]  # 1-based inclusive; the last is cut at 1040
    assert [t for _, _, t in clips] == [False, False, True]
    np.testing.assert_array_equal(clips[1][1][:, 0], seq[:, 99])  # frame 100 = row 99
    np.testing.assert_array_equal(clips[1][1][:, -1], seq[:, 160])
    with pytest.raises(DataFormatError, match=r"lab.txt line 7: interval 1041-1100 starts after the last frame"):
        cut_pku_clips(seq, [PkuAction(1, 1041, 1100, 1, 7)], path=str(seq_path), label_path="lab.txt")
    for bad, msg in [(b"1,2,3\n", "line 1: expected 4 values"), (b"1,5,3,1\n", "bad interval start=5 end=3"),
                     (b"52,1,3,1\n", "action id 52 outside 1..51"), (b"1,a,3,1\n", "expected integers"),
                     (b"1,2,3,1\n\n1,0,3,1\n", "line 3: bad interval")]:
        with pytest.raises(DataFormatError, match=msg):
            read_pku_labels(bad, name="x.txt")
    assert len(PKU_CLASS_NAMES) == 51 and PKU_CLASS_NAMES[0] == "bow"


def _write_split(path, train, test):
    path.write_text("Training videos: \n" + ", ".join(train) + ",\nValidation videos: \n" + ", ".join(test) + "\n")


def test_split_files(tmp_path):
    p = tmp_path / "cross_subject_v2.txt"
    _write_split(p, ["A01N01-L", "A10N08-L", "A10N08-M"], ["A02N02-R"])
    assert read_pku_split_file(p) == (["A01N01-L", "A10N08-L", "A10N08-M"], ["A02N02-R"])
    q = tmp_path / "cross-view.txt"
    q.write_text("Training videos:\r\n0002-M, 0002-R\r\nValidataion videos:\r\n0002-L\r\n")
    assert read_pku_split_file(q) == (["0002-M", "0002-R"], ["0002-L"])
    r = tmp_path / "bad.txt"
    _write_split(r, ["0002-M"], ["0002-M"])
    with pytest.raises(DataFormatError, match="in both lists"):
        read_pku_split_file(r)
    r.write_text("nothing here\n")
    with pytest.raises(DataFormatError, match="expected 2 lines of video ids"):
        read_pku_split_file(r)
    assert pku_video_id("A10N08-L_003") == "A10N08-L" and pku_video_id("/x/0002-R.txt") == "0002-R"


def test_prepare_pku2_on_the_real_sequence(realdata, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "A10N08-L.txt").write_text("12,1,30,1\n3,100,161,2\n8,400,520,1\n51,1000,1050,1\n")
    splits = tmp_path / "split"
    splits.mkdir()
    _write_split(splits / "cross_subject_v2.txt", ["A10N08-L", "A01N01-M"], ["A02N01-L"])
    _write_split(splits / "cross_view_v2.txt", ["A01N01-M"], ["A10N08-L"])
    raw = realdata / "pkummd_samples"
    s = prepare_dataset("pku2", raw, tmp_path / "out", labels_dir=labels, splits_dir=splits, workers=1)
    assert s.samples == 4
    assert s.stores == {"pku2-xsub": {"train": 4, "test": 0}, "pku2-xview": {"train": 0, "test": 4}}
    assert len(s.notes) == 1 and "cut at the last frame 1040" in s.notes[0]["note"]
    tr, te = load_prepared("pku2-xsub", tmp_path / "out")
    assert tr.data.shape == (4, 3, 50, 25, 2) and len(te) == 0
    assert tr.labels.tolist() == [11, 2, 7, 50]
    assert tr.names == ["A10N08-L_000", "A10N08-L_001", "A10N08-L_002", "A10N08-L_003"]
    assert tr.meta["start"].tolist() == [1, 100, 400, 1000] and tr.meta["length"].tolist() == [30, 62, 121, 41]
    assert tr.meta["view"].tolist() == [1] * 4 and tr.meta["truncated"].tolist() == [0, 0, 0, 1]
    assert np.abs(tr.data[:, :, :, 20]).max() < 1e-6  # centred on the spine shoulder
    with pytest.raises(PrepareError, match=r"cross_subject\.txt"):
        prepare_dataset("pku1", raw, tmp_path / "out1", labels_dir=labels, workers=1)
    _write_split(splits / "cross_subject_v2.txt", ["A01N01-M"], ["A02N01-L"])  # the video in neither list
    s = prepare_dataset("pku2", raw, tmp_path / "out2", labels_dir=labels, splits_dir=splits, workers=1)
    assert s.unassigned == ["xsub: video A10N08-L is in neither list of cross_subject_v2.txt"]
    assert s.stores["pku2-xsub"] == {"train": 0, "test": 0} and s.stores["pku2-xview"] == {"train": 0, "test": 4}
