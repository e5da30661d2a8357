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
TRACKS = ("external", "self")
# The self-tuning track's budget: the external track's, times this (AlgoPerf's 1.5).
SELF_TUNING_BUDGET = 1.5
# Schedule options a campaign with a schedule may search (``search`` must name them).
SCHEDULE_SPACE = {"warmup_fraction": spec.Uniform(0.0, 0.2)}


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------
def search_space(optimizer, names=None, schedule=None):
    """The search space of ``optimizer`` (a name or spec): its declared dimensions, or those
    of ``names`` alone (each declared, or a key of ``SCHEDULE_SPACE`` when a ``schedule`` is
    given; ``lr`` is always searched)."""
    info = runner.resolve_optimizer(optimizer)
    declared = dict(info.search_space)
    if names is None:
        return declared
    names = tuple(names)
    allowed = {**declared, **(SCHEDULE_SPACE if schedule is not None else {})}
    unknown = [name for name in names if name not in allowed]
    if unknown:
        extra = f", and with a schedule {', '.join(SCHEDULE_SPACE)}" if schedule is None else ""
        raise ValueError(
            f"search: {info.name} declares no search space for {unknown[0]!r}; it declares "
            f"{', '.join(allowed)}{extra}"
        )
    return {name: allowed[name] for name in allowed if name == "lr" or name in names}


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
    schedule, schedule_options : a schedule of :mod:`optbench.schedules` and its fixed options
        (``search`` may name ``warmup_fraction``: see ``SCHEDULE_SPACE``)
    batch_size, epochs, steps, problem_options, log_every : the runs, as in
        :func:`optbench.runner.run`
    metric : a tuning metric of :data:`optbench.sweep.METRICS`
    seed : the campaign's seed (samples and run seeds)
    track : "external" (the trials above) or "self" (AlgoPerf's self-tuning track: one run per
        study with the optimizer's defaults and the registry's lr, ``SELF_TUNING_BUDGET``
        times the budget; ``trials`` must then be 1 and nothing is searched)
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
    schedule: str | None = None
    schedule_options: Mapping = field(default_factory=dict)
    track: str = "external"

    def __post_init__(self):
        def set_field(name, value):
            object.__setattr__(self, name, value)

        set_field("optimizer", runner.resolve_optimizer(self.optimizer).name)
        set_field("problem", runner.resolve_problem_class(self.problem).name)
        set_field("trials", validation.integer("trials", self.trials, 1))
        set_field("studies", validation.integer("studies", self.studies, 1))
        validation.choice("track", self.track, TRACKS)
        if self.track == "self" and (self.trials != 1 or self.search is not None):
            raise ValueError("track 'self' runs the defaults: trials must be 1, search None")
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
        if self.schedule_options and self.schedule is None:
            raise ValueError("schedule_options need a schedule")
        searched_schedule = set(self.space()) & set(SCHEDULE_SPACE)
        if searched_schedule & set(self.schedule_options):
            raise ValueError(
                f"schedule_options set {sorted(searched_schedule)[0]!r}, which the search samples"
            )
        # the runs' arguments, checked as a sweep checks them (problem options, batch size,
        # budget, schedule, and the options of a first trial: fixed ones with sampled ones)
        space = self.space()
        point = sample(space, 1, (self.seed, 0))[0] if space else {}
        point = {k: v for k, v in point.items() if k not in SCHEDULE_SPACE}
        _, first_options = options_from(self.optimizer, point, self.fixed)
        sweep.Grid(
            problems=(self.problem,),
            optimizers=(self.optimizer,),
            lrs=(1.0,),
            batch_sizes=(self.batch_size,),
            epochs=self.epochs,
            steps=self.steps,
            optimizer_options={self.optimizer: first_options} if first_options else {},
            problem_options={self.problem: dict(self.problem_options)}
            if self.problem_options
            else {},
            log_every=self.log_every,
            schedule=self.schedule,
            schedule_options=self.schedule_options,
        )
        set_field("fixed", dict(self.fixed))
        set_field("problem_options", dict(self.problem_options))
        set_field("schedule_options", dict(self.schedule_options))

    def space(self):
        """The dimensions sampled: ``{key: dimension}`` (none on the self-tuning track)."""
        if self.track == "self":
            return {}
        return search_space(self.optimizer, self.search, self.schedule)

    def budget(self):
        """``(epochs, steps)`` of every run: the campaign's, times ``SELF_TUNING_BUDGET`` on
        the self-tuning track (epochs are then converted to steps)."""
        if self.track == "external":
            return self.epochs, self.steps
        problem = runner.build_problem(self.problem, 0, self.problem_options)
        size = problem.check_batch_size(None if self.batch_size == "full" else self.batch_size)
        steps = runner.budget_steps(problem, size, self.epochs, self.steps)
        return None, math.ceil(SELF_TUNING_BUDGET * steps)

    def trial_plan(self):
        """One dict per trial, study by study: ``study``, ``trial``, ``seed`` (of its run),
        the sampled values by search key, and the cell ``spec`` that runs it."""
        plan = []
        space = self.space()
        epochs, steps = self.budget()
        for study in range(self.studies):
            points = sample(space, self.trials, (self.seed, study)) if space else [{}]
            for trial, point in enumerate(points):
                optimizer_point = {k: v for k, v in point.items() if k not in SCHEDULE_SPACE}
                lr, options = options_from(self.optimizer, optimizer_point, self.fixed)
                if lr is None:  # the self-tuning track
                    lr = runner.resolve_optimizer(self.optimizer).lr
                schedule_point = {k: v for k, v in point.items() if k in SCHEDULE_SPACE}
                seed = int(np.random.SeedSequence((self.seed, study, trial)).generate_state(1)[0])
                cell = {
                    "problem": self.problem,
                    "optimizer": self.optimizer,
                    "lr": lr,
                    "batch_size": self.batch_size,
                    "seed": seed,
                    "epochs": epochs,
                    "steps": steps,
                    "optimizer_options": options,
                    "problem_options": self.problem_options,
                    "schedule": self.schedule,
                    "schedule_options": {**self.schedule_options, **schedule_point},
                    "log_every": self.log_every,
                    "divergence_bound": None,
                    "early_stopping": None,
                    "version": sweep.RECORD_VERSION,
                }
                values = {"lr": lr, **point}
                plan.append({"study": study, "trial": trial, "seed": seed, **values, "spec": cell})
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
