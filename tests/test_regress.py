"""``optbench regress``: the statistics, the result reading, and end-to-end comparisons of tiny
git repositories whose second commit is unchanged, slowed, changed or broken."""

import dataclasses
import itertools
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optbench import cli, regress

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (3, 3), (5, 5), (4, 7)])
def test_u_counts_cover_every_ordering(m, n):
    counts = regress._u_counts(m, n)
    assert len(counts) == m * n + 1
    assert sum(counts) == math.comb(m + n, m)
    assert counts == counts[::-1]  # U and m n - U are equally likely


def test_mann_whitney_matches_scipy_exact(rng):
    for m, n in [(3, 3), (5, 5), (4, 6), (7, 3)]:
        for _ in range(20):
            x, y = rng.standard_normal(m), rng.standard_normal(n) + rng.uniform(0, 2)
            expected = stats.mannwhitneyu(y, x, alternative="greater", method="exact").pvalue
            assert regress.mann_whitney_greater(x, y) == pytest.approx(expected, rel=1e-12)


def test_mann_whitney_extremes_and_ties():
    assert regress.mann_whitney_greater([1, 2, 3], [4, 5, 6]) == pytest.approx(1 / 20)
    assert regress.mann_whitney_greater([4, 5, 6], [1, 2, 3]) == 1.0
    assert regress.minimum_p_value(3, 3) == pytest.approx(0.05)
    # all tied: U = m n / 2 rounds up, the test cannot reject
    assert regress.mann_whitney_greater([1.0] * 3, [1.0] * 3) > 0.5
    assert regress.mann_whitney_greater([], [1.0]) == 1.0


def _frame(rows):
    columns = ["commit", "round", "benchmark", "params", "type", "unit", "value", "failed"]
    return pd.DataFrame(rows, columns=columns)


def _timings(name, base_values, head_values, *, kind="time", unit="seconds"):
    rows = []
    for commit, values in (("b", base_values), ("h", head_values)):
        for r, value in enumerate(values, 1):
            failed = value is None
            rows.append((commit, r, name, "1", kind, unit, math.nan if failed else value, failed))
    return rows


