"""Fuzz the pose-estimator JSON readers (and the NTU reader) with >= 10,000 mutated inputs each.

Usage::

    python benchmarks/fuzz_readers.py [--examples 10000] [--realdata ../shared/realdata] [--seed 0]

Seeds: the real Kinetics-skeleton clips (cut to their first 12 frames to keep the run short), and
generated COCO results / MMPose frames, MediaPipe frames (list and object forms), OpenPose frame
files (BODY_25 and COCO-18) and NTU ``.skeleton`` files (``ntu``: one file per call; ``ntu-batch``:
each input parsed together with the two before it, and checked file by file against one call per
file). Each input is a seed with 1-3 structural
mutations (a node replaced by a hostile value such as NaN, Infinity, 10**400, 2**63, -1, a huge frame
index, a deep list, a string; a list entry duplicated; a list flooded with 10-3000 copies; a node
dropped) and, for half of them, 1-2 byte edits (truncation, a flipped or inserted byte). NTU inputs
get line and byte edits.

Every input must parse (output finite) or raise :class:`~asma.data.errors.DataFormatError`; anything
else is a *foreign exception*. Each reader runs in its own process under an address-space limit
(``RLIMIT_AS``, baseline + 2 GiB) so that a blow-up is counted (as a MemoryError) instead of taking the
machine down; the table reports its peak RSS above the baseline. Exit status 1 if any foreign
exception occurred. Results: a markdown table on stdout (record it in benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

from asma.data.errors import DataFormatError, EmptySequenceError
from asma.data.readers.coco import read_coco_keypoints_json
from asma.data.readers.kinetics import read_kinetics_json, read_openpose_frames
from asma.data.readers.mediapipe import read_mediapipe_json
from asma.data.readers.ntu import ntu_to_array, read_ntu_skeleton, read_ntu_skeletons
from asma.data.readers.ntu_files import format_ntu_skeleton
from asma.data.readers.pose_json import pose_to_clip

HOSTILE: List[Any] = [math.nan, math.inf, -math.inf, 10 ** 400, -(10 ** 40), 2 ** 31, 2 ** 63, -1, 0, 1,
                      2_000_000_000, 1e300, 3.5e38, -3.4e38, True, False, None, "x", "", "frame_000012.jpg",
                      [], {}, [[[[[]]]]], [0.5] * 36, [0.9] * 18, [1.0] * 51, {"x": 1}, {"x": 0.5, "y": 0.5},
                      json.loads("[" * 200 + "]" * 200)]


def _seeds(realdata: Path, rng: np.random.Generator) -> Dict[str, List[Any]]:
    kin = []
    for p in sorted((realdata / "kinetics_skeleton_samples").glob("kinetics_*/*.json")):
        obj = json.loads(p.read_text())
        obj["data"] = obj["data"][:12]
        kin.append(obj)
    if not kin:  # no real data: a generated clip in the same format
        kin = [{"data": [{"frame_index": i + 1, "skeleton": [
            {"pose": rng.uniform(0, 1, 36).round(3).tolist(), "score": rng.uniform(0, 1, 18).round(3).tolist()}]}
            for i in range(12)], "label": "x", "label_index": 3}]
    kp = lambda: rng.uniform(0, 640, (17, 3)).round(2)  # noqa: E731
    coco = [[{"image_id": f, "category_id": 1, "keypoints": kp().ravel().tolist(), "score": 0.9}
             for f in range(8) for _ in range(2)],
            {"annotations": [{"image_id": f, "keypoints": [10, 20, 2] * 17} for f in range(4)]},
            [{"frame_id": f, "instances": [{"keypoints": kp()[:, :2].tolist(), "keypoint_scores": [0.5] * 17}]}
             for f in range(8)]]
    lm = lambda: [{"x": float(a), "y": float(b), "z": 0.0, "visibility": 0.9}  # noqa: E731
                  for a, b in rng.uniform(0, 1, (33, 2))]
    mediapipe = [[lm() for _ in range(6)] + [None, []],
                 {"frames": [{"frame_index": f, "pose_landmarks": [lm(), lm()]} for f in range(3)]},
                 [{"landmarks": lm()} for _ in range(4)]]
    openpose = [{"version": 1.3, "people": [{"pose_keypoints_2d": rng.uniform(0, 500, 75).round(2).tolist()}
                                            for _ in range(2)]},
                {"people": [{"pose_keypoints_2d": rng.uniform(0, 500, 54).round(2).tolist()}]}]
    ntu = [format_ntu_skeleton([[(72057594037927936 + b, rng.normal(size=(25, 3))) for b in range(nb)]
                                for nb in rng.integers(0, 3, 12)]).encode() for _ in range(3)]
    ntu.append(format_ntu_skeleton([[], [], []]).encode())  # no body in any frame
    return {"kinetics": kin, "coco": coco, "mediapipe": mediapipe, "openpose": openpose, "ntu": ntu}


def _nodes(obj, path=(), out=None, limit=400):
    out = [] if out is None else out
    out.append(path)
    if len(out) < limit:
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
        for k, v in items:
            _nodes(v, path + (k,), out, limit)
    return out


def _mutate_json(base, rng: np.random.Generator) -> bytes:
    obj = copy.deepcopy(base)
    for _ in range(int(rng.integers(1, 4))):
        paths = _nodes(obj)
        path = paths[int(rng.integers(len(paths)))]
        parent, key = None, None
        ref = obj
        for p in path:
            parent, key, ref = ref, p, ref[p]
        op = rng.choice(["hostile", "duplicate", "flood", "drop"])
        if op == "hostile" or (op != "drop" and not (isinstance(ref, list) and ref)):
            value = copy.deepcopy(HOSTILE[int(rng.integers(len(HOSTILE)))])
            if parent is None:
                obj = value
            else:
                parent[key] = value
        elif op == "duplicate":
            ref.append(copy.deepcopy(ref[int(rng.integers(len(ref)))]))
        elif op == "flood":
            ref.extend([ref[0]] * int(rng.choice([10, 100, 3000])))
        elif parent is not None:
            parent[key] = None
    raw = json.dumps(obj).encode()
    return _edit_bytes(raw, rng) if rng.random() < 0.5 else raw


def _edit_bytes(raw: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(raw)
    for _ in range(int(rng.integers(1, 3))):
        if not b:
            break
        i = int(rng.integers(len(b)))
        op = rng.integers(3)
        if op == 0:
            b = b[:i]
        elif op == 1:
            b[i] = int(rng.integers(256))
        else:
            b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 6))).astype(np.uint8))
    return bytes(b)


NTU_JUNK = [b"", b"nan nan nan", b"inf", b"-", b"24", b"3", b"1e999 1 2", b"0 0 0 0 0 0 0 0 0 0 0 0", b"\x00",
            b"99999999999", b"-5", b"1 2 3 4 5 6 7 8 9 10 11 12 13", b"3.4e38 -3.4e38 0 0 0 0 0 0 0 0 0 2"]


def _mutate_ntu(base: bytes, rng: np.random.Generator) -> bytes:
    lines = base.split(b"\r\n")
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(lines)))
        op = rng.integers(3)
        if op == 0:
            lines[k] = NTU_JUNK[int(rng.integers(len(NTU_JUNK)))]
        elif op == 1:
            del lines[k]
        else:
            lines.insert(k, lines[int(rng.integers(len(lines)))])
    raw = b"\r\n".join(lines)
    return _edit_bytes(raw, rng) if rng.random() < 0.5 else raw


def _openpose(raw: bytes, folder: str):
    p = os.path.join(folder, "vid_000000000007_keypoints.json")
    with open(p, "wb") as fh:
        fh.write(raw)
    return pose_to_clip(read_openpose_frames([p]), 2)


def _ntu(raw: bytes):
    rec = read_ntu_skeleton(raw, name="S001C001P001R001A001.skeleton", values="xyz")
    return ntu_to_array(rec)


class _NtuBatch:
    """Each input read by ``read_ntu_skeletons`` between the two inputs before it (the prepare
    path: several files per parse call), which must give, file by file, what one call per file
    gives: the same record or the same error (else an ``AssertionError``, a foreign exception)."""

    def __init__(self):
        self.recent: List[bytes] = []

    def __call__(self, raw: bytes):
        batch = self.recent[-2:] + [raw]
        self.recent = batch
        got = read_ntu_skeletons(batch, return_exceptions=True, batch_bytes=None)
        for src, g in zip(batch, got):
            try:
                one: Any = read_ntu_skeleton(src, values="xyz")
            except DataFormatError as exc:
                one = exc
            if isinstance(one, Exception) or isinstance(g, Exception):
                same = type(one) is type(g) and str(one) == str(g)
            else:
                same = all(np.array_equal(getattr(one, k), getattr(g, k))
                           for k in ("frame", "body_id", "line", "joints"))
            if not same:
                raise AssertionError(f"batch read differs from one file at a time: {g!r} vs {one!r}")
        if isinstance(got[-1], Exception):
            raise got[-1]
        return ntu_to_array(got[-1])


def _readers(folder: str) -> Dict[str, Callable[[bytes], Any]]:
    return {"kinetics": lambda b: pose_to_clip(read_kinetics_json(b, name="k.json"), 2, center=True),
            "coco": lambda b: pose_to_clip(read_coco_keypoints_json(b, name="c.json"), 2),
            "mediapipe": lambda b: pose_to_clip(read_mediapipe_json(b, name="m.json"), 1),
            "openpose": lambda b: _openpose(b, folder),
            "ntu": _ntu, "ntu-batch": _NtuBatch()}


def _run_reader(name: str, seeds: List[Any], n: int, seed: int, queue) -> None:
    """Child process: fuzz one reader and put its counts on ``queue``."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (base + (2 << 30) + (1 << 30), hard))  # + VM slack of numpy/libs
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    counts = {"ok": 0, "DataFormatError": 0, "EmptySequenceError": 0}
    foreign: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        fn = _readers(folder)[name]
        mutate = _mutate_ntu if name.startswith("ntu") else _mutate_json
        t0 = time.perf_counter()
        for i in range(n):
            raw = mutate(seeds[i % len(seeds)], rng)
            try:
                out = fn(raw)
                if not np.isfinite(out).all():
                    raise AssertionError("non-finite output")
                counts["ok"] += 1
            except EmptySequenceError:
                counts["EmptySequenceError"] += 1
            except DataFormatError:
                counts["DataFormatError"] += 1
            except BaseException as exc:  # noqa: BLE001 - counting foreign exceptions is the point
                kind = type(exc).__name__
                if kind not in foreign:
                    foreign[kind] = {"count": 0, "example": raw[:300].decode("latin-1"),
                                     "where": traceback.format_exc().strip().splitlines()[-3:]}
                foreign[kind]["count"] += 1
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put({"reader": name, "n": n, "counts": counts, "foreign": foreign, "seconds": seconds,
               "peak_mib": (peak - base) / 2 ** 20})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=10_000, help="inputs per reader")
    ap.add_argument("--realdata", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "realdata")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--readers", nargs="+", default=["kinetics", "coco", "mediapipe", "openpose", "ntu", "ntu-batch"])
    args = ap.parse_args(argv)
    seeds = _seeds(args.realdata, np.random.default_rng(args.seed))
    print(f"# Reader fuzzing ({platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"{args.examples} inputs per reader, seed {args.seed}, load average {os.getloadavg()[0]:.1f})\n")
    ctx = mp.get_context("fork")
    results = []
    for name in args.readers:
        q = ctx.Queue()
        p = ctx.Process(target=_run_reader, args=(name, seeds[name.split("-")[0]], args.examples, args.seed, q))
        p.start()
        results.append(q.get())
        p.join()
    print("| reader | inputs | parsed | DataFormatError | EmptySequenceError | foreign exceptions | "
          "peak RSS above baseline | inputs/s |")
    print("|---|---|---|---|---|---|---|---|")
    bad = 0
    for r in results:
        c = r["counts"]
        nf = sum(v["count"] for v in r["foreign"].values())
        bad += nf
        print(f"| {r['reader']} | {r['n']:,} | {c['ok']:,} | {c['DataFormatError']:,} | {c['EmptySequenceError']:,} "
              f"| {nf} | {r['peak_mib']:.0f} MiB | {r['n'] / r['seconds']:.0f} |")
    for r in results:
        for kind, v in r["foreign"].items():
            print(f"\n{r['reader']}: {v['count']} x {kind}, e.g. input {v['example'][:120]!r}\n  " + "\n  ".join(v["where"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
