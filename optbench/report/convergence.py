"""Convergence figures and their tidy data, from the runner's records (one row per logged
step; see :mod:`optbench.runner`).

Across seeds every curve is the median with the interquartile range (25th to 75th
percentile) as a band, taken step by step. A run that diverged counts as ``+inf`` from its
last step on, so a median curve ends where half of the seeds have diverged. Losses of problems
with a known minimum ``f*`` are drawn as ``f - f*`` (suboptimality), which a log scale can
show down to rounding error.

"train" is the full-batch training loss where the record has it at every logged step
(problems without data), else the mini-batch loss of each step (the runner evaluates the full
training set only at epoch ends); "test" is the held-out loss at evaluation points.
"""

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .. import problems
from . import figures

QUANTILES = (25, 50, 75)


def problem_optimum(problem, options=None):
    """The problem's known minimal loss ``f*``, or ``None``."""
    return problems.make(problem, **dict(options or {})).optimum


def train_column(log):
    """``full_train_loss`` when every logged row has it (the row of a divergence aside, which
    is never evaluated), else ``train_loss``."""
    evaluated = log.loc[~log["diverged"].astype(bool), "full_train_loss"].notna().all()
    return "full_train_loss" if evaluated else "train_loss"


def seed_matrix(runs, column):
    """``(steps, values)``: the sorted steps where ``column`` has a value in any run, and a
    (steps x seeds) array of it, NaN where a seed logged nothing at a step, ``+inf`` from a
    diverged seed's last step on."""
    rows = runs[runs[column].notna() | runs["diverged"]]
    wide = rows.pivot_table(index="step", columns="seed", values=column, aggfunc="first")
    wide = wide.reindex(sorted(rows["step"].unique()))
    for seed, run in runs.groupby("seed"):
        if run["diverged"].any() and seed in wide.columns:
            wide.loc[wide.index >= run["step"].max(), seed] = np.inf
    return wide.index.to_numpy(), wide.to_numpy(dtype=float)


