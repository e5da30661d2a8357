"""Build a report: run (or reuse) what a profile asks for, draw, and write the directory.

::

    from optbench.report import build, profiles
    build.build(profiles.QUICK, "reports/quick")

``<out_dir>/`` receives ``index.html``, ``report.md``, ``figures/*.png|svg``, ``data/*.csv``
(the tidy table behind every figure and table, and ``measurements.csv`` for ``optbench
compare``) and ``runs/`` (every training run, reused when the report is built again).
"""

import contextlib
import dataclasses
import json
import os
import sys
import time

import numba
import numpy as np
import pandas as pd

from .. import problems, registry, sweep
from .. import targets as stored_targets
from . import (
    compare,
    convergence,
    ema,
    figures,
    history,
    packs,
    ranking,
    render_html,
    render_markdown,
    runs,
    sysinfo,
)
from . import throughput as speed
from .document import Document, Figure, Section, Table, Text


class Report:
    """The report being written: its directory, its sections, and the stage timings."""

    def __init__(self, out_dir, progress):
        self.out_dir = os.fspath(out_dir)
        self.progress = progress
        self.sections = []
        self.timings = []
        self.measurements = []
        self.written = set()  # paths relative to out_dir

    def section(self, title):
        section = Section(title)
        self.sections.append(section)
        return section

    def figure(self, section, name, fig, caption, data):
        """Save ``fig`` and its ``data`` (a DataFrame or a list of (suffix, DataFrame)) and add
        the figure to ``section``."""
        tables = data if isinstance(data, list) else [("", data)]
        paths = tuple(self.data(frame, name + suffix) for suffix, frame in tables)
        png, svg = figures.save_figure(fig, self.out_dir, name)
        self.written.update((png, svg))
        section.blocks.append(Figure(name, caption, png, svg, paths))

    def table(self, section, name, frame, caption):
        path = self.data(frame, name)
        section.blocks.append(Table(name, caption, frame.reset_index(drop=True), path))

    def data(self, frame, name):
        path = figures.save_table(frame, self.out_dir, name)
        self.written.add(path)
        return path

    def remove_stale(self):
        """Delete figures and data files an earlier build wrote and this one did not."""
        for directory in (figures.FIGURE_DIR, figures.DATA_DIR):
            for entry in os.scandir(os.path.join(self.out_dir, directory)):
                if entry.is_file() and os.path.join(directory, entry.name) not in self.written:
                    os.unlink(entry.path)

    def text(self, section, text):
        section.blocks.append(Text(text))

    @contextlib.contextmanager
    def stage(self, name):
        if self.progress:
            print(f"== {name}", file=sys.stderr)
        start = time.perf_counter()
        yield
        self.timings.append((name, time.perf_counter() - start))


