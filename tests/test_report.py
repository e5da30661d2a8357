"""The report: hand-made checks of its arithmetic (performance profile, ranking, quartiles,
EMA, asv history, compare) and the tiny profile built end to end through the CLI, its HTML
parsed and every table checked against its data file; a real browser renders it where
Debian's chromium is installed."""

import dataclasses
import functools
import html.parser
import http.server
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np
import pandas as pd
import pytest

from optbench import cli, problems, sweep, targets
from optbench.report import (
    build,
    compare,
    convergence,
    document,
    ema,
    history,
    packs,
    profiles,
    ranking,
    runs,
)
from optbench.report import throughput as report_throughput

# Debian's chromium package; OPTBENCH_CHROMIUM names another Chromium-based browser
CHROMIUM = os.environ.get("OPTBENCH_CHROMIUM", "/usr/bin/chromium")


# --------------------------------------------------------------------------------------------
# performance profile and ranking on hand-made data
# --------------------------------------------------------------------------------------------
def _costs():
    rows = [
        ("p1", "A", 10.0),
        ("p1", "B", 20.0),
        ("p1", "C", math.inf),
        ("p2", "A", 30.0),
        ("p2", "B", 15.0),
        ("p2", "C", 60.0),
        ("p3", "A", math.nan),
        ("p3", "B", 5.0),
        ("p3", "C", 5.0),
        ("p4", "A", math.nan),
        ("p4", "B", math.nan),
        ("p4", "C", math.nan),
    ]
    return pd.DataFrame(rows, columns=["problem", "optimizer", "cost"])


def test_performance_ratios_by_hand():
    ratios = ranking.performance_ratios(_costs())
    expected = [[1, 2, math.inf], [2, 1, 4], [math.inf, 1, 1], [math.inf] * 3]
    np.testing.assert_array_equal(ratios.to_numpy(), expected)


def test_performance_profile_by_hand():
    profile = ranking.performance_profile(_costs(), tau_max=4.0)
    assert sorted(set(profile["tau"])) == [1.0, 2.0, 4.0]
    got = {(r.optimizer, r.tau): r.fraction for r in profile.itertuples()}
    # p4 is solved by nobody and still counts: fractions are out of 4 problems
    assert got == {
        ("A", 1.0): 0.25,
        ("A", 2.0): 0.5,
        ("A", 4.0): 0.5,
        ("B", 1.0): 0.5,
        ("B", 2.0): 0.75,
        ("B", 4.0): 0.75,
        ("C", 1.0): 0.25,
        ("C", 2.0): 0.25,
        ("C", 4.0): 0.5,
    }


def test_profile_scores_are_the_exact_areas():
    scores = ranking.profile_scores(_costs(), tau_max=4.0)
    # A: p1 (4-1)/3 + p2 (4-2)/3; B: p1 2/3 + p2 1 + p3 1; C: p2 0 + p3 1; over 4 problems
    assert list(scores.index) == ["B", "A", "C"]
    np.testing.assert_allclose(scores.to_numpy(), [2 / 3, 5 / 12, 1 / 4])


def test_profile_rejects_bad_input():
    with pytest.raises(ValueError, match="tau_max"):
        ranking.performance_profile(_costs(), tau_max=1.0)
    with pytest.raises(ValueError, match="cost"):
        ranking.performance_profile(_costs().drop(columns="cost"))
    with pytest.raises(ValueError, match="more than one row"):
        ranking.performance_ratios(pd.concat([_costs(), _costs().head(1)]))


