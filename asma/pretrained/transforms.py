"""``SkeletonTransforms``: the input pipeline a :class:`~asma.pretrained.config.PretrainedConfig`
carries (``config.transforms()``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import PretrainedConfig

_PREPROCESS_KEYS = {"length", "frames", "max_frames", "center", "align", "center_joint", "shoulders",
                    "coord_channels"}


class SkeletonTransforms:
    """Input pipeline carried by a :class:`PretrainedConfig` (``config.transforms()``).

    ``transforms(x)`` checks that ``x`` matches the checkpoint's channels and joints and converts
    it to the checkpoint's ``stream`` (:func:`asma.data.streams.to_stream`);
    :meth:`prepare_clip` applies the recorded clip normalisation (centring, resampling,
    alignment) to a raw clip first.

    Shapes:
        - **input**: :math:`(N, C, T, V, M)` or :math:`(C, T, V, M)`
        - **output**: :math:`(N, C, T, V, M)`
    """

    def __init__(self, config: PretrainedConfig):
        self.config = config
        self._skeleton = None

    @property
    def skeleton(self):
        """The checkpoint's :class:`~asma.graph.Skeleton` (built once)."""
        if self._skeleton is None:
            self._skeleton = self.config.skeleton()
        return self._skeleton

    def check(self, x) -> None:
        """Raise ``ValueError`` naming both sides when ``x`` (``(N, C, T, V, M)``) does not fit."""
        from asma.models.registry import check_clip
        cfg = self.config
        check_clip(x, cfg.in_channels, cfg.num_joints, cfg.layout_name, "the checkpoint")

    def __call__(self, x):
        """Joint clips -> the checkpoint's input stream (float32).

        Shapes:
            - **x**: :math:`(N, C, T, V, M)` or :math:`(C, T, V, M)` -> :math:`(N, C, T, V, M)`
        """
        import torch

        from asma.data.streams import to_stream
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() == 4:
            x = x.unsqueeze(0)
        self.check(x)
        return to_stream(x, self.config.stream, self.skeleton, self.config.num_coords)

    def preprocess_config(self):
        """The recorded clip normalisation as :class:`asma.data.preprocess.PreprocessConfig`.

        Raises:
            ValueError: ``preprocessing`` is empty or not in ``PreprocessConfig`` form.
        """
        from asma.data.preprocess import PreprocessConfig
        pre = self.config.preprocessing
        if not pre:
            raise ValueError("this checkpoint records no preprocessing; normalise clips as its model card says")
        extra = set(pre) - _PREPROCESS_KEYS
        if extra:
            raise ValueError(f"preprocessing has free-form key(s) {', '.join(sorted(extra))} that "
                             "PreprocessConfig does not know; apply it as the model card describes")
        return PreprocessConfig.from_dict(pre)

    def prepare_clip(self, raw) -> "Any":
        """Normalise one raw clip as the training data was (crop, frame selection, centring,
        resampling, shoulder alignment) and convert it to the input stream.

        Shapes:
            - **raw**: :math:`(C, F, V, M)` numpy array -> :math:`(1, C, T, V, M)` tensor
        """
        import numpy as np

        from asma.data.preprocess import preprocess_clip
        clip = preprocess_clip(np.asarray(raw, dtype=np.float32), self.preprocess_config())
        return self(clip)

    def __repr__(self) -> str:
        c = self.config
        return (f"SkeletonTransforms(layout={c.layout_name!r}, in_channels={c.in_channels}, "
                f"stream={c.stream!r}, num_frames={c.num_frames})")

