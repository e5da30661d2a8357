"""Steps and seconds to a target loss, the ranking table, and the Dolan-More performance
profile.

Target (Moré and Wild's convergence test, when a profile gives none): for problem ``p``,
``target_p = f_L + tol * (f_0 - f_L)``, with ``f_0`` the median initial loss and ``f_L`` the
lowest loss any optimizer reached (the median over seeds of each run's minimum, then the
minimum over optimizers): a run "solves" ``p`` once it has closed all but ``tol`` of the gap.

Steps to target of one run: the first logged step whose loss is ``<= target``; a run that
never gets there (or diverges) takes infinitely many. Per optimizer and problem the table shows
the median over seeds (so the target counts as reached only when more than half of the seeds
reach it: with an even count, a median between a finite and an infinite value is infinite)
and ``seconds = steps x the optimizer kernel's measured per-step cost``: convergence and
update speed in one number, free of the gradient computation that every optimizer shares.

Performance profile (Dolan and Moré, 2002): with ``t[p, s]`` the cost of solver ``s`` on
problem ``p`` (infinite when it failed), ``r[p, s] = t[p, s] / min_s t[p, s]`` and
``rho_s(tau) = |{p : r[p, s] <= tau}| / n_problems``; ``rho_s(1)`` is the share of problems on
which ``s`` is fastest, ``rho_s(tau)`` for large ``tau`` the share it solves at all. The score
is the area under ``rho_s`` on ``[1, tau_max]`` over ``tau_max - 1`` (1: fastest everywhere,
0: solves nothing within ``tau_max``), as AlgoPerf scores submissions.

Relative to the best solver present, a score moves whenever a solver is added. Against fixed
*reference* costs per problem (a baseline pack's fewest steps to its fixed target,
:mod:`optbench.report.packs`) ``r[p, s] = t[p, s] / t_ref[p]``, a ratio below 1 counting as
1: each solver's score then depends on its own costs alone, and 1 means at least as fast as
the reference everywhere.
"""

import zlib

import numpy as np
import pandas as pd
from matplotlib import ticker

from .. import bootstrap
from . import figures

TAU_MAX = 4.0


def more_wild_targets(log, *, tol=1e-2, metric="train_loss"):
    """Per-problem targets ``f_L + tol * (f_0 - f_L)`` from run logs (see the module
    docstring): a Series indexed by problem."""
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    _require(log, ["problem", "optimizer", "seed", "step", metric], "log")
    runs = log.groupby(["problem", "optimizer", "seed"], sort=True)
    first = log.loc[runs["step"].idxmin()].groupby("problem")[metric].median()
    best = runs[metric].min().groupby(["problem", "optimizer"]).median().groupby("problem").min()
    return (best + tol * (first - best)).rename("target")


def first_reach(log, targets, *, metric="train_loss", keys=("problem", "optimizer", "seed")):
    """One row per run (``keys``): ``steps`` (first logged step with ``metric <= target``,
    ``inf`` if none) and ``wall_seconds`` (the run's ``wall_time`` at that step, ``inf`` if
    none). ``targets`` maps problem to target loss."""
    keys = list(keys)
    _require(log, [*keys, "step", "wall_time", metric], "log")
    targets = pd.Series(targets, dtype=float)
    missing = sorted(set(log["problem"]) - set(targets.index))
    if missing:
        raise ValueError(f"targets has no target for problem {missing[0]!r}")
    reached = log[log[metric] <= log["problem"].map(targets)]
    first = reached.loc[reached.groupby(keys, sort=False)["step"].idxmin(), [*keys, "step"]]
    first["wall_seconds"] = reached.loc[first.index, "wall_time"].to_numpy()
    runs = log[keys].drop_duplicates()
    out = runs.merge(first, on=keys, how="left").rename(columns={"step": "steps"})
    out["steps"] = out["steps"].astype(float).fillna(np.inf)
    out["wall_seconds"] = out["wall_seconds"].astype(float).fillna(np.inf)
    return out.sort_values(keys, ignore_index=True)


