"""Baseline packs (optbench.report.packs): written and read back exactly, merged with their
machines kept apart, fixed references, absolute scores that adding an optimizer cannot move,
``optbench report --baseline`` and ``optbench pack``, and the pack shipped for the quick
profile."""

import dataclasses
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from optbench import algorithms, cli, registry, sweep
from optbench.report import build, packs, profiles, ranking, runs

TINY = dataclasses.replace(profiles.TINY, throughput=None)
MACHINE = ("machine-a / test CPU / 2 CPUs", {"CPU": "test CPU", "logical CPUs": "2"})


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("pack-runs")
    return {
        study.label: runs.tune_study(study, TINY.optimizers, TINY, out, progress=False)
        for study in TINY.studies
    }


@pytest.fixture(scope="module")
def pack(tuned):
    return packs.from_tuned(TINY, tuned, MACHINE)


@pytest.fixture(scope="module")
def pack_path(pack, tmp_path_factory):
    path = tmp_path_factory.mktemp("pack") / "tiny.parquet"
    packs.write(pack, path)
    return path


def _frames_equal(a, b):
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# the file
# --------------------------------------------------------------------------------------------
def test_a_pack_reads_back_exactly(pack, pack_path):
    back = packs.read(pack_path)
    _frames_equal(back.runs, pack.runs)
    _frames_equal(back.search, pack.search)
    assert back.studies == pack.studies
    assert [s.lrs for s in back.studies] == [(1e-3, 1e-2, 1e-1)] * 3
    assert (back.profile, back.seeds, back.search_seeds) == ("tiny", (1, 2), (0,))
    assert back.machines == {MACHINE[0]: MACHINE[1]}
    assert back.optimizers == ("sgd", "adam")


def test_a_pack_holds_the_tuned_runs(pack, tuned):
    for study in TINY.studies:
        final = tuned[study.label].final
        rows = pack.runs[pack.runs["problem"] == study.label]
        assert len(rows) == len(final)
        np.testing.assert_array_equal(rows["full_train_loss"], final["full_train_loss"])
        assert set(rows["seed"]) == {1, 2}
    best = pack.best()
    for study in TINY.studies:
        chosen = tuned[study.label].best
        for row in chosen.itertuples():
            mine = best[(best["problem"] == study.label) & (best["optimizer"] == row.optimizer)]
            assert mine["lr"].item() == row.lr
            assert mine["score"].item() == pytest.approx(row.score)


def test_reading_refuses_what_is_not_a_pack(tmp_path, pack_path):
    text = tmp_path / "text.parquet"
    text.write_text("not parquet")
    with pytest.raises(ValueError, match=r"text\.parquet.*cannot read"):
        packs.read(text)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1]}), plain)
    with pytest.raises(ValueError, match=r"plain\.parquet.*not an optbench pack"):
        packs.read(plain)
    table = pq.read_table(pack_path)
    meta = table.schema.metadata[packs.METADATA_KEY].replace(b'"format": 1', b'"format": 99')
    future = tmp_path / "future.parquet"
    pq.write_table(table.replace_schema_metadata({packs.METADATA_KEY: meta}), future)
    with pytest.raises(ValueError, match=r"future\.parquet.*format 99"):
        packs.read(future)
    with pytest.raises(ValueError, match=r"must end in \.parquet"):
        packs.write(packs.read(pack_path), tmp_path / "pack.csv")


# --------------------------------------------------------------------------------------------
# merging
# --------------------------------------------------------------------------------------------
def _on_machine(pack, identifier, wall_factor=1.0):
    runs_ = pack.runs.assign(machine=identifier, wall_time=pack.runs["wall_time"] * wall_factor)
    search = pack.search.assign(machine=identifier)
    return dataclasses.replace(pack, runs=runs_, search=search, machines={identifier: {}})


