"""Softmax, scaled dot-product attention and embedding: the NumPy reference, special values,
finite differences in float64, torch autograd where installed, the serial and parallel kernels
bit for bit, and bad input refused by name."""

import numpy as np
import pytest
from nn_helpers import DTYPES, assert_close, assert_gradients, numerical_gradients, with_threads

from optbench import nn
from optbench.reference import nn as reference

# (leading axes, L, S, E, Ev)
ATTENTION_CASES = [
    ((2, 3), 5, 5, 4, 4),
    ((3,), 4, 7, 3, 5),
    ((1,), 6, 3, 2, 2),
    ((2, 1), 1, 1, 8, 3),
]
ATTENTION_IDS = ["x".join(map(str, (*lead, *rest))) for lead, *rest in ATTENTION_CASES]


def _qkv(rng, case, dtype):
    leading, length, keys, size, value_size = case
    query = rng.standard_normal((*leading, length, size)).astype(dtype)
    key = rng.standard_normal((*leading, keys, size)).astype(dtype)
    value = rng.standard_normal((*leading, keys, value_size)).astype(dtype)
    return query, key, value


# ------------------------------------------------------------------------------------------
# softmax
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_matches_the_reference(dim, dtype, rng):
    x = (4 * rng.standard_normal((3, 5, 4))).astype(dtype)
    y, ctx = nn.softmax(x, dim=dim)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, reference.softmax(x, dim), dtype, "y")
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = nn.softmax_backward(dy, ctx)
    assert_close(dx, reference.softmax_backward(dy, y, dim), dtype, "dx")


def test_softmax_special_values_follow_torch():
    inf, nan = np.inf, np.nan
    x = np.array(
        [[1e4, 0.0, -1e4], [-inf, 0.0, 1.0], [inf, 0.0, 1.0], [nan, 0.0, 1.0], [-inf, -inf, -inf]]
    )
    y, _ = nn.softmax(x)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(y[1], reference.softmax(x[1]))
    assert y[1, 0] == 0.0
    assert np.isnan(y[2:]).all()


@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_backward_matches_finite_differences(dim, rng):
    x = rng.standard_normal((4, 6))
    r = rng.standard_normal(x.shape)
    _, ctx = nn.softmax(x, dim=dim)
    numeric = numerical_gradients(lambda: float(np.sum(nn.softmax(x, dim=dim)[0] * r)), [x])
    assert_gradients(nn.softmax_backward(r, ctx), numeric[0], "dx")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    x = (3 * rng.standard_normal((4, 9))).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, ctx = nn.softmax(x, dim=0)
    tensor = torch.from_numpy(x.copy()).requires_grad_()
    out = torch.softmax(tensor, dim=0)
    out.backward(torch.from_numpy(dy))
    assert_close(y, out.detach().numpy(), dtype, "y", ulps=16)
    assert_close(nn.softmax_backward(dy, ctx), tensor.grad.numpy(), dtype, "dx", ulps=16)


def test_softmax_refuses_bad_input_by_name(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        nn.softmax(x, dim=2)
    with pytest.raises(TypeError, match="dim must be an int"):
        nn.softmax(x, dim=1.0)
    with pytest.raises(TypeError, match="x must have dtype"):
        nn.softmax(x.astype(np.int64))
    _, ctx = nn.softmax(x)
    with pytest.raises(ValueError, match="dy must have shape"):
        nn.softmax_backward(x[:, :2], ctx)
    with pytest.raises(TypeError, match="dy has dtype"):
        nn.softmax_backward(x.astype(np.float32), ctx)


# ------------------------------------------------------------------------------------------
# attention
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=ATTENTION_IDS)
def test_attention_matches_the_reference(case, is_causal, dtype, rng):
    query, key, value = _qkv(rng, case, dtype)
    out, ctx = nn.scaled_dot_product_attention(query, key, value, is_causal=is_causal)
    assert out.dtype == dtype and out.shape == (*query.shape[:-1], value.shape[-1])
    expected = reference.scaled_dot_product_attention(query, key, value, is_causal)
    assert_close(out, expected, dtype, "out")
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = nn.scaled_dot_product_attention_backward(dout, ctx)
    # float32 probabilities are stored rounded: the gradients see one rounding of p
    ulps = 32 if dtype == np.float32 else None
    expected = reference.scaled_dot_product_attention_backward(dout, query, key, value, is_causal)
    for ours, theirs, name in zip(grads, expected, ("dquery", "dkey", "dvalue"), strict=True):
        assert ours.dtype == dtype
        assert_close(ours, theirs, dtype, name, ulps=ulps)


