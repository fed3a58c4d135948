"""``asma bench``: the deployment figures of Table 2 for any model, on the machine at hand.

:func:`bench` measures one model: parameters, size on disk, FLOPs per clip
(:func:`asma.models.count_flops`: ``torch.utils.flop_counter``, 2 FLOPs per multiply-accumulate,
convolutions, matrix products and the graph einsum; a saved model's own figure at its clip shape,
:func:`recorded_flops`), latency per clip at batch 1 (p50 / p95 over
``runs`` timed runs after ``warmup`` untimed ones), clips per second and the peak RSS of a fresh
process (:mod:`asma.deploy.worker`) that loads the saved model and runs it. :func:`ratios` gives
the side-by-side ratios of several results (Table 2's last row).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

RUNTIMES = ("torch", "onnxruntime")
#: The metrics compared by :func:`ratios` (all "smaller is better" except ``fps``).
METRICS = ("params_m", "size_mb", "gflops", "p50_ms", "p95_ms", "fps", "peak_rss_mib")


@dataclass
class BenchResult:
    """One model's figures (see the module docstring for the protocol).

    Attributes:
        params_m: parameters in millions (all of them: a teacher's frozen encoders count);
        size_mb: bytes on disk of the saved weights / ``.onnx`` file, in MB (1e6);
        gflops: GFLOPs per clip (of the PyTorch model, also for int8);
        p50_ms / p95_ms / mean_ms: latency per clip at batch 1; fps: clips per second (1000 / mean);
        peak_rss_mib: peak resident memory of a fresh process loading and running the model (MiB),
            ``None`` when not measured; imports: which heavy modules that process loaded.
    """

    name: str
    runtime: str
    threads: int
    input_shape: List[int]
    params_m: float
    size_mb: float
    gflops: float
    p50_ms: float
    p95_ms: float
    mean_ms: float
    fps: float
    runs: int
    peak_rss_mib: Optional[float] = None
    imports: Dict[str, bool] = field(default_factory=dict)
    int8: bool = False

    def to_dict(self) -> Dict:
        """JSON-ready dict."""
        return asdict(self)


def latency_ms(fn, x, runs: int = 100, warmup: int = 10) -> np.ndarray:
    """Wall-clock milliseconds of ``runs`` calls ``fn(x)`` after ``warmup`` untimed ones.

    Shapes:
        - **output**: :math:`(runs,)`
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        fn(x)
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn(x)
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def save_artifact(model, config, directory: Path, runtime: str, input_shape: Sequence[int], *,
                  int8: bool = False, calibration=None) -> Path:
    """Write what a deployment loads: a zoo folder (or an ensemble folder) for ``torch``, a
    ``.onnx`` file (int8 when asked) for ``onnxruntime``; returns its path."""
    from .ensemble import StreamEnsemble, save_ensemble
    if runtime == "torch":
        if int8:
            raise ValueError("int8 is an ONNX (onnxruntime) model: use runtime='onnxruntime'")
        if isinstance(model, StreamEnsemble):
            return save_ensemble(model, directory / "model")
        from asma.zoo.model import save_pretrained
        return save_pretrained(model, config, directory / "model", card=False)
    from .onnx import export_onnx, quantize_int8
    path = directory / "model.onnx"
    export_onnx(model, path, (2,) + tuple(input_shape[1:]))
    if int8:
        quantize_int8(path, directory / "model-int8.onnx", calibration=calibration)
        return directory / "model-int8.onnx"
    return path


def disk_bytes(artifact: Path) -> int:
    """Bytes of the weights: the ``.onnx`` file, or every ``*.safetensors`` under a folder."""
    if artifact.is_file():
        return artifact.stat().st_size
    return sum(p.stat().st_size for p in artifact.rglob("*.safetensors"))


def fresh_process(artifact: Path, runtime: str, input_shape: Sequence[int], threads: int,
                  runs: int = 20) -> Dict:
    """Run :mod:`asma.deploy.worker` on ``artifact`` in a new interpreter and return its report
    (``peak_rss_mib`` and the heavy modules it imported)."""
    cmd = [sys.executable, "-m", "asma.deploy.worker", str(artifact), "--runtime", runtime, "--threads",
           str(threads), "--shape", ",".join(map(str, input_shape)), "--runs", str(runs)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the fresh benchmark process failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _runner(model, artifact: Path, runtime: str, threads: int):
    if runtime == "onnxruntime":
        from .runtime import OnnxRunner
        return OnnxRunner(artifact, threads=threads)
    from .classify import logits_fn
    return logits_fn(model)


def bench(model, config, *, name: str, runtime: str = "torch", threads: int = 1, frames: int = 50,
          persons: int = 2, runs: int = 100, warmup: int = 10, int8: bool = False, calibration=None,
          rss: bool = True, seed: int = 0) -> BenchResult:
    """Measure ``model`` (see the module docstring).

    Args:
        model: any asma model (backbone, classifier, student, teacher, :class:`StreamEnsemble`).
        config: its :class:`~asma.pretrained.config.PretrainedConfig` (for an ensemble: any stream's).
        runtime: ``torch`` or ``onnxruntime`` (the model exported to ONNX and run there).
        threads: intra-op threads of the runtime (torch's are restored afterwards).
        frames / persons: the clip :math:`(1, C, T, V, M)` timed.
        int8: onnxruntime only: the int8-quantised export (``calibration`` clips: static
            quantisation, else dynamic; see :func:`~asma.deploy.onnx.quantize_int8`).
        rss: also measure the peak RSS of a fresh process.

    Shapes:
        - **timed input**: :math:`(1, C, T, V, M)`, :math:`C, V` from ``config``
    """
    import torch

    from asma.models import count_flops
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use {' or '.join(RUNTIMES)}")
    shape = (1, config.in_channels, int(frames), config.num_joints, int(persons))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model.eval()
        flops = recorded_flops(model, config, shape)
        flops = count_flops(model, x) if flops is None else flops
        with tempfile.TemporaryDirectory(prefix="asma-bench-") as tmp:
            artifact = save_artifact(model, config, Path(tmp), runtime, shape, int8=int8, calibration=calibration)
            ms = latency_ms(_runner(model, artifact, runtime, threads), x.numpy(), runs, warmup)
            proc = fresh_process(artifact, runtime, shape, threads) if rss else {}
            size = disk_bytes(artifact)
    finally:
        torch.set_num_threads(old_threads)
    return BenchResult(name=name, runtime=runtime, threads=threads, input_shape=list(shape),
                       params_m=sum(p.numel() for p in model.parameters()) / 1e6, size_mb=size / 1e6,
                       gflops=flops / 1e9,
                       p50_ms=float(np.percentile(ms, 50)), p95_ms=float(np.percentile(ms, 95)),
                       mean_ms=float(ms.mean()), fps=1e3 / float(ms.mean()), runs=runs,
                       peak_rss_mib=proc.get("peak_rss_mib"), imports=proc.get("imports", {}), int8=int8)


def recorded_flops(model, config, shape: Sequence[int]) -> Optional[float]:
    """FLOPs per clip that ``config`` records for ``model`` (its own ``pretrained_cfg``) at this clip
    shape, else ``None``. Counting them imports ``torch.utils.flop_counter``, which brings in
    torch._dynamo and sympy (about a second and 40 MiB): a saved model's bench stays as light
    as running it.

    Shapes:
        - **shape**: :math:`(1, C, T, V, M)`
    """
    if config.gflops is None or getattr(model, "pretrained_cfg", None) is not config:
        return None
    return config.gflops * 1e9 if tuple(shape) == tuple(config.input_shape(1)) else None


def ratios(results: Sequence[BenchResult], base: int = 0) -> List[Dict[str, Optional[float]]]:
    """``value / base value`` of every :data:`METRICS` entry, per result (the base's own row is all
    1.0; ``None`` where a value is missing or the base is 0). ``p50_ms`` of the base over that of a
    model is its speed-up: ``1 / ratio``."""
    ref = results[base]
    out = []
    for r in results:
        row: Dict[str, Optional[float]] = {}
        for m in METRICS:
            a, b = getattr(r, m), getattr(ref, m)
            row[m] = None if a is None or b in (None, 0) else a / b
        out.append(row)
    return out


def stream_fps(recognizer, frames: np.ndarray, repeats: int = 1) -> float:
    """Frames per second a :class:`~asma.deploy.stream.Recognizer` sustains on ``frames``
    (every push, predictions every ``stride`` frames included), after one untimed pass.

    Shapes:
        - **frames**: :math:`(F, M, V, C)` or :math:`(F, V, C)`, :math:`F >` the window
    """
    for f in frames:
        recognizer.push(f)
    recognizer.reset()
    t0 = time.perf_counter()
    for _ in range(repeats):
        for f in frames:
            recognizer.push(f)
        recognizer.reset()
    return repeats * len(frames) / (time.perf_counter() - t0)
