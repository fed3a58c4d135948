"""``asma data`` click group, driven with CliRunner on the group object."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asma.cli.data import data


@pytest.fixture
def runner():
    return CliRunner()


def test_prepare_list_info_utkinect(realdata, tmp_path, runner):
    r = runner.invoke(data, ["prepare", "utkinect", "--raw", str(realdata / "utkinect_action3d"),
                             "--out", str(tmp_path), "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "utkinect-xsub" in r.output and "100" in r.output and "99" in r.output
    assert "report:" in r.output and (tmp_path / "utkinect-prepare-report.json").is_file()
    r = runner.invoke(data, ["list", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "ready" in r.output and "missing" in r.output
    r = runner.invoke(data, ["info", "utkinect-xsub", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "(100, 3, 50, 20, 1)" in r.output and "kinect20" in r.output
    r = runner.invoke(data, ["info", str(tmp_path / "utkinect-xsub" / "test"), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["num_samples"] == 99


def test_prepare_ntu60_lineage_and_frames(realdata, tmp_path, runner):
    ml = realdata / "ntu_missing_skeleton_lists" / "NTU_RGBD_samples_with_missing_skeletons.txt"
    r = runner.invoke(data, ["prepare", "ntu60", "--raw", str(realdata / "ntu60_raw_skeleton"), "--out", str(tmp_path),
                             "--missing-list", str(ml), "--workers", "1", "--lineage", "--frames", "32",
                             "--benchmark", "xsub"])
    assert r.exit_code == 0, r.output
    assert "ntu60-xsub" in r.output and "ntu60-xview" not in r.output
    info = json.loads((tmp_path / "ntu60-xsub" / "train" / "info.json").read_text())
    assert info["shape"] == [5, 3, 32, 25, 2] and info["body_rule"] == "file-order"
    assert info["preprocessing"]["frames"] == "lineage"
    report = json.loads((tmp_path / "ntu60-prepare-report.json").read_text())
    assert report["skipped"][0]["reason"].startswith("duplicate of")


def test_prepare_errors_are_clear(realdata, tmp_path, runner):
    r = runner.invoke(data, ["prepare", "ntu60", "--raw", str(realdata / "ntu60_raw_skeleton"), "--out", str(tmp_path),
                             "--missing-list", str(tmp_path / "nope.txt")])
    assert r.exit_code != 0 and "missing-skeleton list" in r.output and "nope.txt does not exist" in r.output
    raw = tmp_path / "raw"
    raw.mkdir()
    src = (realdata / "ntu60_raw_skeleton" / "levelca" / "S002C001P003R001A003.skeleton").read_bytes()
    (raw / "S002C001P003R001A003.skeleton").write_bytes(src[:3000])
    r = runner.invoke(data, ["prepare", "ntu60", "--raw", str(raw), "--out", str(tmp_path / "o"),
                             "--missing-list", "none", "--workers", "1"])
    assert r.exit_code == 1
    assert "S002C001P003R001A003.skeleton line" in r.output and "--skip-bad" in r.output
    r = runner.invoke(data, ["prepare", "ntu60", "--raw", str(raw), "--out", str(tmp_path / "o"),
                             "--missing-list", "none", "--workers", "1", "--skip-bad"])
    assert r.exit_code == 1 and "no usable sample" in r.output


def test_check_reports_ok_and_bad_files(realdata, tmp_path, runner):
    good = [realdata / "ntu60_raw_skeleton" / "levelca" / "S001C003P008R002A058.skeleton",
            realdata / "pkummd_samples" / "A10N08-L.txt",
            realdata / "utkinect_action3d" / "joints_s01_e01.txt",
            realdata / "kinect_v1_format_samples" / "UTD-MHAD" / "a1_s1_t2_skeleton.mat",
            realdata / "kinetics_skeleton_samples" / "kinetics_val" / "__NrybzYzUg.json"]
    r = runner.invoke(data, ["check"] + [str(p) for p in good])
    assert r.exit_code == 0, r.output
    assert r.output.count("OK") == 5 and "70 frames, 140 body entries, 2 body ids" in r.output
    lines = good[0].read_bytes().split(b"\r\n")
    lines[3] = b"24"
    bad = tmp_path / "S001C003P008R002A058.skeleton"
    bad.write_bytes(b"\r\n".join(lines))
    r = runner.invoke(data, ["check", str(bad), str(good[1])])
    assert r.exit_code == 1
    assert "S001C003P008R002A058.skeleton line 4: expected 25 joints, got 24" in r.output
    assert "1 of 2 files are bad" in r.output
