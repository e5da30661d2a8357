"""Grids of runs: problems x optimizers x learning rates x batch sizes x seeds.

::

    grid = sweep.Grid(problems=["quadratic", "digits_mlp"], optimizers=["sgd", "adam"],
                      batch_sizes=[32, 128], seeds=[0, 1, 2], epochs=5)
    table = sweep.sweep(grid, out="results/sweep1", jobs=2)

A *cell* is one run of :func:`optbench.runner.run`: its spec is a plain dict, and its id is a
hash of that dict (:func:`cell_id`), so the same cell has the same id in any sweep. The result
table is the cells' records concatenated in grid order (problem, optimizer, lr, batch size,
seed), with a ``cell`` column holding the id.

Files under ``out``: every finished cell is written at once to ``cells/<id>.parquet`` (to a
temporary file in the same directory, then renamed with ``os.replace``, so a cell file is
either complete or absent), and the whole table to ``results.parquet`` when the sweep ends.
If ``out`` ends in ``.parquet`` or ``.csv`` it names the table instead (in that format) and
the cells go to ``<out without suffix>.cells/``. A sweep that is interrupted and run again
with the same ``out`` skips the cells already on disk: nothing is lost or run twice. A cell
file counts only if its ``cell`` column holds the id in its name (:func:`read_cell`); any
other file is run again and replaced.

``out`` is checked before any cell runs (:func:`check_out`), and a sweep holds an exclusive
``flock`` on its cells directory (a tuning campaign on its ``out`` as well) while it writes:
a second sweep on the same ``out`` is refused with :class:`OutputInUse` and touches nothing
of the first one's. The lock ends with its process, so a killed sweep leaves none behind.

Each cell runs single-threaded (BLAS and Numba); parallelism comes from running cells side by
side, in local processes (``jobs > 1``) or on a Dask cluster (``client`` or ``scheduler``).
Where a cell runs does not change its record (``wall_time`` aside). Local workers are started
with ``spawn`` (each imports optbench afresh, about a second), so a script that calls
``sweep(..., jobs=2)`` needs the usual ``if __name__ == "__main__":`` guard; a worker ends as
soon as the sweep's process does, however that ends.
"""

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numba
import pandas as pd
from tqdm import tqdm

from . import runner, schedules, tables, validation

# Bumped whenever a change to the runner changes records: cells of older versions are re-run.
RECORD_VERSION = 1
# The default learning rates of an optimizer: its registry lr times 10**k, half-decade steps
# from a hundredth to ten times it, rounded to 3 significant digits.
DEFAULT_LR_EXPONENTS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)
TABLE_NAME = "results.parquet"


def default_lrs(optimizer):
    """The default learning-rate grid of ``optimizer`` (see ``DEFAULT_LR_EXPONENTS``)."""
    base = runner.resolve_optimizer(optimizer).lr
    return tuple(float(f"{base * 10.0**k:.3g}") for k in DEFAULT_LR_EXPONENTS)


def _names(field_name, values):
    if isinstance(values, str):
        values = [values]
    values = tuple(values)
    if not values:
        raise ValueError(f"{field_name} is empty")
    duplicates = sorted({v for v in values if values.count(v) > 1}, key=str)
    if duplicates:
        raise ValueError(f"{field_name} lists {duplicates[0]!r} twice")
    return values


def _options_by_name(field_name, options, names):
    if not isinstance(options, Mapping):
        raise TypeError(f"{field_name} must map names to option dicts, got {options!r}")
    for name, values in options.items():
        if name not in names:
            raise ValueError(
                f"{field_name} names {name!r}, which is not in the grid ({', '.join(names)})"
            )
        if not isinstance(values, Mapping):
            raise TypeError(f"{field_name}[{name!r}] must be a dict, got {values!r}")
    return {name: dict(options[name]) for name in names if options.get(name)}


