"""Online recognition: :class:`Recognizer` classifies a sliding window over a live joint stream,
and :func:`stream_predictions` drives it from JSON lines (``asma predict --stream``)."""
from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator, Optional

import numpy as np

from .inputs import Clip, fit_clip, parse_frame
from .classify import Prediction, logits_fn, model_input, require_classifier, softmax, top_k


class Recognizer:
    """Sliding-window action recognition, one frame of joints at a time (e.g. from a live pose
    estimator).

    Every ``stride`` frames, once ``window`` frames have arrived, the last ``window`` frames are
    classified exactly as :func:`~asma.deploy.classify.predict` classifies them as a clip: the
    model's own normalisation (resampling to its ``num_frames``, centring, alignment) and stream
    conversion, then a softmax.

    Args:
        model: PyTorch module (with ``pretrained_cfg`` unless ``config`` is given) or an
            :class:`~asma.deploy.runtime.OnnxRunner`.
        window: frames per window :math:`T_w` (default: the model's ``num_frames``, else 50).
        stride: frames between two predictions (1: after every frame).
        config: the model's :class:`~asma.pretrained.config.PretrainedConfig`.
        preprocess: apply the config's clip normalisation (off: frames are already normalised).

    Shapes:
        - **frame**: :math:`(V, C)` (one person) or :math:`(M, V, C)`
        - **output of** :meth:`push`: :math:`(K,)` probabilities, or ``None`` between predictions

    Example::

        rec = Recognizer(model, window=50, stride=5)
        for joints in pose_estimator():          # (V, C) per frame
            p = rec.push(joints)
            if p is not None:
                print(rec.class_names[p.argmax()])
    """

    def __init__(self, model, window: Optional[int] = None, stride: int = 1, *, config=None,
                 preprocess: bool = True):
        self.config = config if config is not None else getattr(model, "pretrained_cfg", None)
        if self.config is None:
            raise ValueError("Recognizer needs the model's config: pass config= or a model from asma.create_model")
        self.class_names = require_classifier(self.config)
        self.window = int(window or self.config.num_frames or 50)
        self.stride = int(stride)
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"window and stride must be >= 1, got window={self.window}, stride={self.stride}")
        self.preprocess = preprocess
        self._run = logits_fn(model)
        self._frames: deque = deque(maxlen=self.window)
        self.frames_seen = 0

    def reset(self) -> None:
        """Forget the buffered frames (a new video or a lost track)."""
        self._frames.clear()
        self.frames_seen = 0

    def _check(self, frame: np.ndarray) -> np.ndarray:
        given = np.asarray(frame, np.float32)
        a = given[None] if given.ndim == 2 else given
        cfg = self.config
        if a.ndim != 3 or a.shape[1:] != (cfg.num_joints, cfg.in_channels):
            raise ValueError(f"frame {self.frames_seen}: expected (V, C) = ({cfg.num_joints}, {cfg.in_channels}) "
                             f"or (M, V, C) joints for layout {cfg.layout_name!r}, got shape {given.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"frame {self.frames_seen}: NaN or infinite coordinate")
        return a

    def window_clip(self) -> np.ndarray:
        """The buffered frames as a raw clip, persons padded to the model's.

        Shapes:
            - **output**: :math:`(C, T_w, V, M)` (fewer frames before the window is full)
        """
        m = max(f.shape[0] for f in self._frames)
        x = np.zeros((len(self._frames), m) + self._frames[0].shape[1:], np.float32)
        for t, f in enumerate(self._frames):
            x[t, :f.shape[0]] = f
        clip = Clip(x.transpose(3, 0, 2, 1), self.config.layout_name, None, "<stream>")
        return fit_clip(clip, self.config)

    def probabilities(self) -> np.ndarray:
        """Class probabilities :math:`(K,)` of the buffered window."""
        x = model_input(self.config, self.window_clip(), self.preprocess)
        return softmax(self._run(x))[0]

    def push(self, frame) -> Optional[np.ndarray]:
        """Add one frame; return the window's probabilities :math:`(K,)` when a prediction is due
        (``window`` frames buffered and ``stride`` frames since the last one), else ``None``."""
        self._frames.append(self._check(frame))
        self.frames_seen += 1
        if len(self._frames) < self.window or (self.frames_seen - self.window) % self.stride:
            return None
        return self.probabilities()


def stream_predictions(recognizer: Recognizer, lines: Iterable[str], topk: int = 5,
                       source: str = "<stdin>") -> Iterator[Prediction]:
    """Feed JSON lines (one frame each, see :func:`~asma.deploy.inputs.parse_frame`; blank lines
    skipped) to ``recognizer`` and yield a :class:`Prediction` (source ``"frame <n>"``, the 1-based
    number of the window's last frame) whenever one is due.

    Raises:
        DataFormatError / ValueError: a bad line, naming ``source`` and the line number.
    """
    from asma.data.errors import DataFormatError
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        frame = parse_frame(line, source, n)
        try:
            probs = recognizer.push(frame)
        except ValueError as e:
            raise DataFormatError(str(e), source, n) from None
        if probs is not None:
            yield top_k(probs, recognizer.class_names, topk, f"frame {recognizer.frames_seen}")