@pytest.mark.parametrize("scale", [None, 0.3])
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("case", ATTENTION_CASES[:3], ids=ATTENTION_IDS[:3])
def test_attention_backward_matches_finite_differences(case, is_causal, scale, rng):
    query, key, value = _qkv(rng, case, np.float64)
    out, ctx = nn.scaled_dot_product_attention(query, key, value, is_causal, scale)
    r = rng.standard_normal(out.shape)

    def loss():
        return float(
            np.sum(nn.scaled_dot_product_attention(query, key, value, is_causal, scale)[0] * r)
        )

    grads = nn.scaled_dot_product_attention_backward(r, ctx)
    numeric = numerical_gradients(loss, [query, key, value])
    for ours, theirs, name in zip(grads, numeric, ("dquery", "dkey", "dvalue"), strict=True):
        assert_gradients(ours, theirs, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=ATTENTION_IDS)
def test_attention_matches_torch(case, is_causal, dtype, rng):
    torch = pytest.importorskip("torch")
    query, key, value = _qkv(rng, case, dtype)
    out, ctx = nn.scaled_dot_product_attention(query, key, value, is_causal=is_causal)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = nn.scaled_dot_product_attention_backward(dout, ctx)
    tensors = [torch.from_numpy(a.copy()).requires_grad_() for a in (query, key, value)]
    # the math backend: torch's fused CPU kernels keep float32 sums in float32
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        theirs = torch.nn.functional.scaled_dot_product_attention(*tensors, is_causal=is_causal)
    theirs.backward(torch.from_numpy(dout))
    ulps = 64 if dtype == np.float32 else None
    assert_close(out, theirs.detach().numpy(), dtype, "out", ulps=ulps)
    for ours, tensor, name in zip(grads, tensors, ("dquery", "dkey", "dvalue"), strict=True):
        assert_close(ours, tensor.grad.numpy(), dtype, name, ulps=ulps)


@pytest.mark.parametrize("is_causal", [False, True])
def test_parallel_and_serial_attention_agree_bit_for_bit(is_causal, rng, monkeypatch):
    query, key, value = _qkv(rng, ((4, 2), 6, 6, 4, 4), np.float32)
    dout = rng.standard_normal((4, 2, 6, 4)).astype(np.float32)

    def run():
        out, ctx = nn.scaled_dot_product_attention(query, key, value, is_causal)
        return (out, *nn.scaled_dot_product_attention_backward(dout, ctx))

    monkeypatch.setattr(nn, "ATTENTION_PARALLEL_MIN_WORK", 1 << 62)
    serial = run()
    monkeypatch.setattr(nn, "ATTENTION_PARALLEL_MIN_WORK", 0)
    parallel = with_threads(2, run)
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a, b)


def test_attention_with_a_non_contiguous_view_gives_the_contiguous_result(rng):
    query, key, value = _qkv(rng, ((2,), 4, 4, 6, 6), np.float64)
    wide = np.concatenate([query, key], axis=-1)
    out, _ = nn.scaled_dot_product_attention(wide[..., ::2], key, value.T.copy().T)
    expected, _ = nn.scaled_dot_product_attention(wide[..., ::2].copy(), key, value)
    np.testing.assert_array_equal(out, expected)