def ranking(log, targets, step_cost=None, *, metric="train_loss"):
    """The ranking table: per problem and optimizer, the target, the number of seeds, the share
    of seeds reaching the target, median steps and measured wall seconds to target (NaN when
    the median run does not reach it), the kernel's ``step_cost_s`` (seconds per optimizer step
    from ``step_cost``, a Series indexed by (problem, optimizer); NaN where it has none),
    ``seconds_to_target = steps_to_target * step_cost_s`` and the rank by steps within the
    problem (1 = fewest; unreached rows have none); ``steps_low`` and ``steps_high``, the 95%
    bootstrap interval of the median steps over seeds (:mod:`optbench.bootstrap`; ``inf``:
    the resampled median does not reach the target); ``rank_low`` and ``rank_high``
    (:func:`rank_intervals`); ``final`` with ``final_low`` and ``final_high``, the median over
    seeds of each run's last value of ``metric`` and its interval."""
    runs = first_reach(log, targets, metric=metric)
    grouped = runs.groupby(["problem", "optimizer"], sort=True)
    intervals = grouped["steps"].apply(lambda s: bootstrap.interval(s.to_numpy()))
    table = pd.DataFrame(
        {
            "seeds": grouped["steps"].size(),
            "reached": grouped["steps"].apply(lambda s: float(np.isfinite(s).mean())),
            "steps_to_target": grouped["steps"].median(),
            "steps_low": intervals.map(lambda pair: pair[0]),
            "steps_high": intervals.map(lambda pair: pair[1]),
            "wall_seconds_to_target": grouped["wall_seconds"].median(),
        }
    ).reset_index()
    for column in ("steps_to_target", "wall_seconds_to_target"):
        table[column] = table[column].replace(np.inf, np.nan)
    table.insert(2, "target", table["problem"].map(pd.Series(targets, dtype=float)))
    if step_cost is None:
        table["step_cost_s"] = np.nan
    else:
        index = pd.MultiIndex.from_frame(table[["problem", "optimizer"]])
        table["step_cost_s"] = pd.Series(step_cost, dtype=float).reindex(index).to_numpy()
    table["seconds_to_target"] = table["steps_to_target"] * table["step_cost_s"]
    table["rank"] = table.groupby("problem")["steps_to_target"].rank(method="min").astype("Int64")
    ranks = rank_intervals(runs)
    pairs = pd.MultiIndex.from_frame(table[["problem", "optimizer"]])
    table["rank_low"] = ranks["rank_low"].reindex(pairs).to_numpy()
    table["rank_high"] = ranks["rank_high"].reindex(pairs).to_numpy()
    finals = final_values(log, metric=metric)
    grouped = finals.groupby(["problem", "optimizer"], sort=True)["final"]
    intervals = grouped.apply(lambda s: bootstrap.interval(s.to_numpy()))
    table["final"] = grouped.median().reindex(pairs).to_numpy()
    table["final_low"] = intervals.map(lambda pair: pair[0]).reindex(pairs).to_numpy()
    table["final_high"] = intervals.map(lambda pair: pair[1]).reindex(pairs).to_numpy()
    return table


def final_values(log, *, metric="train_loss", keys=("problem", "optimizer", "seed")):
    """One row per run: ``final``, the run's last logged value of ``metric`` (``inf`` for a
    run that diverged, where the log has a ``diverged`` column)."""
    keys = list(keys)
    _require(log, [*keys, "step", metric], "log")
    valued = log[log[metric].notna()]
    last = valued.loc[valued.groupby(keys, sort=False)["step"].idxmax(), [*keys, metric]]
    diverged = log["diverged"].astype(bool) if "diverged" in log else pd.Series(False, log.index)
    runs = diverged.groupby([log[k] for k in keys], sort=False).any().rename("diverged")
    runs = runs.reset_index()
    out = runs.merge(last, on=keys, how="left").rename(columns={metric: "final"})
    out["final"] = np.where(out["diverged"], np.inf, out["final"].astype(float))
    return out.drop(columns="diverged").sort_values(keys, ignore_index=True)


def rank_intervals(runs, *, resamples=bootstrap.RESAMPLES, confidence=bootstrap.CONFIDENCE, seed=0):
    """The bootstrap interval of each optimizer's rank by median steps within its problem:
    the seeds are resampled jointly (the optimizers of a problem share their seeds: the same
    draws for every optimizer with as many runs), the medians recomputed and ranked (1 +
    the optimizers with strictly fewer steps; never reaching the target ranks below every
    optimizer that does). ``runs``: rows of :func:`first_reach`. A frame indexed by
    (problem, optimizer) with ``rank_low`` and ``rank_high``."""
    _require(runs, ["problem", "optimizer", "seed", "steps"], "runs")
    rows = {}
    for problem, group in runs.groupby("problem", sort=True):
        names, medians = [], []
        for optimizer, own in group.groupby("optimizer", sort=True):
            steps = own.sort_values("seed")["steps"].to_numpy(dtype=float)
            draws = bootstrap.resample_indices(steps.size, resamples, seed)
            names.append(optimizer)
            medians.append(np.median(steps[draws], axis=1))
        matrix = np.stack(medians, axis=1)
        ranks = 1 + (matrix[:, None, :] < matrix[:, :, None]).sum(axis=2)
        for j, optimizer in enumerate(names):
            rows[problem, optimizer] = bootstrap.quantile_interval(ranks[:, j], confidence)
    index = pd.MultiIndex.from_tuples(list(rows), names=["problem", "optimizer"])
    return pd.DataFrame(list(rows.values()), index=index, columns=["rank_low", "rank_high"])


