"""A tiny finished run (every stage) shared by the plot tests, and a PNG check."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")


def _assert_png(path: Path, min_side: int = 200) -> np.ndarray:
    """The file is a PNG that decodes to an RGBA image of a sensible size; returns the pixels."""
    import matplotlib.image as mpimg
    path = Path(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    img = mpimg.imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) >= min_side, img.shape
    assert float(img[..., :3].std()) > 0.01  # not a blank canvas
    return img


@pytest.fixture
def assert_png():
    return _assert_png


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """pretrain -> linear -> finetune -> distill on 4 embedded classes, one epoch each (seconds)."""
    from asma.train import make_config
    from asma.train.pipeline import run_pipeline
    cfg = make_config("tiny")
    cfg.data.clips_per_class, cfg.data.num_classes = 16, 4
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 2, 16
    cfg.probe.epochs = 10
    cfg.finetune.epochs = cfg.finetune.align_epochs = cfg.distill.epochs = 2
    cfg.finetune.batch_size = cfg.distill.batch_size = 16
    cfg.stages = ["pretrain", "linear", "finetune", "distill"]
    cfg.run_dir = str(tmp_path_factory.mktemp("plots") / "run")
    run_pipeline(cfg)
    return Path(cfg.run_dir)
