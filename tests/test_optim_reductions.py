"""Optimizers with a reduce pass (per-array sums before the update): LAMB's trust ratio."""

import numba
import numpy as np
import pytest

from optbench import optim, registry

TWO_PASS = [spec for spec in registry.specs() if spec.reduce is not None]
SHAPES = ((300, 400), (1000,), (3,), ())  # the matrix spans several work chunks


def _model(rng, dtype):
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def test_lamb_has_a_reduce_pass():
    assert "lamb" in {spec.name for spec in TWO_PASS}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", TWO_PASS, ids=lambda spec: spec.name)
def test_results_are_the_same_bits_for_any_thread_count(spec, dtype, rng):
    start = _model(rng, dtype)
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in start] for _ in range(4)]
    results = []
    before = numba.get_num_threads()
    try:
        for threads, dispatch in ((1, "serial"), (1, "parallel"), (before, "parallel")):
            numba.set_num_threads(threads)
            params = [p.copy() for p in start]
            opt = optim.make(spec, params, dispatch=dispatch, **spec.variants[-1].options)
            for step_grads in grads:
                opt.step(step_grads)
            results.append(params)
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lamb_steps_lr_times_the_weights_norm(dtype, rng):
    """The trust ratio ||p|| / ||r|| makes every array's step lr ||p|| long."""
    params = _model(rng, dtype)[:2]
    opt = optim.LAMB(params, lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        before = [p.copy() for p in params]
        opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
        for p, b in zip(params, before, strict=True):
            moved = np.linalg.norm((p - b).astype(np.float64))
            expected = 1e-2 * np.linalg.norm(b.astype(np.float64))
            assert moved == pytest.approx(expected, rel=1e-4 if dtype == np.float32 else 1e-10)


def test_lamb_exclude_1d_steps_vectors_like_adam_without_decay(rng):
    """With exclude_1d a vector gets Adam's update (LAMB's eps), a matrix its trust ratio."""
    matrix, vector = rng.standard_normal((20, 30)), rng.standard_normal(50)
    lamb = optim.LAMB([matrix, vector], lr=1e-2, weight_decay=0.1, exclude_1d=True)
    twin = vector.copy()
    adam = optim.Adam([twin], lr=1e-2, eps=1e-6)
    for _ in range(5):
        g_matrix, g_vector = rng.standard_normal(matrix.shape), rng.standard_normal(vector.shape)
        before = matrix.copy()
        lamb.step([g_matrix, g_vector])
        adam.step([g_vector])
        np.testing.assert_allclose(vector, twin, rtol=1e-12, atol=1e-15)
        moved = np.linalg.norm(matrix - before)
        assert moved == pytest.approx(1e-2 * np.linalg.norm(before), rel=1e-10)


def test_lamb_ratio_is_one_for_zero_weights():
    """Zero weights (a zero-initialized layer) take Adam's step, not a step of length 0."""
    params = [np.zeros(10)]
    opt = optim.LAMB(params, lr=1e-2)
    opt.step([np.ones(10)])
    np.testing.assert_allclose(params[0], -1e-2 / (1 + 1e-6), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lars_steps_lr_eta_times_the_weights_norm(dtype, rng):
    """Without momentum or decay, the trust ratio makes each array's step lr eta ||p|| long
    (to eps), whatever the gradient's size."""
    params = _model(rng, dtype)[:2]
    opt = optim.LARS(params, lr=2.0, trust_coefficient=0.01)
    for scale in (1e-3, 1.0, 1e3):
        before = [p.copy() for p in params]
        opt.step([scale * rng.standard_normal(p.shape).astype(dtype) for p in params])
        for p, b in zip(params, before, strict=True):
            moved = np.linalg.norm((p - b).astype(np.float64))
            expected = 2.0 * 0.01 * np.linalg.norm(b.astype(np.float64))
            assert moved == pytest.approx(expected, rel=1e-4 if dtype == np.float32 else 1e-6)


def test_lars_exclude_1d_steps_vectors_like_sgd(rng):
    matrix, vector = rng.standard_normal((20, 30)), rng.standard_normal(50)
    lars = optim.LARS([matrix, vector], lr=0.1, momentum=0.9, weight_decay=0.1, exclude_1d=True)
    twin = vector.copy()
    sgd = optim.SGD([twin], lr=0.1, momentum=0.9)
    for _ in range(5):
        g_matrix, g_vector = rng.standard_normal(matrix.shape), rng.standard_normal(vector.shape)
        lars.step([g_matrix, g_vector])
        sgd.step([g_vector])
        np.testing.assert_allclose(vector, twin, rtol=1e-12, atol=1e-15)