def performance_ratios(
    costs, *, reference=None, problem="problem", solver="optimizer", cost="cost"
):
    """``r[p, s] = t[p, s] / min_s t[p, s]`` as a problem x solver frame; NaN or non-positive
    costs count as failures (``inf``); a problem no solver solves has ``inf`` everywhere.

    reference : a Series of a fixed cost per problem (a baseline pack's reference steps) to
        divide by instead of the best present, so that one solver's ratios do not depend on
        the others; a ratio may then be below 1."""
    _require(costs, [problem, solver, cost], "costs")
    if costs.duplicated([problem, solver]).any():
        raise ValueError(f"costs has more than one row for some ({problem}, {solver}) pair")
    wide = costs.set_index([problem, solver])[cost].astype(float).unstack(solver)
    wide = wide.where(wide > 0).fillna(np.inf)
    best = wide.min(axis=1).to_numpy()
    if reference is not None:
        best = _reference_costs(reference, wide.index)
    with np.errstate(invalid="ignore"):
        ratios = wide.to_numpy() / best[:, None]
    ratios[~np.isfinite(best)] = np.inf
    return pd.DataFrame(ratios, index=wide.index, columns=wide.columns)


def _reference_costs(reference, index):
    reference = pd.Series(reference, dtype=float)
    missing = [p for p in index if p not in reference.index]
    if missing:
        raise ValueError(f"reference has no cost for problem {missing[0]!r}")
    values = reference.reindex(index).to_numpy()
    if not (np.isfinite(values) & (values > 0)).all():
        raise ValueError("reference costs must be finite and positive")
    return values


def performance_profile(costs, *, tau_max=TAU_MAX, reference=None, **columns):
    """The Dolan-More profile as a tidy table (``optimizer``, ``tau``, ``fraction``): for each
    solver, ``rho_s(tau)`` at ``tau = 1``, at every ratio in ``[1, tau_max]`` and at
    ``tau_max``, so that a step plot (``drawstyle="steps-post"``) is exact. ``reference``: as
    in :func:`performance_ratios` (a ratio below 1 counts as 1)."""
    if not tau_max > 1:
        raise ValueError(f"tau_max must be > 1, got {tau_max!r}")
    ratios = performance_ratios(costs, reference=reference, **columns).clip(lower=1.0)
    values = ratios.to_numpy()
    taus = np.unique(np.concatenate([[1.0, tau_max], values[values <= tau_max].ravel()]))
    rows = []
    for j, name in enumerate(ratios.columns):
        column = values[:, j]
        for tau in taus:
            rows.append((name, float(tau), float(np.mean(column <= tau))))
    return pd.DataFrame(rows, columns=["optimizer", "tau", "fraction"])


def profile_scores(costs, *, tau_max=TAU_MAX, reference=None, **columns):
    """Area under each solver's profile on ``[1, tau_max]`` over ``tau_max - 1``, exactly:
    problem ``p`` adds ``(tau_max - max(r[p, s], 1)) / (tau_max - 1) / n_problems`` when
    ``r[p, s] <= tau_max``. A Series indexed by solver, sorted best first. With a
    ``reference`` (see :func:`performance_ratios`) a solver's score depends on its own costs
    alone; at least as fast as the reference on every problem scores 1."""
    if not tau_max > 1:
        raise ValueError(f"tau_max must be > 1, got {tau_max!r}")
    ratios = performance_ratios(costs, reference=reference, **columns).clip(lower=1.0)
    share = ((tau_max - ratios).clip(lower=0) / (tau_max - 1)).mean(axis=0)
    return share.rename("score").sort_values(ascending=False, kind="stable")


