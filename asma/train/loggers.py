"""Where per-epoch metrics go: one :class:`Logger` interface with three back ends, chosen with
``TrainConfig.loggers`` (``asma train --logger``): ``jsonl`` (``<run>/metrics.jsonl``, the
default), ``csv`` (``<run>/metrics.csv``, long format) and ``tensorboard``
(``<run>/tensorboard/<stage>/``, needs ``pip install asma[tensorboard]``). One run has one set of
files, whatever stage writes; only rank 0 writes. After a resume, :meth:`Logger.resume` forgets
what an interrupted stage logged from the epoch it restarts at, so no epoch appears twice."""
from __future__ import annotations

import csv
import io
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ..io import atomic_write_text
from .engine import is_main_process

PathLike = Union[str, Path]

#: The back ends :func:`make_logger` knows.
LOGGERS = ("jsonl", "csv", "tensorboard")


class Logger:
    """Receives one record (a flat-ish dict with ``stage`` and usually ``epoch``) per epoch or
    stage result. The base class discards everything (no run directory)."""

    def log(self, record: Mapping[str, Any]) -> None:
        """Record ``record`` (rank 0 only)."""

    def resume(self, stage: str, epoch: int) -> None:
        """Forget the records of ``stage`` with ``epoch >= epoch`` (the stage restarts there)."""

    def close(self) -> None:
        """Flush and release files."""

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scalars(record: Mapping[str, Any], prefix: str = "") -> Iterator[Tuple[str, float]]:
    """The numbers of a record as ``(key, value)`` pairs: nested dicts as ``a/b``, lists of
    result rows (dicts with a ``name``) as ``results/<name>/<key>``; ``stage``, ``epoch`` and
    ``time`` are not values."""
    for k, v in record.items():
        if not prefix and k in ("stage", "epoch", "time"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, bool):
            yield key, float(v)
        elif isinstance(v, (int, float)):
            yield key, float(v)
        elif isinstance(v, Mapping):
            yield from scalars(v, key + "/")
        elif isinstance(v, (list, tuple)):
            for item in v:
                if isinstance(item, Mapping) and "name" in item:
                    yield from scalars({kk: vv for kk, vv in item.items() if kk != "name"},
                                       f"{key}/{item['name']}/")


def _keep(record: Mapping[str, Any], stage: str, epoch: int) -> bool:
    return not (record.get("stage") == stage and isinstance(record.get("epoch"), int) and record["epoch"] >= epoch)


