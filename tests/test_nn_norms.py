"""LayerNorm, RMSNorm and BatchNorm: the kernels against the NumPy reference and against finite
differences, running statistics, numerical stability, thread-count reproducibility, bad input.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_helpers import (
    DTYPES,
    assert_close,
    assert_gradients,
    numerical_gradients,
    projection_loss,
    with_threads,
)

from optbench import nn
from optbench.reference import nn as reference

# (input shape, normalized_shape): a 150-wide row spans two full 64-lane chunks and a tail
LAYER_SHAPES = [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((3, 150), 150)]
LAYER_IDS = ["2d", "4d", "wide"]
# (N, C) kernels; (N, C, H, W) and (N, C, L) with runs shorter and longer than the lanes
BATCH_SHAPES = [(6, 5), (4, 3, 2, 5), (3, 2, 70)]
BATCH_IDS = ["NC", "NCHW", "NCL"]
AFFINE = ["none", "weight", "bias", "both"]


def _data(rng, shape, dtype, scale=2.0, shift=0.5):
    return (scale * rng.standard_normal(shape) + shift).astype(dtype)


def _affine(rng, shape, dtype, affine):
    weight = _data(rng, shape, dtype, 0.5, 1.0) if affine in ("weight", "both") else None
    bias = _data(rng, shape, dtype, 0.5, 0.0) if affine in ("bias", "both") else None
    return weight, bias


def _as_tuple(normalized_shape):
    return (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape


def _check_param_grads(grads, expected, present, dtype, names=("dweight", "dbias")):
    for name, grad, want, is_present in zip(names, grads, expected, present, strict=True):
        if is_present:
            assert_close(grad, want, dtype, name)
        else:
            assert grad is None, f"{name} should be None for an absent parameter"


# --------------------------------------------------------------------------------------------
# LayerNorm
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize(("shape", "normalized_shape"), LAYER_SHAPES, ids=LAYER_IDS)
def test_layer_norm_matches_reference(shape, normalized_shape, affine, dtype, rng):
    x = _data(rng, shape, dtype)
    weight, bias = _affine(rng, _as_tuple(normalized_shape), dtype, affine)
    y, ctx = nn.layer_norm(x, normalized_shape, weight, bias, eps=1e-5)
    assert y.dtype == dtype
    assert_close(y, reference.layer_norm(x, _as_tuple(normalized_shape), weight, bias), dtype, "y")

    dy = _data(rng, shape, dtype)
    dx, *param_grads = nn.layer_norm_backward(dy, ctx)
    expected = reference.layer_norm_backward(dy, x, _as_tuple(normalized_shape), weight)
    assert dx.dtype == dtype
    assert_close(dx, expected[0], dtype, "dx")
    _check_param_grads(param_grads, expected[1:], (weight is not None, bias is not None), dtype)


@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize(("shape", "normalized_shape"), LAYER_SHAPES, ids=LAYER_IDS)
def test_layer_norm_backward_matches_finite_differences(shape, normalized_shape, affine, rng):
    x = _data(rng, shape, np.float64)
    weight, bias = _affine(rng, _as_tuple(normalized_shape), np.float64, affine)
    loss, dy = projection_loss(
        lambda: nn.layer_norm(x, normalized_shape, weight, bias)[0], rng, shape
    )
    dx, dweight, dbias = nn.layer_norm_backward(
        dy, nn.layer_norm(x, normalized_shape, weight, bias)[1]
    )
    present = [a for a in (x, weight, bias) if a is not None]
    analytic = [a for a in (dx, dweight, dbias) if a is not None]
    for name, grad, numeric in zip(
        ("dx", "dweight", "dbias"), analytic, numerical_gradients(loss, present), strict=False
    ):
        assert_gradients(grad, numeric, name)


# --------------------------------------------------------------------------------------------
# RMSNorm
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("with_weight", [False, True], ids=["no-weight", "weight"])
@pytest.mark.parametrize(("shape", "normalized_shape"), LAYER_SHAPES, ids=LAYER_IDS)
def test_rms_norm_matches_reference(shape, normalized_shape, with_weight, eps, dtype, rng):
    x = _data(rng, shape, dtype)
    weight = _data(rng, _as_tuple(normalized_shape), dtype, 0.5, 1.0) if with_weight else None
    y, ctx = nn.rms_norm(x, normalized_shape, weight, eps)
    assert_close(y, reference.rms_norm(x, _as_tuple(normalized_shape), weight, eps), dtype, "y")

    dy = _data(rng, shape, dtype)
    dx, dweight = nn.rms_norm_backward(dy, ctx)
    expected_dx, expected_dweight = reference.rms_norm_backward(
        dy, x, _as_tuple(normalized_shape), weight, eps
    )
    assert_close(dx, expected_dx, dtype, "dx")
    _check_param_grads([dweight], [expected_dweight], [with_weight], dtype, names=["dweight"])


@pytest.mark.parametrize("with_weight", [False, True], ids=["no-weight", "weight"])
@pytest.mark.parametrize(("shape", "normalized_shape"), LAYER_SHAPES, ids=LAYER_IDS)
def test_rms_norm_backward_matches_finite_differences(shape, normalized_shape, with_weight, rng):
    x = _data(rng, shape, np.float64)
    weight = _data(rng, _as_tuple(normalized_shape), np.float64, 0.5, 1.0) if with_weight else None
    loss, dy = projection_loss(lambda: nn.rms_norm(x, normalized_shape, weight)[0], rng, shape)
    dx, dweight = nn.rms_norm_backward(dy, nn.rms_norm(x, normalized_shape, weight)[1])
    numeric = numerical_gradients(loss, [x] + ([weight] if with_weight else []))
    assert_gradients(dx, numeric[0], "dx")
    if with_weight:
        assert_gradients(dweight, numeric[1], "dweight")


# --------------------------------------------------------------------------------------------
# BatchNorm
# --------------------------------------------------------------------------------------------
def _running(rng, n_channels, dtype):
    return _data(rng, n_channels, dtype, 0.3, 0.0), _data(rng, n_channels, dtype, 0.2, 1.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("shape", BATCH_SHAPES, ids=BATCH_IDS)
def test_batch_norm_matches_reference(shape, affine, training, dtype, rng):
    x = _data(rng, shape, dtype)
    weight, bias = _affine(rng, shape[1:2], dtype, affine)
    running_mean, running_var = _running(rng, shape[1], dtype)
    before = running_mean.copy(), running_var.copy()
    expected_y, expected_mean, expected_var = reference.batch_norm(
        x, *before, weight, bias, training, momentum=0.2, eps=1e-4
    )
    y, ctx = nn.batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum=0.2, eps=1e-4
    )
    assert_close(y, expected_y, dtype, "y")
    assert_close(running_mean, expected_mean, dtype, "running_mean")
    assert_close(running_var, expected_var, dtype, "running_var")

    dy = _data(rng, shape, dtype)
    dx, *param_grads = nn.batch_norm_backward(dy, ctx)
    expected = reference.batch_norm_backward(dy, x, weight, training, *before, eps=1e-4)
    assert_close(dx, expected[0], dtype, "dx")
    _check_param_grads(param_grads, expected[1:], (weight is not None, bias is not None), dtype)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("shape", BATCH_SHAPES, ids=BATCH_IDS)
def test_batch_norm_backward_matches_finite_differences(shape, affine, training, rng):
    x = _data(rng, shape, np.float64)
    weight, bias = _affine(rng, shape[1:2], np.float64, affine)
    # training without running statistics: the forward pass is a pure function of x
    running = _running(rng, shape[1], np.float64) if not training else (None, None)

    def forward():
        return nn.batch_norm(x, *running, weight, bias, training)

    loss, dy = projection_loss(lambda: forward()[0], rng, shape)
    dx, dweight, dbias = nn.batch_norm_backward(dy, forward()[1])
    present = [a for a in (x, weight, bias) if a is not None]
    analytic = [a for a in (dx, dweight, dbias) if a is not None]
    for name, grad, numeric in zip(
        ("dx", "dweight", "dbias"), analytic, numerical_gradients(loss, present), strict=False
    ):
        assert_gradients(grad, numeric, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)], ids=["NC", "NCHW"])
def test_running_statistics_over_batches(shape, dtype, rng):
    """Exponential average of the batch mean and of the *unbiased* batch variance.

    Four values per channel: the unbiased variance is 4/3 of the biased one, far outside the
    tolerance.
    """
    running_mean, running_var = np.zeros(3, dtype), np.ones(3, dtype)
    expected_mean, expected_var = np.zeros(3), np.ones(3)
    for _ in range(5):
        x = _data(rng, shape, dtype)
        nn.batch_norm(x, running_mean, running_var, momentum=0.1)
        x64 = x.astype(np.float64).swapaxes(0, 1).reshape(3, -1)
        expected_mean = 0.9 * expected_mean + 0.1 * x64.mean(axis=1)
        expected_var = 0.9 * expected_var + 0.1 * x64.var(axis=1, ddof=1)
    assert_close(running_mean, expected_mean, dtype, "running_mean")
    assert_close(running_var, expected_var, dtype, "running_var")


@pytest.mark.parametrize("dtype", DTYPES)
def test_momentum_none_is_the_cumulative_average(dtype, rng):
    running_mean, running_var = np.full(3, 7.0, dtype), np.full(3, 7.0, dtype)
    counter = np.zeros((), np.int64)
    batches = [_data(rng, (5, 3), dtype) for _ in range(4)]
    for x in batches:
        nn.batch_norm(x, running_mean, running_var, momentum=None, num_batches_tracked=counter)
    assert counter == 4
    x64 = np.stack(batches).astype(np.float64)
    assert_close(running_mean, x64.mean(axis=1).mean(axis=0), dtype, "running_mean")
    assert_close(running_var, x64.var(axis=1, ddof=1).mean(axis=0), dtype, "running_var")


def test_batch_norm_without_running_statistics_uses_the_batch(rng):
    x = _data(rng, (6, 4), np.float64)
    y, _ = nn.batch_norm(x, None, None)
    assert_close(y, reference.batch_norm(x, None, None)[0], np.float64, "y")


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 40), features=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_layer_norm_any_shape(rows, features, seed):
    """Row lengths around the lane width, row counts around the block sizes."""
    rng = np.random.default_rng(seed)
    x, dy = _data(rng, (rows, features), np.float64), _data(rng, (rows, features), np.float64)
    weight, bias = _affine(rng, (features,), np.float64, "both")
    y, ctx = nn.layer_norm(x, features, weight, bias)
    assert_close(y, reference.layer_norm(x, (features,), weight, bias), np.float64, "y")
    grads = nn.layer_norm_backward(dy, ctx)
    expected = reference.layer_norm_backward(dy, x, (features,), weight)
    for name, grad, want in zip(("dx", "dweight", "dbias"), grads, expected, strict=True):
        assert_close(grad, want, np.float64, name)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 6), st.integers(1, 100)),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_norm_any_shape(shape, seed):
    """Runs around the lane width, sample counts around the block sizes, (N, C) when L = 1."""
    rng = np.random.default_rng(seed)
    if shape[0] * shape[2] < 2:
        shape = (2, *shape[1:])
    x, dy = _data(rng, shape, np.float64), _data(rng, shape, np.float64)
    weight, bias = _affine(rng, shape[1:2], np.float64, "both")
    running_mean, running_var = _running(rng, shape[1], np.float64)
    expected_y, expected_mean, expected_var = reference.batch_norm(
        x, running_mean, running_var, weight, bias
    )
    y, ctx = nn.batch_norm(x, running_mean, running_var, weight, bias)
    assert_close(y, expected_y, np.float64, "y")
    assert_close(running_mean, expected_mean, np.float64, "running_mean")
    assert_close(running_var, expected_var, np.float64, "running_var")
    grads = nn.batch_norm_backward(dy, ctx)
    expected = reference.batch_norm_backward(dy, x, weight)
    for name, grad, want in zip(("dx", "dweight", "dbias"), grads, expected, strict=True):
        assert_close(grad, want, np.float64, name)


# --------------------------------------------------------------------------------------------
# numerical stability, special values
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "mean", "ulps"),
    [(np.float32, 1e6, 8), (np.float64, 1e9, 8e9)],
    ids=["f32-1e6", "f64-1e9"],
)
def test_large_mean_small_spread(dtype, mean, ulps, rng):
    """A mean of 1e6 (float32) or 1e9 (float64) with a standard deviation of 1.

    float32: the float64 statistics normalize to float32 accuracy. float64: an error of a few
    ulps of the mean (what rounding the mean itself costs) is the best any method does;
    E[x^2] - E[x]^2 would be off by 100% (by 0.06 in float32).
    """
    x = (mean + rng.standard_normal((16, 40))).astype(dtype)
    y, _ = nn.layer_norm(x, 40)
    assert_close(y, reference.layer_norm(x, (40,)), dtype, "layer_norm", ulps)
    y, _ = nn.rms_norm(x, 40)
    assert_close(y, reference.rms_norm(x, (40,)), dtype, "rms_norm")
    for shape in [(40, 16), (20, 16, 2)]:
        x = (mean + rng.standard_normal(shape)).astype(dtype)
        running_mean, running_var = np.zeros(16, dtype), np.ones(16, dtype)
        expected_y, _, expected_var = reference.batch_norm(x, running_mean, running_var)
        y, _ = nn.batch_norm(x, running_mean, running_var)
        assert_close(y, expected_y, dtype, f"batch_norm {shape}", ulps)
        np.testing.assert_allclose(running_var, expected_var, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_variance_and_constant_input(dtype, rng):
    """eps dominates a variance of 1e-8; a constant input normalizes to the bias, not NaN."""
    x = (3.0 + 1e-4 * rng.standard_normal((8, 50))).astype(dtype)
    for eps in (1e-5, 1e-3):
        # float64: rounding the mean (3 eps) is amplified by 1 / sqrt(var + eps), in the
        # reference as in the kernel; float32 data have exact float64 statistics
        ulps = 8 if dtype == np.float32 else 8 * 3.0 / np.sqrt(eps)
        y, ctx = nn.layer_norm(x, 50, eps=eps)
        assert_close(y, reference.layer_norm(x, (50,), eps=eps), dtype, f"eps={eps}", ulps)
        dy = _data(rng, x.shape, dtype)
        assert_close(
            nn.layer_norm_backward(dy, ctx)[0],
            reference.layer_norm_backward(dy, x, (50,), eps=eps)[0],
            dtype,
            f"dx eps={eps}",
            ulps,
        )
    constant = np.full((8, 50), 3.0, dtype)
    bias = _data(rng, 50, dtype)
    y, ctx = nn.layer_norm(constant, 50, None, bias)
    assert np.array_equal(y, np.broadcast_to(bias, y.shape))
    assert np.isfinite(nn.layer_norm_backward(np.ones_like(constant), ctx)[0]).all()
    y, ctx = nn.batch_norm(constant, None, None, None, bias)
    assert np.array_equal(y, np.broadcast_to(bias, y.shape))
    assert np.isfinite(nn.batch_norm_backward(np.ones_like(y), ctx)[0]).all()
    y, _ = nn.rms_norm(np.zeros((2, 50), dtype), 50)
    assert np.array_equal(y, np.zeros_like(y))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_stay_in_their_row_or_channel(dtype, rng):
    x = _data(rng, (5, 6), dtype)
    x[1, 2] = np.nan
    x[3, 4] = np.inf
    y, _ = nn.layer_norm(x, 6)
    assert np.isnan(y[[1, 3]]).all()
    assert np.isfinite(y[[0, 2, 4]]).all()
    y, _ = nn.batch_norm(x, None, None)
    assert np.isnan(y[:, [2, 4]]).all()
    assert np.isfinite(y[:, [0, 1, 3, 5]]).all()


# --------------------------------------------------------------------------------------------
# reproducibility across thread counts, serial against parallel kernels
# --------------------------------------------------------------------------------------------
def _every_norm(x, dy):
    """Forward and backward of every normalization on x, with all the reductions' results."""
    d = x.shape[-1]
    weight, bias = np.linspace(0.5, 1.5, d, dtype=x.dtype), np.linspace(-1, 1, d, dtype=x.dtype)
    y, ctx = nn.layer_norm(x, d, weight, bias)
    results = [y, ctx.mean, ctx.rstd, *nn.layer_norm_backward(dy, ctx)]
    y, ctx = nn.rms_norm(x, d, weight)
    results += [y, ctx.rrms, *nn.rms_norm_backward(dy, ctx)]
    for view in (x.reshape(-1, d), x.reshape(x.shape[0], -1, d).swapaxes(1, 2).copy()):
        channels = view.shape[1]
        running_mean, running_var = np.zeros(channels, x.dtype), np.ones(channels, x.dtype)
        y, ctx = nn.batch_norm(view, running_mean, running_var, weight[:channels], bias[:channels])
        grads = nn.batch_norm_backward(dy.reshape(view.shape), ctx)
        results += [y, ctx.mean, ctx.invstd, running_mean, running_var, *grads]
    return results


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_one_and_two_threads(dtype, rng):
    x = _data(rng, (64, 8, 80), dtype)
    dy = _data(rng, x.shape, dtype)
    assert x.size >= nn.PARALLEL_MIN_ELEMENTS, "the parallel kernels must run"
    one = with_threads(1, lambda: _every_norm(x, dy))
    two = with_threads(2, lambda: _every_norm(x, dy))
    for i, (a, b) in enumerate(zip(one, two, strict=True)):
        assert np.array_equal(a, b), f"result {i} differs between 1 and 2 threads"


