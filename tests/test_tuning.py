"""Tuning campaigns: quasi-random samples of the search spaces, trials and studies, their
tables, resuming after SIGKILL with nothing lost or repeated, and bad input refused by name."""

import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest
from process_helpers import kill_after_cells

from optbench import cli, optim, registry, sweep, tuning
from optbench.spec import (
    Choice,
    LogUniform,
    OneMinusLogUniform,
    SpecError,
    Uniform,
    conforming_shape,
)

SPACE = {
    "lr": LogUniform(1e-4, 1e-1),
    "betas[0]": OneMinusLogUniform(1e-3, 0.5),
    "momentum": Uniform(0.0, 0.9),
    "nesterov": Choice((False, True)),
}


def small(**changes):
    return tuning.Campaign(
        **{"optimizer": "adamw", "problem": "quadratic", "trials": 3, "studies": 2, "steps": 40}
        | changes
    )


# ------------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------------
def test_samples_lie_in_their_dimensions_and_spread_over_them():
    points = pd.DataFrame(tuning.sample(SPACE, 64, seed=(0, 1)))
    assert points["lr"].between(1e-4, 1e-1).all()
    assert points["betas[0]"].between(1 - 0.5, 1 - 1e-3).all()
    assert points["momentum"].between(0.0, 0.9).all()
    assert set(points["nesterov"]) == {False, True}
    # quasi-random: every quarter of each (log-)range holds a quarter of the points, +-2
    quarters = {
        "lr": np.floor(4 * np.log(points["lr"] / 1e-4) / np.log(1e3)),
        "betas[0]": np.floor(4 * np.log((1 - points["betas[0]"]) / 1e-3) / np.log(500)),
        "momentum": np.floor(4 * points["momentum"] / 0.9),
    }
    for key, index in quarters.items():
        counts = np.bincount(index.astype(int), minlength=4)
        assert np.abs(counts - 16).max() <= 2, (key, counts)


def test_a_sample_is_a_function_of_its_seed_and_a_prefix_of_a_longer_one():
    first = tuning.sample(SPACE, 5, seed=(3, 0))
    assert tuning.sample(SPACE, 5, seed=(3, 0)) == first
    assert tuning.sample(SPACE, 9, seed=(3, 0))[:5] == first
    assert tuning.sample(SPACE, 5, seed=(3, 1)) != first


def test_options_from_a_point_set_one_element_of_a_tuple_option():
    point = {"lr": 0.01, "betas[0]": 0.8, "weight_decay": 0.1}
    assert tuning.options_from("adamw", point) == (
        0.01,
        {"betas": (0.8, 0.999), "weight_decay": 0.1},
    )
    fixed = {"betas": (0.9, 0.95), "amsgrad": True}
    _, options = tuning.options_from("adamw", point, fixed)
    assert options == {"betas": (0.8, 0.95), "amsgrad": True, "weight_decay": 0.1}


def test_every_declared_search_space_samples_options_the_optimizer_takes():
    for info in registry.specs():
        for point in tuning.sample(info.search_space, 4, seed=0):
            lr, options = tuning.options_from(info, point)
            params = [np.zeros(conforming_shape((3, 4), info.ndims))]
            optim.make(info, params, lr=lr, **options)  # raises on a value out of range


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"lr": LogUniform(1e-4, 1e-1), "betas[2]": Uniform(0.5, 0.9)}, "betas has 2 elements"),
        ({"lr": LogUniform(1e-4, 1e-1), "eps[0]": Uniform(0.5, 0.9)}, "eps is not a tuple"),
        ({"lr": LogUniform(0.0, 1e-1)}, "low > 0"),
        ({"lr": LogUniform(1e-1, 1e-4)}, "finite low < high"),
        ({"lr": LogUniform(1e-4, 1e-1), "weight_decay": Choice(())}, "Choice of nothing"),
        ({"lr": LogUniform(1e-4, 1e-1), "gamma": Uniform(0, 1)}, "names no hyperparameter"),
    ],
)
def test_a_spec_with_a_bad_search_space_is_refused(space, match):
    with pytest.raises(SpecError, match=match):
        dataclasses.replace(registry.get("adamw"), search_space=space)


