"""Table 2 of the paper on this CPU: 3s-ASMa (teacher) against 3s-ASMa-Distill (student).

Both are the paper's sizes on NTU-60 (``ntu25``, 60 classes, one ``(3, 50, 25, 2)`` clip):

* 3s teacher: per stream (joint, bone, motion) two ST-GCN-16 encoders (``stgcn``) and the
  bi-directional alignment (4 heads, :class:`asma.models.AlignedClassifier`);
* 3s student: per stream one ``stgcn-student`` and a linear head (:class:`asma.models.EncoderClassifier`);

each as one :class:`asma.deploy.StreamEnsemble` (joint clips in, the stream conversion and the
weighted logit sum inside). Weights are random: latency, memory and FLOPs do not depend on them.
For every runtime (torch, onnxruntime fp32, onnxruntime int8 with static quantisation) and thread
count it prints params, size on disk, GFLOPs, batch-1 latency p50/p95, FPS and the peak RSS of a
fresh process (:func:`asma.deploy.measure`), then the student / teacher ratios; then the frames/s
of the streaming :class:`asma.deploy.Recognizer` (window 50); then, when UTKinect-Action3D is
available, the accuracy change of int8: a student trained here (supervised, cross-subject train
split, ``--epochs``) evaluated on the test split in fp32 and int8.

Usage::

    python benchmarks/deploy.py [--threads 1,2] [--runs 100] [--utkinect DIR] [--epochs 30] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from asma.data.preprocess import PreprocessConfig
from asma.deploy import OnnxRunner, Recognizer, StreamEnsemble, bench, export_onnx, quantize_int8, ratios, stream_fps
from asma.deploy.measure import latency_ms, save_artifact
from asma.deploy.classify import logits_fn
from asma.models import AlignedClassifier, EncoderClassifier, FeatureAlignment, create_backbone
from asma.pretrained.architectures import config_for_model

STREAMS = ("joint", "bone", "motion")
#: Table 2 of the paper (Raspberry Pi 4B, 2 GB, CPU only).
PAPER = {"teacher": dict(params_m=6.3, size_mb=25.5, gflops=4.5, p50_ms=59.16, peak_rss_mib=314.47, fps=16.90),
         "student": dict(params_m=0.54, size_mb=2.22, gflops=1.26, p50_ms=21.38, peak_rss_mib=173.28, fps=46.52)}
NTU = PreprocessConfig(center_joint=20, shoulders=(4, 8))


def teacher_stream(layout: str = "ntu25", k: int = 60) -> torch.nn.Module:
    """Two ST-GCN-16 encoders + the 4-head alignment."""
    enc = [create_backbone("stgcn", layout, 3) for _ in range(2)]
    return AlignedClassifier(enc[0], enc[1], FeatureAlignment(enc[0].out_dim, k, num_heads=4))


def student_stream(layout: str = "ntu25", k: int = 60) -> torch.nn.Module:
    """The 5-block student + a linear head."""
    return EncoderClassifier.linear(create_backbone("stgcn-student", layout, 3), k)


def three_streams(build, layout: str = "ntu25", k: int = 60):
    """``(StreamEnsemble, joint config)`` of one ``build()`` model per stream."""
    torch.manual_seed(0)
    models = {s: build(layout, k).eval() for s in STREAMS}
    kind = "teacher" if isinstance(models["joint"], AlignedClassifier) else "student"
    configs = {s: config_for_model(m, kind=kind, class_names=[f"c{i}" for i in range(k)], stream=s, num_frames=50,
                                   num_persons=2, preprocessing=NTU.to_dict()) for s, m in models.items()}
    return StreamEnsemble(models, configs).eval(), configs["joint"]


def table2(models: Dict[str, tuple], threads: List[int], runs: int, warmup: int) -> List[List]:
    """Groups ``[teacher result, student result]`` per (runtime, int8, threads)."""
    calib = [np.random.default_rng(i).standard_normal((1, 3, 50, 25, 2), dtype=np.float32) for i in range(8)]
    groups = []
    for t in threads:
        for runtime, int8 in (("torch", False), ("onnxruntime", False), ("onnxruntime", True)):
            group = []
            for name, (model, cfg) in models.items():
                r = bench(model, cfg, name=name, runtime=runtime, threads=t, runs=runs, warmup=warmup, int8=int8,
                          calibration=calib if int8 else None)
                group.append(r)
                print(f"  {name:8s} {runtime:12s} int8={int8!s:5s} threads={t}: p50 {r.p50_ms:7.2f} ms, "
                      f"RSS {r.peak_rss_mib} MiB", flush=True)
            groups.append(group)
    return groups


def _row(label: str, values: List[Optional[float]], fmt: str = "{:.3g}") -> str:
    return f"| {label} | " + " | ".join("-" if v is None else fmt.format(v) for v in values) + " |"


def markdown_table2(groups: List[List]) -> List[str]:
    """One Markdown table: a teacher and a student row per setting, and their ratio row."""
    keys = ("params_m", "size_mb", "gflops", "p50_ms", "p95_ms", "fps", "peak_rss_mib")
    lines = ["| model | runtime | threads | params (M) | size (MB) | GFLOPs | p50 ms | p95 ms | FPS | peak RSS (MiB) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("teacher", "student"):
        lines.append(f"| paper 3s {name} (Pi 4B) | PyTorch | - | " + " | ".join(
            "-" if k not in PAPER[name] else f"{PAPER[name][k]:g}" for k in keys) + " |")
    for teacher, student in groups:
        rt = f"{teacher.runtime}{' int8' if teacher.int8 else ''}"
        for r in (teacher, student):
            lines.append(_row(f"3s {r.name} | {rt} | {r.threads}", [getattr(r, k) for k in keys]))
        ratio = ratios([teacher, student])[1]
        lines.append(_row(f"*student / teacher* | {rt} | {teacher.threads}", [ratio[k] for k in keys], "{:.2f}x"))
    return lines


def streaming(models: Dict[str, tuple], threads: int, n_frames: int = 150) -> List[str]:
    """Frames/s of the Recognizer (window 50), a prediction every frame and every 10 frames."""
    rng = np.random.default_rng(0)
    frames = (rng.standard_normal((1, 2, 25, 3)) + 0.02 * rng.standard_normal((n_frames, 2, 25, 3)).cumsum(0))
    frames = frames.astype(np.float32)
    lines = ["| model | runtime | threads | frames/s, stride 1 | frames/s, stride 10 |", "|---|---|---:|---:|---:|"]
    torch.set_num_threads(threads)
    for name, (model, cfg) in models.items():
        with tempfile.TemporaryDirectory() as tmp:
            onnx = OnnxRunner(save_artifact(model, cfg, Path(tmp), "onnxruntime", (1, 3, 50, 25, 2)), threads=threads)
            for runtime, net in (("torch", model), ("onnxruntime", onnx)):
                fps = [stream_fps(Recognizer(net, window=50, stride=s, config=cfg), frames) for s in (1, 10)]
                lines.append(f"| 3s {name} | {runtime} | {threads} | {fps[0]:.1f} | {fps[1]:.1f} |")
    return lines


def _accuracy(fn, x: np.ndarray, y: np.ndarray) -> float:
    pred = np.concatenate([fn(x[i:i + 16]).argmax(1) for i in range(0, len(x), 16)])
    return 100.0 * float((pred == y).mean())


def train_utkinect_student(root: Path, epochs: int, seed: int = 0):
    """A ``stgcn-student`` classifier trained supervised on UTKinect's cross-subject train split
    (odd subjects; Adam, batch 16, random rotation-free clips as prepared by the lineage pipeline).
    Returns ``(model, train arrays, test arrays)``."""
    from asma.data.readers import load_utkinect, utkinect_cross_subject
    train, test = utkinect_cross_subject(load_utkinect(root))
    torch.manual_seed(seed)
    model = student_stream("kinect20", 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    x, y = torch.from_numpy(train.data), torch.from_numpy(train.labels).long()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=g).split(16):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), train, test


def int8_accuracy(root: Path, epochs: int, threads: int, runs: int) -> List[str]:
    """fp32 / int8 (static, calibrated on 32 train clips; dynamic) test accuracy and latency on UTKinect."""
    torch.set_num_threads(threads)
    t0 = time.time()
    model, train, test = train_utkinect_student(root, epochs)
    train_s = time.time() - t0
    x, y = test.data.astype(np.float32), test.labels
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32, static, dynamic = (Path(tmp) / f"{n}.onnx" for n in ("fp32", "static", "dynamic"))
        export_onnx(model, fp32, (2, 3, 50, 20, 1), check_clips=[torch.from_numpy(x[:8])])
        quantize_int8(fp32, static, calibration=[c[None] for c in train.data[:32]])
        quantize_int8(fp32, dynamic)
        for label, fn, path in (("PyTorch fp32", logits_fn(model), None),
                                ("onnxruntime fp32", OnnxRunner(fp32, threads), fp32),
                                ("onnxruntime int8 static", OnnxRunner(static, threads), static),
                                ("onnxruntime int8 dynamic", OnnxRunner(dynamic, threads), dynamic)):
            ms = latency_ms(fn, x[:1], runs, 10)
            rows.append((label, _accuracy(fn, x, y), float(np.percentile(ms, 50)),
                         None if path is None else path.stat().st_size / 1e6))
    base = rows[1][2]
    lines = [f"UTKinect cross-subject: {len(train.labels)} train / {len(y)} test clips, student trained "
             f"{epochs} epochs ({train_s:.0f} s), batch-1 latency with {threads} thread(s)", "",
             "| model | test top-1 % | p50 ms | speed-up vs onnxruntime fp32 | .onnx size (MB) |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {a} | {acc:.1f} | {ms:.2f} | {base / ms:.2f}x | {'-' if mb is None else f'{mb:.3f}'} |"
              for a, acc, ms, mb in rows]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="Comma-separated thread counts.")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--utkinect", type=Path, default=None,
                   help="UTKinect-Action3D folder (default: $ASMA_REALDATA/utkinect_action3d if present).")
    p.add_argument("--epochs", type=int, default=30, help="UTKinect student training epochs.")
    p.add_argument("--json", type=Path, default=None, help="Also write the Table 2 results as JSON.")
    args = p.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    models = {"teacher": three_streams(teacher_stream), "student": three_streams(student_stream)}
    print(f"# deploy benchmark, torch {torch.__version__}, {os.cpu_count()} CPUs\n", flush=True)
    groups = table2(models, threads, args.runs, args.warmup)
    print("\n## Table 2 (3 streams, NTU-60 sizes, one (3, 50, 25, 2) clip)\n")
    print("\n".join(markdown_table2(groups)))
    print("\n## Streaming (Recognizer, window 50 frames, 2 persons)\n")
    print("\n".join(streaming(models, threads[0])))
    root = args.utkinect or Path(os.environ.get("ASMA_REALDATA", Path(__file__).resolve().parents[2] / "shared" /
                                                "realdata")) / "utkinect_action3d"
    if root.is_dir():
        print("\n## int8 on a real test set\n")
        print("\n".join(int8_accuracy(root, args.epochs, threads[0], args.runs)))
    else:
        print(f"\n(no UTKinect-Action3D at {root}: int8 accuracy skipped; pass --utkinect DIR)")
    if args.json:
        args.json.write_text(json.dumps([[r.to_dict() for r in g] for g in groups], indent=2))


if __name__ == "__main__":
    main()