@dataclass(frozen=True)
class Grid:
    """A sweep's specification; checked on construction (``ValueError``/``TypeError`` naming
    the field, and listing the valid choices for an unknown name).

    problems, optimizers : names from the registries
    lrs : learning rates for every optimizer, or ``None`` for :func:`default_lrs` of each
    batch_sizes : ints (or ``"full"``); each must fit every problem with data
    seeds : ints in [0, runner.MAX_SEED]
    epochs, steps : the budget of every run, at most one (neither: the runner's default)
    optimizer_options : ``{optimizer: {option: value}}``
    problem_options : ``{problem: {option: value}}``
    schedule, schedule_options : a schedule name and its options (``None``: constant lr)
    log_every, divergence_bound, early_stopping : as in :func:`optbench.runner.run`
    """

    problems: tuple
    optimizers: tuple
    lrs: tuple | None = None
    batch_sizes: tuple = (32,)
    seeds: tuple = (0,)
    epochs: int | None = None
    steps: int | None = None
    optimizer_options: Mapping = field(default_factory=dict)
    problem_options: Mapping = field(default_factory=dict)
    schedule: str | None = None
    schedule_options: Mapping = field(default_factory=dict)
    log_every: int = 1
    divergence_bound: float | None = None
    early_stopping: runner.EarlyStopping | None = None

    def __post_init__(self):
        def set_field(name, value):
            object.__setattr__(self, name, value)

        # canonical names, so that a cell's id does not depend on how a name was spelled
        problems = _names("problems", self.problems)
        set_field("problems", tuple(runner.resolve_problem_class(n).name for n in problems))
        optimizers = _names("optimizers", self.optimizers)
        set_field("optimizers", tuple(runner.resolve_optimizer(n).name for n in optimizers))
        if self.lrs is not None:
            lrs = _names("lrs", self.lrs)
            set_field(
                "lrs",
                tuple(validation.real(f"lrs[{i}]", lr, low_open=True) for i, lr in enumerate(lrs)),
            )
        set_field("batch_sizes", _names("batch_sizes", self.batch_sizes))
        for size in self.batch_sizes:
            if not (size == "full" or (validation.is_integer(size) and size >= 1)):
                raise ValueError(f"batch_sizes must be integers >= 1 or 'full', got {size!r}")
        set_field("batch_sizes", tuple(s if s == "full" else int(s) for s in self.batch_sizes))
        set_field("seeds", _names("seeds", self.seeds))
        set_field("seeds", tuple(runner.check_seed(seed) for seed in self.seeds))
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both")
        for name in ("epochs", "steps"):
            if getattr(self, name) is not None:
                set_field(name, validation.integer(name, getattr(self, name), 1))
        set_field("log_every", validation.integer("log_every", self.log_every, 1))
        set_field(
            "optimizer_options",
            _options_by_name("optimizer_options", self.optimizer_options, self.optimizers),
        )
        for name, options in self.optimizer_options.items():
            runner.check_optimizer_options(name, options)
        set_field(
            "problem_options",
            _options_by_name("problem_options", self.problem_options, self.problems),
        )
        self._check_schedule()
        self._check_run_arguments()

    def _check_schedule(self):
        if not isinstance(self.schedule_options, Mapping):
            raise TypeError(f"schedule_options must be a dict, got {self.schedule_options!r}")
        object.__setattr__(self, "schedule_options", dict(self.schedule_options))
        if self.schedule is None:
            if self.schedule_options:
                raise ValueError("schedule_options need a schedule")
            return
        schedules.make(
            self.schedule, 1.0, total_steps=max(2, self.steps or 100), **self.schedule_options
        )

    def _check_run_arguments(self):
        """Build every problem once (its options and the batch sizes are checked there)."""
        if self.divergence_bound is not None:
            bound = validation.real("divergence_bound", self.divergence_bound, -math.inf)
            object.__setattr__(self, "divergence_bound", bound)
        if self.early_stopping is not None and not isinstance(
            self.early_stopping, runner.EarlyStopping
        ):
            raise TypeError(f"early_stopping must be an EarlyStopping, got {self.early_stopping!r}")
        monitor = None if self.early_stopping is None else self.early_stopping.monitor
        for name in self.problems:
            problem = runner.build_problem(name, self.seeds[0], self.problem_options.get(name))
            for size in self.batch_sizes:
                problem.check_batch_size(None if size == "full" else size)
            if monitor in ("test_loss", "test_accuracy"):
                evaluation = problem.evaluate(problem.initial_params())
                if getattr(evaluation, monitor) is None:
                    raise ValueError(
                        f"early stopping monitors {monitor}, which {name} does not report"
                    )

    def lr_grid(self, optimizer):
        """The learning rates swept for ``optimizer``."""
        return self.lrs if self.lrs is not None else default_lrs(optimizer)

    def cells(self):
        """Every cell's spec, in grid order."""
        early = None if self.early_stopping is None else dataclasses.asdict(self.early_stopping)
        return [
            {
                "problem": problem,
                "optimizer": optimizer,
                "lr": lr,
                "batch_size": size,
                "seed": seed,
                "epochs": self.epochs,
                "steps": self.steps,
                "optimizer_options": self.optimizer_options.get(optimizer, {}),
                "problem_options": self.problem_options.get(problem, {}),
                "schedule": self.schedule,
                "schedule_options": self.schedule_options,
                "log_every": self.log_every,
                "divergence_bound": self.divergence_bound,
                "early_stopping": early,
                "version": RECORD_VERSION,
            }
            for problem in self.problems
            for optimizer in self.optimizers
            for lr in self.lr_grid(optimizer)
            for size in self.batch_sizes
            for seed in self.seeds
        ]


