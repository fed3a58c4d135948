"""Step 4 of :func:`~asma.data.prepare.prepare_dataset`: the :class:`PrepareSummary`, written as
``<out>/<dataset>-prepare-report.json``, and the removal of the work directory."""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List


@dataclass
class PrepareSummary:
    """Result of :func:`prepare_dataset` (also written as the JSON report)."""

    dataset: str
    out_dir: str
    stores: Dict[str, Dict[str, int]]  # "<dataset>-<bench>" -> {"train": n, "test": n}
    files_found: int
    files_used: int
    samples: int
    skipped: List[Dict[str, str]] = field(default_factory=list)  # missing-skeleton list, duplicates, ...
    bad: List[Dict[str, Any]] = field(default_factory=list)  # {"file", "line", "error"}
    notes: List[Dict[str, Any]] = field(default_factory=list)
    unassigned: List[str] = field(default_factory=list)
    resumed_chunks: int = 0
    chunks: int = 0
    workers: int = 1
    # "parse": until the last part is parsed (the stores are filled meanwhile), "write": the
    # rest of the store writing after it, "total"
    seconds: Dict[str, float] = field(default_factory=dict)
    files_per_second: float = 0.0
    settings: Dict[str, Any] = field(default_factory=dict)
    report_path: str = ""

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (the report's content)."""
        return asdict(self)


def _finish(summary: PrepareSummary, out: Path, work: Path, dataset: str, keep_work: bool) -> PrepareSummary:
    """Write the report; unless ``keep_work``, delete this and stale work directories of ``dataset``.
    Returns ``summary``."""
    from ..store import _write_json_atomic

    _write_json_atomic(Path(summary.report_path), summary.to_dict())
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
        base = out / ".asma-work"
        for stale in base.glob(f"{dataset}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            base.rmdir()
        except OSError:
            pass
    return summary
