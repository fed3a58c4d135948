"""Running exported models with onnxruntime and numpy only (no torch import), and the one
place that imports the optional ONNX dependencies.

A deployed process that only needs :class:`OnnxRunner` stays small: onnxruntime and numpy are
all it loads (see the peak-RSS column of ``asma bench --runtime onnxruntime``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
INSTALL_HINT = "install the ONNX extra: pip install 'asma[onnx]' (onnx and onnxruntime)"


class MissingDependencyError(ImportError):
    """An optional dependency of the deploy tools is not installed; the message says which extra."""


def require(module: str):
    """Import ``onnx`` / ``onnxruntime`` (or a submodule) or raise :class:`MissingDependencyError`
    with the install command."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{module} is not installed; {INSTALL_HINT}") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (never a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a model file is ordinary data
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class OnnxRunner:
    """A ``.onnx`` model under onnxruntime (CPU), called like the PyTorch model but on numpy.

    Args:
        model: path of a ``.onnx`` file, or its bytes.
        threads: intra-op threads (``None``: onnxruntime's default, all cores).

    Shapes:
        - **input**: :math:`(N, C, T, V, M)` float32 array
        - **output**: the first output (logits :math:`(N, K)` or pooled :math:`(N, D)`)
    """

    def __init__(self, model: Union[PathLike, bytes], threads: Optional[int] = None):
        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        src = model if isinstance(model, bytes) else os.fspath(model)
        self.session = ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        """All outputs for a clip batch :math:`(N, C, T, V, M)`."""
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The first output for a clip batch :math:`(N, C, T, V, M)`."""
        return self.run_all(x)[0]
