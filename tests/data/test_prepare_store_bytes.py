"""The stores prepare_dataset writes are byte-for-byte those of before the part data moved out of
the .npz (the code at commit 93c39e0), with 1 and 2 workers, resumed or not."""
import hashlib
import shutil
from pathlib import Path

import numpy as np

from asma.data.prepare import prepare_dataset

# sha256 over (relative path, bytes) of every .npy of the ntu60-{xsub,xview}/{train,test} stores the
# code before this change wrote from the real files + one bad file (skip_bad), chunk_size=3
REFERENCE = "baa9ff6da68416c63b457a5ce4b0ff063f6bc98f5f7ebc1caf9925cfa574c1d8"


def _digest(out: Path) -> str:
    h = hashlib.sha256()
    files = sorted(out.glob("ntu60-*/*/**/*.npy"))
    assert len(files) == 40  # 4 stores x (data, labels, names, 7 metadata arrays)
    for f in files:
        h.update(str(f.relative_to(out)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _raw(realdata: Path, tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in sorted((realdata / "ntu60_raw_skeleton").rglob("*.skeleton")):
        shutil.copy(f, raw / f.name)  # a name in two folders: the last copy wins, as in REFERENCE
    (raw / "S001C002P003R001A060.skeleton").write_text("12\n1\nnot a number\n")
    return raw


def test_stores_are_byte_identical_with_one_and_two_workers(realdata, tmp_path):
    raw = _raw(realdata, tmp_path)
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        s = prepare_dataset("ntu60", raw, out, missing_list="none", workers=workers, chunk_size=3,
                            skip_bad=True, keep_work=True)
        assert len(s.bad) == 1 and s.samples == 12
        assert _digest(out) == REFERENCE
        # each part: metadata .npz + its clips as a plain .npy (what the store writer memory-maps)
        work = next((out / ".asma-work").iterdir())
        parts = sorted(work.glob("part-*.npz"))
        assert len(parts) == 5 and "data" not in np.load(parts[0]).files
        assert sum(np.load(p.with_suffix(".data.npy")).shape[0] for p in parts) == 12


def test_a_part_without_its_data_is_redone_and_the_bytes_stay(realdata, tmp_path):
    """Resume: finished parts are reused; a part whose data file is gone or cut short is parsed again."""
    raw, out = _raw(realdata, tmp_path), tmp_path / "out"
    prepare_dataset("ntu60", raw, out, missing_list="none", workers=1, chunk_size=3, skip_bad=True, keep_work=True)
    work = next((out / ".asma-work").iterdir())
    (work / "part-00001.data.npy").unlink()
    cut = work / "part-00003.data.npy"
    cut.write_bytes(cut.read_bytes()[:-100])
    s = prepare_dataset("ntu60", raw, out, missing_list="none", workers=2, chunk_size=3, skip_bad=True)
    assert s.resumed_chunks == 3 and s.chunks == 5
    assert _digest(out) == REFERENCE and not (out / ".asma-work" / work.name).exists()
