"""Specs, registration and plugins: a spec is one declaration, checked when it is made; plugins
come in through entry points, and a broken one is left out with one warning naming it."""

import dataclasses
import importlib.util
import inspect
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from optim_helpers import make_grads, make_params

from optbench import algorithms, optim, registry, spec, testing
from optbench.reference import optimizers as reference

PLUGIN_SOURCE = Path(__file__).parents[1] / "examples" / "optimizer-plugin" / "src"


@pytest.fixture
def clean_registry(monkeypatch):
    """A registry without plugins or registrations, restored afterwards."""
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    return registry


def fake_distribution(tmp_path, monkeypatch, entry_points):
    """An installed distribution (a dist-info folder on sys.path) declaring ``entry_points``
    ({name: "module:attribute"}) in optbench's group."""
    dist = tmp_path / "site" / "fake_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(PLUGIN_SOURCE))


def test_kernel_names_and_state_names_come_from_the_declaration():
    assert algorithms.ADAM.kernel_names == (
        "lr",
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
        "amsgrad",
        "decoupled_weight_decay",
    )
    assert algorithms.NADAM.kernel_names[-2:] == ("grad_coefficient", "avg_coefficient")
    assert algorithms.ADAGRAD.kernel_names == ("lr", "lr_decay", "weight_decay", "eps")
    assert algorithms.ADAM.state_names == ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def test_class_signature_and_docstring_come_from_the_spec():
    signature = inspect.signature(optim.SGD)
    assert list(signature.parameters)[:6] == [
        "params",
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
    ]
    assert signature.parameters["maximize"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "decoupled_weight_decay" not in inspect.signature(optim.AdamW).parameters
    assert "dampening : float, in [0.0, 1.0] (default 0.0)" in optim.SGD.__doc__
    with pytest.raises(TypeError, match="unexpected keyword argument 'betas2'"):
        optim.Adam([np.zeros(2)], betas2=0.9)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"name": "Adam 2"}, "name must be lower-case"),
        ({"class_name": "adam2"}, "class_name"),
        ({"lr": -1.0}, "lr must be"),
        ({"state": (spec.State("m"), spec.State("m"))}, "state names repeat"),
        ({"state": (spec.State("m", used_when="nothing"),)}, "used_when"),
        ({"variants": ()}, "no variants"),
        ({"variants": (spec.Variant("x", {"bogus": 1}),)}, "unknown options"),
        ({"search_space": {}}, "search_space must declare lr"),
        ({"search_space": {"lr": (1e-3, 1)}}, "LogUniform"),
        ({"derived": ("c",)}, "prepare_step"),
        ({"hyperparameters": algorithms.ADAM.hyperparameters[1:]}, "no 'lr'"),
        ({"hyperparameters": (spec.Real("lr", -1.0), algorithms.MAXIMIZE)}, "default of lr"),
    ],
)
def test_malformed_specs_are_refused_naming_the_spec(changes, match):
    with pytest.raises(spec.SpecError, match=rf"optimizer spec .*{match}"):
        dataclasses.replace(algorithms.ADAM, **changes)


def test_a_replaced_spec_is_a_new_optimizer_everywhere(clean_registry, rng):
    """A spec never seen before (dataclasses.replace) passes the conformance suite, gets a
    class, runs in the runner and is listed; its options follow the new declaration."""
    fast = dataclasses.replace(
        algorithms.ADAM,
        name="adam_fast",
        class_name="AdamFast",
        hyperparameters=(spec.Real("lr", 3e-2), *algorithms.ADAM.hyperparameters[1:]),
    )
    registry.register(fast)
    assert "adam_fast" in registry.names()
    assert optim.AdamFast.spec is fast and optim.AdamFast([np.zeros(2)]).defaults["lr"] == 3e-2
    testing.check_optimizer(fast, checks=["reference", "state_dict", "bad_input"])
    from optbench import runner

    frame = runner.run("adam_fast", "quadratic", steps=5, seed=0)
    assert set(frame["optimizer"]) == {"adam_fast"}