def build(
    profile,
    out_dir,
    *,
    jobs=1,
    threads=None,
    throughput=True,
    asv_results=".asv/results",
    progress=True,
    baseline=None,
    reference="shipped",
):
    """Write the report of ``profile`` (a :class:`.profiles.Profile`) to ``out_dir`` and return
    the path of its ``index.html``.

    jobs : worker processes for the training runs (each run is single-threaded)
    threads : Numba threads for the throughput measurement (default: Numba's current count)
    throughput : measure kernel speed (False: skip the throughput section, and the ranking's
        seconds are left empty)
    asv_results : asv's results directory, drawn as history when it holds results
    baseline : a :class:`.packs.Pack`: compare ``profile``'s optimizers (run now on the pack's
        studies: ``pack.profile_for(names)``) with the pack's others, judged on the pack's
        references; the lessons, throughput and history are left out
    reference : the pack whose references judge the studies (targets of closed-form problems,
        reference steps of the absolute score): a :class:`.packs.Pack`, ``"shipped"`` (the
        package's pack of the profile, where it has one that matches) or None (Moré-Wild
        targets over the runs present and scores relative to the best present); a
        ``baseline`` is its own reference
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
    ):
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if threads is not None and threads > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"threads must be <= NUMBA_NUM_THREADS ({numba.config.NUMBA_NUM_THREADS}), "
            f"got {threads}"
        )
    pack = _reference_pack(profile, baseline, reference)
    os.makedirs(out_dir, exist_ok=True)
    report = Report(out_dir, progress)
    started = time.perf_counter()
    machine = packs.this_machine()

    with report.stage("convergence studies"):
        tuned = runs.tune_profile(profile, out_dir, jobs=jobs, progress=progress)
        data = _convergence(profile, tuned, pack, baseline=baseline is not None, machine=machine[0])
    speeds = None
    if throughput and profile.throughput is not None and baseline is None:
        with report.stage("throughput"):
            speeds = speed.measure_profile(
                profile,
                threads=threads,
                progress=progress,
                cache_dir=os.path.join(out_dir, runs.RUNS_DIR, "throughput"),
            )

    with report.stage("convergence figures"):
        _convergence_sections(report, profile, data, speeds)
    if baseline is None:
        _lesson_sections(report, profile, tuned, out_dir, jobs, progress, speeds, asv_results)
    _machine_section(report, threads, machine, pack)
    total = time.perf_counter() - started
    timings = pd.DataFrame([*report.timings, ("total", total)], columns=["stage", "seconds"])
    report.table(
        report.sections[-1],
        "timings",
        timings,
        "Time per stage of this build (runs reused from an earlier build cost nothing).",
    )
    report.data(pd.concat(report.measurements, ignore_index=True), "measurements")
    report.remove_stale()
    document = Document(
        title=f"optbench report: {profile.name}",
        subtitle=f"Profile `{profile.name}`: {profile.description}. "
        f"Optimizers: {', '.join(profile.optimizers)}. "
        f"Data behind every figure and table: `data/`; all runs: `runs/`; "
        f"`data/measurements.csv` is what `optbench compare` reads.",
        sections=report.sections,
    )
    figures.write_text(os.path.join(out_dir, "report.md"), render_markdown.render(document))
    index = os.path.join(out_dir, "index.html")
    figures.write_text(index, render_html.render(document))
    figures.write_text(
        os.path.join(out_dir, "report.json"),
        json.dumps({"profile": profile.name, "seconds": round(total, 3)}, indent=1) + "\n",
    )
    return index


def _reference_pack(profile, baseline, reference):
    """The pack that judges ``profile``'s studies (see :func:`build`), or None."""
    if baseline is not None:
        if not isinstance(baseline, packs.Pack):
            raise TypeError(f"baseline must be a packs.Pack, got {type(baseline).__name__}")
        if not baseline.matches(profile):
            raise ValueError(
                "baseline: the profile's studies, seeds or tolerance are not the pack's "
                "(make the profile with pack.profile_for(optimizers))"
            )
        return baseline
    if isinstance(reference, str) and reference == "shipped":
        pack = packs.shipped(profile.name)
        return pack if pack is not None and pack.matches(profile) else None
    if reference is not None and not isinstance(reference, packs.Pack):
        raise TypeError(
            f"reference must be a packs.Pack, 'shipped' or None, got {type(reference).__name__}"
        )
    if reference is not None and not reference.matches(profile):
        raise ValueError("reference: the profile's studies, seeds or tolerance are not the pack's")
    return reference


def _lesson_sections(report, profile, tuned, out_dir, jobs, progress, speeds, asv_results):
    with report.stage("2-D trajectories"):
        _trajectory_section(report, profile, tuned, out_dir, progress)
    with report.stage("batch sizes"):
        _batch_section(report, profile, tuned, out_dir, jobs, progress)
    with report.stage("normalization"):
        _normalization_section(report, profile, out_dir, jobs, progress)
    with report.stage("grokking"):
        _grokking_section(report, profile, out_dir, progress)
    with report.stage("EMA lesson"):
        _ema_section(report)
    if speeds is not None:
        with report.stage("throughput figures"):
            speed.sections(report, speeds)
    with report.stage("asv history"):
        _history_section(report, asv_results)


def _machine_section(report, threads, machine, pack):
    section = report.section("Machine and software")
    report.table(section, "machine", sysinfo.collect(threads), "Where and with what this ran.")
    if pack is not None:
        rows = [
            {"machine": identifier, **description}
            for identifier, description in pack.machines.items()
        ]
        report.table(
            section,
            "pack-machines",
            pd.DataFrame(rows),
            f"The machines of the baseline pack ({pack.profile}, made {pack.created}, fixed "
            f"targets v{pack.targets_version}); this machine is {machine[0]!r}.",
        )


# --------------------------------------------------------------------------------------------
# convergence
# --------------------------------------------------------------------------------------------
def _labelled(log, study):
    return log.assign(problem=study.label)


@dataclasses.dataclass
class Convergence:
    """The tuned studies as the sections draw them: ``finals`` (study label to its final
    runs, the pack's baselines beside this build's), ``scores`` (search scores), ``best``
    (the chosen rates), the ``pack`` that judges them and its ``references`` (None: Moré-Wild
    targets over the runs present, relative scores)."""

    finals: dict
    scores: pd.DataFrame
    best: pd.DataFrame
    pack: object = None
    references: pd.DataFrame | None = None
    baseline: bool = False


