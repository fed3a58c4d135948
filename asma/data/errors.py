"""Errors raised by the dataset readers and the preparation pipeline."""
from __future__ import annotations

import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class DataFormatError(ValueError):
    """A raw data file (or one sample of it) is malformed.

    The message names the file (its base name) and, when known, the 1-based line, e.g.
    ``S001C001P001R001A001.skeleton line 1234: expected 25 joints, got 24``.

    Attributes:
        path: the file (full path as given) or a sample name; ``None`` when unknown.
        line: 1-based line number, or ``None``.
        reason: the bare reason, without the location prefix.
    """

    def __init__(self, reason: str, path: Optional[PathLike] = None, line: Optional[int] = None):
        self.path = None if path is None else os.fspath(path)
        self.line = None if line is None else int(line)
        self.reason = str(reason)
        super().__init__(self._format())

    def _format(self) -> str:
        where = os.path.basename(self.path) if self.path else "<input>"
        if self.line is not None:
            where += f" line {self.line}"
        return f"{where}: {self.reason}"

    def __reduce__(self):  # keep path/line when the error crosses a process boundary
        return (type(self), (self.reason, self.path, self.line))


class EmptySequenceError(DataFormatError):
    """A file or clip parsed correctly but holds no skeleton (no frame with a body)."""