def _log(rows):
    """A run log from (problem, optimizer, seed, [losses at steps 0, 1, ...])."""
    frames = []
    for problem, optimizer, seed, losses in rows:
        steps = np.arange(len(losses))
        frames.append(
            pd.DataFrame(
                {
                    "problem": problem,
                    "optimizer": optimizer,
                    "seed": seed,
                    "step": steps,
                    "wall_time": 0.5 * steps,
                    "full_train_loss": losses,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_ranking_by_hand():
    log = _log(
        [
            ("p", "sgd", 0, [4.0, 3.0, 2.0, 0.5]),  # reaches 1.0 at step 3
            ("p", "sgd", 1, [4.0, 0.9, 0.5, 0.4]),  # step 1
            ("p", "sgd", 2, [4.0, 2.0, 0.8, 0.1]),  # step 2
            ("p", "adam", 0, [4.0, 3.0, 3.0, 3.0]),  # never
            ("p", "adam", 1, [4.0, 1.0, 1.0, 1.0]),  # step 1 (<= target)
            ("p", "adam", 2, [4.0, 3.0, 2.0, 2.0]),  # never
        ]
    )
    cost = pd.Series({("p", "sgd"): 1e-3, ("p", "adam"): 2e-3})
    table = ranking.ranking(log, {"p": 1.0}, cost, metric="full_train_loss").set_index("optimizer")
    assert table.loc["sgd", "steps_to_target"] == 2  # median of 3, 1, 2
    assert table.loc["sgd", "wall_seconds_to_target"] == 1.0
    assert table.loc["sgd", "seconds_to_target"] == pytest.approx(2e-3)
    assert table.loc["sgd", "reached"] == 1.0
    assert table.loc["sgd", "rank"] == 1
    # adam: one seed of three reaches the target, the median seed does not
    assert table.loc["adam", "reached"] == pytest.approx(1 / 3)
    assert math.isnan(table.loc["adam", "steps_to_target"])
    assert math.isnan(table.loc["adam", "seconds_to_target"])
    assert pd.isna(table.loc["adam", "rank"])
    # final values: sgd 0.5, 0.4, 0.1 (median 0.4); adam 3, 1, 2 (median 2)
    assert table.loc["sgd", "final"] == pytest.approx(0.4)
    assert table.loc["adam", "final"] == 2.0
    assert 0.1 <= table.loc["sgd", "final_low"] <= 0.4 <= table.loc["sgd", "final_high"] <= 0.5
    # sgd's resampled median is always finite, adam's mostly not: sgd ranks first
    assert (table.loc["sgd", "rank_low"], table.loc["sgd", "rank_high"]) == (1, 1)
    assert (table.loc["adam", "rank_low"], table.loc["adam", "rank_high"]) == (1, 2)


def test_rank_intervals_resample_the_shared_seeds_jointly():
    # a is faster than b on every seed, by one step: every joint resample keeps a first
    rows = [
        ("p", name, seed, float(10 * seed + offset))
        for seed in range(5)
        for name, offset in (("a", 1), ("b", 2))
    ]
    runs = pd.DataFrame(rows, columns=["problem", "optimizer", "seed", "steps"])
    ranks = ranking.rank_intervals(runs, resamples=500)
    assert tuple(ranks.loc[("p", "a")]) == (1, 1)
    assert tuple(ranks.loc[("p", "b")]) == (2, 2)


def test_final_values_take_each_runs_last_value_and_inf_for_a_divergence():
    log = _log([("p", "sgd", 0, [4.0, 3.0, 2.0]), ("p", "sgd", 1, [4.0, 1.0, np.nan])])
    log["diverged"] = (log["seed"] == 1) & (log["step"] == 2)
    finals = ranking.final_values(log, metric="full_train_loss")
    assert list(finals["final"]) == [2.0, np.inf]
    assert list(
        ranking.final_values(log.drop(columns="diverged"), metric="full_train_loss")["final"]
    ) == [2.0, 1.0]


def test_steps_figure_draws_every_problem():
    log = _log(
        [
            ("p", "sgd", 0, [4.0, 0.5]),
            ("p", "adam", 0, [4.0, 3.0]),
            ("q", "sgd", 0, [4.0, 2.0, 0.5]),
            ("q", "adam", 0, [4.0, 0.5, 0.1]),
        ]
    )
    table = ranking.ranking(log, {"p": 1.0, "q": 1.0}, metric="full_train_loss")
    fig = ranking.steps_figure(table, marked=("adam",))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["p", "q"]
    # fastest at the top: q's adam (step 1) above sgd (step 2)
    assert [t.get_text() for t in panels[1].get_yticklabels()] == ["sgd", "adam"]
    bold = [t.get_fontweight() for t in panels[1].get_yticklabels()]
    assert bold == ["normal", "bold"]


def test_ranking_needs_a_target_for_every_problem():
    log = _log([("p", "sgd", 0, [1.0, 0.5]), ("q", "sgd", 0, [1.0, 0.5])])
    with pytest.raises(ValueError, match="'q'"):
        ranking.first_reach(log, {"p": 0.7}, metric="full_train_loss")


def test_more_wild_targets_by_hand():
    log = _log(
        [
            ("p", "sgd", 0, [10.0, 5.0, 2.0]),
            ("p", "adam", 0, [10.0, 1.0, 4.0]),  # lowest loss reached: 1
        ]
    )
    targets = ranking.more_wild_targets(log, tol=0.1, metric="full_train_loss")
    assert targets["p"] == pytest.approx(1.0 + 0.1 * (10.0 - 1.0))
    with pytest.raises(ValueError, match="tol"):
        ranking.more_wild_targets(log, tol=1.5)


# --------------------------------------------------------------------------------------------
# quartiles, curves, EMA
# --------------------------------------------------------------------------------------------
def test_quartiles_match_numpy_and_treat_inf_as_a_value():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((5, 7))
    values[1, 3:] = np.nan
    got = convergence.quartiles(values)
    np.testing.assert_allclose(got, np.nanpercentile(values, [25, 50, 75], axis=1))
    _, median, q75 = convergence.quartiles(np.array([[1.0, np.inf, np.inf], [np.nan] * 3]))
    assert median[0] == np.inf and q75[0] == np.inf and np.isnan(median[1])


def test_curve_data_counts_a_diverged_seed_as_infinite():
    runs = pd.DataFrame(
        {
            "optimizer": "sgd",
            "lr": 0.1,
            "seed": [0, 0, 0, 1, 1],
            "step": [0, 1, 2, 0, 1],
            "epoch": [0.0, 1.0, 2.0, 0.0, 1.0],
            "examples_seen": [0, 1, 2, 0, 1],
            "wall_time": [0.0, 1.0, 2.0, 0.0, 1.0],
            "full_train_loss": [4.0, 2.0, 1.0, 4.0, np.nan],
            "train_loss": np.nan,
            "test_loss": np.nan,
            "diverged": [False, False, False, False, True],
        }
    )
    data = convergence.curve_data(runs, optimum=0.0)
    assert list(data["metric"].unique()) == ["train"]
    assert data["median"].tolist() == [4.0, np.inf, np.inf]  # medians of (2, inf), (1, inf)
    assert data["q25"].tolist() == [4.0, 2.0 + (np.inf - 2.0) * 0.25, np.inf]


def test_ema_bias_correction():
    y = np.full(50, 3.0)
    biased, corrected = ema.ema(y, 0.9)
    t = np.arange(1, 51)
    np.testing.assert_allclose(biased, 3.0 * (1 - 0.9**t))
    np.testing.assert_allclose(corrected, 3.0)
    with pytest.raises(ValueError, match="rho"):
        ema.ema(y, 1.0)
    data = ema.table(rhos=(0.5, 0.9), n=20)
    assert len(data) == 40 and set(data.columns) == {"rho", "t", "y", "ema", "ema_corrected"}


def test_format_cell():
    assert document.format_cell(float("nan")) == document.MISSING
    assert document.format_cell(None) == document.MISSING
    assert document.format_cell(np.int64(12345678)) == "12345678"
    assert document.format_cell(0.000123456) == "1.235e-04"
    assert document.format_cell(3.14159) == "3.142"
    assert document.format_cell(float("inf")) == "inf"
    assert document.format_cell(np.bool_(True)) == "yes"


# --------------------------------------------------------------------------------------------
# asv history
# --------------------------------------------------------------------------------------------
def _asv_results(root, values_by_commit):
    """asv 0.6 result files (format 2) for one machine, one benchmark with a parameter."""
    machine = root / "box"
    machine.mkdir(parents=True)
    (machine / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    (root / "benchmarks.json").write_text(
        json.dumps(
            {
                "optimizers.Steps.time_step": {"param_names": ["optimizer"], "unit": "seconds"},
                "version": 2,
            }
        )
    )
    columns = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a"]
    columns += ["stats_ci_99_b"]
    for i, (commit, values, spread) in enumerate(values_by_commit):
        data = {
            "commit_hash": commit,
            "env_name": "venv",
            "date": 1_700_000_000_000 + i * 86_400_000,
            "params": {"machine": "box"},
            "python": "3.11",
            "requirements": {},
            "env_vars": {},
            "result_columns": columns,
            "results": {
                "optimizers.Steps.time_step": [
                    values,
                    [["'adam'", "'sgd'"]],
                    "v",
                    0,
                    1.0,
                    [v - spread for v in values],
                    [v + spread for v in values],
                ]
            },
            "durations": {},
            "version": 2,
        }
        (machine / f"{commit[:8]}-venv.json").write_text(json.dumps(data))


def test_history_reads_asv_results_and_marks_regressions(tmp_path):
    _asv_results(
        tmp_path,
        [
            ("a" * 40, [1.0, 2.0], 0.01),
            ("b" * 40, [1.5, 2.05], 0.01),  # adam +50% beyond noise; sgd +2.5%
            ("c" * 40, [1.0, 2.0], 0.01),  # adam back: an improvement
        ],
    )
    data = history.read_results(tmp_path)
    assert len(data) == 6
    assert set(data["params"]) == {"optimizer='adam'", "optimizer='sgd'"}
    marked = history.mark_changes(data).set_index(["params", "commit"])
    adam = marked.loc["optimizer='adam'"]
    assert adam.loc["b" * 40, "change"] == "regression"
    assert adam.loc["b" * 40, "ratio"] == pytest.approx(1.5)
    assert adam.loc["c" * 40, "change"] == "improvement"
    assert (marked.loc["optimizer='sgd'", "change"] == "").all()
    assert history.read_results(tmp_path / "nothing").empty
    for max_lines in (1, 8):  # the geometric mean of the combinations, or one line each
        fig = history.figure(history.mark_changes(data), max_lines=max_lines)
        assert len(fig.axes[0].lines) == (1 if max_lines == 1 else 2)


def test_history_noise_vetoes_a_large_ratio(tmp_path):
    _asv_results(tmp_path, [("a" * 40, [1.0, 1.0], 0.5), ("b" * 40, [1.3, 1.3], 0.5)])
    marked = history.mark_changes(history.read_results(tmp_path))
    assert (marked["change"] == "").all()  # 30% up, but the 99% intervals overlap


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------
def _measurements(scale, *, spread=0.01):
    items = ["kernel=adam n=1000", "kernel=sgd n=1000", "kernel=lion n=1000"]
    medians = np.array([1.0, 2.0, 3.0]) * scale
    return pd.DataFrame(
        {
            "item": items,
            "metric": "seconds_per_step",
            "median": medians,
            "q25": medians * (1 - spread),
            "q75": medians * (1 + spread),
            "n": 5,
        }
    )


def test_compare_marks_changes_beyond_noise():
    a = _measurements(np.array([1.0, 1.0, 1.0]))
    b = _measurements(np.array([1.2, 1.02, 0.5]))
    table = compare.compare(a, b).set_index("item")
    assert table.loc["kernel=adam n=1000", "change"] == "worse"
    assert table.loc["kernel=adam n=1000", "ratio"] == pytest.approx(1.2)
    assert table.loc["kernel=adam n=1000", "ratio_low"] == pytest.approx(1.2 * 0.99 / 1.01)
    assert table.loc["kernel=sgd n=1000", "change"] == ""  # 2% < threshold
    assert table.loc["kernel=lion n=1000", "change"] == "better"
    wide = _measurements(np.array([1.2, 1.0, 1.0]), spread=0.5)
    assert (compare.compare(a, wide)["change"] == "").all()  # IQRs overlap


def test_compare_higher_is_better_metrics():
    a = _measurements(1.0).assign(metric="gb_per_s")
    b = _measurements(2.0).assign(metric="gb_per_s")
    assert (compare.compare(a, b)["change"] == "better").all()


def _run_log(final_losses):
    rows = []
    for optimizer, losses in final_losses.items():
        for seed, loss in enumerate(losses):
            for step, value in ((0, 5.0), (10, loss)):
                rows.append(
                    {
                        "problem": "quadratic",
                        "optimizer": optimizer,
                        "lr": 0.1,
                        "batch_size": 32,
                        "seed": seed,
                        "step": step,
                        "train_loss": value,
                        "full_train_loss": value,
                        "test_loss": np.nan,
                        "test_accuracy": np.nan,
                        "wall_time": 0.01 * step,
                    }
                )
    return pd.DataFrame(rows)


def test_compare_command_on_two_run_logs(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _run_log({"sgd": [1.0, 1.1, 0.9], "adam": [2.0, 2.1, 1.9]}).to_parquet(
        tmp_path / "a" / "results.parquet"
    )
    _run_log({"sgd": [0.5, 0.55, 0.45], "adam": [2.0, 2.05, 1.95]}).to_csv(
        tmp_path / "b" / "results.csv", index=False
    )
    out = tmp_path / "ratios.csv"
    status = cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
    assert status == 0
    table = pd.read_csv(out, keep_default_na=False)
    train = table[table["metric"] == "train_loss"].set_index("item")
    sgd = "problem=quadratic optimizer=sgd lr=0.1 batch_size=32"
    adam = sgd.replace("sgd", "adam")
    assert train.loc[sgd, "ratio"] == pytest.approx(0.5)
    assert train.loc[sgd, "change"] == "better"
    assert train.loc[adam, "change"] == ""
    printed = capsys.readouterr()
    assert "better" in printed.out and "1 better" in printed.err
    assert cli.main(["compare", str(tmp_path / "b"), str(tmp_path / "a"), "--fail-on-worse"]) == 1


def test_compare_refuses_bad_input(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text("x,y\n1,2\n")
    assert cli.main(["compare", str(tmp_path / "t.csv"), str(tmp_path / "t.csv")]) == 2
    assert "not a result table" in capsys.readouterr().err


def test_compare_reads_a_sweep_folder_as_exactly_its_results(tmp_path, capsys):
    grid = sweep.Grid(
        problems=["quadratic"], optimizers=["sgd", "adam"], lrs=[0.01, 0.1], seeds=[0, 1, 2],
        steps=5,
    )  # fmt: skip
    out = tmp_path / "sweep"
    sweep.sweep(grid, out=out, progress=False)
    from_table = compare.load(out / "results.parquet")
    assert (from_table["n"] == 3).all() and len(from_table) == 4 * 2  # train loss, wall time
    assert (compare.load(out)["n"] == 3).all()  # every seed, each once
    pd.testing.assert_frame_equal(compare.load(out), from_table)
    assert compare.sources(out) == [str(out / "results.parquet")]
    status = cli.main(["compare", str(out), str(out / "results.parquet"), "--fail-on-worse"])
    assert status == 0 and "0 worse, 0 better" in capsys.readouterr().err
    # an interrupted sweep has no table yet: its cells are its results, read as one table
    (out / "results.parquet").unlink()
    pd.testing.assert_frame_equal(compare.load(out), from_table)
    assert len(compare.sources(out)) == 12
    # a table-path sweep (T.parquet beside T.cells/) inside a folder is its table
    sweep.sweep(grid, out=tmp_path / "both" / "t.parquet", progress=False)
    assert compare.sources(tmp_path / "both") == [str(tmp_path / "both" / "t.parquet")]


def test_compare_refuses_an_item_measured_twice(tmp_path):
    (tmp_path / "a").mkdir()
    _run_log({"sgd": [1.0, 1.1]}).to_csv(tmp_path / "a" / "one.csv", index=False)
    _run_log({"sgd": [1.0, 1.2]}).to_csv(tmp_path / "a" / "two.csv", index=False)
    with pytest.raises(ValueError, match=r"is measured in both .*one\.csv and .*two\.csv"):
        compare.load(tmp_path / "a")


def test_compare_fail_on_worse_fails_when_nothing_was_compared(tmp_path, capsys):
    _run_log({"sgd": [1.0, 1.1]}).to_csv(tmp_path / "a.csv", index=False)
    _run_log({"adam": [1.0, 1.1]}).to_csv(tmp_path / "b.csv", index=False)
    argv = ["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--fail-on-worse"]) == 1
    assert "nothing was compared" in capsys.readouterr().err


def test_compare_refuses_to_overwrite_an_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b").mkdir()
    _run_log({"sgd": [1.0, 1.1]}).to_csv("a.csv", index=False)
    _run_log({"sgd": [2.0, 2.1]}).to_parquet("b/results.parquet")
    before = {p: p.read_bytes() for p in (tmp_path / "a.csv", tmp_path / "b/results.parquet")}
    for out in ("a.csv", "./a.csv", str(tmp_path / "a.csv"), "b/../b/results.parquet"):
        assert cli.main(["compare", "a.csv", "b", "--out", out]) == 2
        err = capsys.readouterr().err
        assert f"--out {out!r}: is one of the inputs" in err and err.count("\n") == 1
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("content", ["", "problem,optimizer,seed,step,train_loss\n"])
def test_compare_names_an_empty_table(tmp_path, capsys, content):
    (tmp_path / "empty.csv").write_text(content)
    _run_log({"sgd": [1.0, 1.1]}).to_csv(tmp_path / "b.csv", index=False)
    for argv in (["empty.csv", "b.csv"], ["b.csv", "."]):
        assert cli.main(["compare", *(str(tmp_path / name) for name in argv)]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / "empty.csv") in err and err.count("\n") == 1


# --------------------------------------------------------------------------------------------
# the tiny report, end to end
# --------------------------------------------------------------------------------------------
class PageChecker(html.parser.HTMLParser):
    """Well-formedness of an HTML page (every element closed, in order), its ids and links."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    )

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.ids, self.links = [], [], [], []
        self.tables, self._cell, self._table_id = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)
        if "id" in attrs:
            self.ids.append(attrs["id"])
            if attrs["id"].startswith("table-"):
                self._table_id = attrs["id"][len("table-") :]
                self.tables[self._table_id] = []
        for key in ("src", "href"):
            if key in attrs:
                self.links.append(attrs[key])
        if tag == "tr" and self._table_id:
            self.tables[self._table_id].append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._table_id:
            self.tables[self._table_id][-1].append("".join(self._cell))
            self._cell = None
        if tag == "table":
            self._table_id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _check_cell(text, value):
    if isinstance(value, float) and math.isnan(value):
        return text == document.MISSING
    if isinstance(value, float | int | np.number) and not isinstance(value, bool):
        if text in ("inf", "-inf"):
            return float(text) == value
        return math.isclose(float(text), float(value), rel_tol=5e-4, abs_tol=0.0)
    return text == str(value)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    parent = tmp_path_factory.mktemp("reports")
    asv = parent / "asv-results"
    _asv_results(asv, [("a" * 40, [1.0, 2.0], 0.01), ("b" * 40, [1.5, 2.0], 0.01)])
    argv = ["report", "--profile", "tiny", "--out-dir", str(parent), "--name", "t"]
    argv += ["--no-progress", "--asv-results", str(asv)]
    assert cli.main(argv) == 0
    return parent / "t", argv


def test_tiny_report_files(tiny_report):
    out, _ = tiny_report
    for name in ("index.html", "report.md", "report.json", "data/measurements.csv"):
        assert (out / name).stat().st_size > 0, name
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) >= 10
    for png in pngs:
        svg = png.with_suffix(".svg")
        assert png.stat().st_size > 1000 and svg.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:2000]
    assert not list(out.rglob(".tmp-*")), "a temporary file was left behind"
    umask = os.umask(0o022)
    os.umask(umask)
    assert (out / "index.html").stat().st_mode & 0o777 == 0o666 & ~umask


def test_tiny_report_html_is_valid_and_links_exist(tiny_report):
    out, _ = tiny_report
    page = (out / "index.html").read_text(encoding="utf-8")
    checker = PageChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == [], f"unclosed elements: {checker.stack}"
    assert len(checker.ids) == len(set(checker.ids)), "duplicate ids"
    assert page.startswith("<!DOCTYPE html>")
    local = [link for link in checker.links if not link.startswith(("#", "data:", "http"))]
    assert any(link.endswith(".png") for link in local)
    for link in local:
        assert (out / link).is_file(), link
    for link in checker.links:
        if link.startswith("#"):
            assert link[1:] in checker.ids, link
    figures_on_page = {link for link in local if link.startswith("figures/")}
    on_disk = {f"figures/{p.name}" for p in (out / "figures").iterdir()}
    assert figures_on_page == on_disk, "a figure is missing from the page, or a stray one"


def test_tiny_report_tables_equal_their_data(tiny_report):
    out, _ = tiny_report
    checker = PageChecker()
    checker.feed((out / "index.html").read_text(encoding="utf-8"))
    expected = {"ranking", "tuned-lr", "machine", "timings", "asv-changes"}
    expected |= {"peer-table-optimizer", "peer-table-norm", "profile-scores-steps"}
    assert expected <= set(checker.tables)
    for name, rows in checker.tables.items():
        data = pd.read_csv(out / "data" / f"{name}.csv", keep_default_na=False, na_values=[""])
        header, body = rows[0], rows[1:]
        assert header == list(data.columns), name
        assert len(body) == len(data), name
        for row, values in zip(body, data.itertuples(index=False), strict=True):
            for text, value in zip(row, values, strict=True):
                assert _check_cell(text, value), (name, text, value)


def test_tiny_report_markdown_links_exist(tiny_report):
    out, _ = tiny_report
    text = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links
    for link in links:
        assert (out / link).is_file(), link


def test_tiny_report_ranking_uses_the_runs(tiny_report):
    out, _ = tiny_report
    table = pd.read_csv(out / "data" / "ranking.csv")
    runs = pd.concat(
        pd.read_parquet(p) for p in (out / "runs" / "quadratic" / "final" / "cells").iterdir()
    )
    target = table.loc[table["problem"] == "quadratic", "target"].iloc[0]
    reached = 0
    for optimizer, rows in runs.groupby("optimizer"):
        steps = [
            run.loc[run["full_train_loss"] <= target, "step"].min()
            for _, run in rows.groupby("seed")
        ]
        expected = np.median(np.nan_to_num(steps, nan=np.inf))
        got = table.loc[
            (table["problem"] == "quadratic") & (table["optimizer"] == optimizer),
            "steps_to_target",
        ].iloc[0]
        if np.isfinite(expected):
            reached += 1
            assert got == expected, optimizer
        else:
            assert np.isnan(got), optimizer
    assert reached >= 1


def test_tiny_report_runs_and_measurements_are_reused(tiny_report):
    """The building blocks of a rebuild find everything on disk: no run, no timing again."""
    out, _ = tiny_report
    profile = profiles.TINY
    cells = sorted(out.rglob("cells/*.parquet"))
    start = time.perf_counter()
    for study in profile.studies:
        result = runs.tune_study(study, profile.optimizers, profile, out, progress=False)
        assert set(result.final["seed"]) == set(profile.seeds)
    cache = out / "runs" / "throughput"
    speeds = report_throughput.measure_profile(profile, progress=False, cache_dir=cache)
    assert time.perf_counter() - start < 10
    assert sorted(out.rglob("cells/*.parquet")) == cells
    shown = pd.read_csv(out / "data" / "throughput.csv")
    assert len(speeds.table) == len(shown)
    np.testing.assert_allclose(speeds.table["seconds"], shown["seconds"], rtol=1e-12)


@pytest.mark.slow
def test_tiny_report_rebuild_reuses_runs(tiny_report):
    out, argv = tiny_report

    def kept_files():
        # one file per run, and the throughput tables (a sweep's results.parquet, the
        # concatenation of its cells, is written again every time)
        return sorted([*out.rglob("cells/*.parquet"), *out.glob("runs/throughput/*/*.parquet")])

    kept = kept_files()
    assert len(kept) > 20 and any("throughput" in str(p) for p in kept)
    stamps = [p.stat().st_mtime_ns for p in kept]
    page = sorted(p.name for p in (out / "figures").iterdir())
    assert cli.main(argv) == 0
    assert kept_files() == kept
    assert [p.stat().st_mtime_ns for p in kept] == stamps  # nothing ran or measured again
    assert sorted(p.name for p in (out / "figures").iterdir()) == page
    timings = pd.read_csv(out / "data" / "timings.csv").set_index("stage")["seconds"]
    assert timings["convergence studies"] < 5 and timings["throughput"] < 2


@pytest.mark.slow
def test_tiny_report_without_throughput_drops_its_files(tmp_path, tiny_report):
    out, _ = tiny_report
    copy = tmp_path / "t"
    shutil.copytree(out, copy)
    argv = ["report", "--profile", "tiny", "--out-dir", str(tmp_path), "--name", "t"]
    argv += ["--no-progress", "--asv-results", str(tmp_path / "none"), "--no-throughput"]
    assert cli.main(argv) == 0
    assert not list((copy / "figures").glob("throughput*"))
    assert not (copy / "data" / "peer-table-optimizer.csv").exists()
    ranking_table = pd.read_csv(copy / "data" / "ranking.csv")
    assert ranking_table["seconds_to_target"].isna().all()


def test_report_command_refuses_bad_values(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--profile", "tiny", "--name", "../x"]) == 2
    assert "--name" in capsys.readouterr().err
    assert cli.main(["report", "--profile", "tiny", "--threads", "0"]) == 2
    assert not (tmp_path / "reports").exists()
    (tmp_path / "plain").write_text("")
    assert cli.main(["report", "--profile", "tiny", "--out-dir", "plain"]) == 2
    err = capsys.readouterr().err
    assert "--out-dir 'plain/tiny': " in err and "plain' is not a directory" in err


def test_profiles_are_consistent():
    for profile in profiles.PROFILES.values():
        for study in profile.studies:  # every grid passes the sweep's own checks
            sweep.Grid(optimizers=profile.optimizers, lrs=profile.lrs, **study.grid_arguments())
        if profile.batch_study is not None:
            arguments = {**profile.batch_study.grid_arguments(), "batch_sizes": profile.batch_sizes}
            sweep.Grid(optimizers=profile.batch_optimizers, lrs=(0.1,), **arguments)
        for norm in profile.norms if profile.norm_study is not None else ():
            study = dataclasses.replace(
                profile.norm_study, options={**profile.norm_study.options, "norm": norm}
            )
            sweep.Grid(optimizers=profile.norm_optimizers, **study.grid_arguments())
        for _, options in profile.grad_variants:
            grad = profile.grad_study
            problem = problems.make(grad.problem, **{**grad.options, **options})
            assert hasattr(problem, "last_layer_grad_norms")
        for name in profile.trajectory_problems:
            assert profile.study(name) is not None, (profile.name, name)
        if profile.grokking is not None:
            study = profile.grokking.study
            for _, optimizer, options in profile.grokking.runs:
                grid = {**study.grid_arguments(), "optimizer_options": {optimizer: options}}
                sweep.Grid(optimizers=(optimizer,), lrs=(profile.grokking.lr,), **grid)
        assert set(profile.batch_optimizers) | set(profile.norm_optimizers) <= set(
            profiles.ALL_OPTIMIZERS
        )
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.get("huge")


# --------------------------------------------------------------------------------------------
# a real browser
# --------------------------------------------------------------------------------------------
_WRAPPER = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>check</title></head>
<body><iframe id="page" src="/index.html" style="width:1200px;height:900px"></iframe><script>
window.addEventListener("load", function () {
  var images = Array.from(document.getElementById("page").contentDocument.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var out = document.createElement("pre");
  out.id = "result";
  out.textContent = "IMAGES " + images.length + " BROKEN [" +
    broken.map(function (i) { return i.getAttribute("src"); }).join(",") + "]";
  document.body.appendChild(out);
});
</script></body></html>"""


def _serve(directory):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/__check.html":
                body = _WRAPPER.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no browser at {CHROMIUM}")
def test_tiny_report_renders_in_chromium(tiny_report):
    """Headless Chromium loads the page over HTTP inside a same-origin frame; after the load
    event every <img> must have decoded (naturalWidth > 0) and the console must be silent."""
    out, _ = tiny_report
    server = _serve(out)
    try:
        with tempfile.TemporaryDirectory() as profile_dir:
            result = subprocess.run(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--user-data-dir={profile_dir}",
                    "--enable-logging=stderr",
                    "--v=0",
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    f"http://127.0.0.1:{server.server_address[1]}/__check.html",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        server.shutdown()
        server.server_close()
    lines = [line for line in result.stdout.splitlines() if "IMAGES " in line and "<pre" in line]
    assert lines, result.stdout[-2000:] + result.stderr[-2000:]
    count = len(list((out / "figures").glob("*.png")))
    assert f"IMAGES {count} BROKEN []" in lines[0]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


@pytest.mark.slow
def test_quick_report_under_five_minutes(tmp_path):
    start = time.perf_counter()
    argv = ["report", "--quick", "--out-dir", str(tmp_path), "--no-progress"]
    assert cli.main([*argv, "--asv-results", str(tmp_path / "none")]) == 0
    seconds = time.perf_counter() - start
    assert seconds < 300, f"the quick report took {seconds:.0f} s"
    assert (tmp_path / "quick" / "index.html").is_file()
    files = pathlib.Path(tmp_path / "quick" / "figures")
    assert len(list(files.glob("*.png"))) >= 12


def test_the_quick_profiles_classifiers_are_judged_on_their_fixed_targets():
    fixed = build.fixed_targets(profiles.QUICK)
    assert set(fixed) == {"logistic_regression", "digits_mlp", "mnist1d_cnn"}
    assert fixed["digits_mlp"] == targets.target_of(targets.QUICK_WORKLOADS[1])
    assert build.fixed_targets(profiles.TINY) == {}  # other budgets: no stored target


def test_a_fixed_target_ranks_on_accuracy_and_leaves_other_problems_to_more_wild(
    tmp_path, monkeypatch
):
    study = profiles.Study("logistic_regression", epochs=1)
    profile = dataclasses.replace(
        profiles.TINY, studies=(study, profiles.Study("quadratic", steps=3))
    )
    monkeypatch.setattr(packs, "fixed_targets", lambda _: {"logistic_regression": 0.8})
    rows = []
    for optimizer, accuracies in (("sgd", [0.5, 0.79, 0.81]), ("adam", [0.5, 0.85, 0.9])):
        for seed in (0, 1, 2):
            for step, accuracy in enumerate(accuracies):
                rows.append(("logistic_regression", optimizer, seed, step, accuracy, 1.0 - step))
                rows.append(("quadratic", optimizer, seed, step, np.nan, 1.0 / (step + 1)))
    log = pd.DataFrame(
        rows,
        columns=["problem", "optimizer", "seed", "step", "test_accuracy", "full_train_loss"],
    ).assign(
        wall_time=lambda f: 0.01 * f["step"], diverged=False, source=build.THIS_RUN, machine="m"
    )
    report = build.Report(tmp_path, progress=False)
    data = build.Convergence(finals={}, scores=pd.DataFrame(), best=pd.DataFrame())
    build._ranking_section(report, profile, log, None, data)
    assert [s.title for s in report.sections] == ["Summary", "Ranking"]
    summary = next(
        b.frame for b in report.sections[0].blocks if getattr(b, "name", "") == "summary"
    )
    first = summary.set_index("problem").loc["logistic_regression"]
    assert first["fastest_1"] == "adam 1 [1, 1]" and first["fastest_2"] == "sgd 2 [2, 2]"
    assert first["fastest_3"] == "-" and first["reached_by"] == "2 of 2"
    table = next(b.frame for b in report.sections[1].blocks if getattr(b, "name", "") == "ranking")
    by = table.set_index(["problem", "optimizer"])
    assert by.loc[("logistic_regression", "sgd"), "steps_to_target"] == 2
    assert by.loc[("logistic_regression", "adam"), "steps_to_target"] == 1
    assert by.loc[("logistic_regression", "adam"), "target"] == 0.8
    assert by.loc[("logistic_regression", "adam"), "judged_on"].startswith("test accuracy")
    assert by.loc[("quadratic", "adam"), "judged_on"] == "training loss <= (Moré-Wild)"