def _convergence(profile, tuned, pack, *, baseline, machine):
    """Join this build's tuned studies with the pack's runs (``baseline``: those of the
    optimizers not run now) and the pack's references."""
    finals, scores, best = {}, [], []
    for study in profile.studies:
        result = tuned[study.label]
        finals[study.label] = _labelled(result.final, study).assign(
            machine=machine, source=THIS_RUN
        )
        scores.append(sweep.score_runs(result.search).assign(problem=study.label))
        best.append(result.best.assign(problem=study.label))
    references = None
    if pack is not None:
        references = packs.references(pack, prefer=machine)
    if baseline:
        others = ~pack.runs["optimizer"].isin(list(profile.optimizers))
        kept = packs.Pack(**{**vars(pack), "runs": pack.runs[others]})
        log = kept.final_log(prefer=machine).assign(source=PACK)
        for label, rows in log.groupby("problem", sort=False):
            finals[label] = pd.concat([rows, finals[label]], ignore_index=True)
        scores.insert(0, kept.search_scores(prefer=machine))
        best.insert(0, kept.best(prefer=machine))
    return Convergence(
        finals=finals,
        scores=pd.concat(scores, ignore_index=True),
        best=pd.concat(best, ignore_index=True),
        pack=pack,
        references=references,
        baseline=baseline,
    )


def _convergence_sections(report, profile, data, speeds):
    section = report.section("Convergence")
    if profile.lrs is None and all(s.lrs is not None for s in profile.studies):
        grid = "each study's own"
    elif profile.lrs is None:
        grid = "each optimizer's registry lr times 10^k, k = -2, -1.5, ..., 1"
    else:
        grid = ", ".join(f"{lr:g}" for lr in profile.lrs)
    report.text(
        section,
        f"Each optimizer's learning rate is tuned per problem on the grid ({grid}): every rate "
        "runs on "
        f"the search seed(s) {list(profile.search_seeds)}, the one with the lowest final loss "
        "(held-out where the problem has held-out data, else training; diverged runs last) is "
        f"re-run on seeds {list(profile.seeds)}, and those runs are drawn: the median over "
        "seeds as a line, the interquartile range as a band. Problems with a known minimum f* "
        "show f - f*.",
    )
    if data.baseline:
        machines = ", ".join(data.pack.machines)
        report.text(
            section,
            f"Run now: {', '.join(profile.optimizers)}; the other optimizers are the baseline "
            f"pack's ({data.pack.profile}, made {data.pack.created} on {machines}), tuned on "
            "the same grids and seeds. Wall-clock axes: each run's own machine.",
        )
    own = [s for s in profile.studies if s.lrs is not None and profile.lrs is not None]
    if own:
        report.text(
            section,
            "Studies with a grid of their own: "
            + "; ".join(f"{s.label}: {', '.join(f'{lr:g}' for lr in s.lrs)}" for s in own)
            + ".",
        )
    for study in profile.studies:
        final = data.finals[study.label]
        optimum = convergence.problem_optimum(study.problem, study.options)
        curves = convergence.curve_data(final, optimum=optimum)
        # a problem without data has one step per epoch: no epochs axis to repeat the steps'
        x_axes = convergence.X_AXES
        if (final["epoch"] == final["step"]).all():
            x_axes = tuple(axis for axis in x_axes if axis[0] != "epoch")
        fig = convergence.curves_figure(
            curves, title=study.label, suboptimality=optimum is not None, x_axes=x_axes
        )
        name = f"curves-{study.key}"
        report.figure(
            section,
            name,
            fig,
            f"{study.label}: loss against steps"
            f"{', epochs' if len(x_axes) == 3 else ''} and wall-clock time "
            f"(batch size {study.batch_size}; median and IQR over {len(profile.seeds)} seeds).",
            curves,
        )
    log = pd.concat(list(data.finals.values()), ignore_index=True)
    report.measurements.append(compare.run_measurements(log[log["source"] == THIS_RUN]))

    section = report.section("Learning-rate sensitivity")
    sensitivity = convergence.lr_sensitivity_data(data.scores)
    report.figure(
        section,
        "lr-sensitivity",
        convergence.lr_sensitivity_figure(sensitivity, data.best),
        "Final loss (the tuning score) against learning rate: median and IQR over the search "
        "seeds; crosses on the top edge: diverged; triangles there: finite but blown up (more "
        f"than {convergence.BLOWN_UP_FACTOR:g} times the loss scale above the loss at the "
        "smallest rate); rings: the rate chosen.",
        sensitivity,
    )
    report.table(
        section,
        "tuned-lr",
        data.best[["problem", "optimizer", "batch_size", "lr", "score"]],
        "The learning rate chosen per problem and optimizer, and its mean search score.",
    )

    _ranking_section(report, profile, log, speeds, data)