def test_attention_over_no_keys_gives_zeros(rng):
    query = rng.standard_normal((2, 3, 4))
    out, ctx = nn.scaled_dot_product_attention(query, np.zeros((2, 0, 4)), np.zeros((2, 0, 5)))
    assert out.shape == (2, 3, 5) and not out.any()
    dq, dk, dv = nn.scaled_dot_product_attention_backward(np.ones_like(out), ctx)
    assert not dq.any() and dk.shape == (2, 0, 4) and dv.shape == (2, 0, 5)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"query": np.zeros(4)}, ValueError, r"query must have shape \(\.\.\., L, E\)"),
        ({"query": np.zeros((2, 3, 4), np.int32)}, TypeError, "query must have dtype"),
        ({"key": np.zeros((2, 5, 3))}, ValueError, "key must have shape"),
        ({"key": np.zeros((3, 5, 4))}, ValueError, "key must have shape"),
        ({"key": np.zeros((2, 5, 4), np.float32)}, TypeError, "key has dtype"),
        ({"value": np.zeros((2, 4, 6))}, ValueError, "value must have shape"),
        ({"value": [[0.0]]}, TypeError, "value"),
        ({"is_causal": "yes"}, TypeError, "is_causal"),
        ({"scale": 0.0}, ValueError, "scale"),
        ({"scale": float("nan")}, ValueError, "scale"),
    ],
)
def test_attention_refuses_bad_input_by_name(change, error, match):
    arguments = {
        "query": np.zeros((2, 3, 4)),
        "key": np.zeros((2, 5, 4)),
        "value": np.zeros((2, 5, 6)),
    }
    arguments.update(change)
    with pytest.raises(error, match=match):
        nn.scaled_dot_product_attention(**arguments)


def test_attention_backward_refuses_a_misshapen_gradient_or_another_context(rng):
    query, key, value = _qkv(rng, ATTENTION_CASES[1], np.float64)
    out, ctx = nn.scaled_dot_product_attention(query, key, value)
    with pytest.raises(ValueError, match="dout must have shape"):
        nn.scaled_dot_product_attention_backward(out[..., :-1], ctx)
    with pytest.raises(TypeError, match="dout has dtype"):
        nn.scaled_dot_product_attention_backward(out.astype(np.float32), ctx)
    _, other = nn.softmax(out)
    with pytest.raises(TypeError, match="AttentionContext"):
        nn.scaled_dot_product_attention_backward(out, other)


# ------------------------------------------------------------------------------------------
# embedding
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_matches_the_reference(dtype, rng):
    weight = rng.standard_normal((7, 5)).astype(dtype)
    indices = rng.integers(0, 7, size=(4, 6))
    indices[0, :3] = 2  # repeated rows add up
    y, ctx = nn.embedding(indices, weight)
    assert y.dtype == dtype and y.shape == (4, 6, 5)
    np.testing.assert_array_equal(y, reference.embedding(indices, weight))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dweight = nn.embedding_backward(dy, ctx)
    assert dweight.dtype == dtype
    assert_close(dweight, reference.embedding_backward(dy, indices, 7), dtype, "dweight")
    unused = np.setdiff1d(np.arange(7), indices)
    assert not dweight[unused].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    weight = rng.standard_normal((9, 4)).astype(dtype)
    indices = rng.integers(0, 9, size=(5, 3))
    y, ctx = nn.embedding(indices, weight)
    dy = rng.standard_normal(y.shape).astype(dtype)
    tensor = torch.from_numpy(weight.copy()).requires_grad_()
    out = torch.nn.functional.embedding(torch.from_numpy(indices), tensor)
    out.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, out.detach().numpy())
    assert_close(nn.embedding_backward(dy, ctx), tensor.grad.numpy(), dtype, "dweight", ulps=16)


def test_embedding_refuses_bad_input_by_name(rng):
    weight = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"indices hold 4, not a row index in \[0, 4\)"):
        nn.embedding(np.array([0, 4]), weight)
    with pytest.raises(ValueError, match="indices hold -1"):
        nn.embedding(np.array([[-1]]), weight)
    with pytest.raises(TypeError, match="indices must be an integer numpy array"):
        nn.embedding(np.array([0.0]), weight)
    with pytest.raises(TypeError, match="indices must be an integer numpy array"):
        nn.embedding([0, 1], weight)
    with pytest.raises(ValueError, match=r"weight must have shape \(V, E\)"):
        nn.embedding(np.array([0]), weight[0])
    y, ctx = nn.embedding(np.array([0, 1]), weight)
    with pytest.raises(ValueError, match="dy must have shape"):
        nn.embedding_backward(y[:1], ctx)
