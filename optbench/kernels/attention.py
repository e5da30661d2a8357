"""Softmax, scaled dot-product attention and the embedding's scatter, forward and backward.

Every product and sum runs in float64 and is rounded once, at the store, to the arrays'
dtype. Attention works on stacks of matrices: ``q (B, L, E)``, ``k (B, S, E)``, ``v (B, S,
Ev)``, one independent attention per leading index (a sample's head); the probabilities ``(B,
L, S)`` are kept for the backward pass. With ``causal``, query ``i`` sees keys ``j <= i`` (the
upper-left triangle, as torch's ``is_causal``); a query that sees no key (``S = 0``) gives
zeros. The parallel kernels split the stack over Numba's threads, each matrix computed exactly
as the serial kernel computes it.
"""

import numpy as np
from numba import njit, prange

from ._config import INLINE, PARALLEL, SERIAL


@njit(**INLINE)
def _softmax_row(scores, count):
    """``scores[:count] = exp(scores - max) / sum(exp(scores - max))`` in place (float64)."""
    if count == 0:
        return
    largest = scores[0]
    for j in range(1, count):
        if scores[j] > largest:
            largest = scores[j]
    total = 0.0
    for j in range(count):
        scores[j] = np.exp(scores[j] - largest)
        total += scores[j]
    for j in range(count):
        scores[j] /= total


@njit(**SERIAL)
def softmax_forward(x, y):
    """``y_ij = exp(x_ij - m_i) / sum_k exp(x_ik - m_i)``, ``m_i = max_k x_ik``, per row of
    ``x (R, K)``; no overflow for finite inputs, NaN in a row gives a row of NaN."""
    t = y.dtype.type
    row = np.empty(x.shape[1])
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            row[j] = x[i, j]
        _softmax_row(row, x.shape[1])
        for j in range(x.shape[1]):
            y[i, j] = t(row[j])


@njit(**SERIAL)
def softmax_backward(y, dy, dx):
    """``dx_ij = y_ij (dy_ij - sum_k y_ik dy_ik)`` per row, the sum in float64."""
    t = dx.dtype.type
    for i in range(y.shape[0]):
        weighted = 0.0
        for j in range(y.shape[1]):
            weighted += np.float64(y[i, j]) * dy[i, j]
        for j in range(y.shape[1]):
            dx[i, j] = t(np.float64(y[i, j]) * (np.float64(dy[i, j]) - weighted))


@njit(**INLINE)
def _attend(q, k, v, scale, causal, probs, out, scores, accumulator):
    """One matrix of :func:`attention_forward`; ``scores (S,)`` and ``accumulator (Ev,)`` are
    float64 scratch."""
    t = out.dtype.type
    keys, value_size = k.shape[0], v.shape[1]
    for i in range(q.shape[0]):
        seen = min(i + 1, keys) if causal else keys
        for j in range(seen):
            dot = 0.0
            for e in range(q.shape[1]):
                dot += np.float64(q[i, e]) * k[j, e]
            scores[j] = scale * dot
        _softmax_row(scores, seen)
        for e in range(value_size):
            accumulator[e] = 0.0
        for j in range(seen):
            weight = scores[j]
            for e in range(value_size):
                accumulator[e] += weight * v[j, e]
        for j in range(seen):
            probs[i, j] = t(scores[j])
        for j in range(seen, keys):
            probs[i, j] = t(0.0)
        for e in range(value_size):
            out[i, e] = t(accumulator[e])


@njit(**SERIAL)
def attention_forward_serial(q, k, v, scale, causal, probs, out):
    """``out_b = softmax(scale q_b k_b^T (masked)) v_b`` for every matrix ``b`` of the stack;
    ``probs_b`` gets the softmax (0 where masked).

    q : (B, L, E), k : (B, S, E), v : (B, S, Ev), all of one dtype; scale : float;
    causal : bool; probs : (B, L, S) and out : (B, L, Ev), written.
    """
    scores, accumulator = np.empty(k.shape[1]), np.empty(v.shape[2])
    for b in range(q.shape[0]):
        _attend(q[b], k[b], v[b], scale, causal, probs[b], out[b], scores, accumulator)


