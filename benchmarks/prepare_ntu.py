"""NTU preparation speed against the lineage reader: files/s on the real files and on generated files at
scale, 1 and 2 workers, and the projected time for the whole NTU60 set (56,880 raw files).

Usage::

    python benchmarks/prepare_ntu.py [--realdata ../shared/realdata] [--files 1000] [--workers 1 2] [--rounds 3]

The reference is a faithful reimplementation of the lineage's per-file reader (ST-GCN / CrosSCLR /
AimCLR ``data_gen/ntu_gendata.py``: ``read_skeleton_filter`` builds a dict per body and per joint
with ``float()`` of every value, ``read_xyz`` copies x/y/z into a ``(4, F, 25, 3)`` array and keeps
the two bodies of highest energy), timed in one process on the same files (on the generated set:
exactly the files ``prepare_dataset`` reads). asma's rows: the parse alone (x, y, z and the
structure, fully validated), the per-file work (parse, body ranking, preprocessing to
``(3, 50, 25, 2)``), and ``prepare_dataset`` end to end with 1 and 2 workers (listing, the pool,
part files, the stores). After the table: the asma / lineage ratios of those rows; the headline
ratio of ``prepare_dataset`` in ``--rounds`` interleaved rounds, each against the lineage timed
right before and after it (on a shared machine the speed drifts by a third within a minute, so a
ratio of two timings taken a minute apart is not reliable); the CPU time per file of each step;
and the wall time of each stage of ``prepare_dataset``. The 2-worker speed-up shows only on idle
cores.

Generated files use the real ``.skeleton`` text format (CRLF, 12 values per joint line, 7
significant digits, uint64 body ids) with NTU60-like statistics: frames ~ N(85, 35) clipped to
[30, 300], a second body in 11/60 of the files (the mutual actions) and a short spurious third
body in 5 %. Their joints are a real skeleton plus motion, so the parser does the same work as on
real files. Results go to stdout as a markdown table (record them in benchmarks/README_data.md).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import numpy as np

from asma.data.prepare import prepare_dataset
from asma.data.preprocess import PreprocessConfig, preprocess_clip
from asma.data.readers.ntu import ntu_to_array, read_ntu_clip, read_ntu_skeleton, read_ntu_skeletons
from asma.data.readers.ntu_files import format_ntu_skeleton, iter_ntu_files

NTU60_FILES = 56_880
NTU60_USED = 56_880 - 302
BATCH = 16  # files per read_ntu_skeletons call, as prepare_dataset's workers read them


def _template(realdata: Path):
    p = realdata / "ntu60_raw_skeleton" / "levelca" / "S001C003P008R002A058.skeleton"
    if p.is_file():
        return read_ntu_skeleton(p).joints[:70]  # (70, 25, 12) real joints of one body
    rng = np.random.default_rng(0)
    j = np.zeros((70, 25, 12))
    j[..., :3] = rng.normal(size=(1, 25, 3)) * 0.3 + [0, 0, 3]
    j[..., 3:7] = (256, 212, 960, 540)
    j[..., 11] = 2
    return j


def _name(i: int) -> str:
    """A unique, valid NTU60 sample name for index ``i`` (mixed radix over A, C, P, R, S)."""
    return (f"S{(i // 14400) % 17 + 1:03d}C{(i // 60) % 3 + 1:03d}P{(i // 180) % 40 + 1:03d}"
            f"R{(i // 7200) % 2 + 1:03d}A{i % 60 + 1:03d}")


def generate(dest: Path, n: int, realdata: Path, seed: int = 0, unique: int = 250) -> float:
    """Write ``n`` NTU-format files (``unique`` distinct contents, the rest are byte copies under
    other names: the parser does the same work); returns the mean file size in bytes."""
    rng = np.random.default_rng(seed)
    tmpl = _template(realdata)
    dest.mkdir(parents=True, exist_ok=True)
    sizes = []
    for i in range(min(n, unique)):
        F = int(np.clip(rng.normal(85, 35), 30, 300))
        bodies = 2 if rng.random() < 11 / 60 else 1
        ghost = rng.random() < 0.05
        t = np.arange(F)
        frames = []
        for f in range(F):
            entry = []
            for b in range(bodies):
                j = tmpl[f % len(tmpl)].copy()
                j[:, :3] += 0.05 * np.sin(0.1 * t[f] + b) + [b * 0.8, 0, 0]
                j[:, :3] += rng.normal(scale=0.003, size=(25, 3))
                entry.append((72057594037927936 + 1000 * i + b, j))
            if ghost and 10 <= f < 15:
                entry.append((72057594037927936 + 1000 * i + 7, tmpl[0] + rng.normal(scale=0.05, size=(25, 12))))
            frames.append(entry)
        text = format_ntu_skeleton(frames, newline="\r\n")
        (dest / f"{_name(i)}.skeleton").write_text(text, newline="")
        sizes.append(len(text))
    for i in range(unique, n):
        src = dest / f"{_name(i % unique)}.skeleton"
        shutil.copyfile(src, dest / f"{_name(i)}.skeleton")
        sizes.append(sizes[i % unique])
    return float(np.mean(sizes))


_BODY_KEYS = ["bodyID", "clipedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
              "handRightState", "isResticted", "leanX", "leanY", "trackingState"]
_JOINT_KEYS = ["x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW", "orientationX",
               "orientationY", "orientationZ", "trackingState"]


def lineage_read_skeleton(path: str) -> dict:
    """The lineage's ``read_skeleton_filter``: a dict per frame, body and joint, ``float()`` of every value."""
    with open(path, "r") as f:
        seq = {"numFrame": int(f.readline()), "frameInfo": []}
        for _ in range(seq["numFrame"]):
            frame = {"numBody": int(f.readline()), "bodyInfo": []}
            for _ in range(frame["numBody"]):
                body = {k: float(v) for k, v in zip(_BODY_KEYS, f.readline().split())}
                body["numJoint"] = int(f.readline())
                body["jointInfo"] = [{k: float(v) for k, v in zip(_JOINT_KEYS, f.readline().split())}
                                     for _ in range(body["numJoint"])]
                frame["bodyInfo"].append(body)
            seq["frameInfo"].append(frame)
    return seq


