"""The throughput table of a report and of ``optbench compare``: :func:`normalize` brings a
table of :func:`optbench.throughput.measure` to these columns, one row per kernel,
implementation, dtype, size, layout and thread count, steady-state ("hot") timings only:

=====================  ====================================================================
kind                   ``optimizer`` or ``norm``
kernel                 optimizer name (registry) or normalization layer
implementation         ``optbench`` or a peer (``numpy reference``, ``numpy in-place``,
                       ``torch for-loop``, ``torch foreach``, ``torch fused``, ``torch``)
dtype, n_elements      parameter (or input) dtype and element count
layout                 ``flat`` (one array), ``100 arrays``, or a norm input's shape
threads                Numba (and torch) threads
seconds                median seconds per step (per forward + backward for ``norm``)
seconds_q25, _q75      its interquartile range over the timing rounds
repeats                timing rounds
gb_per_s               bytes the step must move / seconds / 1e9
elements_per_s         n_elements / seconds
roofline_gb_per_s      the rate of a STREAM-style kernel of the row's access pattern (arrays
                       read, updated, written) at its size: the median over the row's timing
                       rounds of the better of its serial and parallel batches
=====================  ====================================================================
"""

import pandas as pd

KEYS = ("kind", "kernel", "implementation", "dtype", "n_elements", "layout", "threads")
# optbench.throughput.measure's columns -> this module's
RENAMED = {
    "case": "kernel",
    "n": "n_elements",
    "time_s": "seconds",
    "time_p25_s": "seconds_q25",
    "time_p75_s": "seconds_q75",
    "rounds": "repeats",
    "gbps": "gb_per_s",
    "roofline_gbps": "roofline_gb_per_s",
}
COLUMNS = (
    *KEYS,
    "seconds",
    "seconds_q25",
    "seconds_q75",
    "repeats",
    "gb_per_s",
    "elements_per_s",
    "roofline_gb_per_s",
)


def normalize(frame):
    """``frame`` (a table of :func:`optbench.throughput.measure`, or one already in this
    module's columns) with exactly :data:`COLUMNS`: optimizer and norm rows of steady-state
    timing (``mode == "hot"``), renamed."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if "time_s" in frame.columns:
        if "mode" in frame.columns:
            frame = frame[frame["mode"] == "hot"]
        frame = frame[frame["kind"].isin(["optimizer", "norm"])].rename(columns=RENAMED)
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"throughput table lacks column(s) {', '.join(missing)}")
    return frame[list(COLUMNS)].reset_index(drop=True)