def test_a_reference_off_by_1e_3_fails_naming_the_first_step(rng):
    def off(param, grad, state, step, *, lr, **options):
        reference.adam(param, grad, state, step, lr=lr * (1 + 1e-3), **options)

    wrong = dataclasses.replace(
        algorithms.ADAM, name="adam_wrong", class_name="AdamWrong", reference=off
    )
    with pytest.raises(testing.ConformanceError) as raised:
        testing.check_optimizer(wrong, checks=["reference"])
    first = raised.value.failures[0]
    assert (first.check, first.variant, first.step) == ("reference", "default", 1)
    assert "first diverging step 1" in str(first)


def test_optbench_check_exits_1_naming_the_first_diverging_step(clean_registry, capsys):
    from optbench import cli

    def off(param, grad, state, step, *, lr, **options):
        reference.adam(param, grad, state, step, lr=lr * (1 + 1e-3), **options)

    registry.register(
        dataclasses.replace(
            algorithms.ADAM, name="adam_wrong", class_name="AdamWrong", reference=off
        )
    )
    assert cli.main(["check", "adam", "adam_wrong", "--checks", "reference,state_dict"]) == 1
    out = capsys.readouterr().out
    assert "adam: 2 checks passed" in out and "adam_wrong: 1 of 2 checks failed" in out
    lines = [line for line in out.splitlines() if line.startswith("  adam_wrong: reference")]
    assert lines and all("first diverging step 1, element" in line for line in lines)
    assert cli.main(["check", "sgd", "--checks", "reference,torch"]) == 0
    out = capsys.readouterr().out
    if importlib.util.find_spec("torch") is None:
        assert "sgd: 1 check passed, torch skipped: torch is not installed" in out
    else:
        assert "sgd: 2 checks passed" in out
    assert any("float32" in line for line in lines) and any("float64" in line for line in lines)
    assert "expected" in lines[0] and "got" in lines[0]


def test_registering_a_taken_name_is_refused(clean_registry):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(algorithms.ADAM)
    twin = dataclasses.replace(algorithms.ADAM, name="adam_twin")
    with pytest.raises(ValueError, match="class name 'Adam'"):
        registry.register(twin)
    with pytest.raises(TypeError, match="OptimizerSpec"):
        registry.register("adam")


def test_plugin_through_an_entry_point(clean_registry, tmp_path, monkeypatch):
    fake_distribution(tmp_path, monkeypatch, {"adabelief": "optbench_adabelief.spec:ADABELIEF"})
    assert "adabelief" in registry.names()
    belief = registry.get("adabelief")
    testing.check_optimizer(belief, checks=["reference", "nonfinite", "bad_input"])
    params = [np.zeros(3)]
    optim.AdaBelief(params, lr=0.1).step([np.ones(3)])
    # first step: m_hat = g and s_hat = (g - m_1)^2 = 0.81 g^2, so the step is lr / 0.9
    assert params[0][0] == pytest.approx(-0.1 / 0.9, rel=1e-9)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("no_such_module_for_optbench:SPEC", "No module named"),
        ("optbench_adabelief.spec:MISSING", "MISSING"),
        ("optbench.algorithms:MAXIMIZE", "not an OptimizerSpec"),
        ("optbench.algorithms:ADAM", "already registered"),
    ],
)
def test_broken_plugin_is_left_out_with_a_warning(
    clean_registry, tmp_path, monkeypatch, value, reason
):
    fake_distribution(tmp_path, monkeypatch, {"broken": value})
    with pytest.warns(registry.PluginWarning, match=rf"plugin 'broken' \({value}.*{reason}"):
        names = registry.names()
    assert "adam" in names and "broken" not in names
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.names()  # loaded once: no second warning


def test_plugin_optimizer_pickles_by_its_class_name(clean_registry, tmp_path, monkeypatch):
    import pickle

    fake_distribution(tmp_path, monkeypatch, {"adabelief": "optbench_adabelief.spec:ADABELIEF"})
    opt = optim.make("adabelief", [np.zeros(3)])
    opt.step([np.ones(3)])
    clone = pickle.loads(pickle.dumps(opt))
    assert type(clone) is type(opt)
    assert sys.modules["optbench.optim"].AdaBelief is type(opt)


