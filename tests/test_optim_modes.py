"""Train and eval modes: optimizers whose parameters hold a training point (Schedule-Free's y)
put the weights to evaluate (x) in them in eval mode, refuse to step there, and come back."""

import pickle

import numpy as np
import pytest
from optim_helpers import make_grads, make_params

from optbench import optim, registry, runner
from optbench.reference.optimizers import lerp

SWITCHING = [spec for spec in registry.specs() if spec.switches_weights]
PLAIN = [spec for spec in registry.specs() if not spec.switches_weights and spec.fused]


def _momentum(opt):
    group = opt.param_groups[0]
    return group["momentum"] if "momentum" in group else group["betas"][0]


def _stepped(spec, rng, dtype=np.float64, steps=7, **options):
    params = make_params(rng, dtype)
    opt = optim.make(spec, params, **options)
    for _ in range(steps):
        opt.step(make_grads(rng, params))
    return params, opt


def test_the_schedule_free_optimizers_switch():
    assert {spec.name for spec in SWITCHING} >= {"schedule_free_sgd", "schedule_free_adamw"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", SWITCHING, ids=lambda spec: spec.name)
def test_eval_puts_the_average_in_the_parameters_and_train_takes_it_back(spec, dtype, rng):
    for variant in spec.variants:
        params, opt = _stepped(spec, rng, dtype, **variant.options)
        y = [p.copy() for p in params]
        z = [opt.state_dict()["state"][i]["z"] for i in range(len(params))]
        beta = _momentum(opt)
        assert opt.training
        assert opt.eval() is opt and not opt.training
        for p, yi, zi in zip(params, y, z, strict=True):
            np.testing.assert_array_equal(p, lerp(yi, zi, 1.0 - 1.0 / beta))
        opt.eval()  # a second eval() changes nothing
        np.testing.assert_array_equal(params[0], lerp(y[0], z[0], 1.0 - 1.0 / beta))
        opt.train()
        assert opt.training
        tolerance = 1e-4 if dtype == np.float32 else 1e-12
        for p, yi in zip(params, y, strict=True):
            np.testing.assert_allclose(p, yi, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("spec", SWITCHING, ids=lambda spec: spec.name)
def test_step_in_eval_mode_is_refused_and_changes_nothing(spec, rng):
    params, opt = _stepped(spec, rng)
    opt.eval()
    before = [p.copy() for p in params]
    state = opt.state_dict()
    with pytest.raises(RuntimeError, match=r"eval mode.*train\(\)"):
        opt.step(make_grads(rng, params))
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)
    after = opt.state_dict()
    np.testing.assert_array_equal(after["state"][0]["z"], state["state"][0]["z"])


@pytest.mark.parametrize("spec", SWITCHING, ids=lambda spec: spec.name)
def test_arrays_not_yet_stepped_are_left_alone(spec, rng):
    params = make_params(rng, np.float64)
    before = [p.copy() for p in params]
    opt = optim.make(spec, params)
    opt.eval()
    opt.train()
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)
    # a group added after steps: its arrays have no z yet
    params, opt = _stepped(spec, rng)
    extra = rng.standard_normal(5)
    kept = extra.copy()
    opt.add_param_group({"params": [extra]})
    opt.eval()
    np.testing.assert_array_equal(extra, kept)


@pytest.mark.parametrize("spec", SWITCHING, ids=lambda spec: spec.name)
def test_a_read_only_parameter_stops_the_switch_before_anything_moves(spec, rng):
    params, opt = _stepped(spec, rng)
    before = [p.copy() for p in params]
    params[-1].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[\d+\] is read-only"):
        opt.eval()
    assert opt.training
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize("spec", SWITCHING, ids=lambda spec: spec.name)
def test_the_mode_travels_with_the_state_dict_and_pickles(spec, rng):
    params, opt = _stepped(spec, rng)
    opt.eval()
    saved = opt.state_dict()
    assert saved["training"] is False
    twin = optim.make(spec, [p.copy() for p in params])
    twin.load_state_dict(saved)
    assert not twin.training
    copy = pickle.loads(pickle.dumps(opt))
    assert not copy.training
    with pytest.raises(TypeError, match=r"state_dict\['training'\]"):
        twin.load_state_dict({**saved, "training": "no"})
    assert not twin.training


@pytest.mark.parametrize("spec", SWITCHING, ids=lambda spec: spec.name)
def test_evaluating_restores_the_previous_mode(spec, rng):
    params, opt = _stepped(spec, rng)
    y = [p.copy() for p in params]
    with opt.evaluating():
        assert not opt.training
        x = [p.copy() for p in params]
    assert opt.training
    np.testing.assert_allclose(params[0], y[0], rtol=1e-12, atol=1e-12)
    opt.eval()
    with opt.evaluating():
        pass
    assert not opt.training
    np.testing.assert_allclose(params[0], x[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", PLAIN, ids=lambda spec: spec.name)
def test_other_optimizers_only_record_the_mode(spec, rng):
    params, opt = _stepped(spec, rng, steps=2)
    before = [p.copy() for p in params]
    opt.eval()
    assert not opt.training
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)
    opt.step(make_grads(rng, params))  # allowed: the parameters are the weights
    opt.train()
    assert opt.training


def test_the_runner_evaluates_the_average():
    """The runner's distance to the optimum and recorded parameters are those of x."""
    record = runner.run(
        "schedule_free_sgd", "quadratic", lr=0.05, steps=30, batch_size="full", record_params=True
    )
    from optbench import problems

    problem = problems.make("quadratic")
    params = problem.initial_params()
    opt = optim.make("schedule_free_sgd", params, lr=0.05)
    for _ in range(30):
        _, grads = problem.loss_and_grad(params, None)
        opt.step(grads)
    y = np.concatenate([p.ravel() for p in params])
    opt.eval()
    x = np.concatenate([p.ravel() for p in params])
    last = record.iloc[-1]
    assert last["distance_to_optimum"] == pytest.approx(problem.distance_to_optimum(params))
    assert (last["param_0"], last["param_1"]) == pytest.approx(tuple(x))
    assert not np.allclose(x, y)


def test_the_modes_check_catches_a_train_that_does_not_move_back():
    import dataclasses

    from optbench import algorithms, testing

    stuck = dataclasses.replace(
        algorithms.SCHEDULE_FREE_SGD,
        name="schedule_free_stuck",
        class_name="ScheduleFreeStuck",
        to_train=lambda param, state, options: None,
    )
    with pytest.raises(testing.ConformanceError, match="does not give the training point back"):
        testing.check_optimizer(stuck, checks=["modes"])
    testing.check_optimizer(algorithms.SCHEDULE_FREE_SGD, checks=["modes"])


def test_a_spec_with_only_one_of_the_moves_is_refused():
    import dataclasses

    from optbench import algorithms, spec

    with pytest.raises(spec.SpecError, match="to_eval and to_train come together"):
        dataclasses.replace(algorithms.SCHEDULE_FREE_SGD, to_train=None)