THIS_RUN = "this run"
PACK = "pack"


def fixed_targets(profile):
    """``{study label: target}``: the stored test-accuracy target (:mod:`optbench.targets`)
    of every study of ``profile`` that is one of its workloads."""
    return packs.fixed_targets(profile.studies)


def _ranking_section(report, profile, log, speeds, data):
    section = report.section("Ranking")
    references = data.references
    if references is None:
        targets = packs.study_targets(profile.studies, log, profile.tolerance)
    else:
        targets = references
    fixed = [label for label, row in targets.iterrows() if row["judged_on"] == packs.ON_ACCURACY]
    log = packs.judged(log, fixed)
    cost = None
    if speeds is not None:
        sizes = speed.problem_sizes(profile)
        cost = speed.step_cost(speeds.problem_table, sizes, profile.optimizers)
    judged_targets = targets["judged_target"]
    table = ranking.ranking(log, judged_targets, cost, metric=packs.JUDGED)
    # the final value in its own units: accuracy where the study is judged on accuracy
    accuracy = table["problem"].isin(fixed).to_numpy()
    table.loc[accuracy, ["final", "final_low", "final_high"]] = -table.loc[
        accuracy, ["final", "final_high", "final_low"]
    ].to_numpy()
    version = stored_targets.stored()["version"]
    table["target"] = table["problem"].map(targets["target"])
    fixed_text = f"test accuracy >= (fixed, v{version})"
    loss_text = "training loss <= " + ("(pack)" if references is not None else "(Moré-Wild)")
    table.insert(
        3,
        "judged_on",
        table["problem"].map(lambda p: fixed_text if p in fixed else loss_text),
    )
    sources = log.drop_duplicates(["problem", "optimizer"]).set_index(["problem", "optimizer"])
    pairs = pd.MultiIndex.from_frame(table[["problem", "optimizer"]])
    table["source"] = sources["source"].reindex(pairs).to_numpy()
    table["machine"] = sources["machine"].reindex(pairs).to_numpy()
    pack_text = ""
    if references is not None:
        pack_text = (
            f" Closed-form problems' loss targets and every problem's reference steps come "
            f"from the baseline pack ({data.pack.profile}, made {data.pack.created}): Moré and "
            f"Wild's target over the pack's runs, and the fewest median steps of any of its "
            "optimizers to the target; the targets and scores therefore do not move when an "
            "optimizer is added."
        )
    report.text(
        section,
        "Target per problem: the fixed target of its workload where optbench stores one (test "
        "accuracy, set by tuned AdamW, NAdamW, heavy-ball and Nesterov SGD: `optbench "
        f"targets`, version {version}), so that adding an optimizer moves no other's steps; "
        f"else closing all but {profile.tolerance:g} of the gap between the "
        "initial loss and the lowest loss any optimizer reached (Moré and Wild), on the "
        "full-batch training loss at evaluation points (every logged step for problems without "
        "data, every epoch end for the others); a profile may set a target instead."
        + pack_text
        + " Steps: median over seeds, a seed that never reaches the target counting as "
        "infinitely many steps (not reached by the median seed: a dash). Seconds: steps x the "
        "optimizer kernel's measured time per step at the problem's parameter count (the "
        "throughput measurement); wall seconds: the runs' measured training time, gradients "
        "included, on the machine named in the row.",
    )
    unfused = [name for name in table["optimizer"].unique() if not registry.get(name).fused]
    if unfused:
        report.text(
            section,
            "Unfused (no fused kernel: an update called array by array from Python): "
            f"{', '.join(unfused)}. "
            "Their seconds are those of that update, not of a fused kernel.",
        )
    report.table(
        section,
        "ranking",
        table,
        "Steps and seconds to the target; steps_low and steps_high: the 95% bootstrap "
        "interval of the median steps over seeds (inf: not reached in that share of "
        "resamples); rank_low and rank_high: the interval of the rank, the seeds resampled "
        "jointly; final: the median final value of what the problem is judged on (test "
        "accuracy or training loss) with its interval.",
    )
    this_run = sorted(set(table.loc[table["source"] == THIS_RUN, "optimizer"]))
    report.figure(
        section,
        "steps-to-target",
        ranking.steps_figure(table, marked=this_run if data.baseline else ()),
        "Median steps to target (dot) and its 95% bootstrap interval over seeds (bar; an "
        "arrow: the interval reaches 'never'); a cross on the right edge: the median seed "
        "never reaches the target"
        + (" (bold: run now; the others: the baseline pack)." if data.baseline else "."),
        table,
    )
    report.measurements.append(
        _steps_measurements(log[log["source"] == THIS_RUN], judged_targets, packs.JUDGED)
    )
    runs = ranking.first_reach(log, judged_targets, metric=packs.JUDGED)
    step_scores = None
    step_costs = {"steps": None}
    if cost is not None:
        step_costs["seconds"] = cost
    for column, label in (("steps_to_target", "steps"), ("seconds_to_target", "seconds")):
        costs = table.rename(columns={column: "cost"})[["problem", "optimizer", "cost"]]
        if not costs["cost"].notna().any():
            continue
        reference = None
        if label == "steps" and references is not None:
            reference = references["reference_steps"]
        profile_data = ranking.performance_profile(costs, reference=reference)
        intervals = ranking.profile_score_intervals(
            runs, step_costs.get(label), reference=reference
        )
        scores = (
            ranking.profile_scores(costs, reference=reference).to_frame().join(intervals)
        ).reset_index()
        against = (
            "the baseline pack's reference steps (the fewest of its optimizers)"
            if reference is not None
            else f"the best optimizer's {label} present"
        )
        report.figure(
            section,
            f"performance-profile-{label}",
            ranking.profile_figure(profile_data, title=f"performance profile: {label} to target"),
            f"Dolan-Moré performance profile of {label} to target: the fraction of problems "
            f"each optimizer solves within a factor τ of {against}.",
            [("", profile_data), ("-scores", scores)],
        )
        absolute = (
            " Against the pack's fixed references, a score depends on the optimizer's own "
            "runs alone: adding an optimizer changes no other score."
            if reference is not None
            else " Relative to the best present: adding an optimizer can change every score."
        )
        if label == "steps":
            step_scores = scores
        report.table(
            section,
            f"profile-scores-{label}",
            scores,
            f"Area under each profile on [1, 4] over 3 ({label}): 1 = as fast as {against} "
            "on every problem, 0 = solves none within a factor 4; score_low and score_high: "
            "its 95% bootstrap interval, every problem's seeds resampled." + absolute,
        )
    _summary_section(report, table, data, step_scores)


