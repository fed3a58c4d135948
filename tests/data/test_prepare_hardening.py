"""Prepare leftovers and values (issue 13.2, 13.6): workers die with the main process, stale
temporaries of a killed run are removed, names match in full, non-finite outputs are bad files."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from asma.data.errors import DataFormatError
from asma.data.prepare import prepare_dataset
from asma.data.preprocess import PreprocessConfig, preprocess_clip
from asma.data.readers.kinect_v1 import read_utkinect_joints
from asma.data.readers.ntu import parse_ntu_name
from asma.data.readers.ntu_files import format_ntu_skeleton
from asma.data.store import open_store, remove_stale_temporaries

_rng = np.random.default_rng(0)


def _ntu_text(scale: float = 1.0) -> str:
    frames = [[(7, _rng.normal(size=(25, 3)) * 0.3 + [0, 0, 3])] for _ in range(12)]
    if scale != 1.0:
        frames[3][0][1][5, 0] = scale
        frames[3][0][1][20, 0] = -scale
    return format_ntu_skeleton(frames)


def _children(pid: int):
    """Live (non-zombie) processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "mkfifo"), reason="Linux /proc and FIFOs")
def test_pool_workers_die_with_a_killed_main_process(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):  # FIFOs: a worker opening one blocks until it is killed
        os.mkfifo(raw / f"S001C001P001R001A{i + 1:03d}.skeleton")
    code = ("import sys; from asma.data.prepare import prepare_dataset; "
            "prepare_dataset('ntu60', sys.argv[1], sys.argv[2], missing_list='none', workers=2, chunk_size=1)")
    main = subprocess.Popen([sys.executable, "-c", code, str(raw), str(tmp_path / "out")])
    workers = []
    try:
        deadline = time.time() + 60
        while len(workers) < 2 and time.time() < deadline and main.poll() is None:
            time.sleep(0.2)
            workers = _children(main.pid)
        assert len(workers) >= 2, "the pool did not start"
        os.kill(main.pid, signal.SIGKILL)
        main.wait()
        t0 = time.time()
        while any(_alive(w) for w in workers) and time.time() - t0 < 5:
            time.sleep(0.1)
        gone_after = time.time() - t0
        assert not any(_alive(w) for w in workers), "workers survived the main process"
        assert gone_after < 2.5
    finally:
        if main.poll() is None:
            main.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("S001C001P001R001A001", "S001C002P002R001A002"):
        (raw / f"{name}.skeleton").write_text(_ntu_text(), newline="")
    out = tmp_path / "out"
    dead = _dead_pid()
    stale = out / f".ntu60-xsub.tmp-{dead}-a1b2c3"  # a store being written when the run was killed
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "data.npy").write_bytes(b"\0" * 1000)
    old = out / f".ntu60-xview.old-{dead}-0f0f0f"
    old.mkdir()
    live = out / f".ntu60-xsub.tmp-{os.getpid()}-dddddd"  # another run still writing: kept
    live.mkdir()
    s = prepare_dataset("ntu60", raw, out, missing_list="none", workers=1)
    assert s.samples == 2
    assert not stale.exists() and not old.exists() and live.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["ntu60-xsub", "ntu60-xview", "ntu60-prepare-report.json", live.name])
    # a half-written part file of a killed worker in a kept work directory
    work = out / ".asma-work" / "x"
    work.mkdir(parents=True)
    part_tmp = work / f"part-00000.npz.tmp-{dead}-abcdef.npz"
    part_tmp.write_bytes(b"PK")
    assert remove_stale_temporaries(work) == [part_tmp] and not part_tmp.exists()


