"""Tuning campaigns: trials sampled quasi-randomly from an optimizer's search space, in studies.

AlgoPerf's external tuning ruleset, on optbench's problems::

    campaign = tuning.Campaign("adamw", "mnist1d_mlp", trials=5, studies=3, epochs=20)
    result = tuning.run(campaign, out="results/adamw-mnist1d")
    result.trials      # one row per trial: study, trial, seed, the sampled options, score
    result.best        # per study, its best trial

A *study* is an independent tuning: ``trials`` settings of the optimizer's hyperparameters,
sampled from its declared search space (:attr:`optbench.spec.OptimizerSpec.search_space`,
restricted to ``search`` if given) by a scrambled Halton sequence (``scipy.stats.qmc``), each
trained once; the study's result is its best trial under ``metric`` (lower is better; a
diverged trial scores ``+inf``). Studies differ in their Halton scrambling and in the seeds of
their runs, so their spread measures how much a result depends on the luck of the tuning.

Determinism: the points of study ``s`` come from a generator seeded with ``(seed, s)``, and
the run seed of trial ``t`` of study ``s`` from ``(seed, s, t)``, so equal campaigns sample
and run equal trials. A study's trials are the first ``trials`` points of its sequence:
raising ``trials`` later keeps every trial already run and adds new ones.

Every trial is a cell of :mod:`optbench.sweep` (a run of :func:`optbench.runner.run`, its spec
hashed into its id): trials finished before an interruption (SIGKILL included) are read back
from ``out/cells/`` when the same campaign runs again, never run twice, and local worker
processes or a Dask cluster run them as they run a sweep's cells. ``out/trials.parquet`` and
``out/best.parquet`` are written atomically when the campaign ends, ``out/results.parquet``
holds every trial's record.
"""

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc

from . import runner, spec, sweep, tables, validation

TRIALS_TABLE = "trials.parquet"
BEST_TABLE = "best.parquet"


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------
def search_space(optimizer, names=None):
    """The search space of ``optimizer`` (a name or spec): its declared dimensions, or those
    of ``names`` alone (each must be declared; ``lr`` is always searched)."""
    info = runner.resolve_optimizer(optimizer)
    declared = dict(info.search_space)
    if names is None:
        return declared
    names = tuple(names)
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise ValueError(
            f"search: {info.name} declares no search space for {unknown[0]!r}; it declares "
            f"{', '.join(declared)}"
        )
    return {name: declared[name] for name in declared if name == "lr" or name in names}


def sample(space, count, seed):
    """``count`` points of ``space`` (``{key: dimension}``): dicts of values, the first
    ``count`` points of a scrambled Halton sequence seeded by ``seed`` (an int or a sequence
    of ints), mapped through each dimension. A prefix of a longer sample is the shorter one."""
    validation.integer("count", count, 1)
    keys = list(space)
    if not keys:
        raise ValueError("space is empty")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    points = qmc.Halton(d=len(keys), scramble=True, seed=rng).random(count)
    return [
        {key: _plain(space[key].value(float(u))) for key, u in zip(keys, point, strict=True)}
        for point in points
    ]


def _plain(value):
    """A float for a number (JSON- and Parquet-friendly), the value itself otherwise."""
    if isinstance(value, bool | str) or value is None:
        return value
    return float(value) if isinstance(value, int | float | np.number) else value


def options_from(optimizer, point, fixed=None):
    """``(lr, optimizer_options)`` of a sampled ``point``: ``lr`` apart; a key ``name[i]``
    sets element ``i`` of the tuple option ``name``, its other elements taken from ``fixed``
    or the option's default."""
    info = runner.resolve_optimizer(optimizer)
    options = dict(fixed or {})
    defaults = {h.name: h.default for h in info.hyperparameters}
    lr = None
    for key, value in point.items():
        element = spec.ELEMENT_KEY.match(key)
        if key == "lr":
            lr = value
        elif element:
            name, index = element["name"], int(element["index"])
            values = list(options.get(name, defaults[name]))
            values[index] = value
            options[name] = tuple(values)
        else:
            options[key] = value
    return lr, options


