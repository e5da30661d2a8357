"""asv's result files as one pandas table, and each benchmark drawn across commits with its
regressions marked.

asv (0.6, result file format 2) writes ``<results_dir>/<machine>/<commit[:8]>-<env>.json``,
one file per commit and environment, beside a ``machine.json``; ``<results_dir>/benchmarks.json``
names each benchmark's parameters and unit. A result file holds, per benchmark, a list of
columns named by its ``result_columns``: ``result`` (one value per combination of the
parameter lists, in ``itertools.product`` order, ``None`` for a failed or skipped one),
``params`` (the parameter lists) and ``stats_ci_99_a``/``stats_ci_99_b`` (the 99% confidence
interval of each value). The files are read directly with :mod:`json`, so a report needs no
asv installation to show them.

Regression rule (:func:`mark_changes`): along the commits of one series (machine, environment,
benchmark, parameters) ordered by commit date, a time or peak memory is a regression when it
exceeds the previous commit's value by more than ``factor`` (default 1.1, asv's own default)
*and* its 99% confidence interval lies wholly above the previous one's (where both are
known); an improvement is the mirror image. A track (``track_*``: a ratio, a loss) has no
better direction: it is marked ``changed`` when it moves by more than the factor either way.
"""

import itertools
import json
import os

import numpy as np
import pandas as pd

from . import figures

RESULT_FORMAT = 2
COLUMNS = [
    "machine",
    "env",
    "commit",
    "date",
    "benchmark",
    "params",
    "value",
    "ci_low",
    "ci_high",
    "unit",
    "type",
]


def read_results(results_dir):
    """Every result in ``results_dir`` as a tidy table, one row per (result file, benchmark,
    parameter combination) with the columns of :data:`COLUMNS`; ``params`` is the text
    ``"name=value, ..."`` (empty for an unparametrized benchmark), ``date`` the commit date.

    A missing directory gives an empty table; files of another format version are skipped.
    """
    if not isinstance(results_dir, str | os.PathLike):
        raise TypeError(f"results_dir must be a path, got {type(results_dir).__name__}")
    rows = []
    if os.path.isdir(results_dir):
        benchmarks = _load(os.path.join(results_dir, "benchmarks.json")) or {}
        for machine in sorted(os.listdir(results_dir)):
            machine_dir = os.path.join(results_dir, machine)
            if not os.path.isfile(os.path.join(machine_dir, "machine.json")):
                continue
            for filename in sorted(os.listdir(machine_dir)):
                if filename.endswith(".json") and filename != "machine.json":
                    data = _load(os.path.join(machine_dir, filename))
                    if data is not None and data.get("version") == RESULT_FORMAT:
                        rows.extend(_rows(machine, data, benchmarks))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"], unit="ms")
    for column in ("value", "ci_low", "ci_high"):
        frame[column] = frame[column].astype(float)
    return frame.sort_values(["benchmark", "params", "machine", "env", "date"], ignore_index=True)


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _rows(machine, data, benchmarks):
    columns = data.get("result_columns", [])
    for benchmark, values in data.get("results", {}).items():
        record = dict(zip(columns, values, strict=False))
        results = record.get("result")
        if results is None:
            continue
        param_lists = record.get("params") or []
        info = benchmarks.get(benchmark, {})
        names = info.get("param_names") or [f"p{i}" for i in range(len(param_lists))]
        combos = list(itertools.product(*param_lists)) if param_lists else [()]
        ci_low = record.get("stats_ci_99_a") or [None] * len(combos)
        ci_high = record.get("stats_ci_99_b") or [None] * len(combos)
        for i, combo in enumerate(combos):
            if i >= len(results) or results[i] is None:
                continue
            yield (
                machine,
                data.get("env_name", ""),
                data.get("commit_hash", ""),
                data.get("date"),
                benchmark,
                ", ".join(f"{name}={value}" for name, value in zip(names, combo, strict=False)),
                _number(results[i]),
                _number(ci_low[i] if i < len(ci_low) else None),
                _number(ci_high[i] if i < len(ci_high) else None),
                info.get("unit", ""),
                info.get("type") or benchmark.rsplit(".", 1)[-1].split("_", 1)[0],
            )