class _FileLogger(Logger):
    def __init__(self, path: PathLike):
        self.path = Path(path)

    @contextmanager
    def _append(self) -> Iterator[IO[str]]:
        """The file opened for appending, flushed and fsynced afterwards (a record survives a crash)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


class JsonlLogger(_FileLogger):
    """One JSON object per line in ``path`` (appended and fsynced per record)."""

    def log(self, record: Mapping[str, Any]) -> None:
        if is_main_process():
            with self._append() as f:
                f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def read(self) -> List[Dict[str, Any]]:
        """Every record of the file (empty when it does not exist)."""
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def resume(self, stage: str, epoch: int) -> None:
        if not is_main_process() or not self.path.is_file():
            return
        lines = [ln for ln in self.path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if _keep(json.loads(ln), stage, epoch)]
        if len(kept) != len(lines):
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))


class CsvLogger(_FileLogger):
    """Long-format CSV, one row per number: ``time,stage,epoch,key,value`` (any stage's keys fit
    one file; ``pandas.read_csv(...).pivot`` gives a wide table)."""

    FIELDS = ("time", "stage", "epoch", "key", "value")

    def log(self, record: Mapping[str, Any]) -> None:
        if not is_main_process():
            return
        new, t = not self.path.is_file(), round(time.time(), 3)
        with self._append() as f:
            w = csv.writer(f)
            if new:
                w.writerow(self.FIELDS)
            for key, value in scalars(record):
                w.writerow([t, record.get("stage", ""), record.get("epoch", ""), key, repr(value)])

    def resume(self, stage: str, epoch: int) -> None:
        if not is_main_process() or not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if not (r["stage"] == stage and r["epoch"] != "" and int(r["epoch"]) >= epoch)]
        if len(kept) != len(rows):
            buf = io.StringIO()
            w = csv.DictWriter(buf, self.FIELDS, lineterminator="\r\n")
            w.writeheader()
            w.writerows(kept)
            atomic_write_text(self.path, buf.getvalue())


class TensorBoardLogger(Logger):
    """``torch.utils.tensorboard`` event files, one folder per stage (``<dir>/<stage>/``), the
    epoch as the global step. A resumed stage opens its writer with ``purge_step`` = the restart
    epoch, which hides the events an interrupted run wrote from there on."""

    def __init__(self, directory: PathLike):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard is an optional extra
            raise ImportError("the tensorboard logger needs the tensorboard package: pip install "
                              "'asma[tensorboard]'") from e
        self._writer_cls = SummaryWriter
        self.directory = Path(directory)
        self._writers: Dict[str, Any] = {}
        self._purge: Dict[str, int] = {}

    def _writer(self, stage: str):
        if stage not in self._writers:
            self._writers[stage] = self._writer_cls(str(self.directory / stage.replace("/", "_")),
                                                    purge_step=self._purge.pop(stage, None))
        return self._writers[stage]

    def log(self, record: Mapping[str, Any]) -> None:
        if not is_main_process():
            return
        stage = str(record.get("stage", "run"))
        step = record.get("epoch", 0) if isinstance(record.get("epoch"), int) else 0
        w = self._writer(stage)
        for key, value in scalars(record):
            w.add_scalar(key, value, step)
        w.flush()

    def resume(self, stage: str, epoch: int) -> None:
        if stage in self._writers:
            self._writers.pop(stage).close()
        self._purge[stage] = epoch

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()


class Loggers(Logger):
    """Several back ends behind one :class:`Logger`."""

    def __init__(self, loggers: Sequence[Logger]):
        self.loggers = list(loggers)

    def log(self, record: Mapping[str, Any]) -> None:
        for lg in self.loggers:
            lg.log(record)

    def resume(self, stage: str, epoch: int) -> None:
        for lg in self.loggers:
            lg.resume(stage, epoch)

    def close(self) -> None:
        for lg in self.loggers:
            lg.close()


def make_logger(run_dir: Optional[PathLike], kinds: Sequence[str] = ("jsonl",)) -> Logger:
    """The run's logger: ``kinds`` from :data:`LOGGERS` writing into ``run_dir`` (nothing when
    ``run_dir`` is None).

    Raises:
        ValueError: for an unknown kind.
    """
    unknown = [k for k in kinds if k not in LOGGERS]
    if unknown:
        raise ValueError(f"unknown logger(s) {', '.join(map(repr, unknown))}; choose from {', '.join(LOGGERS)}")
    if run_dir is None:
        return Logger()
    run = Path(run_dir)
    make = {"jsonl": lambda: JsonlLogger(run / "metrics.jsonl"), "csv": lambda: CsvLogger(run / "metrics.csv"),
            "tensorboard": lambda: TensorBoardLogger(run / "tensorboard")}
    return Loggers([make[k]() for k in dict.fromkeys(kinds)])


def default_logger(run_dir: Optional[PathLike], logger: Optional[Logger] = None) -> Logger:
    """``logger`` when given, else ``run_dir/metrics.jsonl`` (nothing without ``run_dir``): what
    the training functions log to when called on their own."""
    if logger is not None:
        return logger
    return JsonlLogger(Path(run_dir) / "metrics.jsonl") if run_dir is not None else Logger()


__all__ = ["default_logger", "LOGGERS", "Logger", "JsonlLogger", "CsvLogger", "TensorBoardLogger", "Loggers", "make_logger", "scalars"]