def test_compare_verdicts():
    options = regress.Options(factor=1.2, alpha=0.05, rounds=3, tolerance=1e-3)
    rows = (
        _timings("a.slow", [1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
        + _timings("a.noisy", [1.0, 2.0, 1.0], [2.1, 1.3, 2.2])
        + _timings("a.fast", [2.0, 2.1, 1.9], [1.0, 1.1, 0.9])
        + _timings("a.same", [1.0, 1.01, 0.99], [1.0, 1.02, 0.98])
        + _timings("a.memory", [100.0] * 3, [300.0] * 3, kind="peakmemory", unit="bytes")
        + _timings("a.ratio", [1.0] * 3, [0.1] * 3, kind="track", unit="fraction")
        + _timings("convergence.loss", [0.5], [0.5004])
        + _timings("convergence.steps", [40.0], [41.0])
        + _timings("a.broken_now", [1.0, 1.0, 1.0], [None, None, None])
        + _timings("a.new", [], [1.0, 1.0, 1.0])
        + _timings("a.gone", [1.0, 1.0, 1.0], [])
    )
    table = regress.compare(_frame(rows), "b", "h", options).set_index("benchmark")
    verdicts = table["verdict"].to_dict()
    assert verdicts == {
        "a.slow": "regressed",
        "a.noisy": "inconclusive",
        "a.fast": "improved",
        "a.same": "unchanged",
        "a.memory": "regressed",
        "a.ratio": "info",
        "convergence.loss": "unchanged",
        "convergence.steps": "changed",
        "a.broken_now": "failed",
        "a.new": "new",
        "a.gone": "gone",
    }
    # the fastest rounds: 1.9 / 0.9
    assert table.loc["a.slow", "ratio"] == pytest.approx(1.9 / 0.9)
    assert table.loc["a.slow", "head"] == pytest.approx(1.9)
    assert table.loc["a.slow", "p_value"] == pytest.approx(0.05)
    assert table.loc["a.noisy", "ratio"] == pytest.approx(1.3)
    assert table.loc["convergence.steps", "kind"] == "exact"
    # failing verdicts come first
    assert list(regress.compare(_frame(rows), "b", "h", options)["verdict"][:4]) == [
        "failed",
        "regressed",
        "regressed",
        "changed",
    ]


def test_compare_instruction_counts_with_a_threshold():
    options = regress.Options(count_threshold=0.01)
    name = "instructions.Instructions.track_kernel_instructions"
    rows = []
    for params, head in (("'up'", 103_000.0), ("'same'", 100_500.0), ("'down'", 95_000.0)):
        for commit, value in (("b", 100_000.0), ("h", head)):
            rows.append((commit, 1, name, params, "track", "instructions", value, False))
    rows += _timings(
        "instructions.Instructions.track_instructions", [2e5], [2.5e5], kind="track", unit="n"
    )
    table = regress.compare(_frame(rows), "b", "h", options)
    counts = table[table["benchmark"] == name].set_index("params")
    assert counts["verdict"].to_dict() == {
        "'up'": "regressed",
        "'same'": "unchanged",
        "'down'": "improved",
    }
    assert set(counts["kind"]) == {"count"}
    # the total count (the interpreter's included) is shown, never judged
    total = table[table["benchmark"].str.endswith(".track_instructions")]
    assert list(total["verdict"]) == ["info"]
    text = regress.format_table(table, options=options)
    assert "1.03" in text and "instruction counts 0.01" in text
    # an expected regression, named by --accept, is shown as accepted and does not fail
    accepting = regress.Options(accept=(r"track_kernel_instructions\('up'\)",))
    table = regress.compare(_frame(rows), "b", "h", accepting)
    verdicts = table[table["benchmark"] == name].set_index("params")["verdict"]
    assert verdicts["'up'"] == "accepted" and verdicts["'down'"] == "improved"
    failed = regress.Comparison("b", "h", table, _frame(rows)).failed
    assert not failed


def test_instruction_counts_run_in_the_first_round_only():
    pattern = regress.once_pattern(regress.Options())
    assert re.search(pattern, "instructions.Instructions.track_instructions")
    assert re.search(pattern, "convergence.Convergence.track_final_loss")
    assert not re.search(pattern, "optimizers.OptimizerStep.time_steps")


def test_compare_uses_the_fastest_sample_and_round_by_default():
    frame = _frame(_timings("a.t", [1.0, 1.0, 1.0], [3.0, 3.0, 3.0]))
    frame["best"] = [1.0, 1.0, 1.0, 1.05, 1.0, 1.02]  # HEAD's samples: slow medians, fast minima
    three = regress.Options(rounds=3, alpha=0.05, factor=1.2)
    by_min = regress.compare(frame, "b", "h", three)
    by_median = regress.compare(frame, "b", "h", dataclasses.replace(three, statistic="median"))
    assert by_min["verdict"][0] == "unchanged" and by_min["head"][0] == pytest.approx(1.0)
    assert by_median["verdict"][0] == "regressed" and by_median["head"][0] == 3.0


def test_one_slow_process_per_round_on_one_side_is_not_a_regression():
    """Bimodal noise, the kind measured on the shared machine: HEAD's rounds were all slow
    but one. The ratio of medians (1.45) and the ordering (p = 0.024) would flag it; the
    fastest rounds (ratio 1.02) do not."""
    base, head = [1.0, 1.02, 1.01, 1.03, 1.0], [1.45, 1.5, 1.02, 1.4, 1.48]
    options = regress.Options(factor=1.2)
    table = regress.compare(_frame(_timings("a.t", base, head)), "b", "h", options)
    assert table["verdict"][0] == "unchanged"
    assert table["ratio"][0] == pytest.approx(1.02)
    median = dataclasses.replace(options, statistic="median", alpha=0.05)
    assert (
        regress.compare(_frame(_timings("a.t", base, head)), "b", "h", median)["verdict"][0]
        == "regressed"
    )


def test_compare_exact_tracks_nan_and_inf():
    options = regress.Options()
    rows = (
        _timings("convergence.x", [math.nan], [math.nan])
        + _timings("convergence.y", [1.0], [math.inf])
        + _timings("convergence.z", [0.0], [1e-12])
    )
    # NaN values mean "not run" in asv's files, but an exact comparison still handles them
    verdicts = regress.compare(_frame(rows), "b", "h", options).set_index("benchmark")["verdict"]
    assert verdicts["convergence.x"] == "unchanged"
    assert verdicts["convergence.y"] == "changed"
    assert verdicts["convergence.z"] == "changed"  # tolerance is relative to |base| = 0


def test_comparison_failed_and_table_text():
    options = regress.Options(rounds=3, alpha=0.05)
    table = regress.compare(
        _frame(_timings("a.slow", [1e-3] * 3, [3e-3, 3.1e-3, 3.2e-3])), "b", "h", options
    )
    comparison = regress.Comparison("b", "h", table, pd.DataFrame())
    assert comparison.failed
    text = regress.format_table(table, options=options)
    assert "regressed" in text and "a.slow(1)" in text and "1ms" in text and "3ms" in text
    assert "1 benchmarks compared: 1 regressed" in text
    same = regress.compare(_frame(_timings("a.same", [1.0] * 3, [1.0] * 3)), "b", "h", options)
    assert not regress.Comparison("b", "h", same, pd.DataFrame()).failed
    assert "a.same" not in regress.format_table(same)
    assert "a.same" in regress.format_table(same, show_all=True)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (2.5, "seconds", "2.5s"),
        (1.5e-3, "seconds", "1.5ms"),
        (2e-6, "seconds", "2us"),
        (3e-9, "seconds", "3ns"),
        (3 * 2**20, "bytes", "3M"),
        (512, "bytes", "512"),
        (0.12345, "loss", "0.1235"),
        (math.nan, "loss", "n/a"),
    ],
)
def test_format_value(value, unit, text):
    assert regress.format_value(value, unit) == text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": math.inf}, "factor"),
        ({"alpha": 0.0}, "alpha"),
        ({"rounds": 4}, "rounds=4 cannot reach alpha=0.01"),
        ({"processes": 0}, "processes must be >= 1"),
        ({"rounds": 2, "alpha": 0.05}, "rounds=2 cannot reach alpha=0.05"),
        ({"rounds": 3, "alpha": 0.01}, "use rounds >= 5"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"statistic": "mean"}, "statistic"),
        ({"bench": ("(",)}, "bench"),
        ({"accept": ("(",)}, "accept"),
        ({"deterministic": "["}, "deterministic"),
        ({"counts": "["}, "counts"),
        ({"count_threshold": 0.0}, "count_threshold"),
        ({"python": "/no/such/python"}, "python"),
    ],
)
def test_bad_options_raise_naming_them(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        regress.check_options(regress.Options(**changes))
    with pytest.raises(TypeError, match="rounds"):
        regress.check_options(regress.Options(rounds=3.0))
    with pytest.raises(TypeError, match="processes"):
        regress.check_options(regress.Options(processes=True))


def test_selection_excludes_deterministic_names():
    names = [
        "convergence.Convergence.track_final_loss('sgd', 'quadratic')",
        "optimizers.OptimizerStep.time_steps('sgd', 10000, 'float32', 1)",
        "optimizers.OptimizerStep.time_steps('adam', 10000, 'float32', 1)",
    ]

    def selected(expressions):  # asv's rule: any expression found in name(params)
        return [n for n in names if not expressions or any(re.search(e, n) for e in expressions)]

    assert selected(regress.selection(())) == names
    assert selected(regress.selection((), exclude=r"^convergence\.")) == names[1:]
    only_adam = regress.selection(("'adam'", "quadratic"), exclude=r"^convergence\.")
    assert selected(only_adam) == names[2:]


def test_read_results_skips_nan_and_keeps_failures(tmp_path):
    (tmp_path / "benchmarks.json").write_text(
        json.dumps(
            {
                "m.T.time_x": {"type": "time", "unit": "seconds"},
                "m.T.track_y": {"type": "track", "unit": "loss"},
            }
        )
    )
    machine = tmp_path / "host"
    machine.mkdir()
    (machine / "machine.json").write_text("{}")
    columns = ["result", "params", "version", "started_at", "duration", "samples"]
    data = {
        "commit_hash": "abc",
        "version": 2,
        "result_columns": columns,
        "results": {
            "m.T.time_x": [
                [1.5, math.nan, None],
                [["1", "2", "3"]],
                "v",
                0,
                1.0,
                [[1.5, 1.2, 1.9], None, None],
            ],
            "m.T.track_y": [[0.25], [], "v", 0, 1.0],
        },
    }
    (machine / "abc-existing.json").write_text(json.dumps(data))
    (machine / "other.json").write_text(json.dumps({**data, "commit_hash": "zzz"}))
    rows = regress.read_results(str(tmp_path), {"abc"})
    assert [(r["benchmark"], r["params"], r["failed"]) for r in rows] == [
        ("m.T.time_x", "1", False),
        ("m.T.time_x", "3", True),
        ("m.T.track_y", "", False),
    ]
    assert rows[0]["value"] == 1.5 and rows[0]["best"] == 1.2
    assert rows[2]["unit"] == "loss" and rows[2]["best"] == 0.25
    assert math.isnan(rows[1]["value"])


# --------------------------------------------------------------------------------------------
# tiny repositories
# --------------------------------------------------------------------------------------------
ASV_CONF = {
    "version": 1,
    "project": "tinykernel",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "virtualenv",
    "benchmark_dir": "benchmarks",
    "results_dir": ".asv/results",
    "html_dir": ".asv/html",
}
KERNEL = """import numpy as np

PASSES = {passes}
OFFSET = {offset}


def work(x):
    for _ in range(PASSES):
        y = np.sort(x)
    return y


def answer():
    return 42.0 + OFFSET
"""
TIMING = """import numpy as np

import tinykernel


class Work:
    def setup(self):
        self.x = np.random.default_rng(0).random(100_000)

    def time_work(self):
        for _ in range(4):
            tinykernel.work(self.x)
"""
TRACK = """import tinykernel


class Result:
    def track_answer(self):
        return tinykernel.answer()

    track_answer.unit = "answers"
"""
BROKEN_TRACK = TRACK.replace("return tinykernel.answer()", "raise RuntimeError('broken')")


def _git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _write(repo, passes=1, offset=0.0, track=TRACK):
    (repo / "tinykernel").mkdir(exist_ok=True)
    (repo / "benchmarks").mkdir(exist_ok=True)
    (repo / "asv.conf.json").write_text(json.dumps(ASV_CONF))
    (repo / "tinykernel" / "__init__.py").write_text(KERNEL.format(passes=passes, offset=offset))
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / "benchmarks" / "bench.py").write_text(TIMING)
    (repo / "benchmarks" / "convergence.py").write_text(track)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    """Commits: base; same (an empty commit: the same tree); slow (3 sorts instead of 1);
    changed (the deterministic track moves); broken (the track raises)."""
    repo = tmp_path_factory.mktemp("tiny")
    _git(repo, "init", "-q", "-b", "main")
    commits = {}
    for name, kwargs in [
        ("base", {}),
        ("same", None),
        ("slow", {"passes": 3}),
        ("changed", {"offset": 1.0}),
        ("broken", {"track": BROKEN_TRACK}),
    ]:
        if kwargs is None:
            _git(repo, "commit", "-q", "--allow-empty", "-m", name)
        else:
            _write(repo, **kwargs)
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", name)
        commits[name] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    return repo, commits


