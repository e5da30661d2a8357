"""Compare two commits with asv and fail on regressions: the engine of ``optbench regress``.

A comparison::

    comparison = regress.compare_commits(".", "main", "HEAD", regress.Options())
    print(regress.format_table(comparison.table))
    sys.exit(1 if comparison.failed else 0)

How it runs
-----------
1. BASE and HEAD are resolved to full hashes (a shallow clone lacks the history: fetch all of
   it, ``actions/checkout`` with ``fetch-depth: 0``).
2. Each commit's tree is exported with ``git archive`` into ``<workdir>/trees/<hash>``; the
   repository's working tree, index and ``.git`` are not touched. The export is kept between
   comparisons, and with it Numba's on-disk cache of that commit's kernels.
3. ``asv run`` runs each commit's own suite (its ``asv.conf.json`` and ``benchmarks/``) in an
   existing Python (``-E existing:PYTHON``: no environment is built; ``asv continuous`` cannot
   do that) with ``ASV_PYTHONPATH`` set to the exported tree, so the benchmarks import that
   commit's optbench and not the installed one, and with ``--set-commit-hash`` so that the
   results are saved under the commit.
4. Rounds alternate the order: BASE, HEAD | HEAD, BASE | BASE, HEAD ..., so that a drift of the
   machine's speed during the comparison falls on both sides alike. In each round asv runs
   every benchmark of a commit in ``Options.processes`` separate processes, one after the
   other over the whole selection (asv's ``rounds`` attribute, ``-a rounds=2``), each taking
   asv's usual repeats. Deterministic tracks (``Options.deterministic``, the convergence
   suite) run in the first round only.
5. Every round's result files are read (asv's result format, version 2) and each benchmark x
   parameter combination is compared over the rounds:

   * timings (``time_*``, and ``track_*`` in seconds) and peak memory (``peakmem_*``): the
     value of a round is the fastest of asv's samples in it, over its processes, and the
     value of a commit the fastest of its rounds (``Options.statistic = "min"``: other
     processes only ever add time, so the minimum is the steadiest estimate on a loaded
     machine; ``"median"``: asv's median per round, the median over rounds). The comparison
     is the ratio ``r = head / base`` of the commits' values with the exact one-sided
     Mann-Whitney p-value of the per-round values. *regressed* when ``r > factor`` and
     ``p <= alpha``; *improved* when ``r < 1 / factor`` and the opposite test passes;
     *inconclusive* when ``r`` is beyond the factor but the rounds overlap too much to tell.
     With ``R`` rounds per side the smallest p-value is ``1 / C(2R, R)`` (0.004 for the
     default R = 5; alpha = 0.01 then allows one pair of rounds out of 25 in the wrong
     order), so a slow round cannot flag a benchmark on its own.
   * deterministic tracks: *changed* when ``|head - base| > tolerance * |base|`` (or one side is
     NaN/inf and the other not): seeded runs give the same numbers, so any move is real.
   * instruction counts (``Options.counts``, ``benchmarks/instructions.py``): run in the
     first round only (a count is the same in every process); *regressed* when
     ``r > 1 + count_threshold`` (1% by default), *improved* when ``r < 1 - count_threshold``.
     ``optbench regress --instructions`` compares these alone (``Options.concurrent``: BASE
     and HEAD counted at the same time, one Valgrind process each): the mode that sees a
     change of a few percent on a loaded machine, blind to what instructions do not show
     (memory bandwidth, caches, threads).
   * other tracks (ratios to a STREAM kernel measured in the same process): shown, never fail.
   * *failed*: it ran at BASE and fails at HEAD.

``asv compare`` is not used: it compares two single results and exits 0 even when it prints
regressions. A comparison fails (:attr:`Comparison.failed`) on *regressed*, *changed* and
*failed*.

The defaults (measured)
-----------------------
On the shared 2-core development machine, with another job timing kernels beside it, the
time of a benchmark process is often bimodal: a whole process (or a whole round, when the
other job runs) is 1.3 to 1.6 times slower than the next. Identical code then shows per-row
ratios of medians from 0.6 to 1.6, and with hundreds of benchmarks some row has its slow
processes all on one side: the former defaults (one process per round, the median of rounds,
factor 1.2) flagged 1 of 9 comparisons of identical trees, and resampling the recorded
processes put it at 78% for the 325 timings of the pull-request selection. The defaults cut
that down three ways: two processes per round (a round is slow only if both are), the
fastest round rather than the median (one fast round suffices), and factor 1.5. The same
resampling flags none of 136,000 simulated benchmark comparisons of identical code with these
defaults, and flags an Adam kernel doing its update twice (1.5 to 2.2 times slower from 1e4
to 1e7 elements) 94 to 100% of the time per benchmark. ``benchmarks/README.md``
("Measured") has the commands and numbers. On a quiet machine, or
to see smaller changes, lower ``--factor`` (1.2) and raise ``--rounds``.
"""

