"""The EMA lesson: exponential moving averages of a noisy series, with and without bias
correction, for several decay rates rho.

``S_0 = 0``, ``S_t = rho * S_{t-1} + (1 - rho) * y_t`` starts far below the data (the weights
``(1 - rho) * rho^(t-k)`` of ``y_1..y_t`` sum to ``1 - rho^t``, not to 1), and the larger rho the
later it catches up. Dividing by that sum, ``S_t / (1 - rho^t)``, is Adam's bias correction: a
weighted average from the first step on.
"""

import numpy as np
import pandas as pd

from . import figures

RHOS = (0.5, 0.9, 0.95, 0.99)


def series(n=150, seed=0):
    """A seeded noisy series ``y_t``, t = 1..n: a slow seasonal curve around 10 plus Gaussian
    noise of standard deviation 1.5 (a year of daily temperatures, in the lecture's spirit)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    return 10.0 + 6.0 * np.sin(2 * np.pi * t / n - 0.5) + 1.5 * rng.standard_normal(n)


def ema(y, rho):
    """Exponential moving averages of ``y`` (1-D) with decay ``rho`` in [0, 1).

    Returns ``(biased, corrected)``: ``S_t`` from ``S_0 = 0`` and ``S_t / (1 - rho^t)``.
    """
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    biased = np.empty_like(y)
    average = 0.0
    for i, value in enumerate(y):
        average = rho * average + (1.0 - rho) * value
        biased[i] = average
    t = np.arange(1, y.size + 1)
    return biased, biased / (1.0 - rho**t)


def table(rhos=RHOS, n=150, seed=0):
    """Tidy data of the figure: one row per (rho, t) with ``y``, ``ema`` and
    ``ema_corrected``."""
    y = series(n, seed)
    t = np.arange(1, n + 1)
    frames = []
    for rho in rhos:
        biased, corrected = ema(y, rho)
        frames.append(
            pd.DataFrame({"rho": rho, "t": t, "y": y, "ema": biased, "ema_corrected": corrected})
        )
    return pd.concat(frames, ignore_index=True)


def figure(data):
    """Two panels sharing the y axis: the EMAs without (left) and with (right) bias correction,
    one line per rho over the data points."""
    fig, axes = figures.new_figure(1, 2, width=9.0, height=3.7, sharey=True)
    first = data[data["rho"] == data["rho"].iloc[0]]
    rhos = list(dict.fromkeys(data["rho"]))
    for ax, column, title in (
        (axes[0, 0], "ema", "without bias correction: $S_t$"),
        (axes[0, 1], "ema_corrected", "with bias correction: $S_t / (1-\\rho^t)$"),
    ):
        ax.scatter(first["t"], first["y"], s=5, color="0.6", label="data $y_t$")
        for rho in rhos:
            rows = data[data["rho"] == rho]
            ax.plot(
                rows["t"], rows[column], color=figures.color(rho, rhos), label=f"\u03c1 = {rho:g}"
            )
        ax.set_title(title)
        ax.set_xlabel("t")
    axes[0, 0].set_ylabel("value")
    figures.legend_outside(fig, axes[0, 0], "outside lower center", ncols=len(rhos) + 1)
    return fig