SUMMARY_BEST = 3


def summary_table(table):
    """Per problem of a ranking table: what it is judged on, the target, and its
    ``SUMMARY_BEST`` fastest optimizers by median steps to target, each with its 95% interval
    (``adam 120 [100, 140]``); a dash where fewer reach it."""
    rows = []
    for problem, group in table.groupby("problem", sort=False):
        ranked = group[group["steps_to_target"].notna()].sort_values(
            ["steps_to_target", "optimizer"], kind="stable"
        )
        best = [
            f"{row.optimizer} {row.steps_to_target:g} [{row.steps_low:g}, {row.steps_high:g}]"
            for row in ranked.head(SUMMARY_BEST).itertuples()
        ]
        best += ["-"] * (SUMMARY_BEST - len(best))
        first = group.iloc[0]
        rows.append(
            {
                "problem": problem,
                "judged_on": first["judged_on"],
                "target": first["target"],
                **{f"fastest_{i + 1}": text for i, text in enumerate(best)},
                "reached_by": f"{int((group['steps_to_target'].notna()).sum())} of {len(group)}",
            }
        )
    return pd.DataFrame(rows)


def pack_comparison(table, pack_table, references):
    """This build's optimizers against a baseline pack, one row per (problem, optimizer) of
    ``table`` run now (``source`` :data:`THIS_RUN`): median steps to target with the 95%
    interval; the same optimizer's in the pack (``pack_steps``, where it has one) and the
    change (``new``; ``faster`` or ``slower`` where the two intervals do not overlap, else
    ``same``; ``now reaches`` or ``no longer reaches``); the ratio to the pack's reference
    steps and the best baseline; the rank among the pack's other optimizers (1 = none
    faster; none where the target is not reached)."""
    rows = []
    ours = table[table["source"] == THIS_RUN]
    for row in ours.itertuples(index=False):
        in_pack = pack_table[pack_table["problem"] == row.problem]
        same = in_pack[in_pack["optimizer"] == row.optimizer]
        others = in_pack[in_pack["optimizer"] != row.optimizer]
        steps = _inf(row.steps_to_target)
        before = None if same.empty else same.iloc[0]
        change = "new" if before is None else _change(row, before)
        reference = references.loc[row.problem]
        rows.append(
            {
                "problem": row.problem,
                "optimizer": row.optimizer,
                "steps": row.steps_to_target,
                "steps_low": row.steps_low,
                "steps_high": row.steps_high,
                "pack_steps": np.nan if before is None else before["steps_to_target"],
                "change": change,
                "ratio_to_reference": steps / reference["reference_steps"]
                if np.isfinite(steps)
                else np.nan,
                "reference": f"{reference['reference_optimizer']} {reference['reference_steps']:g}",
                "rank_among_pack": 1 + int((others["steps_to_target"].fillna(np.inf) < steps).sum())
                if np.isfinite(steps)
                else np.nan,
                "pack_optimizers": len(others),
            }
        )
    return pd.DataFrame(rows)


