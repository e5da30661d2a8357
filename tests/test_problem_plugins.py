"""Problems from outside optbench: an entry point in ``optbench.problems`` or
``optbench.register(ProblemClass)`` makes a problem known to the runner, the command line and
the grids; a broken plugin is left out with one warning naming it."""

import warnings

import numpy as np
import pytest

import optbench
from optbench import cli, problems, runner
from optbench.problems.analytic import Quadratic
from optbench.registry import PluginWarning


class SteepQuadratic(Quadratic):
    """The built-in quadratic at condition number 100 by default: a problem a plugin adds."""

    name = "steep_quadratic"
    description = "quadratic bowl with kappa = 100"

    def __init__(self, seed=0, **options):
        super().__init__(seed, **{"kappa": 100.0, **options})


@pytest.fixture
def clean_problems(monkeypatch):
    """A problem table without plugins or registrations, restored afterwards."""
    monkeypatch.setattr(problems.PROBLEMS, "_registered", {})
    monkeypatch.setattr(problems.PROBLEMS, "_plugins_loaded", False)
    return problems.PROBLEMS


def fake_distribution(tmp_path, monkeypatch, module_source, entry_points):
    """An installed distribution declaring ``entry_points`` in ``optbench.problems``, with a
    module ``fake_problems`` of ``module_source`` on the path."""
    site = tmp_path / "site"
    dist = site / "fake_problems-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-problems\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{problems.ENTRY_POINT_GROUP}]\n{lines}")
    (site / "fake_problems.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(site))


PLUGIN_MODULE = """
from optbench.problems.analytic import Quadratic

class WideQuadratic(Quadratic):
    name = "wide_quadratic"
    description = "quadratic bowl in 8 dimensions"

    def __init__(self, seed=0, **options):
        super().__init__(seed, **{"d": 8, **options})

NOT_A_PROBLEM = 3
"""


def test_registered_problem_runs_and_lists(clean_problems, capsys):
    assert optbench.register(SteepQuadratic) is SteepQuadratic
    assert list(problems.PROBLEMS)[-1] == "steep_quadratic"
    assert problems.make("steep_quadratic").config["kappa"] == 100.0
    frame = runner.run("sgd", "steep_quadratic", lr=1e-2, steps=10)
    assert set(frame["problem"]) == {"steep_quadratic"}
    assert cli.main(["list", "problems"]) == 0
    assert "steep_quadratic" in capsys.readouterr().out
    problems.unregister("steep_quadratic")
    with pytest.raises(ValueError, match="unknown problem"):
        problems.get("steep_quadratic")


def test_a_bad_problem_is_refused_naming_it(clean_problems):
    with pytest.raises(ValueError, match="already registered"):
        problems.register(Quadratic)
    with pytest.raises(TypeError, match="Problem subclass"):
        optbench.register(int)
    with pytest.raises(TypeError, match="OptimizerSpec or a Problem subclass"):
        optbench.register("quadratic")

    class Unnamed(Quadratic):
        name = "Not A Name"

    with pytest.raises(ValueError, match="lower-case identifier"):
        problems.register(Unnamed)


def test_problem_plugin_through_an_entry_point(clean_problems, tmp_path, monkeypatch):
    fake_distribution(tmp_path, monkeypatch, PLUGIN_MODULE, {"wide": "fake_problems:WideQuadratic"})
    assert "wide_quadratic" in problems.PROBLEMS
    params = problems.make("wide_quadratic").initial_params()
    assert sum(p.size for p in params) == 8
    frame = runner.run("adam", "wide_quadratic", lr=1e-2, steps=5)
    assert np.isfinite(frame["train_loss"].iloc[-1])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("no_such_module_for_optbench:X", "No module named"),
        ("fake_problems:MISSING", "MISSING"),
        ("fake_problems:NOT_A_PROBLEM", "Problem subclass"),
        ("optbench.problems.analytic:Quadratic", "already registered"),
    ],
)
def test_broken_problem_plugin_is_left_out_with_a_warning(
    clean_problems, tmp_path, monkeypatch, value, reason
):
    fake_distribution(tmp_path, monkeypatch, PLUGIN_MODULE, {"broken": value})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = list(problems.PROBLEMS)
    assert names[: len(problems.BUILTIN)] == [cls.name for cls in problems.BUILTIN]
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert len(messages) == 1
    assert "plugin 'broken'" in messages[0] and "optbench.problems" in messages[0]
    assert reason in messages[0]