@pytest.mark.parametrize("kill_at, resumed", [("done == 1", 1), ("done == total", 4)])
def test_kill_during_the_write_phase_leaves_nothing_after_the_next_run(tmp_path, kill_at, resumed):
    """Killed while the stores are written (after the first part, or after the last one before
    the commit): the next run removes the temporary stores, reuses the finished parts and writes
    the same stores as an uninterrupted run."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        (raw / f"S001C00{i % 3 + 1}P00{i + 1}R001A001.skeleton").write_text(_ntu_text(), newline="")
    out = tmp_path / "out"
    code = ("import os, signal, sys; from asma.data.prepare import prepare_dataset\n"
            "def stop(stage, done, total):\n"
            f"    if stage == 'write' and {kill_at}:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "prepare_dataset('ntu60', sys.argv[1], sys.argv[2], missing_list='none', workers=1, chunk_size=1, "
            "progress=stop)")
    r = subprocess.run([sys.executable, "-c", code, str(raw), str(out)])
    assert r.returncode == -signal.SIGKILL
    left = sorted(p.name for p in out.iterdir() if ".tmp-" in p.name)
    assert left and all(n.startswith((".ntu60-xsub.tmp-", ".ntu60-xview.tmp-")) for n in left)
    s = prepare_dataset("ntu60", raw, out, missing_list="none", workers=1, chunk_size=1)
    assert s.samples == 4 and s.resumed_chunks == resumed  # the parts finished before the kill
    ref = prepare_dataset("ntu60", raw, tmp_path / "ref", missing_list="none", workers=1, chunk_size=1)
    for name, counts in ref.stores.items():
        assert s.stores[name] == counts
        for part in ("train", "test"):
            a, b = open_store(out / name / part), open_store(tmp_path / "ref" / name / part)
            np.testing.assert_array_equal(a.data[:], b.data[:])
            assert a.names == b.names
    assert sorted(p.name for p in out.iterdir()) == ["ntu60-prepare-report.json", "ntu60-xsub", "ntu60-xview"]


def test_file_names_are_matched_in_full(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    text = _ntu_text()
    (raw / "S001C001P001R001A001.skeleton").write_text(text, newline="")
    (raw / "S001C001P001R001A001 (1).skeleton").write_text(text, newline="")  # a copy by a file manager
    (raw / "S001C001P001R001A002x.skeleton").write_text(text, newline="")
    s = prepare_dataset("ntu60", raw, tmp_path / "out", missing_list="none", workers=1)
    assert s.samples == 1 and s.files_used == 1
    assert sorted((Path(d["file"]).name, d["reason"]) for d in s.skipped) == [
        ("S001C001P001R001A001 (1).skeleton", "name is not SsssCcccPpppRrrrAaaa"),
        ("S001C001P001R001A002x.skeleton", "name is not SsssCcccPpppRrrrAaaa")]
    with pytest.raises(DataFormatError, match="does not match the NTU pattern"):
        parse_ntu_name("S001C001P001R001A001 (1).skeleton")
    assert parse_ntu_name("/x/S001C001P001R001A001.skeleton")["action"] == 1


def test_non_finite_preprocessing_output_is_a_bad_file(tmp_path):
    x = np.zeros((3, 4, 25, 1))
    x[:, :, :, 0] = 1.0
    x[0, 1, 5, 0], x[0, 1, 20, 0] = 3.4e38, -3.4e38  # finite inputs, centring overflows float32
    with pytest.raises(DataFormatError, match=r"clip.skeleton: non-finite value after preprocessing \(channel 0, "):
        preprocess_clip(x, PreprocessConfig(length=4, align="none"), name="clip.skeleton")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "S001C001P001R001A001.skeleton").write_text(_ntu_text(), newline="")
    (raw / "S001C001P001R001A002.skeleton").write_text(_ntu_text(scale=3.4e38), newline="")
    with pytest.raises(DataFormatError, match="S001C001P001R001A002.skeleton: non-finite value after preprocessing"):
        prepare_dataset("ntu60", raw, tmp_path / "out", missing_list="none", workers=1)
    s = prepare_dataset("ntu60", raw, tmp_path / "out", missing_list="none", workers=1, skip_bad=True)
    assert s.samples == 1 and [Path(b["file"]).name for b in s.bad] == ["S001C001P001R001A002.skeleton"]
    assert "non-finite value after preprocessing" in s.bad[0]["error"]


def test_utkinect_huge_frame_numbers_rejected():
    row = " ".join(["0.5"] * 60)
    ok = f"10 {row}\n11 {row}\n".encode()
    assert read_utkinect_joints(ok)[0].tolist() == [10, 11]
    with pytest.raises(DataFormatError, match=r"joints_s01_e01.txt line 2: frame number 4e\+37 is out of range"):
        read_utkinect_joints(f"10 {row}\n4e37 {row}\n".encode(), name="joints_s01_e01.txt")
    with pytest.raises(DataFormatError, match="frame number -3 is out of range"):
        read_utkinect_joints(f"-3 {row}\n".encode(), name="joints_s01_e01.txt")


def test_remove_stale_temporaries_ignores_other_names(tmp_path):
    dead = _dead_pid()
    keep = [tmp_path / "ntu60-xsub", tmp_path / f"notes.tmp-{dead}-zzzzzz", tmp_path / "a.tmp-12-abc"]
    for p in keep:
        p.mkdir()
    gone = tmp_path / f".ntu60-xsub.tmp-{dead}-abcdef"
    gone.mkdir()
    assert remove_stale_temporaries(tmp_path, ".ntu60-") == [gone]
    assert all(p.exists() for p in keep)
    shutil.rmtree(tmp_path / "ntu60-xsub")