def _inf(value):
    return np.inf if pd.isna(value) else float(value)


def _change(now, before):
    steps, old = _inf(now.steps_to_target), _inf(before["steps_to_target"])
    if np.isfinite(steps) != np.isfinite(old):
        return "now reaches" if np.isfinite(steps) else "no longer reaches"
    if now.steps_low > before["steps_high"]:
        return "slower"
    if now.steps_high < before["steps_low"]:
        return "faster"
    return "same"


def _summary_section(report, table, data, step_scores):
    """The report's first section: the fastest optimizers of every problem, the scores and,
    against a pack, what changed."""
    section = Section("Summary")
    report.sections.insert(0, section)
    report.text(
        section,
        "The fastest optimizers of each problem by median steps to its target, with the 95% "
        "bootstrap interval over seeds in brackets (details, seconds and the performance "
        "profiles: the Ranking section).",
    )
    report.table(section, "summary", summary_table(table), "Fastest to target, per problem.")
    if step_scores is not None:
        against = (
            "the baseline pack's reference steps: adding an optimizer changes no other score"
            if data.references is not None
            else "the fastest optimizer present"
        )
        report.table(
            section,
            "summary-scores",
            step_scores,
            "Score (area under the performance profile of steps to target on [1, 4], 1 = as "
            f"fast as {against}) with its 95% bootstrap interval.",
        )
    if data.pack is None:
        return
    pack_table = packs.ranking_table(data.pack)
    compared = pack_comparison(table, pack_table, data.references)
    changed = compared[~compared["change"].isin(["same"])]
    report.text(
        section,
        f"Against the baseline pack ({data.pack.profile}, made {data.pack.created} on "
        f"{', '.join(data.pack.machines)}): {len(compared)} optimizer-problem pairs run now, "
        f"{int((compared['change'] == 'new').sum())} new to the pack, "
        f"{len(changed) - int((compared['change'] == 'new').sum())} changed beyond the "
        "intervals. ratio_to_reference: steps over the pack's fewest (below 1: faster than "
        "every baseline); rank_among_pack: 1 + the pack's other optimizers that are faster.",
    )
    caption = (
        "This build's optimizers against the pack: steps to target now and in the pack, the "
        "change (faster or slower: the 95% intervals do not overlap)."
    )
    if data.baseline:
        report.table(section, "against-pack", compared, caption)
        return
    # the same optimizers as the pack's: the pairs that moved, every pair in the data file
    report.data(compared, "against-pack")
    if changed.empty:
        report.text(section, "Every pair is within its interval of the pack's steps.")
    else:
        report.table(section, "against-pack-changed", changed, caption + " Changed pairs only.")


def _steps_measurements(log, targets, metric):
    """Steps to target as a measurement table: median and quartiles over seeds (a seed that
    never reaches the target counts as infinitely many steps); an infinite median is left
    out."""
    runs = ranking.first_reach(log, targets, metric=metric)
    rows = []
    for (problem, optimizer), group in runs.groupby(["problem", "optimizer"], sort=True):
        q25, median, q75 = (float(v[0]) for v in convergence.quartiles(group["steps"]))
        if np.isfinite(median):
            item = f"problem={problem} optimizer={optimizer}"
            rows.append((item, "steps_to_target", median, q25, q75, len(group)))
    return pd.DataFrame(rows, columns=compare.MEASUREMENT_COLUMNS)


