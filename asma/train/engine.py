"""Shared training plumbing: seeding, device choice, progress display."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

import torch
from torch import nn
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A generator whose state depends only on (seed, epoch, stream): a resumed run replays the
    exact random draws of an uninterrupted one without storing RNG state."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch * 7_919 + stream * 104_729) % (2 ** 63 - 1))
    return g


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


#: A ``device`` argument: a name (see :func:`resolve_device`), a ``torch.device`` or None.
Device = Union[str, torch.device, None]

#: What ``device`` options accept (``TrainConfig.device``, ``--device``, the ``device=`` keywords).
DEVICE_CHOICES = ("cpu", "cuda", "cuda:<i>", "auto")


def resolve_device(spec: Device = None) -> torch.device:
    """The ``torch.device`` a ``device`` option names.

    ``None``/``"cpu"`` -> CPU; ``"cuda"`` -> the current CUDA device; ``"cuda:<i>"`` -> GPU ``i``;
    ``"auto"`` -> CUDA when available, else CPU. Under ``torchrun`` (``WORLD_SIZE`` > 1 or an
    initialised process group) ``"cuda"`` and ``"auto"`` mean ``cuda:<LOCAL_RANK>``: each process
    owns one GPU, which is also where :func:`~asma.train.distributed.wrap_ddp` puts the model.

    Raises:
        ValueError: for an unknown name, a CUDA device when ``torch.cuda.is_available()`` is
            False, a GPU index out of range, or under ``torchrun`` a ``cuda:<i>`` other than the
            process's ``cuda:<LOCAL_RANK>``.
    """
    if spec is None:
        return torch.device("cpu")
    text = str(spec).strip().lower()
    distributed = _under_torchrun()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(spec)!r} requested but torch.cuda.is_available() is False (no GPU "
                             "or a CPU-only PyTorch build); use device 'cpu' or 'auto'")
        from .distributed import local_rank
        if text == "cuda":
            return torch.device("cuda", local_rank() if distributed else torch.cuda.current_device())
        index = text[5:]
        if not index.isdigit():
            raise ValueError(f"invalid device {str(spec)!r}: expected cuda:<index>, e.g. cuda:0")
        i, count = int(index), torch.cuda.device_count()
        if i >= count:
            raise ValueError(f"device {str(spec)!r} requested but only {count} CUDA device(s) are visible")
        if distributed and i != local_rank():
            raise ValueError(f"device {str(spec)!r} under torchrun: each process uses cuda:<LOCAL_RANK> "
                             f"(cuda:{local_rank()} here); use device 'cuda' or 'auto'")
        return torch.device("cuda", i)
    raise ValueError(f"unknown device {str(spec)!r}; valid values: {', '.join(DEVICE_CHOICES)}")


def _under_torchrun() -> bool:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def module_device(module: Any) -> torch.device:
    """Where ``module``'s first parameter (or buffer) lives; CPU for parameterless modules and
    plain callables. The evaluation helpers run a caller's model there when no device is given."""
    if isinstance(module, nn.Module):
        for t in module.parameters():
            return t.device
        for t in module.buffers():
            return t.device
    return torch.device("cpu")


def device_for(module: Any, device: Device = None) -> torch.device:
    """``device`` resolved, or where ``module`` already is (:func:`module_device`) when it is
    None: the rule of the helpers that run a caller's model (extraction, evaluation)."""
    return resolve_device(device) if device is not None else module_device(module)


def is_main_process() -> bool:
    import torch.distributed as dist
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def make_progress(console: Optional[Console] = None, enabled: bool = True) -> Progress:
    """A rich progress bar with ``loss`` (text, e.g. ``"loss 0.123"``) and ``rate`` (clips/s)
    fields (pass them to ``add_task``), shown on rank 0 only."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[rate]} clips/s"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, disable=not enabled or not is_main_process(), transient=False)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    if n and n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