def test_merged_packs_keep_their_machines_apart(pack):
    other = _on_machine(pack, "machine-b", wall_factor=3.0)
    merged = packs.merge([pack, other])
    assert list(merged.machines) == [MACHINE[0], "machine-b"]
    assert len(merged.runs) == 2 * len(pack.runs)
    # one machine's runs per (study, optimizer): never pooled wall times
    _frames_equal(merged.final_log(), pack.runs)
    preferred = merged.final_log(prefer="machine-b")
    assert set(preferred["machine"]) == {"machine-b"}
    np.testing.assert_array_equal(preferred["wall_time"], 3.0 * pack.runs["wall_time"])
    # steps do not depend on the machine: the references agree
    _frames_equal(packs.references(merged), packs.references(pack))


def test_merging_joins_optimizers_of_different_sweeps(pack):
    adam = pack.runs["optimizer"] == "adam"
    only = {
        name: dataclasses.replace(
            pack,
            runs=pack.runs[mask].reset_index(drop=True),
            search=pack.search[pack.search["optimizer"] == name].reset_index(drop=True),
        )
        for name, mask in (("sgd", ~adam), ("adam", adam))
    }
    merged = packs.merge([only["sgd"], only["adam"]])
    assert merged.optimizers == ("sgd", "adam")
    pd.testing.assert_series_equal(packs.scores(merged), packs.scores(pack))


def test_merging_refuses_conflicts(pack):
    with pytest.raises(ValueError, match="both hold sgd on 'quadratic'"):
        packs.merge([pack, pack])
    with pytest.raises(ValueError, match="seeds"):
        packs.merge([pack, dataclasses.replace(_on_machine(pack, "b"), seeds=(1, 2, 3))])
    longer = tuple(dataclasses.replace(s, steps=61) if s.steps == 60 else s for s in pack.studies)
    with pytest.raises(ValueError, match="defines study 'quadratic' differently"):
        packs.merge([pack, dataclasses.replace(_on_machine(pack, "b"), studies=longer)])
    with pytest.raises(ValueError, match="two packs or more"):
        packs.merge([pack])


# --------------------------------------------------------------------------------------------
# references and absolute scores
# --------------------------------------------------------------------------------------------
def test_references_are_the_fewest_median_steps_of_the_pack(pack):
    found = packs.references(pack)
    table = packs.ranking_table(pack)
    for label, row in found.iterrows():
        steps = table[table["problem"] == label]["steps_to_target"]
        if steps.notna().any():
            assert row["reference_steps"] == steps.min()
            best = table.loc[steps.idxmin(), "optimizer"]
            assert row["reference_optimizer"] == best
        else:  # no baseline reaches its target: the step budget
            study = pack.study(label)
            assert row["reference_optimizer"] == "budget"
            assert row["reference_steps"] == packs.budget_steps(study)
        assert row["judged_on"] == packs.ON_LOSS  # the tiny studies are not stored workloads


def test_a_reference_makes_every_score_independent_of_the_others():
    costs = pd.DataFrame(
        {
            "problem": ["p", "p", "q", "q"],
            "optimizer": ["a", "b", "a", "b"],
            "cost": [100.0, 200.0, 50.0, np.nan],
        }
    )
    reference = pd.Series({"p": 100.0, "q": 40.0})
    before = ranking.profile_scores(costs, reference=reference)
    # (4 - 1) / 3 on p and (4 - 1.25) / 3 on q; b: (4 - 2) / 3 on p, nothing on q
    assert before["a"] == pytest.approx((1 + 2.75 / 3) / 2)
    assert before["b"] == pytest.approx((2 / 3) / 2)
    faster = pd.concat(
        [costs, pd.DataFrame({"problem": ["p", "q"], "optimizer": "c", "cost": [10.0, 10.0]})]
    )
    after = ranking.profile_scores(faster, reference=reference)
    assert after["c"] == 1.0  # faster than the reference counts as the reference
    pd.testing.assert_series_equal(after.drop("c"), before)
    # relative to the best present, the newcomer moves everyone
    assert ranking.profile_scores(faster)["a"] < ranking.profile_scores(costs)["a"]
    profile = ranking.performance_profile(faster, reference=reference)
    assert profile[(profile["optimizer"] == "c") & (profile["tau"] == 1.0)]["fraction"].item() == 1
    with pytest.raises(ValueError, match="no cost for problem 'q'"):
        ranking.profile_scores(costs, reference=pd.Series({"p": 1.0}))
    with pytest.raises(ValueError, match="finite and positive"):
        ranking.profile_scores(costs, reference=pd.Series({"p": 1.0, "q": np.inf}))