import concurrent.futures
import functools
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FAILING = ("regressed", "changed", "failed")
VERDICT_ORDER = (
    "failed",
    "regressed",
    "changed",
    "inconclusive",
    "accepted",
    "improved",
    "fixed",
    "new",
    "gone",
    "broken",
    "unchanged",
    "info",
)
EXPORT_MARKER = ".optbench-export-complete"
STATISTICS = ("min", "median")


class RegressError(RuntimeError):
    """The comparison could not be made: git or asv failed (the message says where)."""


@dataclass(frozen=True)
class Options:
    """How to compare.

    factor : a timing or peak memory fails when HEAD's value exceeds BASE's by this factor.
    alpha : the one-sided Mann-Whitney p-value (over rounds) that a slowdown must reach.
    rounds : rounds per commit (BASE and HEAD each run once per round, in alternating order).
    processes : benchmark processes per commit and round (asv's ``rounds`` attribute).
    quick : asv ``--quick``: one sample per benchmark, one process, per round.
    bench : asv ``--bench`` regular expressions (any matches); empty: every benchmark.
    tolerance : relative tolerance of deterministic tracks.
    statistic : the value of a timing or peak memory: ``"min"``, the fastest of asv's samples
        in a round and the fastest round of a commit (interference from other processes only
        ever adds time), or ``"median"``, asv's median in a round and the median of rounds.
    deterministic : regular expression (searched in the benchmark name) of the tracks that
        are deterministic: run once, compared with ``tolerance``.
    counts : regular expression of the instruction counts (``benchmarks/instructions.py``):
        run once; *regressed* when HEAD's count exceeds BASE's by more than
        ``count_threshold`` (a fraction), *improved* when it falls short by as much.
    count_threshold : see ``counts``.
    accept : regular expressions (searched in ``name(params)``) of the benchmarks whose
        regression or change is expected (a slower but more accurate kernel): their verdict is
        *accepted*, which does not fail.
    concurrent : compare only the benchmarks made once (:func:`once_pattern`: instruction
        counts, deterministic tracks), running BASE and HEAD at the same time, one process
        each: what they measure does not depend on the machine's load, and the comparison
        takes half the time on two cores. ``optbench regress --instructions`` sets it.
    python : the interpreter that runs the benchmarks (needs optbench's dependencies and
        asv_runner); None: this one.
    machine : asv machine name (an entry of ``~/.asv-machine.json``); None: asv's default,
        created with ``asv machine --yes`` when missing.
    workdir : where exported trees and the run's files go; None: ``<repo>/.asv/regress``.
    keep : keep the run directory (asv configurations, logs, per-round results).
    publish : copy the first round's results into the repository's asv results directory and
        run ``asv publish`` (HTML under the repository's ``html_dir``).
    show_stderr : pass asv's ``--show-stderr`` (the benchmarks' stderr in the logs).
    """

    factor: float = 1.5
    alpha: float = 0.01
    rounds: int = 5
    processes: int = 2
    quick: bool = False
    bench: tuple[str, ...] = ()
    tolerance: float = 1e-3
    statistic: str = "min"
    deterministic: str = r"^convergence\."
    counts: str = r"^instructions\..*track_kernel_instructions"
    count_threshold: float = 0.01
    accept: tuple[str, ...] = ()
    concurrent: bool = False
    python: str | None = None
    machine: str | None = None
    workdir: str | None = None
    keep: bool = False
    publish: bool = False
    show_stderr: bool = False


