"""Adafactor's step on one array (see ``optbench.algorithms.ADAFACTOR``), as Numba passes.

A vector (or 0-D array) takes two passes over its chunks, on Numba's threads: the first
updates ``v`` and sums ``p^2`` and ``u^2`` per chunk, the second writes ``p``; the chunks'
sums are added in chunk order, so the result is the same for any thread count. An array of 2
or more dimensions, seen as ``(B, R, C)``, takes three serial passes: the row and column sums
of ``g^2`` with the sum of ``p^2``, then the sum of ``u^2``, then ``p``. Sums are float64;
every other operation is rounded as in ``optbench.reference.optimizers.adafactor``.
"""

import math

import numpy as np
from numba import njit, prange

from ._config import UNFUSED, UNFUSED_INLINE, UNFUSED_PARALLEL
from .chunks import CHUNK_ELEMENTS, CHUNK_MULTIPLE, chunk_count
from .optimizers import add_square


@njit(**UNFUSED_INLINE)
def _lerp(start, end, w, one):
    """``torch.lerp(start, end, w)`` with ``one = 1`` in the dtype."""
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (one - w)


@njit(**UNFUSED_INLINE)
def _floored(x, floor):
    """``np.maximum(x, floor)``: NaN stays NaN."""
    return floor if x < floor else x


@njit(**UNFUSED)
def _vector_sums_chunk(param, grad, variance, sign, w, floor):
    """``v = lerp(v, g^2, w)`` with ``g = sign * grad``; the float64 sums of ``p^2`` and of
    ``u^2``, ``u = g / sqrt(max(v, floor))``."""
    one = param.dtype.type(1.0)
    param_sq, update_sq = 0.0, 0.0
    for j in range(param.size):
        g = sign * grad[j]
        v = _lerp(variance[j], g * g, w, one)
        variance[j] = v
        u = g / np.sqrt(_floored(v, floor))
        param_sq = add_square(param_sq, param[j])
        update_sq = add_square(update_sq, u)
    return param_sq, update_sq


@njit(**UNFUSED)
def _vector_apply_chunk(param, grad, variance, sign, floor, decay, decayed, scale):
    """``p = p (1 - lr lambda) - scale u``."""
    for j in range(param.size):
        g = sign * grad[j]
        u = g / np.sqrt(_floored(variance[j], floor))
        p = param[j] * decay if decayed else param[j]
        param[j] = p - scale * u


# the chunks run on Numba's threads as calls on slices: written as one loop body, the parallel
# loop was not vectorized (3e7 float32: 34 ms against 13.5 ms)
@njit(**UNFUSED_PARALLEL)
def _vector_sums(param, grad, variance, sign, w, floor, sums):
    """:func:`_vector_sums_chunk` on each of ``sums.shape[0]`` chunks, into ``sums[k]``."""
    count = sums.shape[0]
    for k in prange(count):
        start, stop = param.size * k // count, param.size * (k + 1) // count
        chunk = (param[start:stop], grad[start:stop], variance[start:stop])
        sums[k, 0], sums[k, 1] = _vector_sums_chunk(*chunk, sign, w, floor)


@njit(**UNFUSED_PARALLEL)
def _vector_apply(param, grad, variance, sign, floor, decay, decayed, scale, count):
    """:func:`_vector_apply_chunk` on each of ``count`` chunks."""
    for k in prange(count):
        start, stop = param.size * k // count, param.size * (k + 1) // count
        chunk = (param[start:stop], grad[start:stop], variance[start:stop])
        _vector_apply_chunk(*chunk, sign, floor, decay, decayed, scale)


