"""The fresh process of ``asma bench``: load a saved model, run it, report the peak RSS.

``python -m asma.deploy.worker ARTIFACT --runtime torch|onnxruntime --shape C,T,V,M`` loads
``ARTIFACT`` as a deployment would (a zoo or ensemble folder through :func:`asma.create_model`
for torch; a ``.onnx`` file through onnxruntime alone, torch never imported), runs ``--runs``
batch-1 clips and prints one JSON line: ``peak_rss_mib`` and which of torch,
torch_geometric and sympy the process imported (the light inference path of issue 14).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from typing import List, Optional

HEAVY = ("torch", "torch_geometric", "sympy")


def _torch_runner(artifact: str, threads: int):
    import torch

    import asma
    from asma.deploy.ensemble import is_ensemble, load_ensemble
    torch.set_num_threads(threads)
    model = load_ensemble(artifact)[0] if is_ensemble(artifact) else asma.create_model(artifact, pretrained=True)

    def run(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))
    return run


def main(argv: Optional[List[str]] = None) -> None:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m asma.deploy.worker", description=__doc__.splitlines()[0])
    p.add_argument("artifact")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", required=True, help="N,C,T,V,M or C,T,V,M (batch 1)")
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args(argv)
    import numpy as np
    shape = [int(s) for s in args.shape.split(",")]
    shape = shape if len(shape) == 5 else [1] + shape
    if args.runtime == "onnxruntime":
        from asma.deploy.runtime import OnnxRunner
        run = OnnxRunner(args.artifact, threads=args.threads)
    else:
        run = _torch_runner(args.artifact, args.threads)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    for _ in range(max(1, args.runs)):
        run(x)
    print(json.dumps({"peak_rss_mib": round(peak_rss_mib(), 1), "imports": {m: m in sys.modules for m in HEAVY}}))


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` on Linux (``ru_maxrss`` would
    include the parent's memory at fork time, which Linux carries across exec), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2 ** 20 if sys.platform == "darwin" else rss / 1024


if __name__ == "__main__":
    main()