# --------------------------------------------------------------------------------------------
# lessons
# --------------------------------------------------------------------------------------------
def _best_lr(tuned, study, optimizer):
    """The lr tuned for ``optimizer`` on the study with ``study``'s label, else the registry's."""
    if study.label in tuned:
        best = tuned[study.label].best
        row = best[best["optimizer"] == optimizer]
        if len(row):
            return float(row["lr"].iloc[0])
    return registry.get(optimizer).lr


def _trajectory_section(report, profile, tuned, out_dir, progress):
    if not profile.trajectory_problems:
        return
    section = report.section("Trajectories on 2-D problems")
    report.text(
        section,
        "Parameter paths of one run per optimizer (its first seed) on contour lines of the "
        "loss, from the start (square) towards the minimum (star); on the right one optimizer "
        "with its tuned learning rate scaled by "
        + ", ".join(f"{f:g}" for f in profile.trajectory_lr_factors)
        + ": too small a rate crawls, too large a one oscillates or diverges.",
    )
    seed = profile.seeds[0]
    for name in profile.trajectory_problems:
        study = profile.study(name)
        if study is None:
            raise ValueError(f"trajectory problem {name!r} is not one of the profile's studies")
        specs = [
            runs.run_spec(study, o, _best_lr(tuned, study, o), seed, record_params=True)
            for o in profile.optimizers
        ]
        base = _best_lr(tuned, study, profile.trajectory_optimizer)
        lr_specs = [
            runs.run_spec(study, profile.trajectory_optimizer, base * f, seed, record_params=True)
            for f in profile.trajectory_lr_factors
        ]
        log = runs.cached_runs(specs + lr_specs, out_dir, f"{study.key}-paths", progress=progress)
        tuned_runs = log["run"] < len(specs)
        paths = convergence.trajectory_data(log[tuned_runs], label_column="optimizer")
        lr_paths = convergence.trajectory_data(log[~tuned_runs], label_column="optimizer")
        problem = problems.make(study.problem, **dict(study.options))
        fig = convergence.trajectories_figure(
            problem, paths, lr_paths, lr_optimizer=profile.trajectory_optimizer
        )
        report.figure(
            section,
            f"paths-{study.key}",
            fig,
            f"{study.label}: optimizer paths on the loss contours ({_budget(study)}).",
            [("-tuned", paths), ("-lr", lr_paths)],
        )


def _budget(study):
    return f"{study.steps} steps" if study.steps is not None else f"{study.epochs} epochs"


def _batch_section(report, profile, tuned, out_dir, jobs, progress):
    study = profile.batch_study
    if study is None or not profile.batch_sizes:
        return
    section = report.section("Batch size")
    logs = []
    for optimizer in profile.batch_optimizers:
        lr = _best_lr(tuned, study, optimizer)
        logs.append(
            runs.fixed_lr_runs(
                study,
                optimizer,
                lr,
                profile.batch_sizes,
                profile.seeds,
                out_dir,
                jobs=jobs,
                progress=progress,
            )
        )
    log = pd.concat(logs, ignore_index=True)
    data = convergence.evaluation_data(log, "batch_size")
    report.text(
        section,
        f"{study.label} for {_budget(study)} at each optimizer's tuned learning rate (the same "
        "for every batch size), full-batch training loss at the end of every epoch: on the "
        "left the progress per update (step, log scale), on the right per example seen (the "
        "gradient work done).",
    )
    report.figure(
        section,
        "batch-sizes",
        convergence.batch_size_figure(data),
        f"{study.label}: training loss against steps and against examples seen, per batch "
        "size (median and IQR over seeds).",
        data,
    )