def _number(value):
    return np.nan if value is None else float(value)


def mark_changes(history, *, factor=1.1):
    """``history`` (from :func:`read_results`) with two more columns: ``ratio``, each value over
    the previous commit's value in the same series (NaN for a series' first commit), and
    ``change``: ``"regression"``, ``"improvement"``, ``"changed"`` (tracks) or ``""`` by the
    rule in the module docstring."""
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    keys = ["machine", "env", "benchmark", "params"]
    frame = history.sort_values([*keys, "date"], ignore_index=True)
    grouped = frame.groupby(keys, sort=False)
    previous = grouped["value"].shift(1)
    previous_low = grouped["ci_low"].shift(1)
    previous_high = grouped["ci_high"].shift(1)
    frame["ratio"] = frame["value"] / previous
    # an unknown interval never vetoes a change: the factor alone decides
    above = ~(frame["ci_low"] <= previous_high)
    below = ~(frame["ci_high"] >= previous_low)
    timed = frame["type"].isin(["time", "peakmem", "memory"])
    up = (frame["ratio"] > factor) & above
    down = (frame["ratio"] < 1 / factor) & below
    frame["change"] = np.select(
        [timed & up, timed & down, ~timed & (up | down)],
        ["regression", "improvement", "changed"],
        default="",
    )
    return frame


_MARKERS = (
    ("regression", "^", "tab:red"),
    ("improvement", "v", "tab:green"),
    ("changed", "D", "tab:purple"),
)


def _relative(rows):
    """Each value over the first value of its series (machine, env, params)."""
    keys = ["machine", "env", "params"]
    return rows["value"] / rows.groupby(keys)["value"].transform("first")


def figure(marked, *, max_panels=24, max_lines=8):
    """One panel per benchmark (at most ``max_panels``, the ones with the most regressions
    first) against commit date, each value relative to its series' first: one line per
    parameter combination, or, for a benchmark of more than ``max_lines`` combinations, their
    geometric mean. Regressions are red triangles, improvements green ones, changed tracks
    purple diamonds (on the mean line: a commit where any combination changed)."""
    counts = (
        marked.assign(reg=marked["change"] == "regression")
        .groupby("benchmark")["reg"]
        .sum()
        .sort_values(ascending=False, kind="stable")
    )
    names = list(counts.index[:max_panels])
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = figures.new_figure(nrows, ncols, width=3.4 * ncols, height=2.4 * nrows + 0.4)
    for ax, name in zip(axes.flat, names, strict=False):
        rows = marked[marked["benchmark"] == name].sort_values("date")
        rows = rows.assign(relative=_relative(rows))
        series = rows.groupby(["machine", "env", "params"], sort=True)
        if series.ngroups <= max_lines:
            lines = [
                (params or f"{machine} {env}", line) for (machine, env, params), line in series
            ]
        else:
            by_commit = rows.groupby(["date", "commit"], sort=True)
            mean = by_commit["relative"].apply(lambda r: float(np.exp(np.log(r).mean())))
            changes = by_commit["change"].agg(
                lambda c: next((m for m, _, _ in _MARKERS if (c == m).any()), "")
            )
            line = pd.DataFrame({"relative": mean, "change": changes}).reset_index()
            lines = [(f"geometric mean of {series.ngroups} combinations", line)]
        for i, (label, line) in enumerate(lines):
            colour = figures.color(i, range(len(lines)))
            ax.plot(
                line["date"], line["relative"], marker=".", markersize=3, color=colour, label=label
            )
            for change, marker, mark_colour in _MARKERS:
                hit = line["change"] == change
                ax.scatter(
                    line["date"][hit],
                    line["relative"][hit],
                    marker=marker,
                    color=mark_colour,
                    zorder=3,
                )
        ax.set_title(".".join(name.split(".")[-2:]), fontsize=8)
        ax.legend(loc="best", fontsize=5)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_ylabel("relative to first", fontsize=7)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    return fig