def cell_id(spec):
    """16 hex digits of the SHA-256 of the spec's canonical JSON: equal specs, equal ids."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _single_threaded():
    from threadpoolctl import threadpool_limits

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        numba.set_num_threads(threads)


def run_cell(spec):
    """The record of one cell (run single-threaded), with its ``cell`` id as the last column."""
    options = {k: v for k, v in spec.items() if k not in ("version", "early_stopping")}
    early = spec["early_stopping"]
    size = options.pop("batch_size")
    with _single_threaded():
        frame = runner.run(
            options.pop("optimizer"),
            options.pop("problem"),
            batch_size=None if size == "full" else size,
            early_stopping=None if early is None else runner.EarlyStopping(**early),
            **options,
        )
    frame["cell"] = cell_id(spec)
    return frame


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
class OutputInUse(ValueError):
    """Another sweep or tuning campaign is writing to the same ``out``."""


def _paths(out):
    """(table path, cells directory) of an ``out`` argument."""
    out = Path(out)
    if out.suffix in tables.SUFFIXES:
        return out, out.with_suffix(".cells")
    return out / TABLE_NAME, out / "cells"


def check_out(out, option="out", *, tune=False):
    """Raise ``ValueError`` (naming ``option``) if ``out`` could not hold a sweep's files (see
    :func:`optbench.tables.check_writable`), or, for a tuning campaign (``tune``), if it names
    a table rather than a directory: checked before any cell runs."""
    suffix = Path(out).suffix
    if tune and suffix in tables.SUFFIXES:
        raise ValueError(
            f"{option} {str(out)!r}: tuning writes a directory (search/ and final/), not a "
            "table; give a directory"
        )
    table_path, cell_dir = _paths(out)
    wanted = [(table_path, False), (cell_dir, True)]
    if suffix not in tables.SUFFIXES:
        wanted.insert(0, (out, True))
    try:
        for path, directory in wanted:
            tables.check_writable(path, directory=directory)
    except ValueError as error:
        raise ValueError(f"{option} {error}") from None


@contextlib.contextmanager
def _locked(directory, out):
    """Hold an exclusive ``flock`` on ``directory`` (made if missing) for the block; raise
    :class:`OutputInUse` (naming ``out``) if another process holds it. The kernel drops the
    lock when its holder's process ends, however it ends: a killed sweep leaves no stale lock.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputInUse(
                f"out {str(out)!r} is in use by another sweep; wait for it to end or choose "
                "another out"
            ) from None
        yield
    finally:
        os.close(descriptor)


