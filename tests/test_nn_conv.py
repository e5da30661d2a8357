"""conv1d and its backward: the definition, finite differences in float64, torch's F.conv1d
where installed, and bad input refused by name."""

import numpy as np
import pytest
from nn_helpers import DTYPES, assert_close, assert_gradients, numerical_gradients

from optbench import nn

# (N, C_in, L, C_out, K, stride, padding)
CASES = [
    (2, 3, 10, 4, 3, 1, 0),
    (3, 2, 9, 5, 4, 2, 1),
    (1, 1, 5, 1, 5, 1, 0),
    (2, 4, 7, 3, 1, 3, 2),
    (2, 2, 6, 3, 3, 2, 3),
]
IDS = ["x".join(map(str, case)) for case in CASES]


def _arrays(rng, case, dtype):
    n, c_in, length, c_out, k, _, _ = case
    x = rng.standard_normal((n, c_in, length)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, k)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    return x, weight, bias


def _direct(x, weight, bias, stride, padding):
    """The convolution by its definition, in float64."""
    n, _, length = x.shape
    c_out, _, k = weight.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding)))
    steps = (length + 2 * padding - k) // stride + 1
    y = np.zeros((n, c_out, steps))
    for t in range(steps):
        window = padded[:, :, t * stride : t * stride + k]
        y[:, :, t] = np.einsum("nck,ock->no", window, weight.astype(np.float64))
    return y if bias is None else y + bias[:, None]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_the_definition(case, dtype, rng):
    x, weight, bias = _arrays(rng, case, dtype)
    stride, padding = case[5:]
    y, _ = nn.conv1d(x, weight, bias, stride=stride, padding=padding)
    assert y.dtype == dtype
    assert_close(y, _direct(x, weight, bias, stride, padding), dtype, "y", ulps=64)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_finite_differences(case, with_bias, rng):
    x, weight, bias = _arrays(rng, case, np.float64)
    bias = bias if with_bias else None
    stride, padding = case[5:]
    y, ctx = nn.conv1d(x, weight, bias, stride=stride, padding=padding)
    r = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(nn.conv1d(x, weight, bias, stride=stride, padding=padding)[0] * r))

    dx, dweight, dbias = nn.conv1d_backward(r, ctx)
    arrays = [x, weight] + ([bias] if with_bias else [])
    numeric = numerical_gradients(loss, arrays)
    assert_gradients(dx, numeric[0], "dx")
    assert_gradients(dweight, numeric[1], "dweight")
    if with_bias:
        assert_gradients(dbias, numeric[2], "dbias")
    else:
        assert dbias is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_match_torch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    x, weight, bias = _arrays(rng, case, dtype)
    stride, padding = case[5:]
    y, ctx = nn.conv1d(x, weight, bias, stride=stride, padding=padding)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dweight, dbias = nn.conv1d_backward(dy, ctx)
    tensors = [torch.from_numpy(a.copy()).requires_grad_() for a in (x, weight, bias)]
    out = torch.nn.functional.conv1d(*tensors, stride=stride, padding=padding)
    out.backward(torch.from_numpy(dy))
    ulps = 64 if dtype == np.float32 else 4096
    assert_close(y, out.detach().numpy(), dtype, "y", ulps=ulps)
    names = ("dx", "dweight", "dbias")
    for ours, tensor, name in zip((dx, dweight, dbias), tensors, names, strict=True):
        assert_close(ours, tensor.grad.numpy(), dtype, name, ulps=ulps)


def test_an_empty_batch_gives_empty_outputs(rng):
    x = np.zeros((0, 2, 8))
    weight = rng.standard_normal((3, 2, 3))
    y, ctx = nn.conv1d(x, weight, np.zeros(3))
    assert y.shape == (0, 3, 6)
    dx, dweight, dbias = nn.conv1d_backward(y, ctx)
    assert dx.shape == x.shape and not dweight.any() and not dbias.any()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x": np.zeros((2, 3))}, ValueError, r"x must have shape \(N, C_in, L\)"),
        ({"x": np.zeros((1, 2, 8), np.int64)}, TypeError, "x must have dtype"),
        ({"weight": np.zeros((3, 4, 3))}, ValueError, r"weight must have shape \(C_out, 2, K\)"),
        ({"weight": np.zeros((3, 2, 0))}, ValueError, "K >= 1"),
        ({"weight": np.zeros((3, 2, 3), np.float32)}, TypeError, "weight has dtype"),
        ({"bias": np.zeros(4)}, ValueError, "bias must have shape"),
        ({"stride": 0}, ValueError, "stride"),
        ({"stride": 1.0}, TypeError, "stride"),
        ({"padding": -1}, ValueError, "padding"),
        ({"weight": np.zeros((3, 2, 11))}, ValueError, "longer than the padded input"),
    ],
)
def test_bad_input_is_refused_by_name(change, error, match):
    arguments = {"x": np.zeros((1, 2, 8)), "weight": np.zeros((3, 2, 3)), "bias": np.zeros(3)}
    arguments.update(change)
    with pytest.raises(error, match=match):
        nn.conv1d(**arguments)


def test_backward_refuses_a_misshapen_gradient_or_another_context(rng):
    x, weight, bias = _arrays(rng, CASES[0], np.float64)
    y, ctx = nn.conv1d(x, weight, bias)
    with pytest.raises(ValueError, match="dy must have shape"):
        nn.conv1d_backward(y[:, :, :-1], ctx)
    with pytest.raises(TypeError, match="dy has dtype"):
        nn.conv1d_backward(y.astype(np.float32), ctx)
    _, other = nn.relu(x)
    with pytest.raises(TypeError, match="Conv1dContext"):
        nn.conv1d_backward(y, other)