def _nonzero_std(s: np.ndarray) -> float:
    s = s[s.sum(-1).sum(-1) != 0]
    return float(s[:, :, 0].std() + s[:, :, 1].std() + s[:, :, 2].std()) if len(s) else 0.0


def lineage_read_xyz(path: str, max_body: int = 4, num_joint: int = 25, max_body_true: int = 2) -> np.ndarray:
    """The lineage's ``read_xyz``: ``(3, F, 25, 2)``, the two bodies of highest energy."""
    info = lineage_read_skeleton(path)
    data = np.zeros((max_body, info["numFrame"], num_joint, 3))
    for n, f in enumerate(info["frameInfo"]):
        for m, b in enumerate(f["bodyInfo"]):
            for j, v in enumerate(b["jointInfo"]):
                if m < max_body and j < num_joint:
                    data[m, n, j, :] = [v["x"], v["y"], v["z"]]
    energy = np.array([_nonzero_std(x) for x in data])
    return data[energy.argsort()[::-1][:max_body_true]].transpose(3, 1, 2, 0)


def _rate(fn, files, repeats: int):
    """(files per wall second, files per CPU second) of ``fn`` over ``files``, ``repeats`` times."""
    t, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for f in files:
            fn(f)
    n = len(files) * repeats
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def _rate_batched(files, repeats: int):
    """:func:`_rate` of ``read_ntu_skeletons`` (its default ``batch_bytes``) on :data:`BATCH` files per call."""
    t, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for i in range(0, len(files), BATCH):
            read_ntu_skeletons(files[i:i + BATCH])
    n = len(files) * repeats
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def _stages(files: List[str]):
    """CPU seconds per file of each step of the per-file work (one process, as a worker does it:
    allocator tuned, :data:`BATCH` files parsed per call): read the bytes, parse x, y, z, assign
    the bodies to slots, preprocess. Run last: the allocator stays tuned."""
    from asma.allocator import tune_allocator

    tune_allocator()
    cfg = PreprocessConfig()
    t = dict.fromkeys(("read", "parse", "bodies", "preprocess"), 0.0)
    for i in range(0, len(files), BATCH):
        c0 = time.process_time()
        raws = [open(f, "rb").read() for f in files[i:i + BATCH]]
        c1 = time.process_time()
        recs = read_ntu_skeletons(raws, batch_bytes=None)
        c2 = time.process_time()
        xs = [ntu_to_array(rec) for rec in recs]
        c3 = time.process_time()
        for x in xs:
            preprocess_clip(x, cfg)
        c4 = time.process_time()
        for k, a, b in zip(t, (c0, c1, c2, c3), (c1, c2, c3, c4)):
            t[k] += b - a
    return {k: v / len(files) for k, v in t.items()}