def read_cell(path, identifier):
    """The record in the cell file ``path`` if it is cell ``identifier``'s (every value of its
    ``cell`` column is ``identifier``), else None: a file that is missing, unreadable, empty
    or holds another cell's record is not that cell's, and the cell is to be run."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError):
        return None
    if len(frame) and "cell" in frame and (frame["cell"] == identifier).all():
        return frame
    return None


# --------------------------------------------------------------------------------------------
# executing cells
# --------------------------------------------------------------------------------------------
def _exit_with_parent():
    """Worker initializer: end this worker as soon as the sweep's process ends, however it
    ends (SIGKILL included), instead of waiting on a pipe that nobody will write to again."""
    parent = multiprocessing.parent_process()

    def watch():
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _executor(jobs, client):
    """``submit(spec) -> future`` and an ``as_completed`` for the chosen backend."""
    if client is not None:
        from distributed import as_completed

        # a key of this sweep alone: a task of an earlier sweep with the same cell, released
        # but not yet forgotten by the scheduler, would cancel a new task under its key
        run = uuid.uuid4().hex[:12]

        def submit(spec):
            return client.submit(run_cell, spec, key=f"optbench-{cell_id(spec)}-{run}")

        return contextlib.nullcontext(), submit, as_completed
    if jobs == 1:
        return contextlib.nullcontext(), None, None
    # spawn, not fork: forking a process whose Numba and BLAS thread pools have started is
    # unsafe
    pool = concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with_parent
    )
    return pool, lambda spec: pool.submit(run_cell, spec), concurrent.futures.as_completed


def _run_cells(cells, out, jobs, client, progress, desc="sweep"):
    """Run the cells not yet under ``out`` (locked meanwhile); return their records in the
    order of ``cells``."""
    if out is None:
        return _execute(cells, None, jobs, client, progress, desc)
    table_path, cell_dir = _paths(out)
    with _locked(cell_dir, out):
        # only the lock's holder writes here: a temporary file is a dead writer's
        for stale in cell_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        table = _execute(cells, cell_dir, jobs, client, progress, desc)
        tables.write_table(table, table_path)
    return table


def _execute(cells, cell_dir, jobs, client, progress, desc):
    """Run the cells without a valid file in ``cell_dir`` (None: all of them), writing each
    there as it finishes; return every cell's record in the order of ``cells``."""
    ids = [cell_id(spec) for spec in cells]
    frames = {}
    if cell_dir is not None:
        for i in set(ids):
            frame = read_cell(cell_dir / f"{i}.parquet", i)
            if frame is not None:
                frames[i] = frame
    pending = {i: spec for i, spec in zip(ids, cells, strict=True) if i not in frames}
    bar = tqdm(
        total=len(set(ids)),
        initial=len(set(ids)) - len(pending),
        desc=desc,
        unit="cell",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def finish(frame):
        identifier = frame["cell"].iat[0]
        if cell_dir is not None:
            tables.write_table(frame, cell_dir / f"{identifier}.parquet")
        frames[identifier] = frame
        bar.update()

    context, submit, as_completed = _executor(jobs, client)
    with bar, context:
        if submit is None:
            for spec in pending.values():
                finish(run_cell(spec))
        else:
            futures = [submit(spec) for spec in pending.values()]
            try:
                for future in as_completed(futures):
                    finish(future.result())
            finally:
                for future in futures:
                    future.cancel()
    return pd.concat([frames[i] for i in ids], ignore_index=True)


def _check_backend(jobs, client, scheduler):
    validation.integer("jobs", jobs, 1)
    if client is not None and scheduler is not None:
        raise ValueError("give a Dask client or a scheduler address, not both")


@contextlib.contextmanager
def _client(client, scheduler):
    if scheduler is None:
        yield client
        return
    from distributed import Client

    try:
        connected = Client(scheduler)
    except OSError as error:  # TimeoutError included: Dask's connect timeout
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"scheduler {scheduler!r}: cannot connect ({reason})") from None
    with connected:
        yield connected


def run_cells(cells, out=None, *, jobs=1, client=None, scheduler=None, progress=True, desc="cells"):
    """Run the cell specs ``cells`` (dicts as :meth:`Grid.cells` makes them) as :func:`sweep`
    runs a grid's, resumable under ``out``; return their records in the order of ``cells``."""
    _check_backend(jobs, client, scheduler)
    if out is not None:
        check_out(out)
    with _client(client, scheduler) as connected:
        return _run_cells(list(cells), out, jobs, connected, progress, desc)


def locked(out):
    """A context holding the exclusive lock of a campaign's directory ``out`` (made if
    missing): a second campaign on it is refused with :class:`OutputInUse`."""
    return _locked(out, out)