# ------------------------------------------------------------------------------------------
# campaigns
# ------------------------------------------------------------------------------------------
def test_a_campaign_runs_its_trials_and_picks_each_studys_best(tmp_path):
    campaign = small()
    result = tuning.run(campaign, tmp_path / "c", progress=False)
    trials = result.trials
    assert len(trials) == 6 and trials[["study", "trial"]].value_counts().max() == 1
    assert set(trials.columns) >= {"lr", "betas[0]", "weight_decay", "score", "seed", "cell"}
    assert trials["cell"].nunique() == 6 and trials["seed"].nunique() == 6
    assert (trials["steps"] == 40).all()
    for study, rows in trials.groupby("study"):
        best = result.best[result.best["study"] == study].iloc[0]
        assert best["score"] == rows["score"].min()
    expected = sweep.score_runs(result.runs, "final_loss").set_index("cell")["score"]
    np.testing.assert_array_equal(trials["score"], expected.loc[trials["cell"]].to_numpy())
    on_disk = pd.read_parquet(tmp_path / "c" / tuning.TRIALS_TABLE)
    pd.testing.assert_frame_equal(on_disk, trials, check_dtype=False)
    assert len(pd.read_parquet(tmp_path / "c" / tuning.BEST_TABLE)) == 2


def test_a_campaign_on_a_dask_cluster_gives_the_local_trials_and_resumes_one(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = tuning.run(small(), tmp_path / "local", progress=False)
    # begun locally with a trial per study, finished on the cluster
    tuning.run(small(trials=1), tmp_path / "dask", progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        on_dask = tuning.run(small(), tmp_path / "dask", scheduler=address, progress=False)
    columns = ["study", "trial", "lr", "betas[0]", "weight_decay", "seed", "cell", "score"]
    pd.testing.assert_frame_equal(on_dask.trials[columns], local.trials[columns])
    assert len(list((tmp_path / "dask").rglob("cells/*.parquet"))) == 6


def test_running_again_reads_the_trials_back_and_more_trials_keep_the_first(tmp_path, monkeypatch):
    out = tmp_path / "c"
    first = tuning.run(small(), out, progress=False)

    def refuse(spec):
        raise AssertionError("a finished trial ran again")

    monkeypatch.setattr(sweep, "run_cell", refuse)
    again = tuning.run(small(), out, progress=False)
    pd.testing.assert_frame_equal(again.trials, first.trials)
    monkeypatch.undo()
    more = tuning.run(small(trials=4), out, progress=False)
    kept = more.trials[more.trials["trial"] < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first.trials)


def test_the_search_can_be_restricted_and_other_options_fixed():
    campaign = small(search=["weight_decay"], fixed={"betas": (0.8, 0.95)})
    assert list(campaign.space()) == ["lr", "weight_decay"]
    plan = campaign.trial_plan()
    assert all(row["spec"]["optimizer_options"]["betas"] == (0.8, 0.95) for row in plan)
    element = small(fixed={"betas": (0.8, 0.95)})  # beta1 searched, beta2 fixed
    assert {row["spec"]["optimizer_options"]["betas"][1] for row in element.trial_plan()} == {0.95}


def test_a_schedule_runs_in_every_trial_and_its_warm_up_may_be_searched():
    campaign = small(
        schedule="wsd", schedule_options={"decay_fraction": 0.5}, search=["warmup_fraction"]
    )
    assert list(campaign.space()) == ["lr", "warmup_fraction"]
    result = tuning.run(campaign, progress=False)
    fractions = result.trials["warmup_fraction"]
    assert fractions.between(0.0, 0.2).all() and fractions.nunique() == 6
    schedules = result.runs.groupby("cell")["schedule"].first()
    assert all(text.startswith("wsd") and "decay_fraction" in text for text in schedules)
    # the record's scheduled lr follows the sampled warm-up: 1/3 of lr at step 1
    first = result.runs[result.runs["step"] == 1].set_index("cell")["scheduled_lr"]
    trials = result.trials.set_index("cell")
    np.testing.assert_allclose(first.loc[trials.index], trials["lr"] / 3)


def test_the_self_tuning_track_runs_the_defaults_for_longer():
    campaign = tuning.Campaign(
        "adamw", "logistic_regression", trials=1, studies=2, epochs=2, track="self"
    )
    result = tuning.run(campaign, progress=False)
    trials = result.trials
    assert (trials["lr"] == registry.get("adamw").lr).all() and len(trials) == 2
    per_epoch = 750 // 32 + 1  # 750 examples in batches of 32
    assert (trials["steps"] == math.ceil(1.5 * 2 * per_epoch)).all()
    assert trials["seed"].nunique() == 2
    assert set(result.runs["optimizer_options"]) == {"{}"}


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"optimizer": "adamx"}, ValueError, "adamx"),
        ({"search": ["warmup_fraction"]}, ValueError, "with a schedule warmup_fraction"),
        ({"schedule_options": {"warmup": 3}}, ValueError, "schedule_options need a schedule"),
        (
            {
                "schedule": "cosine",
                "search": ["warmup_fraction"],
                "schedule_options": {"warmup_fraction": 0.1},
            },
            ValueError,
            "schedule_options set 'warmup_fraction'",
        ),
        ({"schedule": "cosine", "schedule_options": {"T": 3}}, ValueError, "no option 'T'"),
        ({"track": "self"}, ValueError, "trials must be 1"),
        ({"track": "internal"}, ValueError, "track"),
        ({"problem": "cifar"}, ValueError, "cifar"),
        ({"trials": 0}, ValueError, "trials"),
        ({"studies": 1.5}, TypeError, "studies"),
        ({"search": ["eps"]}, ValueError, "declares no search space for 'eps'"),
        ({"fixed": {"weight_decay": 0.1}}, ValueError, "fixed sets 'weight_decay'"),
        ({"fixed": {"lr": 0.1}}, ValueError, "fixed sets 'lr'"),
        ({"fixed": {"eps": -1.0}}, ValueError, "eps"),
        ({"metric": "accuracy"}, ValueError, "metric 'accuracy'"),
        ({"problem_options": {"d": 0}}, ValueError, "d"),
        ({"steps": 10, "epochs": 1}, ValueError, "epochs or steps"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_a_bad_campaign_is_refused_by_name(changes, error, match):
    with pytest.raises(error, match=match):
        small(**changes)


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------
COMMAND = [
    "tune", "--optimizer", "adam", "--problem", "rosenbrock", "--trials", "4",
    "--studies", "3", "--steps", "6000", "--log-every", "2000", "--no-progress",
]  # fmt: skip


def test_killed_tuning_resumes_with_nothing_lost_or_repeated(tmp_path):
    """SIGKILL a real `optbench tune` after its first trials, then finish the campaign: every
    trial once, the early ones not run again, the same table as an uninterrupted campaign."""
    out = tmp_path / "killed"
    kill_after_cells([*COMMAND, "--out", str(out)], out / "cells", 3)
    early = {p.name: os.stat(p).st_mtime_ns for p in (out / "cells").glob("*.parquet")}
    assert 3 <= len(early) < 12 and not (out / tuning.TRIALS_TABLE).exists()

    assert cli.main([*COMMAND, "--out", str(out)]) == 0
    cells = {p.name: os.stat(p).st_mtime_ns for p in (out / "cells").glob("*.parquet")}
    assert len(cells) == 12 and all(cells[name] == early[name] for name in early)
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]
    resumed = pd.read_parquet(out / tuning.TRIALS_TABLE)
    assert len(resumed) == 12 and resumed["cell"].is_unique
    assert cli.main([*COMMAND, "--out", str(tmp_path / "whole")]) == 0
    whole = pd.read_parquet(tmp_path / "whole" / tuning.TRIALS_TABLE)
    columns = ["study", "trial", "seed", "lr", "cell", "score"]
    pd.testing.assert_frame_equal(resumed[columns], whole[columns])


def test_the_command_prints_the_trials_and_each_studys_best(tmp_path, capsys):
    argv = ["tune", "--optimizer", "sgd", "--problem", "quadratic", "--trials", "2"]
    argv += ["--studies", "2", "--steps", "20", "--search", "momentum", "--no-progress"]
    assert cli.main([*argv, "--out", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr().out
    assert "best trial of each study" in printed and "momentum" in printed
    assert "4 trials in 2 studies" in printed


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--trials", "0"], "trials"),
        (["--search", "eps"], "eps"),
        (["--metric", "speed"], "--metric 'speed'"),
        (["--opt", "lr=0.1"], "lr"),
        (["--batch-size", "zero"], "--batch-size"),
    ],
)
def test_the_command_refuses_bad_values(tmp_path, capsys, extra, match):
    argv = ["tune", "--optimizer", "sgd", "--problem", "quadratic", "--steps", "5"]
    assert cli.main([*argv, *extra, "--out", str(tmp_path / "t")]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "t" / "cells").exists()
