"""Shared helpers for the optimizer tests: parameter sets and side-by-side runs with the oracle."""

import numpy as np

from optbench.reference.optimizers import global_grad_scale, step_with_extras

DTYPES = (np.float32, np.float64)

# Shapes of one model: a matrix, a vector, a 3-D array, a 0-d array and an empty array.
SHAPES = ((7, 5), (33,), (2, 3, 4), (), (0, 3))


def make_params(rng, dtype, shapes=SHAPES, scale=1.0):
    return [np.asarray(scale * rng.standard_normal(shape), dtype) for shape in shapes]


def make_grads(rng, params):
    return [np.asarray(rng.standard_normal(p.shape), p.dtype) for p in params]


def group_options(group):
    return {k: v for k, v in group.items() if k != "params"}


def assert_close(actual, expected, dtype, what):
    """Equal NaN positions; float64 to rtol 1e-10; float32 within 4 ulp of the array's scale.

    The float32 scale is the largest finite magnitude in ``expected`` (at least 1): the kernels
    contract ``a*b + c`` into fused multiply-adds, so single elements may differ by a few
    roundings of the array's own size.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: NaN positions differ"
    finite = np.isfinite(expected)
    assert np.array_equal(
        actual[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)]
    ), f"{what}: infinities differ"
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=what)
    else:
        scale = max(np.abs(expected[finite]).max(initial=0.0), 1.0)
        error = np.abs(actual[finite].astype(np.float64) - expected[finite]).max(initial=0.0)
        assert error <= 4 * np.finfo(np.float32).eps * scale, f"{what}: error {error:.3g}"


def run_side_by_side(info, opt, params, rng, steps, grad_source=make_grads):
    """Step ``opt`` and the reference together, checking params and state after every step.

    float64 runs both for ``steps`` steps independently (logic errors show at rtol 1e-10).
    float32 restarts the reference from the kernel's params and state before every step, so
    each step is compared from identical inputs and rounding differences (fused multiply-adds)
    cannot accumulate into a tolerance that would hide a real error.
    """
    reference_params = [p.copy() for p in params]
    reference_states = [{} for _ in params]
    groups = [g for g in opt.param_groups for _ in g["params"]]
    resync = params[0].dtype == np.float32
    state = {}
    for step in range(1, steps + 1):
        grads = grad_source(rng, params)
        if resync:
            reference_params = [p.copy() for p in params]
            reference_states = [
                {
                    k: np.copy(v) if isinstance(v, np.ndarray) else v
                    for k, v in state.get(i, {}).items()
                    if k != "step"
                }
                for i in range(len(params))
            ]
        opt.step(grads)
        state = opt.state_dict()["state"]
        scale = 1.0 if opt.clip_norm is None else global_grad_scale(grads, opt.clip_norm)
        for i, (param, grad) in enumerate(zip(reference_params, grads, strict=True)):
            options = group_options(groups[i])
            step_with_extras(
                info.reference, param, grad, reference_states[i], step, grad_scale=scale, **options
            )
            dtype = params[i].dtype.type
            assert_close(params[i], param, dtype, f"step {step} params[{i}]")
            for name, value in reference_states[i].items():
                assert_close(state[i][name], value, dtype, f"step {step} state[{i}][{name}]")
            assert set(state[i]) == {"step", *reference_states[i]}
            assert state[i]["step"] == step
