"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) on whole pose frames, vectorised.

A low-pass filter whose cutoff rises with the signal's speed: at rest it smooths hard (tracker
jitter gone), in fast motion it lets the signal through (little lag). Per value x at time t:

    rate  = 1 / (t - t_prev)                      (the given rate for the first step)
    dx    = (x - x_hat_prev) * rate               derivative, against the previous *filtered* value
    dx_hat = lowpass(dx, alpha(d_cutoff))
    cutoff = min_cutoff + beta * |dx_hat|
    x_hat  = lowpass(x, alpha(cutoff)),           alpha(fc) = 1 / (1 + rate / (2 pi fc))

This is exactly the `OneEuroFilter` package's algorithm (Casiez's reference implementation, PyPI
`OneEuroFilter`, BSD-3), derivative included; `tests/test_teleop.py` checks equality against it
where it is installed. Why not the package itself: it filters one float per object and call
(66 objects and 66 Python calls per pose frame, with the package's own pure-Python per-call
work), where the operator's pose is one (22, 3) array; and it is one more dependency for a dozen
lines. Non-finite inputs are never fed in (a frame with a missing joint is rejected before, by
the pose buffer), so the state stays finite.

`measure_lag_jitter` gives the trade-off for a choice of parameters: jitter left on a still pose
with noise, and lag on a clean moving signal, in the same units as the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """min_cutoff (Hz): the cutoff at rest; lower removes more jitter, adds more lag when slow.
    beta (1/m): how fast the cutoff rises with speed; higher cuts lag in fast motion.
    d_cutoff (Hz): cutoff of the speed estimate. rate (Hz): assumed before two stamps are seen."""

    min_cutoff: float = 1.0
    beta: float = 1.0
    d_cutoff: float = 1.0
    rate: float = 30.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff", "rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"OneEuroConfig.{name} must be > 0, got {getattr(self, name)}")
        if not self.beta >= 0:
            raise ValueError(f"OneEuroConfig.beta must be >= 0, got {self.beta}")


def _alpha(rate: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


class OneEuroFilter:
    """Filters arrays of any fixed shape, one call per sample (module docstring)."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None  # last filtered value
        self._dx: np.ndarray | None = None  # last filtered derivative
        self._t: float | None = None
        self._rate = self.config.rate

    def __call__(self, x: np.ndarray, t: float | None = None) -> np.ndarray:
        cfg = self.config
        x = np.asarray(x, dtype=np.float64)
        if self._t is not None and t is not None and t > self._t:
            self._rate = 1.0 / (t - self._t)
        self._t = t
        if self._x is None:  # first sample: passes through, derivative 0
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) * self._rate
        self._dx = self._dx + _alpha(self._rate, cfg.d_cutoff) * (dx - self._dx)
        cutoff = cfg.min_cutoff + cfg.beta * np.abs(self._dx)
        self._x = self._x + _alpha(self._rate, cutoff) * (x - self._x)
        return self._x.copy()


def measure_lag_jitter(
    config: OneEuroConfig,
    *,
    noise: float = 0.01,
    speed: float = 1.0,
    rate: float = 30.0,
    seconds: float = 10.0,
) -> dict[str, float]:
    """The filter's trade-off on synthetic 1-D signals (units of the input, e.g. metres).

    jitter: standard deviation of the output on a still value with Gaussian noise of std `noise`
    (the raw jitter is `noise`); lag_ms: how far behind a clean sinusoid of peak speed `speed`
    (units/s, amplitude 0.3) the output runs, from the best-matching time shift; lag_error: the
    output's RMS error against that sinusoid.
    """
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    still = OneEuroFilter(config)
    out = np.array([still(np.array([v]), s)[0] for v, s in zip(rng.normal(0.0, noise, n), t, strict=True)])
    jitter = float(out[n // 5 :].std())
    amp = 0.3
    omega = speed / amp
    clean = amp * np.sin(omega * t)
    moving = OneEuroFilter(config)
    y = np.array([moving(np.array([v]), s)[0] for v, s in zip(clean, t, strict=True)])
    shifts = np.arange(0, int(0.5 * rate * 10)) / (rate * 10)  # 0.1-frame steps up to 0.5 s
    k = n // 5
    errors = [np.mean((y[k:] - amp * np.sin(omega * (t[k:] - d))) ** 2) for d in shifts]
    best = int(np.argmin(errors))
    return {
        "jitter": jitter,
        "lag_ms": float(shifts[best] * 1000.0),
        "lag_error": float(np.sqrt(np.mean((y[k:] - clean[k:]) ** 2))),
    }


def main() -> None:
    """`python -m molam_ros.runtime.one_euro`: the lag/jitter table the README quotes."""
    print("| min_cutoff (Hz) | beta | jitter left (mm, of 10 mm raw) | lag (ms) at 1 m/s |")
    print("|---|---|---|---|")
    for cutoff, beta in ((1e6, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (1.0, 5.0), (2.0, 1.0)):
        r = measure_lag_jitter(OneEuroConfig(min_cutoff=cutoff, beta=beta))
        label = "off" if cutoff >= 1e6 else f"{cutoff:g}"
        print(f"| {label} | {beta:g} | {r['jitter'] * 1000:.1f} | {r['lag_ms']:.0f} |")


if __name__ == "__main__":
    main()
