"""Compare two result sets: per measured item, the ratio B/A of medians with its spread, and
whether the change is beyond noise.

Both sides are first brought to one schema, the *measurement table*: one row per (``item``,
``metric``) with ``median``, ``q25``, ``q75`` (the interquartile range over replicates:
seeds for convergence, timing repeats for throughput) and ``n`` (replicates). A report writes
its own as ``data/measurements.csv``; :func:`load` also reads a run log or a sweep's results
(CSV or Parquet) and a throughput table, and converts them with :func:`measurements`.

Ratio and spread: ``ratio = median_B / median_A``; its spread is the interval
``[q25_B / q75_A, q75_B / q25_A]``, the range of ratios between the two interquartile
ranges. A change is marked when ``|ratio - 1| > threshold`` *and* the two interquartile ranges
do not overlap (a single replicate has an empty range, so for it the threshold alone decides).
"worse" means larger for costs and losses, smaller for metrics in :data:`HIGHER_IS_BETTER`.
"""

import os

import numpy as np
import pandas as pd

from .. import sweep, tables
from . import speed_table

MEASUREMENT_COLUMNS = ["item", "metric", "median", "q25", "q75", "n"]
HIGHER_IS_BETTER = frozenset(
    {"test_accuracy", "gb_per_s", "elements_per_s", "roofline_fraction", "speedup"}
)
DEFAULT_THRESHOLD = 0.05

# columns that identify a convergence run (all that exist are used), in display order
RUN_KEYS = ("problem", "problem_options", "optimizer", "optimizer_options", "lr", "batch_size")
RUN_METRICS = ("train_loss", "test_loss", "test_accuracy")


def summarize(samples, *, keys=("item", "metric"), value="value"):
    """Median, quartiles and count of ``value`` per ``keys`` in a long table of replicates."""
    keys = list(keys)
    grouped = samples.groupby(keys, sort=True)[value]
    out = grouped.quantile([0.25, 0.5, 0.75]).unstack()
    out.columns = ["q25", "median", "q75"]
    out["n"] = grouped.count()
    return out.reset_index()[[*keys, "median", "q25", "q75", "n"]]


def run_measurements(log):
    """A run log (one row per logged step, the runner's columns) as a measurement table: for
    each run configuration (:data:`RUN_KEYS` present in the log) and metric of
    :data:`RUN_METRICS`, the value at each seed's last logged step, summarized over seeds;
    plus ``wall_seconds`` (the run's total wall time)."""
    keys = [key for key in RUN_KEYS if key in log.columns]
    if not {"problem", "optimizer", "seed", "step"} <= set(log.columns):
        raise ValueError("a run log needs the columns problem, optimizer, seed and step")
    last = log.loc[log.groupby([*keys, "seed"], sort=False, dropna=False)["step"].idxmax()]
    metrics = [m for m in (*RUN_METRICS, "wall_time") if m in log.columns]
    long = last.melt(id_vars=[*keys, "seed"], value_vars=metrics, var_name="metric")
    long = long.dropna(subset=["value"])
    long["metric"] = long["metric"].replace({"wall_time": "wall_seconds"})
    long["item"] = _item(long, keys)
    return summarize(long)


def throughput_measurements(frame):
    """A throughput table (see :func:`optbench.report.speed_table.normalize`) as a measurement
    table of ``seconds_per_step`` per (kernel, implementation, dtype, size, threads)."""
    table = speed_table.normalize(frame)
    keys = [key for key in speed_table.KEYS if key in table.columns]
    out = pd.DataFrame(
        {
            "item": _item(table, keys),
            "metric": "seconds_per_step",
            "median": table["seconds"],
            "q25": table["seconds_q25"],
            "q75": table["seconds_q75"],
            "n": table["repeats"],
        }
    )
    return out.sort_values(["item", "metric"], ignore_index=True)


def _item(frame, keys):
    """``"key=value key=value ..."`` per row; empty option sets (``{}``) are left out."""
    texts = frame[list(keys)].astype(str)
    return np.array(
        [
            " ".join(
                f"{key}={value}" for key, value in zip(keys, row, strict=True) if value != "{}"
            )
            for row in texts.itertuples(index=False)
        ],
        dtype=object,
    )


def _kind(columns):
    """Which known result table has these columns: a measurement table, a run log (``step``
    and ``train_loss``), a throughput table (``seconds``), or None."""
    columns = set(columns)
    if set(MEASUREMENT_COLUMNS) <= columns:
        return "measurements"
    if {"step", "train_loss"} <= columns:
        return "run log"
    if columns & {"seconds", "time_s", "seconds_median"}:
        return "throughput"
    return None


