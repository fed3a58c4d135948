"""Raw dataset -> memory-mapped stores, in parallel and resumable (the library behind
``asma data prepare``).

Pipeline of :func:`prepare_dataset`:

1. **list** the raw files (sorted by sample name), drop the official missing-skeleton samples
   (NTU), duplicates (the same sample twice: the first path wins) and files that do not belong
   to the dataset; all are named in the report.
2. **parse + preprocess** in chunks with a ``ProcessPoolExecutor``: each chunk becomes a part
   file ``part-00012.npz`` (labels, names, metadata, report) plus its clips as a plain
   ``part-00012.data.npy``, in a work directory ``<out>/.asma-work/<dataset>-<settings hash>/``,
   written atomically. A re-run with the same settings reuses finished parts whose raw files
   are unchanged (size and modification time), i.e. it resumes after Ctrl-C, a crash or a bad
   file; different settings use a different work directory.
3. **assemble** one store per benchmark and part, ``<out>/<dataset>-<benchmark>/{train,test}``
   (see :mod:`asma.data.store`), while step 2 runs: as each part is finished (in part order),
   its clips are memory-mapped, split into the benchmarks and appended to the stores, so the
   copy and the disk writes overlap the parse (a split rule that needs all samples, MSRC-12's,
   waits for the last part). The stores are written into temporary directories, flushed side
   by side and moved into place after the last part.
4. **report**: ``<out>/<dataset>-prepare-report.json`` lists skipped, duplicate, bad (file, line,
   reason) and unassigned samples, counts and timings; the work directory is deleted.

Bad input (truncated/corrupt files, wrong joint counts, NaN/inf, empty sequences) stops the run
with a :class:`~asma.data.errors.DataFormatError` naming file and line, or, with
``skip_bad=True``, is skipped and recorded.
"""
from __future__ import annotations

from .pipeline import prepare_dataset
from .report import PrepareSummary
from .specs import DATASETS, META_KEYS, PREPARE_VERSION, DatasetSpec, PathLike, PrepareError, ProgressFn

__all__ = ["DATASETS", "META_KEYS", "PREPARE_VERSION", "DatasetSpec", "PathLike", "PrepareError", "PrepareSummary",
           "ProgressFn", "prepare_dataset"]