def quartiles(values):
    """25th, 50th and 75th percentiles of each row of ``values`` (2-D, or 1-D for one row),
    NaN ignored, linear interpolation between order statistics as ``numpy.percentile``, but
    ``+inf`` (a diverged run) is a value like any other: a percentile between a finite value
    and ``inf`` is ``inf``. A row of NaN only gives NaN."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    ordered = np.sort(values, axis=1)  # NaN last
    count = np.sum(~np.isnan(values), axis=1)
    rows = np.arange(values.shape[0])
    out = []
    for q in QUANTILES:
        position = q / 100 * np.maximum(count - 1, 0)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, np.maximum(count - 1, 0))
        a, b = ordered[rows, low], ordered[rows, high]
        fraction = position - low
        with np.errstate(invalid="ignore"):
            between = np.where((fraction == 0) | (a == b), a, a + (b - a) * fraction)
        out.append(np.where(count > 0, between, np.nan))
    return tuple(out)


def curve_data(log, *, optimum=None, group="optimizer"):
    """Tidy median-and-IQR curves: one row per (``group`` value, lr, metric, step) with
    ``epoch``, ``examples_seen``, ``wall_time`` (median over seeds, seconds), ``median``,
    ``q25``, ``q75`` and ``seeds``; ``f*`` subtracted when ``optimum`` is given."""
    train = train_column(log)
    offset = 0.0 if optimum is None else float(optimum)
    frames = []
    for (name, lr), runs in log.groupby([group, "lr"], sort=False):
        by_step = runs.groupby("step")
        for metric, column in (("train", train), ("test", "test_loss")):
            if runs[column].isna().all():
                continue
            steps, values = seed_matrix(runs, column)
            q25, median, q75 = quartiles(values - offset)
            wall = by_step["wall_time"].median().reindex(steps).to_numpy()
            frames.append(
                pd.DataFrame(
                    {
                        group: name,
                        "lr": lr,
                        "metric": metric,
                        "step": steps,
                        "epoch": by_step["epoch"].first().reindex(steps).to_numpy(),
                        "examples_seen": by_step["examples_seen"].first().reindex(steps).to_numpy(),
                        "wall_time": wall,
                        "median": median,
                        "q25": q25,
                        "q75": q75,
                        "seeds": runs["seed"].nunique(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


X_AXES = (("step", "steps"), ("epoch", "epochs"), ("wall_time", "wall-clock time (s)"))


def curves_figure(data, *, title, suboptimality=False, group="optimizer", x_axes=X_AXES):
    """Rows: train (and test) loss; columns: against steps, epochs and wall-clock time; one
    median line with its IQR band per ``group`` value."""
    metrics = [m for m in ("train", "test") if m in set(data["metric"])]
    fig, axes = figures.new_figure(len(metrics), len(x_axes), width=3.3 * len(x_axes))
    names = list(dict.fromkeys(data[group]))
    palette = figures.colors(names) if group == "optimizer" else None
    for row, metric in enumerate(metrics):
        subset = data[data["metric"] == metric]
        for col, (x, xlabel) in enumerate(x_axes):
            ax = axes[row, col]
            for (name, lr), line in subset.groupby([group, "lr"], sort=False):
                colour = palette[name] if palette else figures.color(name, names)
                label = f"{name} (lr {lr:.3g})" if group == "optimizer" else str(name)
                ax.plot(line[x], line["median"], color=colour, label=label)
                ax.fill_between(
                    line[x], line["q25"], line["q75"], color=colour, alpha=0.2, linewidth=0
                )
            figures.log_scale_if_wide(ax, subset["median"])
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.set_xlabel(xlabel)
            if col == 0:
                loss = "loss - f*" if suboptimality else "loss"
                ax.set_ylabel(f"{metric} {loss}")
    figures.legend_outside(fig, axes[0, 0], "outside right upper", ncols=1)
    fig.suptitle(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# learning-rate sensitivity
# --------------------------------------------------------------------------------------------
def lr_sensitivity_data(scores):
    """Median and IQR over seeds of each run's score (:func:`optbench.sweep.score_runs`, the
    value the tuning chose by; ``inf`` for a diverged run) per (problem, optimizer, lr), with
    the share of diverged seeds."""
    rows = []
    for (problem, optimizer, lr), runs in scores.groupby(["problem", "optimizer", "lr"]):
        values = runs["score"].to_numpy(dtype=float)
        q25, median, q75 = (float(v[0]) for v in quartiles(values))
        rows.append(
            (problem, optimizer, lr, median, q25, q75, len(values), np.isinf(values).mean())
        )
    columns = ["problem", "optimizer", "lr", "median", "q25", "q75", "seeds", "diverged"]
    return pd.DataFrame(rows, columns=columns)


# A final loss this many times the loss scale above the loss at the smallest rate is drawn as
# blown up (a triangle on the top edge), so that one run at 1e200 leaves the axis readable.
BLOWN_UP_FACTOR = 100.0


def blown_up_ceiling(subset):
    """The loss above which a problem's point is drawn as blown up: the largest finite median
    at the smallest learning rate (about the untrained loss) plus ``BLOWN_UP_FACTOR`` times
    its magnitude (at least 1)."""
    first = subset[subset["lr"] == subset["lr"].min()]["median"]
    first = first[np.isfinite(first)]
    if not len(first):
        return np.inf
    reference = float(first.max())
    return reference + BLOWN_UP_FACTOR * max(abs(reference), 1.0)


def lr_sensitivity_figure(data, best):
    """One panel per problem: final loss against learning rate (log), one line per
    optimizer; diverged medians as crosses on the top edge, medians beyond
    :func:`blown_up_ceiling` as triangles there, the tuned lr as a ring."""
    problems_ = list(dict.fromkeys(data["problem"]))
    ncols = min(3, len(problems_))
    nrows = -(-len(problems_) // ncols)
    fig, axes = figures.new_figure(nrows, ncols, width=3.6 * ncols)
    palette = figures.colors(list(dict.fromkeys(data["optimizer"])))
    for ax, problem in zip(axes.flat, problems_, strict=False):
        subset = data[data["problem"] == problem]
        ceiling = blown_up_ceiling(subset)
        drawn = np.isfinite(subset["median"]) & (subset["median"] <= ceiling)
        finite = subset["median"][drawn]
        for optimizer, line in subset.groupby("optimizer", sort=False):
            colour = palette[optimizer]
            ok = np.isfinite(line["median"]) & (line["median"] <= ceiling)
            ax.plot(line["lr"][ok], line["median"][ok], marker=".", color=colour, label=optimizer)
            ax.fill_between(
                line["lr"][ok], line["q25"][ok], line["q75"][ok], color=colour, alpha=0.15, lw=0
            )
            chosen = best[(best["problem"] == problem) & (best["optimizer"] == optimizer)]
            picked = line[line["lr"].isin(chosen["lr"]) & ok]
            ax.scatter(picked["lr"], picked["median"], s=40, facecolors="none", edgecolors=colour)
        ax.set_xscale("log")
        figures.log_scale_if_wide(ax, finite)
        if len(finite):
            ax.set_ylim(top=ax.get_ylim()[1])
            top = ax.get_ylim()[1]
            for optimizer, line in subset.groupby("optimizer", sort=False):
                finite = np.isfinite(line["median"])
                # crosses: diverged; triangles: finite but blown up
                for off, marker in ((~finite, "x"), (finite & (line["median"] > ceiling), "^")):
                    edge = line[off]
                    ax.scatter(
                        edge["lr"],
                        [top] * len(edge),
                        marker=marker,
                        color=palette[optimizer],
                        clip_on=False,
                    )
        ax.set_title(problem)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final loss")
    for ax in axes.flat[len(problems_) :]:
        ax.set_visible(False)
    labels = len(palette)
    figures.legend_outside(fig, axes[0, 0], "outside lower center", ncols=min(labels, 6))
    return fig


# --------------------------------------------------------------------------------------------
# 2-D trajectories
# --------------------------------------------------------------------------------------------
def trajectory_data(log, *, label_column):
    """The parameter path of each run: ``label``, ``lr``, ``seed``, ``step``, ``x``, ``y``,
    ``loss`` (full training loss) and ``diverged``."""
    columns = [label_column, "lr", "seed", "step", "param_0", "param_1", "full_train_loss"]
    out = log[[*columns, "diverged"]]
    return out.rename(
        columns={label_column: "label", "param_0": "x", "param_1": "y", "full_train_loss": "loss"}
    ).reset_index(drop=True)


def contour_grid(problem, points=160):
    """``(xs, ys, loss)`` over the problem's ``bounds``: ``points`` values of each variable and
    the loss at ``(xs[j], ys[i])`` in ``loss[i, j]``."""
    (x0, x1), (y0, y1) = problem.bounds
    xs, ys = np.linspace(x0, x1, points), np.linspace(y0, y1, points)
    return xs, ys, np.asarray(problem.loss_grid(xs, ys), dtype=float)


def _contour(ax, problem):
    xs, ys, loss = contour_grid(problem)
    low = loss.min()
    shifted = loss - low
    positive = shifted[shifted > 0]
    if positive.size and positive.max() / positive.min() > 1e3:
        levels = low + np.geomspace(max(positive.min(), positive.max() * 1e-6), positive.max(), 18)
    else:
        levels = np.linspace(loss.min(), loss.max(), 18)
    ax.contour(xs, ys, loss, levels=levels, colors="0.6", linewidths=0.6)
    ax.plot(*problem.x_star, marker="*", color="black", markersize=9, linestyle="none")
    (x0, x1), (y0, y1) = problem.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def trajectories_figure(problem, paths, lr_paths, *, lr_optimizer):
    """Left: each optimizer's path from the start (square) at its tuned lr; right:
    ``lr_optimizer`` at too-low, tuned and too-high learning rates; both on the loss's contour
    lines, the minimum as a star."""
    fig, axes = figures.new_figure(1, 2, width=9.0, height=4.2)
    palette = figures.colors(list(dict.fromkeys(paths["label"])))
    lrs = list(dict.fromkeys(lr_paths["lr"]))
    for ax, data, title in (
        (axes[0, 0], paths, "each optimizer at its tuned learning rate"),
        (axes[0, 1], lr_paths, f"{lr_optimizer}: learning rate too low, tuned, too high"),
    ):
        _contour(ax, problem)
        for (label, lr), path in data.groupby(["label", "lr"], sort=False):
            colour = palette[label] if data is paths else figures.color(lr, lrs)
            text = f"{label} (lr {lr:.3g})" if data is paths else f"lr {lr:.3g}"
            if path["diverged"].any():
                text += ", diverged"
            ax.plot(path["x"], path["y"], color=colour, lw=1.0, marker=".", ms=2, label=text)
        start = data.iloc[0]
        ax.plot(start["x"], start["y"], marker="s", color="black", ms=5, linestyle="none")
        ax.set_title(title)
        ax.set_xlabel("$x_0$")
        ax.set_ylabel("$x_1$")
        ax.legend(loc="best", fontsize=6)
    fig.suptitle(problem.name, fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# batch sizes, normalization, per-layer gradient norms
# --------------------------------------------------------------------------------------------
def evaluation_data(log, group):
    """Median and IQR over seeds of the full-batch training loss, held-out loss and accuracy at
    the evaluation points, per (``group``, optimizer, step)."""
    columns = [
        c
        for c in ("full_train_loss", "test_loss", "test_accuracy", "train_accuracy")
        if c in log and log[c].notna().any()
    ]
    frames = []
    for (name, optimizer), runs in log.groupby([group, "optimizer"], sort=False):
        evaluated = runs[runs["full_train_loss"].notna() | runs["diverged"]]
        by_step = evaluated.groupby("step")
        for column in columns:
            steps, values = seed_matrix(evaluated, column)
            q25, median, q75 = quartiles(values)
            frames.append(
                pd.DataFrame(
                    {
                        group: name,
                        "optimizer": optimizer,
                        "metric": column,
                        "step": steps,
                        "epoch": by_step["epoch"].first().reindex(steps).to_numpy(),
                        "examples_seen": by_step["examples_seen"].first().reindex(steps).to_numpy(),
                        "median": median,
                        "q25": q25,
                        "q75": q75,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _band(ax, line, x, colour, label):
    ax.plot(line[x], line["median"], color=colour, marker=".", ms=3, label=label)
    ax.fill_between(line[x], line["q25"], line["q75"], color=colour, alpha=0.2, linewidth=0)


def batch_size_figure(data):
    """Rows: optimizers; columns: full-batch training loss against steps (log) and against
    examples seen; one line per batch size."""
    optimizers = list(dict.fromkeys(data["optimizer"]))
    sizes = list(dict.fromkeys(data["batch_size"]))
    train = data[data["metric"] == "full_train_loss"]
    fig, axes = figures.new_figure(len(optimizers), 2, width=8.0)
    for row, optimizer in enumerate(optimizers):
        subset = train[train["optimizer"] == optimizer]
        for col, (x, xlabel) in enumerate((("step", "steps"), ("examples_seen", "examples seen"))):
            ax = axes[row, col]
            for size in sizes:
                line = subset[subset["batch_size"] == size]
                _band(ax, line, x, figures.color(size, sizes), f"batch {size}")
            if x == "step":
                ax.set_xscale("symlog", linthresh=1)
            figures.log_scale_if_wide(ax, subset["median"])
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{optimizer}: training loss")
    axes[0, 0].legend(loc="best")
    return fig


def normalization_figure(data):
    """Rows: optimizers; columns: full-batch training loss, held-out loss and held-out
    accuracy against epochs; one line per normalization."""
    optimizers = list(dict.fromkeys(data["optimizer"]))
    norms = list(dict.fromkeys(data["norm"]))
    metrics = [
        m for m in ("full_train_loss", "test_loss", "test_accuracy") if m in set(data["metric"])
    ]
    fig, axes = figures.new_figure(len(optimizers), len(metrics), width=3.3 * len(metrics))
    for row, optimizer in enumerate(optimizers):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            subset = data[(data["optimizer"] == optimizer) & (data["metric"] == metric)]
            for norm in norms:
                _band(ax, subset[subset["norm"] == norm], "epoch", figures.color(norm, norms), norm)
            if metric != "test_accuracy":
                figures.log_scale_if_wide(ax, subset["median"], decades=1.0)
            ax.set_xlabel("epochs")
            ax.set_ylabel(f"{optimizer}: {metric.replace('_', ' ')}")
    axes[0, 0].legend(loc="best", title="norm")
    return fig


def grokking_figure(data):
    """Training and test accuracy against steps (median and IQR over seeds), one line per
    run label (``data``: :func:`evaluation_data` grouped by ``label``)."""
    labels = list(dict.fromkeys(data["label"]))
    metrics = (("train_accuracy", "training accuracy"), ("test_accuracy", "test accuracy"))
    fig, axes = figures.new_figure(1, 2, width=8.0)
    for col, (metric, title) in enumerate(metrics):
        ax = axes[0, col]
        for label in labels:
            line = data[(data["label"] == label) & (data["metric"] == metric)]
            _band(ax, line, "step", figures.color(label, labels), label)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("steps")
        ax.set_ylabel(title)
    axes[0, 0].legend(loc="best")
    return fig


def layer_norm_data(log):
    """Median and IQR (over seeds and logged steps) of each layer's gradient L2 norm, per
    variant: ``variant``, ``layer`` (0 = input layer), ``median``, ``q25``, ``q75``,
    ``samples``."""
    columns = sorted(
        (c for c in log.columns if c.startswith("layer_grad_norm_")),
        key=lambda c: int(c.rsplit("_", 1)[1]),
    )
    rows = log[log["step"] > 0]
    out = []
    for variant, runs in rows.groupby("variant", sort=False):
        for column in columns:
            values = runs[column].dropna().to_numpy(dtype=float)
            if values.size:
                q25, median, q75 = (float(v[0]) for v in quartiles(values))
                out.append((variant, int(column.rsplit("_", 1)[1]), median, q25, q75, values.size))
    return pd.DataFrame(out, columns=["variant", "layer", "median", "q25", "q75", "samples"])


def layer_norm_figure(norms, curves):
    """Left: per-layer gradient norms (log) of each variant, input layer first; right: the
    variants' training loss against steps."""
    variants = list(dict.fromkeys(norms["variant"]))
    fig, axes = figures.new_figure(1, 2, width=9.0, height=3.6)
    ax = axes[0, 0]
    for variant in variants:
        line = norms[norms["variant"] == variant]
        _band(ax, line, "layer", figures.color(variant, variants), variant)
    ax.set_yscale("log")
    ax.set_xlabel("layer (0 = input layer)")
    ax.set_ylabel("gradient L2 norm")
    ax.set_title("per-layer gradient norms")
    ax.legend(loc="best")
    ax = axes[0, 1]
    train = curves[curves["metric"] == "train"]
    for variant in variants:
        _band(
            ax,
            train[train["variant"] == variant],
            "step",
            figures.color(variant, variants),
            variant,
        )
    figures.log_scale_if_wide(ax, train["median"], decades=1.0)
    ax.set_xlabel("steps")
    ax.set_ylabel("mini-batch training loss")
    ax.set_title("training")
    return fig