@njit(**PARALLEL)
def attention_forward_parallel(q, k, v, scale, causal, probs, out):
    """:func:`attention_forward_serial` with the matrices spread over threads."""
    for b in prange(q.shape[0]):
        scores, accumulator = np.empty(k.shape[1]), np.empty(v.shape[2])
        _attend(q[b], k[b], v[b], scale, causal, probs[b], out[b], scores, accumulator)


@njit(**INLINE)
def _attend_backward(q, k, v, probs, dout, scale, causal, dq, dk, dv, dscores, dk64, dv64):
    """One matrix of :func:`attention_backward`; ``dscores (S,)``, ``dk64 (S, E)`` and
    ``dv64 (S, Ev)`` are float64 scratch."""
    t = dq.dtype.type
    keys, key_size, value_size = k.shape[0], k.shape[1], v.shape[1]
    dk64[:] = 0.0
    dv64[:] = 0.0
    for i in range(q.shape[0]):
        seen = min(i + 1, keys) if causal else keys
        weighted = 0.0
        for j in range(seen):
            p = np.float64(probs[i, j])
            dp = 0.0
            for e in range(value_size):
                dp += np.float64(dout[i, e]) * v[j, e]
                dv64[j, e] += p * dout[i, e]
            dscores[j] = dp
            weighted += p * dp
        for j in range(seen):
            dscores[j] = scale * np.float64(probs[i, j]) * (dscores[j] - weighted)
        for e in range(key_size):
            total = 0.0
            for j in range(seen):
                total += dscores[j] * k[j, e]
                dk64[j, e] += dscores[j] * q[i, e]
            dq[i, e] = t(total)
    for j in range(keys):
        for e in range(key_size):
            dk[j, e] = t(dk64[j, e])
        for e in range(value_size):
            dv[j, e] = t(dv64[j, e])


@njit(**SERIAL)
def attention_backward_serial(q, k, v, probs, dout, scale, causal, dq, dk, dv):
    """Gradients of :func:`attention_forward_serial` for every matrix of the stack:

    dv_j = sum_i p_ij dout_i,   dp_ij = dout_i . v_j,
    ds_ij = scale p_ij (dp_ij - sum_j' p_ij' dp_ij'),
    dq_i = sum_j ds_ij k_j,     dk_j = sum_i ds_ij q_i.

    dout : (B, L, Ev); dq, dk, dv : like q, k, v, written.
    """
    dscores = np.empty(k.shape[1])
    dk64, dv64 = np.empty(k.shape[1:]), np.empty(v.shape[1:])
    for b in range(q.shape[0]):
        _attend_backward(
            q[b], k[b], v[b], probs[b], dout[b], scale, causal, dq[b], dk[b], dv[b],
            dscores, dk64, dv64,
        )  # fmt: skip


@njit(**PARALLEL)
def attention_backward_parallel(q, k, v, probs, dout, scale, causal, dq, dk, dv):
    """:func:`attention_backward_serial` with the matrices spread over threads."""
    for b in prange(q.shape[0]):
        dscores = np.empty(k.shape[1])
        dk64, dv64 = np.empty(k.shape[1:]), np.empty(v.shape[1:])
        _attend_backward(
            q[b], k[b], v[b], probs[b], dout[b], scale, causal, dq[b], dk[b], dv[b],
            dscores, dk64, dv64,
        )  # fmt: skip


@njit(**SERIAL)
def embedding_backward(indices, dy, dweight):
    """``dweight[v] = sum of dy[m]`` over the rows ``m`` with ``indices[m] = v``, added in row
    order into the float64 ``dweight (V, E)`` (zeroed here); indices : (M,) int64, checked in
    [0, V) by the caller, dy : (M, E)."""
    dweight[:] = 0.0
    for m in range(indices.size):
        row = dweight[indices[m]]
        for e in range(dy.shape[1]):
            row[e] += dy[m, e]