def profile_score_intervals(
    runs,
    step_cost=None,
    *,
    tau_max=TAU_MAX,
    reference=None,
    resamples=bootstrap.RESAMPLES,
    confidence=bootstrap.CONFIDENCE,
    seed=0,
):
    """The bootstrap interval of each optimizer's profile score (:func:`profile_scores` of the
    median steps over seeds, times ``step_cost`` if given, a Series indexed by (problem,
    optimizer)): every (problem, optimizer)'s seeds are resampled with replacement, the
    medians, ratios and scores recomputed, ``resamples`` times; each pair's draws are seeded
    by ``seed`` and the pair's names, so they do not change when solvers are added. With a
    ``reference`` (see :func:`performance_ratios`) the ratios divide by it, and a solver's
    interval depends on its own runs alone. ``runs``: rows of :func:`first_reach`. A frame
    indexed by optimizer with ``score_low`` and ``score_high``."""
    _require(runs, ["problem", "optimizer", "steps"], "runs")
    problems = sorted(runs["problem"].unique())
    solvers = sorted(runs["optimizer"].unique())
    costs = np.full((resamples, len(problems), len(solvers)), np.inf)
    for (problem, solver), group in runs.groupby(["problem", "optimizer"], sort=True):
        steps = group["steps"].to_numpy(dtype=float)
        where = (seed, zlib.crc32(f"{problem}\0{solver}".encode()))
        draws = bootstrap.resample_indices(steps.size, resamples, where)
        median = np.median(steps[draws], axis=1)
        factor = 1.0
        if step_cost is not None:
            factor = pd.Series(step_cost, dtype=float).get((problem, solver), np.nan)
        with np.errstate(invalid="ignore"):
            value = median * factor
        value = np.where(np.isfinite(value) & (value > 0), value, np.inf)
        costs[:, problems.index(problem), solvers.index(solver)] = value
    best = costs.min(axis=2, keepdims=True)
    if reference is not None:
        best = np.broadcast_to(_reference_costs(reference, problems)[None, :, None], best.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(np.isfinite(best), costs / best, np.inf).clip(min=1.0)
    scores = (np.clip(tau_max - ratios, 0.0, None) / (tau_max - 1.0)).mean(axis=1)
    rows = [bootstrap.quantile_interval(scores[:, j], confidence) for j in range(len(solvers))]
    return pd.DataFrame(
        rows, index=pd.Index(solvers, name="optimizer"), columns=["score_low", "score_high"]
    )


def profile_figure(profile, *, title, tau_max=TAU_MAX):
    """Step plot of ``rho_s(tau)`` against ``tau`` on ``[1, tau_max]``, one line per optimizer."""
    fig, axes = figures.new_figure(1, 1, width=5.2, height=3.6)
    ax = axes[0, 0]
    palette = figures.colors(profile["optimizer"].unique())
    for name, rows in profile.groupby("optimizer", sort=False):
        ax.plot(
            rows["tau"], rows["fraction"], drawstyle="steps-post", label=name, color=palette[name]
        )
    ax.set_xlim(1, tau_max)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ (cost within a factor τ of the best)")
    ax.set_ylabel("fraction of problems")
    ax.set_title(title)
    ax.legend(loc="lower right", ncols=2)
    return fig


def steps_figure(table, *, columns=3, marked=()):
    """Median steps to target with its 95% interval, one panel per problem, one row per
    optimizer (fastest at the top): a dot at the median, a bar over the interval (an arrow to
    the right edge where the interval's top is ``inf``), a cross at the right edge where the
    median seed does not reach the target. ``table``: :func:`ranking`'s; ``marked``:
    optimizers whose names are drawn in bold (those run now, beside a pack's)."""
    problems = list(dict.fromkeys(table["problem"]))
    ncols = min(columns, len(problems))
    nrows = -(-len(problems) // ncols)
    fig, axes = figures.new_figure(nrows, ncols, width=3.4 * ncols, height=2.6 * nrows)
    palette = figures.colors(list(dict.fromkeys(table["optimizer"])))
    for ax, problem in zip(axes.flat, problems, strict=False):
        rows = table[table["problem"] == problem].copy()
        rows["order"] = rows["steps_to_target"].fillna(np.inf)
        rows = rows.sort_values(["order", "optimizer"], ascending=[False, False], kind="stable")
        finite = np.concatenate(
            [rows[c].to_numpy(float) for c in ("steps_to_target", "steps_low", "steps_high")]
        )
        finite = finite[np.isfinite(finite) & (finite > 0)]
        high = finite.max() * 1.6 if finite.size else 10.0
        low = finite.min() / 1.6 if finite.size else 1.0
        for y, row in enumerate(rows.itertuples()):
            colour = palette[row.optimizer]
            if np.isfinite(row.steps_low):
                top = row.steps_high if np.isfinite(row.steps_high) else high
                ax.plot([row.steps_low, top], [y, y], color=colour, lw=2.0, alpha=0.6)
                if not np.isfinite(row.steps_high):
                    ax.plot([high], [y], marker=">", color=colour, linestyle="none", ms=4)
            if pd.isna(row.steps_to_target):
                ax.plot([high], [y], marker="x", color=colour, linestyle="none")
            else:
                ax.plot([row.steps_to_target], [y], marker="o", color=colour, ms=4)
        ax.set_yticks(range(len(rows)), list(rows["optimizer"]))
        for label in ax.get_yticklabels():
            if label.get_text() in set(marked):
                label.set_fontweight("bold")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlim(low, high * 1.25)
        ax.set_title(problem)
        ax.set_xlabel("steps to target")
    for ax in list(axes.flat)[len(problems) :]:
        ax.set_visible(False)
    return fig


def _require(frame, columns, name):
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")
