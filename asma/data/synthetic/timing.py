"""Per-performance time variables (warp, speed, phase, progress) shared by all action generators."""
from __future__ import annotations

import numpy as np


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Timing:
    """Per-performance time variables, each ``(n, T)`` or ``(n, 1)``.

    ``u`` is warped clip time in [0, 1]; one-shot actions run on the progress ``p`` (0 before
    the action window, 1 after it); periodic actions use :meth:`osc`."""

    def __init__(self, rng: np.random.Generator, n: int, T: int, speed: np.ndarray):
        u = np.linspace(0.0, 1.0, T)[None, :]
        # A smooth monotone warp (|a| < 1 keeps du/dt > 0): performers speed up and slow down.
        a = rng.uniform(-0.5, 0.5, (n, 1))
        self.u = u + a * np.sin(2 * np.pi * u) / (2 * np.pi)
        self.speed = speed[:, None]
        self.phase = rng.uniform(0.0, 1.0, (n, 1))
        # Faster performers finish in a shorter window; where the window starts is random.
        window = np.clip(0.8 / self.speed, 0.35, 1.0)
        start = rng.uniform(0.0, 1.0, (n, 1)) * (1.0 - window)
        self.p = np.clip((self.u - start) / window, 0.0, 1.0)
        self.sign = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
        self.gap = rng.uniform(1.3, 1.7, (n, 1))     # initial distance between two persons, m

    def osc(self, cycles: float, shift: float = 0.0) -> np.ndarray:
        """``sin`` with ``cycles`` periods per clip at nominal speed."""
        return np.sin(2 * np.pi * (cycles * self.speed * self.u + self.phase + shift))

    def ramp(self, a: float, b: float) -> np.ndarray:
        """0 before progress ``a``, 1 after ``b``, smooth in between."""
        return _smoothstep((self.p - a) / (b - a))

    def bump(self, a: float = 0.0, b: float = 1.0) -> np.ndarray:
        """0 -> 1 -> 0 over the progress interval ``[a, b]``."""
        q = np.clip((self.p - a) / (b - a), 0.0, 1.0)
        return np.sin(np.pi * q) ** 2

    def hold(self, rise: float = 0.2) -> np.ndarray:
        """A plateau over the action window: rises over ``rise``, holds, falls over ``rise``."""
        return self.ramp(0.0, rise) * (1.0 - self.ramp(1.0 - rise, 1.0))