def _normalization_section(report, profile, out_dir, jobs, progress):
    section = None
    if profile.norm_study is not None and profile.norms:
        section = report.section("Normalization")
        logs = []
        for norm in profile.norms:
            base = profile.norm_study
            study = dataclasses.replace(base, options={**base.options, "norm": norm})
            result = runs.tune_study(
                study, profile.norm_optimizers, profile, out_dir, jobs=jobs, progress=progress
            )
            logs.append(result.final.assign(norm=norm))
        log = pd.concat(logs, ignore_index=True)
        data = convergence.evaluation_data(log, "norm")
        report.figure(
            section,
            "normalization",
            convergence.normalization_figure(data),
            f"{profile.norm_study.label} without normalization, with BatchNorm and with "
            "LayerNorm before each activation; learning rate tuned for each (median and IQR "
            "over seeds).",
            data,
        )
    study = profile.grad_study
    if study is None or not profile.grad_variants:
        return
    if section is None:
        section = report.section("Normalization")
    specs, labels = [], []
    for label, options in profile.grad_variants:
        variant = dataclasses.replace(study, options={**study.options, **options})
        for seed in profile.seeds:
            specs.append(
                runs.run_spec(
                    variant,
                    profile.grad_optimizer,
                    profile.grad_lr,
                    seed,
                    record_layer_grad_norms=True,
                )
            )
            labels.append(label)
    log = runs.cached_runs(specs, out_dir, f"{study.key}-layer-norms", progress=progress)
    log["variant"] = np.asarray(labels)[log["run"].to_numpy()]
    norms = convergence.layer_norm_data(log)
    curves = convergence.curve_data(log, group="variant")
    ends = norms.sort_values("layer").groupby("variant", sort=False)["median"]
    spans = "; ".join(
        f"{variant}: {first / last:.2g}"
        for variant, first, last in zip(ends.first().index, ends.first(), ends.last(), strict=True)
    )
    report.figure(
        section,
        "layer-grad-norms",
        convergence.layer_norm_figure(norms, curves),
        f"{study.label}: L2 norm of each layer's gradient (median and IQR over seeds and "
        f"logged steps) and the training loss, {profile.grad_optimizer} at lr "
        f"{profile.grad_lr:g} for {_budget(study)}. Backpropagation multiplies the gradient "
        "by sigmoid' <= 1/4 at every sigmoid layer, so with Glorot initialization it "
        "vanishes on the way back to the input and the first layers barely learn. Input "
        f"layer's norm over the output layer's: {spans}.",
        [("", norms), ("-curves", curves)],
    )


def _grokking_section(report, profile, out_dir, progress):
    setting = profile.grokking
    if setting is None:
        return
    section = report.section("Grokking")
    study = setting.study
    specs, labels = [], []
    for label, optimizer, options in setting.runs:
        for seed in setting.seeds:
            specs.append(runs.run_spec(study, optimizer, setting.lr, seed, options))
            labels.append(label)
    log = runs.cached_runs(specs, out_dir, f"{study.key}-grokking", progress=progress)
    log["label"] = np.asarray(labels)[log["run"].to_numpy()]
    data = convergence.evaluation_data(log, "label")
    report.figure(
        section,
        "grokking",
        convergence.grokking_figure(data),
        f"{study.label}: accuracy on the training pairs and on the held-out pairs against "
        f"steps, batch {study.batch_size}, lr {setting.lr:g} (median and IQR over seeds "
        f"{list(setting.seeds)}). Grokking is a test accuracy that jumps from chance to 1 long "
        "after the training accuracy reached 1; in the README's setting (6000 steps) it "
        "happens with weight decay and not without.",
        data,
    )


def _ema_section(report):
    section = report.section("The EMA lesson")
    data = ema.table()
    report.figure(
        section,
        "ema",
        ema.figure(data),
        "Exponential moving averages `S_t = rho S_(t-1) + (1 - rho) y_t` from `S_0 = 0` of a "
        "noisy series: without bias correction they start near zero, and the larger rho the "
        "later they catch up; dividing by `1 - rho^t` (Adam's bias correction) removes the "
        "start-up bias.",
        data,
    )


def _history_section(report, results_dir):
    section = report.section("History (asv)")
    data = history.read_results(results_dir)
    if data.empty:
        report.text(
            section,
            f"No asv results under `{results_dir}`: run `asv run` (see the README) to record "
            "the benchmark history, then build the report again.",
        )
        return
    marked = history.mark_changes(data)
    commits = marked["commit"].nunique()
    report.text(
        section,
        f"{len(marked)} results of {marked['benchmark'].nunique()} benchmarks over {commits} "
        f"commit(s) from `{results_dir}`. A regression (red triangle) is a time or memory more "
        "than 10% above the previous commit's whose 99% confidence interval lies wholly above "
        "the previous one's; green: the same for an improvement; purple: a track (a loss, a "
        "ratio) that moved by more than 10% either way.",
    )
    report.figure(
        section,
        "asv-history",
        history.figure(marked),
        "Each benchmark against commit date, relative to its first value, one line per "
        "parameter combination.",
        marked,
    )
    changes = marked[marked["change"] != ""]
    if len(changes):
        report.table(
            section,
            "asv-changes",
            changes[["benchmark", "params", "commit", "date", "value", "ratio", "change"]].assign(
                commit=changes["commit"].str[:8], date=changes["date"].astype(str)
            ),
            "Changes beyond noise between consecutive commits.",
        )