# --------------------------------------------------------------------------------------------
# campaigns
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Campaign:
    """A tuning campaign (see the module docstring), checked on construction.

    optimizer, problem : registry names
    trials, studies : trials per study (AlgoPerf: 5) and independent studies (AlgoPerf: 3)
    search : the search-space keys to sample (None: all declared; ``lr`` always)
    fixed : optimizer options held fixed in every trial (not sampled)
    batch_size, epochs, steps, problem_options, log_every : the runs, as in
        :func:`optbench.runner.run`
    metric : a tuning metric of :data:`optbench.sweep.METRICS`
    seed : the campaign's seed (samples and run seeds)
    """

    optimizer: str
    problem: str
    trials: int = 5
    studies: int = 3
    search: tuple | None = None
    fixed: Mapping = field(default_factory=dict)
    batch_size: int | str = 32
    epochs: int | None = None
    steps: int | None = None
    problem_options: Mapping = field(default_factory=dict)
    log_every: int = 1
    metric: str = "final_loss"
    seed: int = 0

    def __post_init__(self):
        def set_field(name, value):
            object.__setattr__(self, name, value)

        set_field("optimizer", runner.resolve_optimizer(self.optimizer).name)
        set_field("problem", runner.resolve_problem_class(self.problem).name)
        set_field("trials", validation.integer("trials", self.trials, 1))
        set_field("studies", validation.integer("studies", self.studies, 1))
        if self.search is not None:
            set_field("search", tuple(self.search))
        self.space()  # the search keys are declared
        if self.metric not in sweep.METRICS:
            raise ValueError(f"metric {self.metric!r}: choose from {', '.join(sweep.METRICS)}")
        set_field("seed", runner.check_seed(self.seed))
        # a whole option searched cannot be fixed; a tuple option searched by element can
        # (its other elements then come from the fixed value)
        whole = {"lr"} | {key for key in self.space() if not spec.ELEMENT_KEY.match(key)}
        clash = sorted(set(self.fixed) & whole)
        if clash:
            raise ValueError(f"fixed sets {clash[0]!r}, which the search samples")
        # the runs' arguments, checked as a sweep checks them (problem options, batch size,
        # budget, fixed options)
        sweep.Grid(
            problems=(self.problem,),
            optimizers=(self.optimizer,),
            lrs=(1.0,),
            batch_sizes=(self.batch_size,),
            epochs=self.epochs,
            steps=self.steps,
            optimizer_options={self.optimizer: dict(self.fixed)} if self.fixed else {},
            problem_options={self.problem: dict(self.problem_options)}
            if self.problem_options
            else {},
            log_every=self.log_every,
        )
        set_field("fixed", dict(self.fixed))
        set_field("problem_options", dict(self.problem_options))

    def space(self):
        """The dimensions sampled: ``{key: dimension}``."""
        return search_space(self.optimizer, self.search)

    def trial_plan(self):
        """One dict per trial, study by study: ``study``, ``trial``, ``seed`` (of its run),
        the sampled values by search key, and the cell ``spec`` that runs it."""
        plan = []
        space = self.space()
        for study in range(self.studies):
            points = sample(space, self.trials, (self.seed, study))
            for trial, point in enumerate(points):
                lr, options = options_from(self.optimizer, point, self.fixed)
                seed = int(np.random.SeedSequence((self.seed, study, trial)).generate_state(1)[0])
                cell = {
                    "problem": self.problem,
                    "optimizer": self.optimizer,
                    "lr": lr,
                    "batch_size": self.batch_size,
                    "seed": seed,
                    "epochs": self.epochs,
                    "steps": self.steps,
                    "optimizer_options": options,
                    "problem_options": self.problem_options,
                    "schedule": None,
                    "schedule_options": {},
                    "log_every": self.log_every,
                    "divergence_bound": None,
                    "early_stopping": None,
                    "version": sweep.RECORD_VERSION,
                }
                plan.append({"study": study, "trial": trial, "seed": seed, **point, "spec": cell})
        return plan


@dataclass(frozen=True)
class CampaignResult:
    """trials : one row per trial (``study``, ``trial``, ``seed``, the sampled values, ``cell``,
    ``score``, ``diverged``, ``steps`` and ``wall_time`` of its run); best : per study, its
    best trial (lowest score; ties: the earlier trial); runs : every trial's record."""

    trials: pd.DataFrame
    best: pd.DataFrame
    runs: pd.DataFrame


def run(campaign, out=None, *, jobs=1, client=None, scheduler=None, progress=True):
    """Run every trial of ``campaign`` not yet under ``out`` and return the
    :class:`CampaignResult`; ``out`` (a directory, or None to keep everything in memory),
    ``jobs``, ``client`` and ``scheduler`` as in :func:`optbench.sweep.sweep`."""
    if not isinstance(campaign, Campaign):
        raise TypeError(f"campaign must be a tuning.Campaign, got {type(campaign).__name__}")
    if out is not None:
        sweep.check_out(out, tune=True)
    plan = campaign.trial_plan()
    with contextlib.nullcontext() if out is None else sweep.locked(out):
        runs = sweep.run_cells(
            [row["spec"] for row in plan],
            out,
            jobs=jobs,
            client=client,
            scheduler=scheduler,
            progress=progress,
            desc="trials",
        )
        trials, best = _tables(campaign, plan, runs)
        if out is not None:
            tables.write_table(trials, Path(out) / TRIALS_TABLE)
            tables.write_table(best, Path(out) / BEST_TABLE)
    return CampaignResult(trials=trials, best=best, runs=runs)


def _tables(campaign, plan, runs):
    """(trials, best) of a finished campaign."""
    scores = sweep.score_runs(runs, campaign.metric).set_index("cell")["score"]
    per_cell = runs.groupby("cell", sort=False).agg(
        diverged=("diverged", "any"), steps=("step", "max"), wall_time=("wall_time", "max")
    )
    rows = []
    for row in plan:
        identifier = sweep.cell_id(row["spec"])
        values = {k: v for k, v in row.items() if k != "spec"}
        rows.append(
            {
                "optimizer": campaign.optimizer,
                "problem": campaign.problem,
                **values,
                "cell": identifier,
                "score": float(scores[identifier]),
                **per_cell.loc[identifier].to_dict(),
            }
        )
    trials = pd.DataFrame(rows)
    best = (
        trials.sort_values(["study", "score", "trial"], kind="stable")
        .groupby("study", sort=True)
        .head(1)
        .reset_index(drop=True)
    )
    return trials, best


def summary(result):
    """The median and range over studies of each study's best score: a one-line dict."""
    scores = result.best["score"].to_numpy(dtype=float)
    finite = scores[np.isfinite(scores)]
    return {
        "studies": len(scores),
        "median_best_score": float(np.median(scores)) if len(scores) else math.nan,
        "min_best_score": float(finite.min()) if len(finite) else math.inf,
        "max_best_score": float(scores.max()) if len(scores) else math.nan,
    }
