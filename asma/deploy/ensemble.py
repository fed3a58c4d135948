"""The multi-stream ("3s") model as one module: joint clips in, fused logits out.

The 3s rows of the paper (3s-ASMa, 3s-ASMa-Distill, Table 2) run one model per stream (joint,
bone, motion) and add their logits with AimCLR's weights. :class:`StreamEnsemble` does the stream
conversion inside ``forward``, so the whole ensemble is benchmarked, exported to one ONNX graph and
deployed as a single model. :func:`save_ensemble` / :func:`load_ensemble` store it as one zoo
folder per stream plus ``ensemble.json``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

from torch import Tensor, nn

PathLike = Union[str, "os.PathLike[str]"]
ENSEMBLE_FILE = "ensemble.json"


class StreamEnsemble(nn.Module):
    r""":math:`z = \sum_s w_s\, f_s(\mathrm{stream}_s(x))` over the streams :math:`s`
    (:func:`asma.train.evaluate.fuse_streams`, mode ``"logits"``).

    Args:
        models: stream name (``joint``, ``bone``, ``motion``) -> classifier on that stream.
        configs: stream name -> its :class:`~asma.pretrained.config.PretrainedConfig` (layout, coordinates).
        weights: stream name -> weight (default AimCLR's joint 0.6, bone 0.6, motion 0.4).

    Shapes:
        - **input**: :math:`(N, C, T, V, M)` joint coordinates
        - **output**: fused logits :math:`(N, K)`
    """

    def __init__(self, models: Mapping[str, nn.Module], configs: Mapping[str, object],
                 weights: Optional[Mapping[str, float]] = None):
        super().__init__()
        if weights is None:  # imported only here: asma.train is not needed to run a saved ensemble
            from asma.train.evaluate import AIMCLR_WEIGHTS as weights
        if not models or set(models) != set(configs):
            raise ValueError(f"need one config per stream, got models {sorted(models)} and configs {sorted(configs)}")
        missing = sorted(set(models) - set(weights))
        if missing:
            raise ValueError(f"no ensemble weight for stream(s) {', '.join(missing)}")
        self.models = nn.ModuleDict(dict(models))
        self.configs = dict(configs)
        self.weights = {s: float(weights[s]) for s in models}
        first = next(iter(self.configs.values()))
        self.skeleton = first.skeleton()
        self.num_coords = first.num_coords

    def forward(self, x: Tensor) -> Tensor:
        """Fused logits, :math:`(N, C, T, V, M) \\to (N, K)`."""
        from asma.data.streams import to_stream
        out = 0
        for s, model in self.models.items():
            out = out + self.weights[s] * model(to_stream(x, s, self.skeleton, self.num_coords))
        return out


def save_ensemble(ensemble: StreamEnsemble, directory: PathLike) -> Path:
    """Write ``directory/<stream>/`` (zoo folders, :func:`asma.zoo.model.save_pretrained`) and
    ``directory/ensemble.json`` (streams and weights, written last)."""
    from asma.io import atomic_write_json
    from asma.zoo.model import save_pretrained
    directory = Path(directory)
    for s, model in ensemble.models.items():
        save_pretrained(model, ensemble.configs[s], directory / s, card=False)
    atomic_write_json(directory / ENSEMBLE_FILE, {"streams": list(ensemble.models), "weights": ensemble.weights})
    return directory


def is_ensemble(path: PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`save_ensemble`."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def load_ensemble(directory: PathLike) -> Tuple[StreamEnsemble, Dict[str, object]]:
    """``(ensemble, configs)`` from a folder written by :func:`save_ensemble` (each stream loaded
    with :func:`asma.create_model`, weights verified)."""
    import asma
    from asma.io import read_json
    directory = Path(directory)
    spec = read_json(directory / ENSEMBLE_FILE)
    streams = spec.get("streams") if isinstance(spec, dict) else None
    if not isinstance(streams, list) or not streams or not all(isinstance(s, str) and "/" not in s for s in streams):
        raise ValueError(f"{directory / ENSEMBLE_FILE}: field 'streams': expected a list of stream folder names")
    models = {s: asma.create_model(str(directory / s), pretrained=True) for s in streams}
    configs = {s: m.pretrained_cfg for s, m in models.items()}
    return StreamEnsemble(models, configs, spec.get("weights")).eval(), configs