@njit(**UNFUSED)
def _matrix_sums(param, grad, rows, columns, sign, w, eps1, row_scale, column_sums):
    """Row and column moments of ``(B, R, C)`` arrays, updated in place from the means of
    ``g^2``; ``row_scale[b] = max(mean_r(rows[b]), eps1)``; returns the float64 sum of
    ``p^2``."""
    t = param.dtype.type
    one = t(1.0)
    batches, height, width = param.shape
    param_sq = 0.0
    for b in range(batches):
        column_sums[:] = 0.0
        for r in range(height):
            row_sq = 0.0
            for c in range(width):
                g = sign * grad[b, r, c]
                row_sq = add_square(row_sq, g)
                column_sums[c] = add_square(column_sums[c], g)
                param_sq = add_square(param_sq, param[b, r, c])
            rows[b, r] = _lerp(rows[b, r], t(row_sq) / t(width), w, one)
        for c in range(width):
            columns[b, c] = _lerp(columns[b, c], t(column_sums[c]) / t(height), w, one)
        total = 0.0
        for r in range(height):
            total += np.float64(rows[b, r])
        row_scale[b] = _floored(t(total / height), t(eps1))
    return param_sq


@njit(**UNFUSED_INLINE)
def _matrix_update(grad, rows, columns, row_scale, sign, floor, b, r, c):
    estimate = rows[b, r] * columns[b, c] / row_scale[b]
    return sign * grad[b, r, c] / np.sqrt(_floored(estimate, floor))


@njit(**UNFUSED)
def _matrix_update_sq(grad, rows, columns, row_scale, sign, floor):
    """The float64 sum of ``u^2``, ``u = g / sqrt(max(R C / row_scale, floor))``."""
    batches, height, width = grad.shape
    update_sq = 0.0
    for b in range(batches):
        for r in range(height):
            for c in range(width):
                u = _matrix_update(grad, rows, columns, row_scale, sign, floor, b, r, c)
                update_sq = add_square(update_sq, u)
    return update_sq


@njit(**UNFUSED)
def _matrix_apply(param, grad, rows, columns, row_scale, sign, floor, decay, decayed, scale):
    batches, height, width = param.shape
    for b in range(batches):
        for r in range(height):
            for c in range(width):
                u = _matrix_update(grad, rows, columns, row_scale, sign, floor, b, r, c)
                p = param[b, r, c] * decay if decayed else param[b, r, c]
                param[b, r, c] = p - scale * u


def adafactor_update(
    param, grad, state, step, workspace, *, lr, beta2_decay, eps, d, weight_decay, maximize
):
    """One Adafactor step of ``param``, in place (the formula: ``optbench.algorithms``)."""
    if param.size == 0:
        return
    t = param.dtype.type
    eps1, eps2 = eps
    eps1 = float(np.finfo(param.dtype).eps) if eps1 is None else eps1
    w, floor, sign = t(step**beta2_decay), t(eps1 * eps1), t(-1.0 if maximize else 1.0)
    decay, decayed = t(1.0 - lr * weight_decay), weight_decay != 0
    if param.ndim < 2:
        p, g, v = param.reshape(-1), grad.reshape(-1), state["variance"].reshape(-1)
        count = chunk_count(p.size, CHUNK_ELEMENTS, CHUNK_MULTIPLE)
        sums = np.empty((count, 2))
        _vector_sums(p, g, v, sign, w, floor, sums)
        param_sq, update_sq = (float(x) for x in sums.sum(axis=0))
    else:
        batches = param.size // (param.shape[-2] * param.shape[-1])
        shape = (batches, *param.shape[-2:])
        p, g = param.reshape(shape), grad.reshape(shape)
        rows = state["row_var"].reshape(batches, shape[1])
        columns = state["col_var"].reshape(batches, shape[2])
        row_scale = np.empty(batches, param.dtype)
        column_sums = np.empty(shape[2])
        param_sq = _matrix_sums(p, g, rows, columns, sign, w, eps1, row_scale, column_sums)
        update_sq = _matrix_update_sq(g, rows, columns, row_scale, sign, floor)
    rho = min(lr, 1.0 / step**0.5)
    alpha = max(eps2, math.sqrt(param_sq) / param.size**0.5) * rho
    denom = max(1.0, math.sqrt(update_sq) / (param.size**0.5 * d))
    scale = t(alpha / denom)
    if param.ndim < 2:
        _vector_apply(p, g, v, sign, floor, decay, decayed, scale, count)
    else:
        _matrix_apply(p, g, rows, columns, row_scale, sign, floor, decay, decayed, scale)