def test_score_intervals_against_a_reference_ignore_the_other_optimizers():
    rng = np.random.default_rng(3)
    rows = [
        (problem, optimizer, seed, float(rng.integers(10, 60)))
        for problem in ("p", "q")
        for optimizer in ("a", "b")
        for seed in range(3)
    ]
    runs_ = pd.DataFrame(rows, columns=["problem", "optimizer", "seed", "steps"])
    reference = pd.Series({"p": 20.0, "q": 25.0})
    before = ranking.profile_score_intervals(runs_, reference=reference, resamples=200)
    newcomer = pd.DataFrame(
        [(p, "aa", s, 5.0) for p in ("p", "q") for s in range(3)], columns=runs_.columns
    )
    after = ranking.profile_score_intervals(
        pd.concat([runs_, newcomer]), reference=reference, resamples=200
    )
    pd.testing.assert_frame_equal(after.drop("aa"), before)
    assert tuple(after.loc["aa"]) == (1.0, 1.0)


# --------------------------------------------------------------------------------------------
# a report against a pack
# --------------------------------------------------------------------------------------------
@pytest.fixture
def plugin():
    spec = dataclasses.replace(algorithms.LION, name="lion_plugin", class_name="LionPlugin")
    registry.register(spec)
    yield spec.name
    registry.unregister(spec.name)


def test_a_plugin_against_the_pack_leaves_every_baseline_score_unchanged(pack, tmp_path, plugin):
    profile = pack.profile_for((plugin,))
    build.build(profile, tmp_path / "r", baseline=pack, progress=False)
    scores = pd.read_csv(tmp_path / "r" / "data" / "profile-scores-steps.csv")
    scores = scores.set_index("optimizer")
    own = packs.scores(pack)
    assert set(scores.index) == {"sgd", "adam", plugin}
    for name in ("sgd", "adam"):
        assert scores.loc[name, "score"] == pytest.approx(own[name], abs=1e-12)
    table = pd.read_csv(tmp_path / "r" / "data" / "ranking.csv")
    assert set(table[table["source"] == build.THIS_RUN]["optimizer"]) == {plugin}
    assert set(table[table["source"] == build.PACK]["optimizer"]) == {"sgd", "adam"}
    assert set(table["machine"][table["source"] == build.PACK]) == {MACHINE[0]}
    against = pd.read_csv(tmp_path / "r" / "data" / "against-pack.csv")
    assert list(against["optimizer"]) == [plugin] * len(pack.studies)
    assert set(against["change"]) == {"new"}
    assert (against["pack_optimizers"] == 2).all()
    # only the plugin ran: its cells alone are under runs/
    run_dirs = (tmp_path / "r" / "runs").iterdir()
    for cell in (c for d in run_dirs for c in (d / "final" / "cells").glob("*.parquet")):
        assert set(pd.read_parquet(cell)["optimizer"]) == {plugin}
    sections = (tmp_path / "r" / "report.md").read_text()
    assert "Trajectories" not in sections and "Throughput" not in sections
    assert "Against the baseline pack" in sections


