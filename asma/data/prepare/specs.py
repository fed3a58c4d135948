"""What :func:`~asma.data.prepare.prepare_dataset` knows about each dataset: :class:`DatasetSpec`,
the :data:`DATASETS` table, the per-kind metadata keys, and the shared types and error."""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import import_module
from typing import Callable, Dict, List, Optional, Tuple, Union

from ..preprocess import PreprocessConfig

PathLike = Union[str, "os.PathLike[str]"]
ProgressFn = Callable[[str, int, int], None]
PREPARE_VERSION = 1


class PrepareError(RuntimeError):
    """The preparation cannot start or finish (missing inputs, no files, a bad file without
    ``skip_bad``); the message says what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    """What :func:`prepare_dataset` needs to know about a dataset."""

    name: str
    kind: str  # "ntu", "pku", "utkinect", or "clips" (read by the ClipSource of module ``source``)
    layout: str
    benchmarks: Tuple[str, ...]
    num_persons: int
    setups: Tuple[int, ...] = ()
    part: int = 0
    default_max_frames: Optional[int] = None
    chunk_size: int = 64
    description: str = ""
    source: str = ""  # kind "clips": the module of asma.data.readers whose SOURCE lists, reads and splits
    preprocess: Tuple[Tuple[str, object], ...] = ()  # PreprocessConfig fields that differ from the defaults

    def clip_source(self):
        """The :class:`~asma.data.readers.clips.ClipSource` of a ``"clips"`` dataset."""
        return import_module(f"asma.data.readers.{self.source}").SOURCE

    @property
    def num_joints(self) -> int:
        """:math:`V` of the dataset's layout (without importing the graph package and torch)."""
        return _LAYOUT_JOINTS[self.layout]

    @property
    def meta_keys(self) -> Tuple[str, ...]:
        """The integer metadata stored per sample."""
        return tuple(self.clip_source().meta_keys) if self.kind == "clips" else META_KEYS[self.kind]

    @property
    def class_names(self) -> List[str]:
        """Class names in label order."""
        if self.kind == "clips":
            return list(self.clip_source().class_names)
        if self.kind == "ntu":
            from ..readers.ntu_files import NTU120_CLASS_NAMES

            return NTU120_CLASS_NAMES[:60] if self.name == "ntu60" else list(NTU120_CLASS_NAMES)
        if self.kind == "pku":
            from ..readers.pkummd import PKU_CLASS_NAMES

            return list(PKU_CLASS_NAMES)
        from ..readers.kinect_v1 import UTKINECT_CLASSES

        return list(UTKINECT_CLASSES)

    def default_preprocess(self) -> PreprocessConfig:
        """Lineage-compatible defaults for this dataset (centre/shoulders from its layout)."""
        kw = dict(self.preprocess)
        if self.layout == "kinect20":
            kw = {"center_joint": 2, "shoulders": (4, 8), **kw}
        return PreprocessConfig(**{"center_joint": 20, "shoulders": (4, 8), "max_frames": self.default_max_frames,
                                   **kw})


_LAYOUT_JOINTS = {"ntu25": 25, "kinect20": 20, "penn13": 13, "hdm05": 31}


DATASETS: Dict[str, DatasetSpec] = {
    "ntu60": DatasetSpec("ntu60", "ntu", "ntu25", ("xsub", "xview"), 2, setups=tuple(range(1, 18)),
                         description="NTU RGB+D 60 (setups S001-S017, 56,880 raw files, 302 without skeletons)"),
    "ntu120": DatasetSpec("ntu120", "ntu", "ntu25", ("xsub", "xset"), 2, setups=tuple(range(1, 33)),
                          description="NTU RGB+D 120 (setups S001-S032, 114,480 raw files, 535 without skeletons)"),
    "pku1": DatasetSpec("pku1", "pku", "ntu25", ("xsub", "xview"), 2, part=1, default_max_frames=300,
                        chunk_size=8, description="PKU-MMD Part I (1,076 sequences, ~21.5k clips, 51 classes)"),
    "pku2": DatasetSpec("pku2", "pku", "ntu25", ("xsub", "xview"), 2, part=2, default_max_frames=300,
                        chunk_size=8, description="PKU-MMD Part II (1,009 sequences, ~6.9k clips, 41 of 51 classes)"),
    "utkinect": DatasetSpec("utkinect", "utkinect", "kinect20", ("xsub",), 1, chunk_size=1,
                            description="UTKinect-Action3D (20 sequences, 199 clips, 10 classes, Kinect v1)"),
    "nwucla": DatasetSpec("nwucla", "clips", "kinect20", ("xview",), 1, chunk_size=64, source="nwucla",
                          description="Northwestern-UCLA Multiview Action3D (1,484 clips, 10 classes, 3 views, "
                                      "Kinect v1)"),
    "utd-mhad": DatasetSpec("utd-mhad", "clips", "kinect20", ("xsub",), 1, chunk_size=64, source="utd_mhad",
                            description="UTD-MHAD skeletons (861 clips, 27 classes, 8 subjects, Kinect v1)"),
    "penn-action": DatasetSpec("penn-action", "clips", "penn13", ("official",), 1, chunk_size=64,
                               source="penn_action",
                               preprocess=(("center", "none"), ("align", "none"), ("coord_channels", 2),
                                           ("center_joint", 0), ("shoulders", (1, 2))),
                               description="Penn Action (2,326 clips, 15 classes, 2D, 13 joints + visibility)"),
    # HDM05 at 120 fps: 56-901 frames, resampled like the others; centre the thorax, align the clavicle ends
    "hdm05": DatasetSpec("hdm05", "clips", "hdm05", ("xsub",), 1, chunk_size=16, source="hdm05",
                         preprocess=(("center_joint", 13), ("shoulders", (17, 24))),
                         description="HDM05 mocap, ASF/AMC (288 labelled clips, 11 classes, 5 actors, 31 joints)"),
    "msrc12": DatasetSpec("msrc12", "clips", "kinect20", ("xsub",), 1, chunk_size=4, source="msrc12",
                          description="MSRC-12 gestures, one clip per action point (12 gestures, Kinect v1)"),
}

META_KEYS = {
    "ntu": ("setup", "camera", "subject", "replication", "action", "length", "bodies"),
    "pku": ("video", "view", "action", "start", "end", "confidence", "length", "truncated"),
    "utkinect": ("subject", "episode", "start", "end", "length"),
}
