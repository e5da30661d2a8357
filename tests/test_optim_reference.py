"""Every optimizer, every variant, both dtypes: the fused kernels against the NumPy oracle."""

import numpy as np
import pytest
from optim_helpers import (
    DTYPES,
    assert_close,
    group_options,
    make_grads,
    make_params,
    run_side_by_side,
)

from optbench import optim, registry
from optbench.kernels import chunks
from optbench.reference.optimizers import model_step

STEPS = 60

CASES = [
    pytest.param(info, variant.options, id=f"{info.name}-{variant.id}")
    for info in registry.specs()
    for variant in info.variants
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("info", "variant"), CASES)
def test_matches_reference(info, variant, dtype, rng):
    params = make_params(rng, dtype, spec=info)
    run_side_by_side(info, optim.make(info, params, **variant), params, rng, STEPS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_param_groups_with_different_options(info, dtype, rng):
    params = make_params(rng, dtype, spec=info)
    groups = [
        {"params": params[:2], **info.variants[-1].options},
        {"params": params[2:], "lr": 10 * info.lr},
    ]
    run_side_by_side(info, optim.make(info, groups), params, rng, 20)


@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_lr_changed_between_steps(info, rng):
    params = make_params(rng, np.float64, spec=info)
    opt = optim.make(info, params)
    reference_params = [p.copy() for p in params]
    states = [{} for _ in params]
    for step in range(1, 11):
        opt.param_groups[0]["lr"] = info.lr * 0.8**step
        grads = make_grads(rng, params)
        opt.step(grads)
        options = [group_options(opt.param_groups[0])] * len(params)
        model_step(
            info.reference, reference_params, grads, states, step, options, coupled=info.coupled
        )
    for actual, expected in zip(params, reference_params, strict=True):
        assert_close(actual, expected, np.float64, "after 10 steps")


def nonfinite_grads(rng, params):
    grads = make_grads(rng, params)
    flat = grads[0].reshape(-1)
    flat[0], flat[1], flat[-1] = np.nan, np.inf, -np.inf
    return grads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_nan_and_inf_propagate_like_the_reference(info, dtype, rng):
    params = make_params(rng, dtype, spec=info)
    opt = optim.make(info, params, **info.variants[-1].options)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        run_side_by_side(info, opt, params, rng, 3, grad_source=nonfinite_grads)
    assert np.isfinite(params[1]).all(), "a NaN in one array leaked into another"


@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_edge_hyperparameters(info, rng):
    """lr set to 0 (as a schedule may) leaves params unchanged: decoupled decay is lr-scaled."""
    params = make_params(rng, np.float64, spec=info)
    before = [p.copy() for p in params]
    # Rprop's lr is only its first step size, floored at step_size_min
    floor = {"step_sizes": (0.0, 50.0)} if "step_sizes" in info.defaults else {}
    opt = optim.make(info, params, **floor)
    opt.param_groups[0]["lr"] = 0.0
    for _ in range(3):
        opt.step(make_grads(rng, params))
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_maximize_equals_minimizing_the_negated_gradient(info, dtype, rng):
    params = make_params(rng, dtype, spec=info)
    twins = [p.copy() for p in params]
    up, down = optim.make(info, params, maximize=True), optim.make(info, twins)
    for _ in range(5):
        grads = make_grads(rng, params)
        up.step(grads)
        down.step([np.asarray(-g) for g in grads])
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_parallel_kernel_is_bitwise_equal_to_serial(info, rng, monkeypatch):
    shapes = ((300, 7), (1000,), (5,))
    params = make_params(rng, np.float32, shapes, spec=info)
    twins = [p.copy() for p in params]
    serial = optim.make(info, params, **info.variants[-1].options)
    monkeypatch.setattr(optim.base, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 64)
    parallel = optim.make(info, twins, **info.variants[-1].options)
    assert parallel._buckets[0].work.shape[0] > 10
    for _ in range(5):
        grads = make_grads(rng, params)
        serial.step(grads)
        parallel.step(grads)
    for a, b in zip(params, twins, strict=True):
        np.testing.assert_array_equal(a, b)


def test_radam_switches_to_the_adaptive_step_at_step_6(rng):
    """Default betas: rho_5 = 4.996 (momentum step), rho_6 = 5.994 (rectified adaptive step)."""
    param = np.zeros(4)
    opt = optim.RAdam([param], lr=1.0)
    grad = np.array([1.0, -2.0, 3.0, 0.5])
    for step in range(1, 7):
        before = param.copy()
        opt.step([grad])
        m_hat = opt.state_dict()["state"][0]["exp_avg"] / (1 - 0.9**step)
        plain_momentum_step = np.allclose(before - param, m_hat, rtol=1e-12)
        assert plain_momentum_step == (step <= 5), f"step {step}"