def test_a_replaced_spec_runs_in_a_tiny_report_next_to_adam(clean_registry, tmp_path):
    import pandas as pd

    from optbench import cli

    fast = dataclasses.replace(algorithms.ADAM, name="adam_grid", class_name="AdamGrid", lr=3e-2)
    registry.register(fast)
    argv = ["report", "--profile", "tiny", "--out-dir", str(tmp_path), "--name", "t"]
    argv += ["--no-progress", "--optimizers", "adam,adam_grid", "--asv-results", str(tmp_path)]
    assert cli.main(argv) == 0
    ranking = pd.read_csv(tmp_path / "t" / "data" / "ranking.csv")
    assert {"adam", "adam_grid"} <= set(ranking["optimizer"])
    assert "adam_grid" in (tmp_path / "t" / "report.md").read_text()


def test_report_refuses_an_unknown_optimizer_before_any_work(tmp_path, capsys):
    from optbench import cli

    argv = ["report", "--profile", "tiny", "--out-dir", str(tmp_path), "--name", "t"]
    assert cli.main([*argv, "--optimizers", "adam,nosuch"]) == 2
    assert "--optimizers" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


# --------------------------------------------------------------------------------------------
# unfused optimizers: a spec without a chunk kernel, its reference as its update
# --------------------------------------------------------------------------------------------
def unfused(base, name):
    return dataclasses.replace(
        base, name=name, class_name=name.title().replace("_", ""), chunk=None
    )


@pytest.mark.parametrize("base", [algorithms.ADAM, algorithms.NADAM, algorithms.ADAGRAD])
def test_an_unfused_spec_passes_the_conformance_suite(clean_registry, base):
    spec_ = unfused(base, f"{base.name}_numpy")
    assert not spec_.fused and spec_.label == f"{spec_.name} (unfused)"
    testing.check_optimizer(spec_)
    skipped = testing.skipped_checks(spec_)
    assert skipped["serial_parallel"] == skipped["codegen"] == "unfused (no chunk kernel)"


def test_an_unfused_spec_steps_like_the_fused_one(rng):
    slow = unfused(algorithms.NADAM, "nadam_numpy")
    params = make_params(rng, np.float64, ((6, 4), (5,), ()))
    twins = [p.copy() for p in params]
    options = {"weight_decay": 0.1, "clip_value": 0.5, "max_norm": 1.0, "clip_norm": 2.0}
    fast_opt = optim.make(algorithms.NADAM, params, **options)
    slow_opt = optim.make(slow, twins, **options)
    for _ in range(20):
        grads = make_grads(rng, params)
        fast_opt.step(grads)
        slow_opt.step([g.copy() for g in grads])
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    fast_state, slow_state = fast_opt.state_dict(), slow_opt.state_dict()
    for index, entry in fast_state["state"].items():
        assert entry.keys() == slow_state["state"][index].keys()
        for name, value in entry.items():
            np.testing.assert_allclose(slow_state["state"][index][name], value, rtol=1e-10)


def test_an_unfused_plugin_runs_lists_and_reports(clean_registry, tmp_path, capsys):
    import pandas as pd

    from optbench import cli, runner

    registry.register(unfused(algorithms.ADAM, "adam_numpy"))
    frame = runner.run("adam_numpy", "quadratic", steps=20, seed=0)
    reference_run = runner.run("adam", "quadratic", steps=20, seed=0)
    np.testing.assert_allclose(frame["train_loss"], reference_run["train_loss"], rtol=1e-9)
    assert cli.main(["list", "optimizers"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "adam_numpy" in line]
    assert listed and "(unfused" in listed[0]
    argv = ["report", "--profile", "tiny", "--out-dir", str(tmp_path), "--name", "u"]
    argv += ["--no-progress", "--optimizers", "adam,adam_numpy", "--asv-results", str(tmp_path)]
    assert cli.main(argv) == 0
    assert "adam_numpy" in set(pd.read_csv(tmp_path / "u" / "data" / "ranking.csv")["optimizer"])
    assert "Unfused (no fused kernel" in (tmp_path / "u" / "report.md").read_text()
