"""Cross-entropy and mean squared error: against the NumPy reference and finite differences,
extreme logits, bad input.
"""

import numpy as np
import pytest
from nn_helpers import DTYPES, assert_close, assert_gradients, numerical_gradients

from optbench import nn
from optbench.reference import nn as reference

REDUCTIONS = ["mean", "sum"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n_classes", [1, 10, 150])
def test_cross_entropy_matches_reference(n_classes, reduction, dtype, rng):
    logits = (3 * rng.standard_normal((7, n_classes))).astype(dtype)
    targets = rng.integers(0, n_classes, 7)
    loss, ctx = nn.cross_entropy(logits, targets, reduction)
    assert loss.dtype == dtype and loss.shape == ()
    assert_close(loss, reference.cross_entropy(logits, targets, reduction), dtype, "loss")
    dlogits = nn.cross_entropy_backward(0.7, ctx)
    expected = reference.cross_entropy_backward(0.7, logits, targets, reduction)
    assert_close(dlogits, expected, dtype, "dlogits")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_backward_matches_finite_differences(reduction, rng):
    logits = rng.standard_normal((5, 4))
    targets = np.array([0, 3, 1, 3, 2], np.int32)
    (numeric,) = numerical_gradients(
        lambda: float(nn.cross_entropy(logits, targets, reduction)[0]), [logits]
    )
    ctx = nn.cross_entropy(logits, targets, reduction)[1]
    assert_gradients(nn.cross_entropy_backward(1.0, ctx), numeric, "dlogits")


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_with_extreme_logits(dtype):
    """Logits far beyond exp's range: finite losses and gradients, exact where the math is."""
    big = float(np.finfo(dtype).max) / 4
    logits = np.array(
        [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [big, -big, 0.0], [-big, 0.0, big], [-1e4] * 3],
        dtype,
    )
    targets = np.array([0, 0, 0, 2, 1])
    loss, ctx = nn.cross_entropy(logits, targets, "sum")
    # row losses: 0, 2e4, 0, 0, log(3)
    assert_close(loss, 2e4 + np.log(3.0), dtype, "loss")
    dlogits = nn.cross_entropy_backward(1.0, ctx)
    assert np.isfinite(dlogits).all()
    expected = np.array(
        [[0, 0, 0], [-1, 1, 0], [0, 0, 0], [0, 0, 0], [1 / 3, -2 / 3, 1 / 3]], np.float64
    )
    assert_close(dlogits, expected, dtype, "dlogits")


def test_cross_entropy_nan_logit_gives_nan_in_its_row_only():
    logits = np.zeros((3, 4))
    logits[1, 2] = np.nan
    loss, ctx = nn.cross_entropy(logits, np.array([0, 0, 0]), "sum")
    assert np.isnan(loss)
    dlogits = nn.cross_entropy_backward(1.0, ctx)
    assert np.isnan(dlogits[1]).all()
    assert np.isfinite(dlogits[[0, 2]]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1,), (7, 3), (2, 100)])
def test_mse_loss_matches_reference(shape, reduction, dtype, rng):
    prediction = rng.standard_normal(shape).astype(dtype)
    target = rng.standard_normal(shape).astype(dtype)
    loss, ctx = nn.mse_loss(prediction, target, reduction)
    assert loss.dtype == dtype
    assert_close(loss, reference.mse_loss(prediction, target, reduction), dtype, "loss")
    expected = reference.mse_loss_backward(-1.5, prediction, target, reduction)
    assert_close(nn.mse_loss_backward(-1.5, ctx), expected, dtype, "dprediction")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_backward_matches_finite_differences(reduction, rng):
    prediction, target = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    (numeric,) = numerical_gradients(
        lambda: float(nn.mse_loss(prediction, target, reduction)[0]), [prediction]
    )
    ctx = nn.mse_loss(prediction, target, reduction)[1]
    assert_gradients(nn.mse_loss_backward(1.0, ctx), numeric, "dprediction")


LOGITS = np.zeros((3, 4), np.float32)
TARGETS = np.array([0, 1, 3])


def _loss_ctx():
    return nn.cross_entropy(LOGITS, TARGETS)[1]


BAD_CALLS = [
    (lambda: nn.cross_entropy(LOGITS, np.array([0, 1, 4])), ValueError, r"targets\[2\] = 4"),
    (lambda: nn.cross_entropy(LOGITS, np.array([-1, 1, 3])), ValueError, r"targets\[0\] = -1"),
    (
        lambda: nn.cross_entropy(LOGITS, np.array([0, 2**64 - 1, 3], np.uint64)),
        ValueError,
        r"targets\[1\] = 18446744073709551615 is not a class index",
    ),
    (lambda: nn.cross_entropy(LOGITS, TARGETS.astype(np.float32)), TypeError, "targets"),
    (lambda: nn.cross_entropy(LOGITS, [0, 1, 3]), TypeError, "targets"),
    (lambda: nn.cross_entropy(LOGITS, TARGETS[:2]), ValueError, "targets"),
    (lambda: nn.cross_entropy(LOGITS[0], TARGETS), ValueError, "logits"),
    (lambda: nn.cross_entropy(LOGITS[:0], TARGETS[:0]), ValueError, "logits"),
    (lambda: nn.cross_entropy(LOGITS.astype(int), TARGETS), TypeError, "logits"),
    (lambda: nn.cross_entropy(LOGITS, TARGETS, "none"), ValueError, "reduction"),
    (lambda: nn.cross_entropy_backward("1", _loss_ctx()), TypeError, "dloss"),
    (lambda: nn.cross_entropy_backward(1.0, None), TypeError, "ctx"),
    (lambda: nn.mse_loss(LOGITS, LOGITS[:2]), ValueError, "target"),
    (lambda: nn.mse_loss(LOGITS, LOGITS.astype(np.float64)), TypeError, "target"),
    (lambda: nn.mse_loss(LOGITS[:0], LOGITS[:0]), ValueError, "prediction"),
    (lambda: nn.mse_loss(LOGITS, LOGITS, reduction="max"), ValueError, "reduction"),
    (lambda: nn.mse_loss_backward(1.0, _loss_ctx()), TypeError, "ctx"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