@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_and_parallel_kernels_agree_bitwise(dtype, rng, monkeypatch):
    x = _data(rng, (64, 8, 80), dtype)
    dy = _data(rng, x.shape, dtype)
    parallel = _every_norm(x, dy)
    monkeypatch.setattr(nn, "PARALLEL_MIN_ELEMENTS", x.size + 1)
    serial = _every_norm(x, dy)
    for i, (a, b) in enumerate(zip(serial, parallel, strict=True)):
        assert np.array_equal(a, b), f"result {i} differs between the serial and parallel kernel"


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
X = np.ones((4, 3), np.float32)
C3 = np.ones(3, np.float32)


def _layer_norm_ctx():
    return nn.layer_norm(X, 3)[1]


def _batch_norm_ctx():
    return nn.batch_norm(X, None, None)[1]


BAD_CALLS = [
    (lambda: nn.layer_norm([[1.0, 2.0]], 2), TypeError, "x"),
    (lambda: nn.layer_norm(X.astype(np.int32), 3), TypeError, "x"),
    (lambda: nn.layer_norm(X, 4), ValueError, "normalized_shape"),
    (lambda: nn.layer_norm(X, (2, 4, 3)), ValueError, "normalized_shape"),
    (lambda: nn.layer_norm(X, 3.0), TypeError, "normalized_shape"),
    (lambda: nn.layer_norm(X, 3, weight=np.ones(4, np.float32)), ValueError, "weight"),
    (lambda: nn.layer_norm(X, 3, weight=np.ones(3)), TypeError, "weight"),
    (lambda: nn.layer_norm(X, 3, bias=np.ones((1, 3), np.float32)), ValueError, "bias"),
    (lambda: nn.layer_norm(X, 3, eps=-1e-5), ValueError, "eps"),
    (lambda: nn.layer_norm(X, 3, eps=float("nan")), ValueError, "eps"),
    (lambda: nn.layer_norm(X, 3, eps="1e-5"), TypeError, "eps"),
    (lambda: nn.layer_norm_backward(X[:2], _layer_norm_ctx()), ValueError, "dy"),
    (lambda: nn.layer_norm_backward(np.ones((4, 3)), _layer_norm_ctx()), TypeError, "dy"),
    (lambda: nn.layer_norm_backward(X, _batch_norm_ctx()), TypeError, "ctx"),
    (lambda: nn.rms_norm_backward(X, _layer_norm_ctx()), TypeError, "ctx"),
    (lambda: nn.rms_norm(X, 3, eps=-1.0), ValueError, "eps"),
    (lambda: nn.rms_norm(X, 3, weight=C3[:2]), ValueError, "weight"),
    (lambda: nn.rms_norm(X.astype(np.float16), 3), TypeError, "x"),
    (lambda: nn.batch_norm(C3, None, None), ValueError, "x"),
    (lambda: nn.batch_norm(X.astype(np.int64), None, None), TypeError, "x"),
    (lambda: nn.batch_norm(X, np.zeros(4, np.float32), C3.copy()), ValueError, "running_mean"),
    (lambda: nn.batch_norm(X, C3.copy(), np.ones(3)), TypeError, "running_var"),
    (lambda: nn.batch_norm(X, C3.copy(), None), ValueError, "running_var"),
    (lambda: nn.batch_norm(X, None, None, training=False), ValueError, "running_mean"),
    (lambda: nn.batch_norm(X, None, None, weight=np.ones(4, np.float32)), ValueError, "weight"),
    (lambda: nn.batch_norm(X, None, None, bias=np.ones(3)), TypeError, "bias"),
    (lambda: nn.batch_norm(X, None, None, momentum=1.5), ValueError, "momentum"),
    (lambda: nn.batch_norm(X, None, None, eps=-0.1), ValueError, "eps"),
    (lambda: nn.batch_norm(X, None, None, training=1), TypeError, "training"),
    (lambda: nn.batch_norm(X[:1], None, None), ValueError, "more than 1 value per channel"),
    (lambda: nn.batch_norm(X, C3.copy(), C3.copy(), momentum=None), ValueError, "num_batches"),
    (lambda: nn.batch_norm(X, None, None, num_batches_tracked=0), TypeError, "num_batches"),
    (lambda: nn.batch_norm_backward(X.T, _batch_norm_ctx()), ValueError, "dy"),
    (lambda: nn.batch_norm_backward(X, None), TypeError, "ctx"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "options",
    [{"eps": -1.0}, {"momentum": 2.0}, {"weight": np.ones(2, np.float32)}, {"training": "yes"}],
)
def test_refused_call_leaves_running_statistics_untouched(options):
    running_mean, running_var = np.full(3, 0.5, np.float32), np.full(3, 2.0, np.float32)
    counter = np.zeros((), np.int64)
    with pytest.raises((TypeError, ValueError)):
        nn.batch_norm(X, running_mean, running_var, num_batches_tracked=counter, **options)
    assert (running_mean == 0.5).all() and (running_var == 2.0).all() and counter == 0


def test_running_statistics_that_cannot_be_updated_in_place_are_refused():
    read_only = np.zeros(3, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean"):
        nn.batch_norm(X, read_only, np.ones(3, np.float32))
    strided = np.ones(6, np.float32)[::2]
    with pytest.raises(ValueError, match="running_var"):
        nn.batch_norm(X, np.zeros(3, np.float32), strided)


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("x", "running_mean shares memory with x"),
        ("weight", "running_mean shares memory with weight"),
        ("running_var", "running_mean and running_var share memory"),
    ],
)
def test_running_statistics_sharing_memory_are_refused_untouched(alias, message):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    weight = np.ones(3, np.float32)
    running_var = np.arange(6, dtype=np.float32)
    running_mean = {"x": x[1], "weight": weight, "running_var": running_var[1:4]}[alias]
    arrays = {"x": x, "weight": weight, "running_var": running_var}
    before = {name: array.copy() for name, array in arrays.items()}
    with pytest.raises(ValueError, match=message):
        nn.batch_norm(x, running_mean, running_var[:3], weight=weight)
    for name, array in arrays.items():
        np.testing.assert_array_equal(array, before[name])