def measurements(frame):
    """Any known result table (see :func:`_kind`) as a measurement table."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    kind = _kind(frame.columns)
    if kind == "measurements":
        return frame[MEASUREMENT_COLUMNS].copy()
    if kind == "run log":
        return run_measurements(frame)
    if kind == "throughput":
        return throughput_measurements(frame)
    raise ValueError(
        "not a result table this tool knows: expected a measurement table "
        f"({', '.join(MEASUREMENT_COLUMNS)}), a run log or a throughput table; "
        f"got columns {', '.join(map(str, frame.columns))}"
    )


# --------------------------------------------------------------------------------------------
# result sets on disk
# --------------------------------------------------------------------------------------------
def _is_table(name):
    return name.endswith(tables.SUFFIXES) and not name.startswith(".")


def _sweep_groups(root, files, directories):
    """The cells of each sweep in ``root`` that has no table yet, as one group each (a sweep
    with a table, ``results.parquet`` beside ``cells/`` or ``T.parquet`` beside ``T.cells/``, is
    that table); takes every cells directory out of ``directories``, out of the walk."""
    groups = []
    for cells in [d for d in directories if d == "cells" or d.endswith(".cells")]:
        directories.remove(cells)
        if cells == "cells":
            names = [sweep.TABLE_NAME]
        else:
            names = [cells.removesuffix(".cells") + suffix for suffix in tables.SUFFIXES]
        if any(name in files for name in names):
            continue
        cell_dir = os.path.join(root, cells)
        group = [os.path.join(cell_dir, n) for n in sorted(os.listdir(cell_dir)) if _is_table(n)]
        if group:
            groups.append(group)
    return groups


def _groups(path):
    """(groups, walked): the table files of the result set at ``path`` in groups read as one
    table each (see :func:`load`), and whether they were found by walking a directory."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"result set {path!r} does not exist")
    if os.path.isfile(path):
        return [[path]], False
    own = os.path.join(path, "data", "measurements.csv")
    if os.path.isfile(own):
        return [[own]], False
    groups = []
    for root, directories, files in os.walk(path):
        directories.sort()
        groups += _sweep_groups(root, files, directories)
        groups += [[os.path.join(root, name)] for name in sorted(files) if _is_table(name)]
    return groups, True


def sources(path):
    """Every table file that :func:`load` reads for the result set at ``path``."""
    return [file for group in _groups(path)[0] for file in group]


def _describe(group):
    return group[0] if len(group) == 1 else f"the cells in {os.path.dirname(group[0])}"


def _read(group):
    """The files of ``group`` as one table; ``ValueError`` naming a file that is unreadable."""
    frames = []
    for path in group:
        try:
            frames.append(tables.read_table(path))
        except (OSError, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"{path}: not readable as a table ({reason})") from None
    return pd.concat(frames, ignore_index=True)


def load(path):
    """The measurement table of the result set at ``path``.

    ``path`` is one table file; a report directory (its ``data/measurements.csv``); or any
    other directory, whose tables in it and below that are known result tables are read
    (others, such as a figure's data, are skipped). A sweep's results are its table
    (``results.parquet``, or ``T.parquet``/``T.csv`` beside ``T.cells/``), or its cells, read
    as one table, if it has no table yet; never both. An item measured in two tables is an
    error naming both; so is a table with no rows, or one that cannot be read.
    """
    groups, walked = _groups(path)
    found, origin = [], {}
    for group in groups:
        frame = _read(group)
        if walked and _kind(frame.columns) is None:
            continue
        if frame.empty:
            raise ValueError(f"{_describe(group)}: the table has no rows")
        try:
            table = measurements(frame)
        except ValueError as error:
            raise ValueError(f"{_describe(group)}: {error}") from None
        for key in table[["item", "metric"]].itertuples(index=False):
            if origin.get(key, group) is not group:
                raise ValueError(
                    f"{key[0]} ({key[1]}) is measured in both {_describe(origin[key])} and "
                    f"{_describe(group)}; compare one of them"
                )
            origin[key] = group
        found.append(table)
    if not found:
        raise ValueError(f"result set {os.fspath(path)!r} holds no result table this tool knows")
    return pd.concat(found, ignore_index=True)


def compare(a, b, *, threshold=DEFAULT_THRESHOLD):
    """Ratios B/A of two measurement tables, matched on (``item``, ``metric``).

    Returns one row per item measured in both: the two medians, ``ratio``, ``ratio_low``,
    ``ratio_high`` (see the module docstring), ``n_a``, ``n_b`` and ``change`` (``"worse"``,
    ``"better"`` or ``""``). Items only one side measured are left out (see
    :func:`unmatched`).
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    a, b = _degenerate_ranges(measurements(a)), _degenerate_ranges(measurements(b))
    both = a.merge(b, on=["item", "metric"], suffixes=("_a", "_b"), how="inner")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = both["median_b"] / both["median_a"]
        low = both["q25_b"] / both["q75_a"]
        high = both["q75_b"] / both["q25_a"]
    separated = (both["q25_b"] > both["q75_a"]) | (both["q75_b"] < both["q25_a"])
    beyond = (ratio - 1).abs() > threshold
    up = ratio > 1
    higher_better = both["metric"].isin(HIGHER_IS_BETTER)
    change = np.where(separated & beyond, np.where(up ^ higher_better, "worse", "better"), "")
    out = pd.DataFrame(
        {
            "item": both["item"],
            "metric": both["metric"],
            "median_a": both["median_a"],
            "median_b": both["median_b"],
            "ratio": ratio,
            "ratio_low": low,
            "ratio_high": high,
            "n_a": both["n_a"],
            "n_b": both["n_b"],
            "change": change,
        }
    )
    return out.sort_values(["metric", "item"], ignore_index=True)


def _degenerate_ranges(table):
    """Unknown quartiles (NaN) become the median: an empty range."""
    return table.assign(
        q25=table["q25"].fillna(table["median"]), q75=table["q75"].fillna(table["median"])
    )


def unmatched(a, b):
    """(item, metric, side) rows measured on one side only."""
    a, b = measurements(a), measurements(b)
    keys = ["item", "metric"]
    merged = a[keys].merge(b[keys], on=keys, how="outer", indicator=True)
    merged = merged[merged["_merge"] != "both"]
    side = merged["_merge"].map({"left_only": "A only", "right_only": "B only"}).astype(str)
    return merged[keys].assign(side=side.to_numpy()).reset_index(drop=True)