@pytest.fixture
def asv_home(tmp_path, monkeypatch):
    """A home directory of its own, so that asv's machine file is created there."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_resolve_commit_and_shallow_hint(tiny_repo, tmp_path):
    repo, commits = tiny_repo
    assert regress.resolve_commit(str(repo), "HEAD~4") == commits["base"]
    with pytest.raises(ValueError, match="not in the repository") as error:
        regress.resolve_commit(str(repo), "no-such-branch")
    assert "shallow" not in str(error.value)
    with pytest.raises(ValueError, match="not a commit name"):
        regress.resolve_commit(str(repo), "--all")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ValueError, match="fetch-depth: 0"):
        regress.resolve_commit(str(shallow), commits["base"])
    with pytest.raises(ValueError, match="not inside a git repository"):
        regress.repository_root(str(tmp_path))


def test_export_tree_is_reused_and_leaves_the_repository_alone(tiny_repo, tmp_path):
    repo, commits = tiny_repo
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    tree = regress.export_tree(str(repo), commits["slow"], str(tmp_path / "trees"))
    assert "PASSES = 3" in (pathlib.Path(tree) / "tinykernel" / "__init__.py").read_text()
    marker = pathlib.Path(tree) / regress.EXPORT_MARKER
    stamp = marker.stat().st_mtime_ns
    assert regress.export_tree(str(repo), commits["slow"], str(tmp_path / "trees")) == tree
    assert marker.stat().st_mtime_ns == stamp
    after = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert after.stdout == status.stdout
    assert not (repo / ".git" / "worktrees").exists()


def _regress(repo, base, head, *extra, capsys):
    code = cli.main(["regress", base, head, "--repo", str(repo), *extra])
    return code, capsys.readouterr()


# Strict enough that an unchanged commit passes (p <= 0.01 needs at most 1 of 25 round pairs
# out of order, and a 1.5x ratio), loose enough that a 3x slowdown cannot hide.
STRICT = ["--rounds", "5", "--alpha", "0.01", "--factor", "1.5", "--quick"]


def test_regress_passes_unchanged_and_flags_a_slowed_kernel(tiny_repo, asv_home, capsys):
    repo, commits = tiny_repo
    code, out = _regress(repo, commits["base"], commits["same"], *STRICT, capsys=capsys)
    assert code == 0, out.out + out.err
    assert "regressed" not in out.out
    assert "2 benchmarks compared" in out.out

    csv = asv_home / "t.csv"
    code, out = _regress(
        repo, commits["base"], commits["slow"], *STRICT, "--output", str(csv), capsys=capsys
    )
    assert code == 1, out.out + out.err
    assert "regressed" in out.out and "bench.Work.time_work" in out.out
    table = pd.read_csv(csv).set_index("benchmark")
    assert table.loc["bench.Work.time_work", "verdict"] == "regressed"
    assert table.loc["bench.Work.time_work", "ratio"] > 2
    assert len(table.loc["bench.Work.time_work", "head_values"].split()) == 5
    assert table.loc["convergence.Result.track_answer", "verdict"] == "unchanged"
    # the deterministic track ran once per commit, the timing once per round
    assert len(table.loc["convergence.Result.track_answer", "head_values"].split()) == 1


def test_regress_flags_a_changed_track_and_a_broken_benchmark(tiny_repo, asv_home, capsys):
    repo, commits = tiny_repo
    only_track = ["--bench", "^convergence", "--quick"]
    code, out = _regress(repo, commits["slow"], commits["changed"], *only_track, capsys=capsys)
    assert code == 1, out.out + out.err
    assert "changed" in out.out and "42" in out.out and "43" in out.out
    code, out = _regress(repo, commits["changed"], commits["broken"], *only_track, capsys=capsys)
    assert code == 1, out.out + out.err
    assert "failed" in out.out


def test_regress_publishes_the_site(tiny_repo, asv_home, capsys):
    """``--publish``: the first round's results, as asv's HTML site in the repository's
    ``html_dir`` (the project's: reports/asv)."""
    repo, commits = tiny_repo
    code, out = _regress(
        repo,
        commits["base"],
        commits["changed"],
        *["--bench", "^convergence", "--quick", "--publish"],
        capsys=capsys,
    )
    assert code == 1, out.out + out.err
    html = repo / ASV_CONF["html_dir"]
    assert f"published to {html}" in out.err
    assert (html / "index.html").exists()
    index = json.loads((html / "index.json").read_text())
    assert {commits["base"], commits["changed"]} <= set(index["revision_to_hash"].values())
    assert "convergence.Result.track_answer" in index["benchmarks"]


def test_regress_instructions_mode_runs_both_commits_at_once(tiny_repo, asv_home, capsys):
    """``--instructions`` (``Options.concurrent``): the benchmarks made once only, BASE and HEAD
    in one pass side by side; timings are left out even when ``--bench`` selects them, and
    ``--publish`` publishes both commits."""
    repo, commits = tiny_repo
    csv = asv_home / "t.csv"
    args = ["--instructions", "--bench", ".", "--publish", "-o", str(csv)]
    code, out = _regress(repo, commits["base"], commits["changed"], *args, capsys=capsys)
    assert code == 1, out.out + out.err
    assert "at once" in out.err and "round 1/" not in out.err
    table = pd.read_csv(csv)
    assert table["benchmark"].tolist() == ["convergence.Result.track_answer"]
    assert table["verdict"].tolist() == ["changed"]
    index = json.loads((repo / ASV_CONF["html_dir"] / "index.json").read_text())
    assert {commits["base"], commits["changed"]} <= set(index["revision_to_hash"].values())
    code, out = _regress(repo, commits["base"], commits["same"], *args[:3], capsys=capsys)
    assert code == 0, out.out + out.err


def test_regress_usage_errors_exit_2(tiny_repo, asv_home, capsys):
    repo, commits = tiny_repo
    code, out = _regress(repo, commits["base"], "nope", capsys=capsys)
    assert code == 2 and "'nope' is not in the repository" in out.err
    code, out = _regress(repo, commits["base"], commits["base"], capsys=capsys)
    assert code == 2 and "cannot be compared with itself" in out.err
    code, out = _regress(repo, "HEAD~1", "HEAD", "--factor", "x", capsys=capsys)
    assert code == 2 and "--factor 'x'" in out.err
    code, out = _regress(repo, "HEAD~1", "HEAD", "--rounds", "4", capsys=capsys)
    assert code == 2 and "rounds" in out.err


def test_regress_reports_a_commit_without_suite(tmp_path, asv_home, capsys):
    repo = tmp_path / "bare"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for name in ("one", "two"):
        (repo / "f.txt").write_text(name)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", name)
    code, out = _regress(repo, "HEAD~1", "HEAD", "--workdir", str(tmp_path / "w"), capsys=capsys)
    assert code == 3 and "has no asv.conf.json" in out.err


# --------------------------------------------------------------------------------------------
# the project's own suite, with an optimizer kernel slowed 2x (slow: compiles two trees)
# --------------------------------------------------------------------------------------------
def _project_copy(destination):
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


ADAM_CALL = "        _adam_chunk(param, grad, state, column, common, hp, step)\n"


@pytest.mark.slow
def test_regress_flags_adam_kernel_slowed_2x_in_the_project(tmp_path, asv_home, capsys):
    repo = tmp_path / "project"
    _project_copy(repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    kernels = repo / "optbench" / "kernels" / "optimizers.py"
    source = kernels.read_text()
    if source.count(ADAM_CALL) != 2:
        pytest.skip("the Adam kernels no longer call _adam_chunk once each")
    kernels.write_text(source.replace(ADAM_CALL, ADAM_CALL * 2))  # every update done twice
    _git(repo, "commit", "-q", "-am", "adam twice")
    subset = r"^optimizers\.OptimizerStep\.time_steps\('(sgd|adam)', 1000000, 'float32', 1\)"
    csv = tmp_path / "t.csv"
    code, out = _regress(
        repo, "HEAD~1", "HEAD", "--bench", subset, "--rounds", "5", "-o", str(csv), capsys=capsys
    )
    table = pd.read_csv(csv).set_index("params")
    assert code == 1, out.out + out.err
    assert table.loc["'adam', 1000000, 'float32', 1", "verdict"] == "regressed"
    assert table.loc["'sgd', 1000000, 'float32', 1", "verdict"] != "regressed"


def test_module_runs_as_documented():
    """``python -m optbench regress --help`` lists the options the README shows."""
    result = subprocess.run(
        [sys.executable, "-m", "optbench", "regress", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    options = ("--factor", "--rounds", "--processes", "--quick", "--bench", "--publish")
    for option in (*options, "--tolerance"):
        assert option in result.stdout


def test_u_counts_small_table():
    # m = n = 2: orderings xxyy, xyxy, xyyx, yxxy, yxyx, yyxx -> U = 0, 1, 2, 2, 3, 4
    assert regress._u_counts(2, 2) == (1, 1, 2, 1, 1)
    assert list(itertools.accumulate(regress._u_counts(3, 3)))[-1] == 20
    assert np.isclose(regress.mann_whitney_greater([0, 1], [2, 3]), 1 / 6)