def sweep(grid, out=None, jobs=1, client=None, progress=True, *, scheduler=None):
    """Run every cell of ``grid`` and return the table (see the module docstring).

    out : directory (or ``.parquet``/``.csv`` table path) to write to and resume from; None
        keeps everything in memory
    jobs : local worker processes (1: run in this process)
    client : a ``distributed.Client``; its cluster runs the cells (``jobs`` is then ignored)
    scheduler : a Dask scheduler address (``tcp://host:port``) to connect a client to
    progress : show a progress bar (cells done, rate, time left) on stderr
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a sweep.Grid, got {type(grid).__name__}")
    _check_backend(jobs, client, scheduler)
    if out is not None:
        check_out(out)
    with _client(client, scheduler) as connected:
        return _run_cells(grid.cells(), out, jobs, connected, progress)


# --------------------------------------------------------------------------------------------
# tuning
# --------------------------------------------------------------------------------------------
def _final_loss(run):
    last = run.iloc[-1]
    return last["test_loss"] if not math.isnan(last["test_loss"]) else last["full_train_loss"]


# name -> (score of one run's record, lower is better; description)
METRICS = {
    "final_loss": (
        _final_loss,
        "held-out loss at the end of the run (training loss for problems without held-out data)",
    ),
    "final_train_loss": (
        lambda run: run["full_train_loss"].iloc[-1],
        "full-batch training loss at the end of the run",
    ),
    "min_train_loss": (
        lambda run: run["full_train_loss"].min(),
        "lowest full-batch training loss over the run's evaluation points",
    ),
    "final_test_accuracy": (
        lambda run: -run["test_accuracy"].iloc[-1],
        "held-out accuracy at the end of the run (higher is better)",
    ),
}


def score_runs(table, metric="final_loss"):
    """One row per run (cell) with its ``score`` under ``metric`` (lower is better).

    A run that diverged, or whose score is not finite, scores ``+inf``: it ranks last.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    function = METRICS[metric][0]
    rows = []
    for cell, run in table.groupby("cell", sort=False):
        score = float(function(run))
        if run["diverged"].any() or not math.isfinite(score):
            score = math.inf
        first = run.iloc[0]
        rows.append(
            {key: first[key] for key in ("problem", "optimizer", "lr", "batch_size", "seed")}
            | {"cell": cell, "score": score}
        )
    return pd.DataFrame(rows)


def _choose(grid, scores):
    """Per (problem, optimizer, batch size as in the grid): the lr of lowest mean score."""
    batch_size = {cell_id(spec): spec["batch_size"] for spec in grid.cells()}
    scores = scores.assign(batch_size=scores["cell"].map(batch_size))
    keys = ["problem", "optimizer", "batch_size"]
    mean = scores.groupby([*keys, "lr"], sort=False, as_index=False)["score"].mean()
    # sorted on the numbers only: batch_size may mix ints and "full"
    ranked = mean.sort_values(["score", "lr"], kind="stable")
    return ranked.groupby(keys, sort=False).head(1).reset_index(drop=True)


@dataclass(frozen=True)
class TuneResult:
    """best : one row per (problem, optimizer, batch_size): the chosen ``lr`` and its mean
    search score; search : the search sweep's table; final : the re-runs at the chosen rates."""

    best: pd.DataFrame
    search: pd.DataFrame
    final: pd.DataFrame


def tune(
    grid,
    *,
    metric="final_loss",
    seeds=None,
    out=None,
    jobs=1,
    client=None,
    progress=True,
    scheduler=None,
):
    """The tuning protocol of published optimizer benchmarks: search, choose, re-run.

    1. Run ``grid`` (its ``seeds`` are the search seeds).
    2. Score every run with ``metric`` (:data:`METRICS`; diverged runs score ``+inf``) and
       average over the search seeds; for each problem, optimizer and batch size, choose the
       learning rate with the lowest mean score (ties: the smaller rate).
    3. Re-run each choice with ``seeds`` (default: the three integers after the largest
       search seed, so that the reported runs are not those the choice was made on).

    ``out`` is a directory: the search goes to ``out/search``, the re-runs to ``out/final``,
    both resumable like :func:`sweep`.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a sweep.Grid, got {type(grid).__name__}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if seeds is None:
        seeds = tuple(range(max(grid.seeds) + 1, max(grid.seeds) + 4))
    final_grid = dataclasses.replace(grid, seeds=_names("seeds", seeds))  # checked before work
    _check_backend(jobs, client, scheduler)
    if out is not None:
        check_out(out, tune=True)
        out = Path(out)
    with (
        _client(client, scheduler) as connected,
        contextlib.nullcontext() if out is None else _locked(out, out),
    ):
        search = _run_cells(
            grid.cells(), out and out / "search", jobs, connected, progress, "search"
        )
        best = _choose(grid, score_runs(search, metric))
        chosen = {(r.problem, r.optimizer, r.batch_size): r.lr for r in best.itertuples()}
        cells = [
            spec
            for spec in final_grid.cells()
            if chosen[spec["problem"], spec["optimizer"], spec["batch_size"]] == spec["lr"]
        ]
        final = _run_cells(cells, out and out / "final", jobs, connected, progress, "final")
    return TuneResult(best=best, search=search, final=final)