@dataclass
class Comparison:
    """The outcome: ``table`` (one row per benchmark x parameters, see :func:`compare`), the
    raw per-round ``measurements`` and the two full hashes."""

    base: str
    head: str
    table: pd.DataFrame
    measurements: pd.DataFrame
    seconds: float = 0.0
    run_dir: str | None = None
    rounds: list = field(default_factory=list)

    @property
    def failed(self):
        return bool(self.table["verdict"].isin(FAILING).any())


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def check_options(options):
    """Raise ``ValueError`` naming the first bad field of ``options``."""
    if not (math.isfinite(options.factor) and options.factor > 1):
        raise ValueError(f"factor must be a finite number > 1, got {options.factor!r}")
    if not 0 < options.alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {options.alpha!r}")
    for name in ("rounds", "processes"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if options.processes < 1:
        raise ValueError(f"processes must be >= 1, got {options.processes!r}")
    if minimum_p_value(options.rounds, options.rounds) > options.alpha:
        needed = next(r for r in itertools.count(1) if minimum_p_value(r, r) <= options.alpha)
        raise ValueError(
            f"rounds={options.rounds} cannot reach alpha={options.alpha}: the smallest "
            f"p-value of {options.rounds} against {options.rounds} rounds is "
            f"{minimum_p_value(options.rounds, options.rounds):.3g}; use rounds >= {needed}"
        )
    if not (math.isfinite(options.tolerance) and options.tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {options.tolerance!r}")
    if options.statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {options.statistic!r}")
    if not (math.isfinite(options.count_threshold) and 0 < options.count_threshold < 1):
        raise ValueError(
            f"count_threshold must be a number in (0, 1), got {options.count_threshold!r}"
        )
    for name, pattern in (
        [
            ("deterministic", options.deterministic),
            ("counts", options.counts),
        ]
        + [("bench", b) for b in options.bench]
        + [("accept", a) for a in options.accept]
    ):
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{name} {pattern!r} is not a regular expression: {error}") from None
    if options.python is not None and shutil.which(options.python) is None:
        raise ValueError(f"python {options.python!r} is not an executable")


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
@functools.cache
def _u_counts(m, n):
    """Number of orderings of ``m`` x's and ``n`` y's for each value ``u`` = 0..m*n of the
    Mann-Whitney count of (x, y) pairs with y before x (no ties)."""
    if m == 0 or n == 0:
        return (1,)
    with_x_last = _u_counts(m - 1, n)  # the largest value is an x: n more pairs
    with_y_last = _u_counts(m, n - 1)
    counts = [0] * (m * n + 1)
    for u, count in enumerate(with_x_last):
        counts[u + n] += count
    for u, count in enumerate(with_y_last):
        counts[u] += count
    return tuple(counts)


def minimum_p_value(m, n):
    """The smallest one-sided p-value of ``m`` against ``n`` values: ``1 / C(m + n, m)``."""
    return 1.0 / math.comb(m + n, m)


def mann_whitney_greater(x, y):
    """Exact one-sided p-value of the Mann-Whitney test that ``y`` tends to exceed ``x``.

    ``U = #{(i, j): y_j < x_i} + #{(i, j): y_j == x_i} / 2`` counts the pairs against the
    alternative; ``p = P(U' <= ceil(U))`` under the null hypothesis that all ``m + n`` values
    are exchangeable (every ordering equally likely, ``C(m + n, m)`` of them). Rounding ties
    up makes the test conservative.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size == 0 or y.size == 0:
        return 1.0
    u = float(np.sum(y[None, :] < x[:, None]) + 0.5 * np.sum(y[None, :] == x[:, None]))
    counts = _u_counts(x.size, y.size)
    return sum(counts[: math.ceil(u) + 1]) / math.comb(x.size + y.size, x.size)


ONCE = r"^instructions\."  # benchmarks whose every value is made in one process: run once


def once_pattern(options):
    """The benchmarks that run in the first round only: the deterministic tracks, the
    instruction counts and the rest of ``benchmarks/instructions.py``."""
    return f"(?:{options.deterministic})|(?:{options.counts})|(?:{ONCE})"


def kind_of(benchmark, benchmark_type, unit, deterministic, counts=None):
    """How a benchmark is compared: ``"count"``, ``"exact"``, ``"time"``, ``"memory"`` or
    ``"info"``."""
    if counts is not None and re.search(counts, benchmark):
        return "count"
    if re.search(deterministic, benchmark):
        return "exact"
    if benchmark_type == "time" or (benchmark_type == "track" and unit == "seconds"):
        return "time"
    if benchmark_type in ("peakmemory", "memory"):
        return "memory"
    return "info"


def commit_value(kind, values, statistic):
    """A commit's value from its per-round ``values``: the fastest round for timings and peak
    memory with ``statistic == "min"``, else the median over rounds."""
    if kind in ("time", "memory") and statistic == "min":
        return float(np.min(values))
    return float(np.median(values))


def _verdict(kind, base, head, base_value, head_value, options):
    """``(verdict, ratio, p_value)`` for one benchmark from its per-round values and each
    commit's value (:func:`commit_value`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = head_value / base_value if base_value != 0 else math.nan
    if head_value == base_value:
        ratio = 1.0
    if kind == "info":
        return "info", ratio, math.nan
    if kind == "count":
        if not (math.isfinite(base_value) and math.isfinite(head_value) and base_value > 0):
            return (
                ("unchanged" if str(base_value) == str(head_value) else "changed"),
                ratio,
                math.nan,
            )
        if ratio > 1 + options.count_threshold:
            return "regressed", ratio, math.nan
        if ratio < 1 - options.count_threshold:
            return "improved", ratio, math.nan
        return "unchanged", ratio, math.nan
    if kind == "exact":
        finite = math.isfinite(base_value), math.isfinite(head_value)
        if finite != (True, True):
            same = finite == (False, False) and (
                str(base_value) == str(head_value)  # both NaN or the same infinity
            )
            return ("unchanged" if same else "changed"), ratio, math.nan
        moved = abs(head_value - base_value) > options.tolerance * abs(base_value)
        return ("changed" if moved else "unchanged"), ratio, math.nan
    p_slower = mann_whitney_greater(base, head)
    p_faster = mann_whitney_greater(head, base)
    if ratio > options.factor and p_slower <= options.alpha:
        return "regressed", ratio, p_slower
    if ratio < 1 / options.factor and p_faster <= options.alpha:
        return "improved", ratio, p_faster
    if ratio > options.factor:
        return "inconclusive", ratio, p_slower
    if ratio < 1 / options.factor:
        return "inconclusive", ratio, p_faster
    return "unchanged", ratio, min(p_slower, p_faster)


def accepted(benchmark, params, expressions):
    """Whether ``benchmark(params)`` matches one of the ``expressions`` (``Options.accept``)."""
    name = f"{benchmark}({params})"
    return any(re.search(expression, name) for expression in expressions)


def compare(measurements, base, head, options):
    """One row per benchmark x parameters from per-round ``measurements``.

    ``measurements`` has columns commit, round, benchmark, params, type, unit, value, failed
    (``value`` NaN where the run failed), and optionally ``best``, the fastest sample of the
    round, used instead of ``value`` with ``options.statistic == "min"``. Returns columns
    benchmark, params, kind, unit, base, head (:func:`commit_value`), ratio (head / base),
    p_value, verdict, base_values, head_values (the per-round values, space-separated),
    sorted failing verdicts first.
    """
    rows = []
    column = "best" if options.statistic == "min" and "best" in measurements else "value"
    for (benchmark, params), group in measurements.groupby(["benchmark", "params"], sort=True):
        sides = {}
        for name, commit in (("base", base), ("head", head)):
            side = group[group["commit"] == commit]
            values = side.loc[~side["failed"], column].to_numpy(float)
            sides[name] = (values, bool(side["failed"].any()) and values.size == 0)
        (base_values, base_failed), (head_values, head_failed) = sides["base"], sides["head"]
        first = group.iloc[0]
        kind = kind_of(
            benchmark, first["type"], first["unit"], options.deterministic, options.counts
        )
        base_value, head_value = (
            commit_value(kind, values, options.statistic) if values.size else math.nan
            for values in (base_values, head_values)
        )
        ratio = p_value = math.nan
        if base_values.size and head_values.size:
            verdict, ratio, p_value = _verdict(
                kind, base_values, head_values, base_value, head_value, options
            )
        elif head_values.size:
            verdict = "fixed" if base_failed else "new"
        elif head_failed:
            verdict = "broken" if base_failed else "failed"
        elif base_values.size or base_failed:
            verdict = "gone"
        else:
            continue
        if verdict in ("regressed", "changed") and accepted(benchmark, params, options.accept):
            verdict = "accepted"
        rows.append(
            {
                "benchmark": benchmark,
                "params": params,
                "kind": kind,
                "unit": first["unit"],
                "base": base_value,
                "head": head_value,
                "ratio": ratio,
                "p_value": p_value,
                "verdict": verdict,
                "base_values": " ".join(f"{v:.6g}" for v in base_values),
                "head_values": " ".join(f"{v:.6g}" for v in head_values),
            }
        )
    columns = ["benchmark", "params", "kind", "unit", "base", "head", "ratio", "p_value"]
    table = pd.DataFrame(rows, columns=[*columns, "verdict", "base_values", "head_values"])
    order = table["verdict"].map({v: i for i, v in enumerate(VERDICT_ORDER)})
    distance = np.abs(np.log(table["ratio"].astype(float).where(table["ratio"] > 0)))
    table = (
        table.assign(_order=order, _distance=-distance.fillna(0.0))
        .sort_values(["_order", "_distance", "benchmark", "params"], kind="stable")
        .drop(columns=["_order", "_distance"])
        .reset_index(drop=True)
    )
    return table


# --------------------------------------------------------------------------------------------
# the readable table
# --------------------------------------------------------------------------------------------
def format_value(value, unit):
    """``value`` with a unit suffix: seconds as s/ms/us/ns, bytes as k/M/G, else 4 digits."""
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else str(value)
    if unit == "seconds":
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value / 1e-9:.3g}ns"
    if unit == "bytes":
        for scale, suffix in ((2**30, "G"), (2**20, "M"), (2**10, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value:.0f}"
    return f"{value:.4g}"


def _digits(kind):
    return 5 if kind == "count" else 3


def format_table(table, *, show_all=False, options=None):
    """A plain-text table of the rows that are not *unchanged* (every row with ``show_all``),
    followed by a one-line count of each verdict."""
    shown = table if show_all else table[~table["verdict"].isin(("unchanged", "info"))]
    lines = []
    if len(shown):
        cells = [("verdict", "ratio", "p", "base", "head", "benchmark")]
        for row in shown.itertuples(index=False):
            name = f"{row.benchmark}({row.params})" if row.params else row.benchmark
            cells.append(
                (
                    row.verdict,
                    "n/a" if math.isnan(row.ratio) else f"{row.ratio:.{_digits(row.kind)}g}",
                    "" if math.isnan(row.p_value) else f"{row.p_value:.2g}",
                    format_value(row.base, row.unit),
                    format_value(row.head, row.unit),
                    name,
                )
            )
        widths = [max(len(cell[i]) for cell in cells) for i in range(5)]
        for cell in cells:
            left = "  ".join(
                text.ljust(width) if i == 0 else text.rjust(width)
                for i, (text, width) in enumerate(zip(cell[:5], widths, strict=True))
            )
            lines.append(f"{left}  {cell[5]}")
    counts = table["verdict"].value_counts()
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if v in counts)
    lines.append(f"{len(table)} benchmarks compared: {summary or 'nothing ran'}")
    if options is not None:
        lines.append(
            f"(factor {options.factor:g}, alpha {options.alpha:g}, {options.rounds} rounds per "
            f"commit, {'quick' if options.quick else f'{options.processes} processes per round'}, "
            f"{options.statistic} statistic, tolerance {options.tolerance:g}, instruction "
            f"counts {options.count_threshold:g})"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# git: commits and exported trees
# --------------------------------------------------------------------------------------------
def _git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=False)


def repository_root(path):
    """The top directory of the git repository holding ``path``, or ``ValueError``."""
    result = _git(path, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise ValueError(f"repo {path!r} is not inside a git repository")
    return result.stdout.strip()


def resolve_commit(repo, name):
    """The full hash of commit ``name`` (a hash, branch, tag, ``HEAD~2``...), or a
    ``ValueError`` naming it (with a hint when the clone is shallow)."""
    if not isinstance(name, str) or not name or name.startswith("-"):
        raise ValueError(f"commit {name!r} is not a commit name")
    result = _git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if result.returncode != 0:
        shallow = _git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
        hint = (
            "; the clone is shallow: fetch the full history (git fetch --unshallow, or "
            "actions/checkout with fetch-depth: 0)"
            if shallow
            else ""
        )
        raise ValueError(f"commit {name!r} is not in the repository {repo}{hint}")
    return result.stdout.strip()


def export_tree(repo, commit, trees_dir):
    """The files of ``commit`` under ``trees_dir/<commit>`` (``git archive``), reused when a
    complete export is already there."""
    target = os.path.join(trees_dir, commit)
    if os.path.exists(os.path.join(target, EXPORT_MARKER)):
        return target
    os.makedirs(trees_dir, exist_ok=True)
    partial = tempfile.mkdtemp(dir=trees_dir, prefix=f".{commit[:12]}-")
    try:
        archive = subprocess.run(
            ["git", "-C", repo, "archive", "--format=tar", commit],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise RegressError(f"git archive {commit[:12]} failed: {archive.stderr.decode()}")
        archive_path = os.path.join(partial, ".archive.tar")
        with open(archive_path, "wb") as handle:
            handle.write(archive.stdout)
        with tarfile.open(archive_path) as tar:
            tar.extractall(partial, filter="data")
        os.remove(archive_path)
        with open(os.path.join(partial, EXPORT_MARKER), "w") as handle:
            handle.write(commit + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------------
# asv
# --------------------------------------------------------------------------------------------
def _load_asv_config(path):
    from asv import util  # asv's reader also accepts the comments asv allows

    return util.load_json(path, js_comments=True)


def write_config(tree, commit, repo, results_dir, run_dir):
    """An asv configuration for ``tree``: its own settings, with the repository, results and
    benchmark directories pointed at the right places. Returns its path."""
    source = os.path.join(tree, "asv.conf.json")
    if not os.path.exists(source):
        raise RegressError(f"commit {commit[:12]} has no asv.conf.json: no benchmark suite")
    conf = _load_asv_config(source)
    conf.update(
        repo=repo,
        dvcs="git",
        benchmark_dir=os.path.join(tree, conf.get("benchmark_dir", "benchmarks")),
        results_dir=results_dir,
        html_dir=os.path.join(run_dir, "html"),
        env_dir=os.path.join(run_dir, "env"),
    )
    path = os.path.join(run_dir, f"asv-{commit[:12]}.json")
    _write_json(path, conf)
    return path


def _write_json(path, data):
    directory = os.path.dirname(path)
    fd, partial = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(partial, path)


def _asv_command():
    import importlib.util

    if importlib.util.find_spec("asv") is None:
        raise ValueError("asv is not installed: pip install 'optbench[bench]'")
    return [sys.executable, "-m", "asv"]


def ensure_machine(conf_path, machine):
    """Make sure asv knows a machine to record results under: with ``machine`` None, create
    asv's default entry (``asv machine --yes``) when ``~/.asv-machine.json`` has none."""
    path = os.path.expanduser("~/.asv-machine.json")
    known = {}
    if os.path.exists(path):
        with open(path) as handle:
            known = {k: v for k, v in json.load(handle).items() if k != "version"}
    if machine is not None:
        if machine not in known:
            raise ValueError(
                f"machine {machine!r} is not in {path}; create it with "
                f"`asv machine --machine {machine}` or leave --machine out"
            )
        return
    import platform

    if platform.node() in known or len(known) == 1:
        return  # asv picks the host's entry, or the only one
    result = subprocess.run(
        [*_asv_command(), "machine", "--yes", "--config", conf_path],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RegressError(f"asv machine --yes failed:\n{result.stdout}{result.stderr}")


def selection(bench, exclude=None):
    """asv ``--bench`` expressions: any of ``bench`` (everything if empty), and, with
    ``exclude``, only names in which ``exclude`` is not found."""
    if exclude is None:
        return list(bench)
    return [f"^(?!.*?(?:{exclude}))(?=.*?(?:{b}))" for b in (bench or [""])]


def run_asv(conf_path, commit, tree, results_dir, python, bench, options, log_path):
    """One ``asv run`` of ``commit``'s suite into ``results_dir``; asv's output goes to
    ``log_path``. Raises :class:`RegressError` when asv itself fails (exit 1); benchmarks that
    fail (asv's exit 2) are recorded as failed in the results."""
    args = [
        *_asv_command(),
        "run",
        "--config",
        conf_path,
        "--environment",
        f"existing:{python}",
        "--set-commit-hash",
        commit,
        "--no-pull",
        "--attribute",
        f"rounds={1 if options.quick else options.processes}",
        "--record-samples",
    ]
    if options.machine:
        args += ["--machine", options.machine]
    if options.quick:
        args.append("--quick")
    if options.show_stderr:
        args.append("--show-stderr")
    for expression in bench:
        args += ["--bench", expression]
    env = dict(os.environ)
    # asv's benchmark script drops PYTHONPATH and puts ASV_PYTHONPATH first on sys.path
    path = os.pathsep.join(filter(None, [tree, env.get("ASV_PYTHONPATH")]))
    env["ASV_PYTHONPATH"] = env["PYTHONPATH"] = path
    with open(log_path, "w") as log:
        log.write(" ".join(args) + "\n")
        log.flush()
        result = subprocess.run(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tree, check=False
        )
    if result.returncode not in (0, 2):
        with open(log_path) as log:
            tail = "".join(log.readlines()[-25:])
        raise RegressError(
            f"asv run for {commit[:12]} failed (exit {result.returncode}); log {log_path}:\n{tail}"
        )


def read_results(results_dir, commits):
    """The measurements of ``commits`` in one asv results directory, one row per benchmark x
    parameter combination: commit, benchmark, params, type, unit, value, failed.

    Parameter combinations asv did not run (not selected, or skipped by the benchmark with
    ``NotImplementedError``) are stored as NaN and left out; failures are stored as null and
    kept with ``failed=True``. ``best`` is the smallest of the samples asv recorded
    (``--record-samples``), ``value`` where there are none.
    """
    with open(os.path.join(results_dir, "benchmarks.json")) as handle:
        benchmarks = json.load(handle)
    rows = []
    for machine in sorted(os.listdir(results_dir)):
        machine_dir = os.path.join(results_dir, machine)
        if not os.path.isdir(machine_dir):
            continue
        for name in sorted(os.listdir(machine_dir)):
            if not name.endswith(".json") or name == "machine.json":
                continue
            with open(os.path.join(machine_dir, name)) as handle:
                data = json.load(handle)
            if data.get("commit_hash") not in commits:
                continue
            if data.get("version") != 2:
                raise RegressError(f"{name}: asv result format {data.get('version')}, not 2")
            rows += _result_rows(data, benchmarks)
    return rows


def _result_rows(data, benchmarks):
    rows = []
    columns = data["result_columns"]
    for benchmark, raw in data["results"].items():
        entry = dict(zip(columns, raw, strict=False))
        params = entry.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        values = entry.get("result")
        if values is None:
            values = [None] * len(combos)
        samples = entry.get("samples") or [None] * len(combos)
        info = benchmarks.get(benchmark, {})
        for combo, value, sample in zip(combos, values, samples, strict=True):
            if value is not None and not isinstance(value, int | float):
                continue
            if value is not None and math.isnan(value):
                continue
            value = math.nan if value is None else float(value)
            rows.append(
                {
                    "commit": data["commit_hash"],
                    "benchmark": benchmark,
                    "params": ", ".join(combo),
                    "type": info.get("type", "track"),
                    "unit": info.get("unit", ""),
                    "value": value,
                    "best": float(min(sample)) if sample else value,
                    "failed": math.isnan(value),
                }
            )
    return rows


# --------------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------------
def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def compare_commits(repo, base, head, options=None, log=_stderr):
    """Run the suites of commits ``base`` and ``head`` of the git repository at ``repo`` and
    compare them (see the module docstring). Returns a :class:`Comparison`.

    Raises ``ValueError`` for bad options, an unknown commit or a missing asv, before anything
    runs; :class:`RegressError` when git or asv fail while running.
    """
    options = Options() if options is None else options
    check_options(options)
    _asv_command()  # asv is installed
    repo = repository_root(repo)
    base_hash, head_hash = resolve_commit(repo, base), resolve_commit(repo, head)
    python = shutil.which(options.python) if options.python else sys.executable
    workdir = os.path.abspath(options.workdir or os.path.join(repo, ".asv", "regress"))
    if base_hash == head_hash:
        raise ValueError(
            f"BASE and HEAD are both {base_hash[:12]}: asv records results by commit, so a "
            "commit cannot be compared with itself (to measure the noise, compare it with a "
            "commit of the same tree: git commit --allow-empty)"
        )
    commits = {"base": base_hash, "head": head_hash}

    started = time.perf_counter()
    os.makedirs(workdir, exist_ok=True)
    run_dir = tempfile.mkdtemp(dir=workdir, prefix="run-")
    trees, configs = {}, {}
    measurements, round_dirs = [], []
    try:
        for side, commit in commits.items():
            trees[side] = export_tree(repo, commit, os.path.join(workdir, "trees"))
        if options.concurrent:
            measurements = _run_concurrently(
                repo, commits, trees, python, options, run_dir, round_dirs, log
            )
        for round_index in range(0 if options.concurrent else options.rounds):
            results_dir = os.path.join(run_dir, f"round-{round_index + 1}")
            os.makedirs(results_dir)
            round_dirs.append(results_dir)
            for side in commits:
                configs[side] = write_config(trees[side], commits[side], repo, results_dir, run_dir)
            if round_index == 0:
                ensure_machine(configs["base"], options.machine)
                bench = selection(options.bench)
            else:
                bench = selection(options.bench, exclude=once_pattern(options))
            order = ("base", "head") if round_index % 2 == 0 else ("head", "base")
            for side in order:
                begin = time.perf_counter()
                log_path = os.path.join(run_dir, f"round-{round_index + 1}-{side}.log")
                run_asv(
                    configs[side],
                    commits[side],
                    trees[side],
                    results_dir,
                    python,
                    bench,
                    options,
                    log_path,
                )
                log(
                    f"round {round_index + 1}/{options.rounds}: {side} {commits[side][:12]} "
                    f"{time.perf_counter() - begin:.0f} s"
                )
            rows = read_results(results_dir, set(commits.values()))
            for row in rows:
                row["round"] = round_index + 1
            measurements += rows
            if round_index == 0 and not any(
                not re.search(once_pattern(options), row["benchmark"]) for row in rows
            ):
                break  # only tracks made once selected: one round is all they need
        frame = pd.DataFrame(
            measurements,
            columns=[
                "commit",
                "round",
                "benchmark",
                "params",
                "type",
                "unit",
                "value",
                "best",
                "failed",
            ],
        )
        table = compare(frame, base_hash, head_hash, options)
        if options.publish:
            publish(repo, round_dirs[: 2 if options.concurrent else 1], log)
    except BaseException:
        log(f"the run's files are kept in {run_dir}")
        raise
    comparison = Comparison(
        base_hash,
        head_hash,
        table,
        frame,
        seconds=time.perf_counter() - started,
        run_dir=run_dir if options.keep else None,
        rounds=round_dirs,
    )
    if not options.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return comparison


def _run_concurrently(repo, commits, trees, python, options, run_dir, round_dirs, log):
    """The once-made benchmarks of both commits, BASE and HEAD at the same time, each into a
    results directory of its own (asv writes ``benchmarks.json`` per directory); the rows of
    both, as round 1."""
    bench = [f"(?=.*?(?:{once_pattern(options)}))(?=.*?(?:{b}))" for b in options.bench or [""]]
    begin = time.perf_counter()
    results_dirs, futures = {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(commits)) as pool:
        for side, commit in commits.items():
            results_dirs[side] = os.path.join(run_dir, f"round-1-{side}")
            os.makedirs(results_dirs[side])
            round_dirs.append(results_dirs[side])
            config = write_config(trees[side], commit, repo, results_dirs[side], run_dir)
            if not futures:
                ensure_machine(config, options.machine)
            log_path = os.path.join(run_dir, f"round-1-{side}.log")
            args = (config, commit, trees[side], results_dirs[side], python, bench, options)
            futures.append(pool.submit(run_asv, *args, log_path))
    for future in futures:
        future.result()  # the first failure, raised
    log(
        f"base {commits['base'][:12]} and head {commits['head'][:12]} at once: "
        f"{time.perf_counter() - begin:.0f} s"
    )
    rows = []
    for side, commit in commits.items():
        rows += read_results(results_dirs[side], {commit})
    for row in rows:
        row["round"] = 1
    return rows


def publish(repo, results_dirs, log=_stderr):
    """Copy the results in ``results_dirs`` into the repository's asv results directory and
    run ``asv publish`` with the repository's ``asv.conf.json`` (HTML in its ``html_dir``)."""
    conf_path = os.path.join(repo, "asv.conf.json")
    conf = _load_asv_config(conf_path)
    target = os.path.join(repo, conf.get("results_dir", "results"))
    for results_dir in results_dirs:
        shutil.copytree(results_dir, target, dirs_exist_ok=True)
    result = subprocess.run(
        [*_asv_command(), "publish", "--config", conf_path, "--no-pull"],
        capture_output=True,
        text=True,
        cwd=repo,
        check=False,
    )
    if result.returncode != 0:
        raise RegressError(f"asv publish failed:\n{result.stdout}{result.stderr}")
    log(f"published to {os.path.join(repo, conf.get('html_dir', 'html'))}")