def bench_readers(files: List[str], repeats: int, lineage_repeats: int):
    """Rows ``(what, workers, wall files/s, CPU files/s)`` of the per-file readers."""
    cfg = PreprocessConfig()
    return [
        ("lineage `read_xyz` (reference)", 1, *_rate(lineage_read_xyz, files, lineage_repeats)),
        ("asma `read_ntu_skeleton`, all 12 values", 1, *_rate(read_ntu_skeleton, files, repeats)),
        ("asma parse alone (`read_ntu_skeleton`, x, y, z)", 1,
         *_rate(lambda f: read_ntu_skeleton(f, values="xyz"), files, repeats)),
        (f"asma parse alone, {BATCH} files per `read_ntu_skeletons` call (x, y, z)", 1,
         *_rate_batched(files, repeats)),
        ("asma per-file work (`read_ntu_clip` + `preprocess_clip`)", 1,
         *_rate(lambda f: preprocess_clip(read_ntu_clip(f), cfg), files, repeats)),
    ]


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the pool workers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def bench_prepare(raw: Path, tmp: Path, workers: List[int], n: int, size_kb: float, rounds: int,
                  lineage_files: List[str]):
    """Rows of ``prepare_dataset`` end to end (first round), its stage times ``{workers: seconds}``
    and, per worker count, its wall rate over the lineage's in each round, the lineage timed on
    ``lineage_files`` right before and right after that round's runs (their mean): a slow spell of
    a shared machine then moves both sides of a ratio, not one."""
    rows, stages, ratios = [], {}, {w: [] for w in workers}
    for r in range(rounds):
        before = _rate(lineage_read_xyz, lineage_files, 1)[0]
        rates = {}
        for w in workers:
            out = tmp / f"out{w}"
            c0 = _cpu()
            s = prepare_dataset("ntu60", raw, out, missing_list="none", workers=w)
            cpu = _cpu() - c0
            rates[w] = s.files_used / s.seconds["total"]
            if r == 0:
                rows.append((f"generated ({n}, mean {size_kb:.0f} kB): `prepare_dataset` end to end", w,
                             rates[w], s.files_used / cpu))
                stages[w] = {**s.seconds, "other": s.seconds["total"] - s.seconds["parse"] - s.seconds["write"]}
            shutil.rmtree(out, ignore_errors=True)
        after = _rate(lineage_read_xyz, lineage_files, 1)[0]
        for w in workers:
            ratios[w].append(rates[w] / ((before + after) / 2))
    return rows, stages, ratios


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--realdata", type=Path, default=Path(os.environ.get(
        "ASMA_REALDATA", Path(__file__).resolve().parents[1].parent / "shared" / "realdata")))
    ap.add_argument("--files", type=int, default=1000, help="generated files")
    ap.add_argument("--repeats", type=int, default=8, help="passes over the real files per reader")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3, help="prepare_dataset runs, each between two lineage timings")
    ap.add_argument("--lineage-files", type=int, default=150, help="generated files the lineage reads per timing")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated files here")
    args = ap.parse_args(argv)

    print(f"# NTU preparation benchmark ({platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start, Python {platform.python_version()}, numpy {np.__version__})\n")
    rows = []
    real = iter_ntu_files(args.realdata / "ntu60_raw_skeleton")
    if real:
        size = np.mean([os.path.getsize(f) for f in real]) / 1e3
        rows += [(f"real files ({len(real)}, mean {size:.0f} kB): {w}", n, a, b)
                 for w, n, a, b in bench_readers(real, args.repeats, max(1, args.repeats // 4))]
    tmp = Path(tempfile.mkdtemp(prefix="asma-bench-ntu-"))
    try:
        raw = args.keep or (tmp / "raw")
        t = time.perf_counter()
        if not (args.realdata / "ntu60_raw_skeleton").is_dir():
            print(f"NOTE: no real NTU files under {args.realdata} (--realdata or ASMA_REALDATA): the generated files "
                  "use a synthetic skeleton with shorter numbers, so the rates are not comparable to the recorded "
                  "ones\n")
        mean_size = generate(raw, args.files, args.realdata) / 1e3
        print(f"generated {args.files} files (mean {mean_size:.0f} kB) in {time.perf_counter() - t:.1f} s\n")
        gen = sorted(str(p) for p in raw.glob("*.skeleton"))
        # the readers on exactly the files prepare_dataset reads (the lineage once over all of them)
        rows += [(f"generated ({len(gen)}, mean {mean_size:.0f} kB): {w}", n, a, b)
                 for w, n, a, b in bench_readers(gen, 1, 1) if "all 12" not in w]
        prep, stages, ratios = bench_prepare(raw, tmp, args.workers, args.files, mean_size, args.rounds,
                                             gen[:: max(1, len(gen) // args.lineage_files)][: args.lineage_files])
        rows += prep
        per_file = _stages(gen[: min(len(gen), 250)])
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    _print_table(rows)
    _print_ratios(rows)
    _print_rounds(ratios, args.lineage_files)
    _print_stages(per_file, stages, args.files)
    return 0


def _print_table(rows) -> None:
    # each row is compared with the lineage reader on the same files (real / generated)
    lineage = {what.split()[0]: (wall, cpu) for what, _, wall, cpu in rows if "lineage" in what}
    print("| input | workers | wall files/s | files per CPU-second | x lineage (wall) | x lineage (CPU) | "
          "projected NTU60 on 2 idle cores |")
    print("|---|---|---|---|---|---|---|")
    for what, w, fps, cps in rows:
        wall, cpu = lineage.get(what.split()[0], next(iter(lineage.values())))
        # projection: total CPU work spread over 2 cores (the pool keeps both busy)
        print(f"| {what} | {w} | {fps:.0f} | {cps:.0f} | {fps / wall:.1f} | {cps / cpu:.1f} | "
              f"{NTU60_USED / cps / 2 / 60:.1f} min |")
    print(f"\nNTU60: {NTU60_USED:,} files after the 302 without skeletons. Wall-clock rates depend on the machine's "
          f"load (load average now {os.getloadavg()[0]:.1f}); CPU-second rates much less. On 2 idle cores the "
          "2-worker wall rate is about twice the 1-worker rate (the CPU rates are equal).")


def _print_ratios(rows) -> None:
    """The issue's figure: asma / lineage ``read_xyz`` (one process) on the same generated files."""
    gen = [(what, w, wall, cpu) for what, w, wall, cpu in rows if what.startswith("generated")]
    ref = next((wall, cpu) for what, _, wall, cpu in gen if "lineage" in what)
    print("\nasma / lineage `read_xyz` (1 process) on the same generated files, wall files/s (files per "
          "CPU-second; with 2 workers the CPU ratio counts all processes, so on idle cores the wall ratio "
          "approaches twice it):")
    for what, w, wall, cpu in gen:
        if "lineage" not in what:
            print(f"- {what.split(': ', 1)[1]}, {w} worker{'s' if w > 1 else ''}: {wall / ref[0]:.1f}x "
                  f"({cpu / ref[1]:.1f}x)")


def _print_rounds(ratios, lineage_files: int) -> None:
    """The headline ratio, robust to a noisy machine: each round's rate over the adjacent lineage timings."""
    print(f"\n`prepare_dataset` / lineage `read_xyz` in interleaved rounds (the lineage on {lineage_files} of the "
          "generated files right before and after each round), wall files/s:")
    for w, r in ratios.items():
        print(f"- {w} worker{'s' if w > 1 else ''}: {min(r):.1f}-{max(r):.1f}x over {len(r)} rounds "
              f"({', '.join(f'{x:.1f}' for x in r)})")


def _print_stages(per_file, stages, n: int) -> None:
    """Where the time goes: CPU ms per file of the per-file work, and the wall stages of prepare."""
    total = sum(per_file.values())
    print("\nper-file work, CPU ms per file (one process): " + ", ".join(
        f"{k} {v * 1e3:.2f} ({v / total:.0%})" for k, v in per_file.items()) + f"; total {total * 1e3:.2f}")
    for w, s in stages.items():
        print(f"prepare_dataset, {w} worker{'s' if w > 1 else ''}, wall s for {n} files: parse+preprocess "
              f"{s['parse']:.2f} (the stores filled meanwhile), then the stores' last part and commit "
              f"{s['write']:.2f}, list+plan+report {s['other']:.2f}, total {s['total']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
