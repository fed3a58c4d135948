"""Trainers: SSL pretraining, linear evaluation, and the ``asma train`` orchestration."""
from .config import (DataConfig, DistillConfig, FinetuneConfig, ModelConfig, OptimConfig, ProbeConfig, TrainConfig,
                     make_config, parse_set)
from .pretrain import build_model, pretrain
from .probe import extract_tokens, linear_evaluation
from .pipeline import RunResult
from .run import run_train

__all__ = ["TrainConfig", "DataConfig", "ModelConfig", "OptimConfig", "ProbeConfig", "make_config",
           "parse_set", "pretrain", "build_model", "linear_evaluation", "extract_tokens", "run_train",
           "RunResult"]

from .distill import depth_sweep, distill, tau_sweep  # noqa: E402
from .evaluate import EvalResult, evaluate, fuse_streams, write_eval  # noqa: E402
from .finetune import finetune, finetune_aligned, fit_aligned_probe  # noqa: E402

__all__ += ["DistillConfig", "distill", "tau_sweep", "depth_sweep", "EvalResult", "evaluate",
            "fuse_streams", "write_eval", "FinetuneConfig", "finetune", "finetune_aligned",
            "fit_aligned_probe"]

from .engine import resolve_device  # noqa: E402
from .pipeline import run_pipeline, run_streams  # noqa: E402
from .rundir import open_run  # noqa: E402

__all__ += ["resolve_device", "open_run", "run_pipeline", "run_streams"]