def test_a_report_judged_by_a_pack_compares_its_optimizers_with_it(pack, tmp_path):
    build.build(TINY, tmp_path / "r", reference=pack, throughput=False, progress=False)
    scores = pd.read_csv(tmp_path / "r" / "data" / "profile-scores-steps.csv")
    own = packs.scores(pack)
    for row in scores.itertuples():
        assert row.score == pytest.approx(own[row.optimizer], abs=1e-12)
    # the same seeds and code as the pack's runs: the same steps, so no change
    against = pd.read_csv(tmp_path / "r" / "data" / "against-pack.csv")
    assert set(against["change"]) == {"same"}
    np.testing.assert_array_equal(against["steps"], against["pack_steps"])
    assert "Every pair is within its interval" in (tmp_path / "r" / "report.md").read_text()


def test_a_baseline_must_match_the_profile(pack, tmp_path):
    other = dataclasses.replace(TINY, seeds=(1, 2, 3))
    with pytest.raises(ValueError, match="not the pack's"):
        build.build(other, tmp_path / "r", baseline=pack, progress=False)
    with pytest.raises(ValueError, match="not the pack's"):
        build.build(other, tmp_path / "r", reference=pack, progress=False)
    with pytest.raises(TypeError, match=r"packs\.Pack"):
        build.build(TINY, tmp_path / "r", baseline="quick", progress=False)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------
def test_pack_commands(tmp_path, capsys, tuned):
    out = tmp_path / "p.parquet"
    argv = ["pack", "build", "--profile", "tiny", "--out", str(out), "--runs", str(tmp_path)]
    assert cli.main([*argv, "--no-progress"]) == 0
    built = packs.read(out)
    assert built.optimizers == ("sgd", "adam")
    assert cli.main(["pack", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "reference_steps" in shown and "absolute scores" in shown
    assert cli.main(["pack", "merge", "--out", str(tmp_path / "m.parquet"), str(out), str(out)])
    assert "both hold" in capsys.readouterr().err
    assert cli.main(["pack", "build", "--out", str(tmp_path / "p.csv")]) == 2
    assert cli.main(["pack", "show", str(tmp_path / "missing.parquet")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "name the optimizers"),
        (["--optimizers", "adam", "--profile", "tiny"], "give no --profile"),
        (["--optimizers", "no_such"], "unknown optimizer"),
    ],
)
def test_report_baseline_usage_errors(pack_path, tmp_path, capsys, extra, message):
    argv = ["report", "--baseline", str(pack_path), "--out-dir", str(tmp_path), *extra]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the shipped pack
# --------------------------------------------------------------------------------------------
def test_the_quick_pack_is_shipped_and_matches_the_quick_profile():
    shipped = packs.shipped("quick")
    assert shipped is not None, "optbench/data/packs/quick.parquet: optbench pack build"
    assert shipped.matches(profiles.QUICK), (
        "the quick profile changed: rebuild the pack with "
        "optbench pack build --profile quick --out optbench/data/packs/quick.parquet"
    )
    assert set(shipped.optimizers) == set(profiles.QUICK.optimizers)
    found = packs.references(shipped)
    assert set(found.index) == {s.label for s in profiles.QUICK.studies}
    assert np.isfinite(found["reference_steps"]).all()
    assert os.path.getsize(packs.shipped_path("quick")) < 3 * 2**20


def test_the_quick_pack_reproduces_here():
    """One of the shipped runs, run again: the same losses (a seeded, single-threaded run)."""
    shipped = packs.shipped("quick")
    study = shipped.study("quadratic")
    final = shipped.final_log()
    rows = final[(final["problem"] == "quadratic") & (final["optimizer"] == "adam")]
    seed = int(rows["seed"].min())
    rows = rows[rows["seed"] == seed]
    spec = runs.run_spec(study, "adam", float(rows["lr"].iloc[0]), seed)
    again = sweep.run_cell(spec)
    np.testing.assert_allclose(again["full_train_loss"], rows["full_train_loss"], rtol=1e-12)
