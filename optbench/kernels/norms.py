"""Batch, layer and RMS normalization, forward and backward, and per-column data statistics.

Conventions
-----------
* Inputs are C-contiguous float32 or float64 arrays viewed by the caller as rows: LayerNorm and
  RMSNorm take ``x`` as ``(rows, features)``; BatchNorm takes ``(N, C)`` (the ``*_2d`` kernels)
  or ``(N, C, L)`` with ``L = H * W > 1`` (the ``*_nd`` kernels). Parameters (weight, bias,
  running statistics) have the input's dtype; absent ones are passed as ones and zeros.
* Every statistic (means, variances, the sums of the backward passes) is accumulated in
  float64 whatever the input dtype, and saved in float64: a float32 row with a mean of 1e6 and
  a standard deviation of 1 is normalized to float32 accuracy. Element-wise arithmetic on a
  float32 input also runs in float64 and is rounded once, at the store, except the forward
  outputs of LayerNorm and BatchNorm: ``x_hat = (x - mean) * rstd`` is computed in float64 and
  rounded to the input's dtype, then ``x_hat * weight + bias`` is one fused multiply-add in
  that dtype (within two ulps; LayerNorm's float64 version took 2.6x as long, (256, 1024)
  float32). ``eps`` and ``momentum`` are used in float64 as well.
* Variances never come from ``E[x^2] - E[x]^2``: LayerNorm takes two passes over a row that
  sits in cache; BatchNorm takes one pass over memory, with Welford's update down the columns
  of a block of rows (``(N, C)``) or the two-pass moments of each contiguous run (``(N, C, L)``,
  the run is in cache for its second pass), merged with Chan's formula.
* LayerNorm's row reductions are ``_config.REDUCTION`` functions: LLVM reassociates the sum
  to vectorize it, so the result is fixed per machine (not across SIMD widths). Other
  reductions along a contiguous run keep ``LANES`` partial sums, each over a fixed residue
  class of indices, added in a fixed tree at the end: the loop vectorizes without
  reassociating floating-point sums, and the result depends on the run's length only.
* Reductions across rows (BatchNorm statistics and sums, dweight and dbias) cut the rows into
  blocks fixed by the shape alone, one thread per block, and combine the blocks' float64
  partials in block order. Results are therefore bitwise identical whatever the number of
  threads, and between the ``*_serial`` and ``*_parallel`` kernel of a pair (the parallel
  kernels only spread the blocks over threads).
* Two-product sums ``a*b + c*d`` are avoided where results are saved: LLVM may fuse either
  product into a multiply-add, and differently in the serial and the parallel kernel.
"""

import numpy as np
from numba import njit, prange

from ._config import INLINE, PARALLEL, REDUCTION, SERIAL

# Partial sums per run reduction: a power of two; 64 float64 lanes fill eight AVX-512 registers,
# enough independent additions to hide their latency (measured: 16 or 32 lanes are 2-3x slower,
# 128 no faster).
LANES = 64
# Rows (samples for BatchNorm) are cut into at most MAX_ROW_BLOCKS blocks of at least
# MIN_BLOCK_ELEMENTS elements; a block is the unit of work of one thread, and each block keeps
# one float64 partial row per cross-row reduction (BatchNorm statistics, parameter gradients),
# zeroed, filled and summed on every call: with 4096-element blocks a (256, 1024) LayerNorm
# backward spent a third more time than with 32768-element ones (serial CPU time, float32).
MAX_ROW_BLOCKS = 16
MIN_BLOCK_ELEMENTS = 1 << 15


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def lanes_total(lanes):
    """Sum of the ``LANES`` partial sums, pairwise in a fixed order."""
    width = LANES // 2
    while width > 0:
        for k in range(width):
            lanes[k] += lanes[k + width]
        width //= 2
    return lanes[0]


@njit(**INLINE)
def _run_sum(run, lanes):
    """``sum(run)`` in float64; element ``j`` goes to lane ``j % LANES``."""
    lanes[:] = 0.0
    for start in range(0, run.size, LANES):
        chunk = run[start : start + LANES]
        for k in range(chunk.size):
            lanes[k] += chunk[k]
    return lanes_total(lanes)


@njit(**INLINE)
def _run_squared_deviations(run, center, lanes):
    """``sum((run - center)**2)`` in float64, in lanes as :func:`_run_sum`."""
    lanes[:] = 0.0
    for start in range(0, run.size, LANES):
        chunk = run[start : start + LANES]
        for k in range(chunk.size):
            deviation = chunk[k] - center
            lanes[k] += deviation * deviation
    return lanes_total(lanes)


@njit(**INLINE)
def _row_blocks(x):
    """Fixed blocking of the rows (axis 0) of ``x``: (number of blocks, rows per block)."""
    n_rows = x.shape[0]
    row_size = max(x.size // max(n_rows, 1), 1)
    rows_per_block = max(-(-n_rows // MAX_ROW_BLOCKS), -(-MIN_BLOCK_ELEMENTS // row_size))
    return -(-n_rows // rows_per_block), rows_per_block


@njit(**INLINE)
def _block_bounds(block, rows_per_block, n_rows):
    first = block * rows_per_block
    return first, min(first + rows_per_block, n_rows)


@njit(**INLINE)
def _sum_blocks(partials, out):
    """``out[j] = sum_b partials[b, j]``, blocks added in order, rounded to ``out``'s dtype."""
    t = out.dtype.type
    total = np.zeros(out.size)
    for block in range(partials.shape[0]):
        row = partials[block]
        for j in range(total.size):
            total[j] += row[j]
    for j in range(total.size):
        out[j] = t(total[j])


# --------------------------------------------------------------------------------------------
# LayerNorm over the last axis of (rows, features)
# --------------------------------------------------------------------------------------------
@njit(**REDUCTION)
def _row_sum(row):
    """``sum(row)`` in float64, vectorized (see ``_config.REDUCTION``)."""
    total = 0.0
    for j in range(row.size):
        total += row[j]
    return total


@njit(**REDUCTION)
def _row_squared_deviations(row, center):
    """``sum((row - center)**2)`` in float64, vectorized (see ``_config.REDUCTION``)."""
    total = 0.0
    for j in range(row.size):
        deviation = row[j] - center
        total += deviation * deviation
    return total


@njit(**REDUCTION)
def _row_gradient_sums(dy_row, x_row, weight, center):
    """``(sum(g), sum(g * (x - center)))`` with ``g = dy * weight``, in float64, vectorized."""
    total_g = 0.0
    total_gx = 0.0
    for j in range(x_row.size):
        g = dy_row[j] * np.float64(weight[j])
        total_g += g
        total_gx += g * (x_row[j] - center)
    return total_g, total_gx


@njit(**INLINE)
def _layer_norm_rows(x, weight, bias, eps, y, mean, rstd, first, last):
    t = y.dtype.type
    n = x.shape[1]
    for i in range(first, last):
        row, out = x[i], y[i]
        mu = _row_sum(row) / n
        r = 1.0 / np.sqrt(_row_squared_deviations(row, mu) / n + eps)
        mean[i] = mu
        rstd[i] = r
        for j in range(n):
            out[j] = t((row[j] - mu) * r) * weight[j] + bias[j]


@njit(**SERIAL)
def layer_norm_forward_serial(x, weight, bias, eps, y, mean, rstd):
    """LayerNorm of each row of ``x``, written to ``y``; saves the row statistics.

    mean_i = sum_j x_ij / D,   var_i = sum_j (x_ij - mean_i)^2 / D   (biased, two passes)
    rstd_i = 1 / sqrt(var_i + eps),   y_ij = (x_ij - mean_i) * rstd_i * weight_j + bias_j

    x, y : (rows, D), float32 or float64.  weight, bias : (D,), x's dtype.
    eps : float.  mean, rstd : (rows,) float64, written.
    """
    _layer_norm_rows(x, weight, bias, eps, y, mean, rstd, 0, x.shape[0])


@njit(**PARALLEL)
def layer_norm_forward_parallel(x, weight, bias, eps, y, mean, rstd):
    """:func:`layer_norm_forward_serial` with blocks of rows spread over threads."""
    n_blocks, rows_per_block = _row_blocks(x)
    for block in prange(n_blocks):
        first, last = _block_bounds(block, rows_per_block, x.shape[0])
        _layer_norm_rows(x, weight, bias, eps, y, mean, rstd, first, last)


@njit(**INLINE)
def _layer_norm_backward_rows(
    dy, x, weight, mean, rstd, dx, partial_dweight, partial_dbias, param_grads, first, last
):
    t = dx.dtype.type
    n = x.shape[1]
    for i in range(first, last):
        mu, r = mean[i], rstd[i]
        x_row, dy_row, dx_row = x[i], dy[i], dx[i]
        sum_g, sum_gx = _row_gradient_sums(dy_row, x_row, weight, mu)
        mean_g = sum_g / n
        mean_gx = sum_gx * r / n
        if param_grads:  # one pass for dx and the parameter gradients' partial sums
            for j in range(n):
                x_hat = (x_row[j] - mu) * r
                g = np.float64(dy_row[j])
                dx_row[j] = t(r * (g * np.float64(weight[j]) - mean_g - x_hat * mean_gx))
                partial_dweight[j] += g * x_hat
                partial_dbias[j] += g
        else:
            for j in range(n):
                x_hat = (x_row[j] - mu) * r
                dx_row[j] = t(r * (dy_row[j] * np.float64(weight[j]) - mean_g - x_hat * mean_gx))


@njit(**INLINE)
def _layer_norm_backward_block(dy, x, weight, mean, rstd, dx, partials, param_grads, block):
    _, rows_per_block = _row_blocks(x)
    first, last = _block_bounds(block, rows_per_block, x.shape[0])
    partial_dweight, partial_dbias = partials[0, block], partials[1, block]
    _layer_norm_backward_rows(
        dy, x, weight, mean, rstd, dx, partial_dweight, partial_dbias, param_grads, first, last
    )


@njit(**SERIAL)
def layer_norm_backward_serial(dy, x, weight, mean, rstd, param_grads, dx, dweight, dbias):
    """Gradients of LayerNorm (see :func:`layer_norm_forward_serial`), two passes per row.

    x_hat = (x - mean) * rstd,   g = dy * weight
    dx_ij = rstd_i * (g_ij - mean_j(g_ij) - x_hat_ij * mean_j(g_ij * x_hat_ij))
    dweight_j = sum_i dy_ij * x_hat_ij,   dbias_j = sum_i dy_ij   (only if ``param_grads``)

    dy, x, dx : (rows, D).  weight, dweight, dbias : (D,).  mean, rstd : (rows,) float64.
    """
    n_blocks, _ = _row_blocks(x)
    partials = np.zeros((2, n_blocks, x.shape[1] if param_grads else 0))
    for block in range(n_blocks):
        _layer_norm_backward_block(dy, x, weight, mean, rstd, dx, partials, param_grads, block)
    if param_grads:
        _sum_blocks(partials[0], dweight)
        _sum_blocks(partials[1], dbias)


@njit(**PARALLEL)
def layer_norm_backward_parallel(dy, x, weight, mean, rstd, param_grads, dx, dweight, dbias):
    """:func:`layer_norm_backward_serial` with blocks of rows spread over threads."""
    n_blocks, _ = _row_blocks(x)
    partials = np.zeros((2, n_blocks, x.shape[1] if param_grads else 0))
    for block in prange(n_blocks):
        _layer_norm_backward_block(dy, x, weight, mean, rstd, dx, partials, param_grads, block)
    if param_grads:
        _sum_blocks(partials[0], dweight)
        _sum_blocks(partials[1], dbias)


# --------------------------------------------------------------------------------------------
# RMSNorm over the last axis of (rows, features)
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _rms_norm_rows(x, weight, eps, y, rrms, first, last):
    t = y.dtype.type
    n = x.shape[1]
    lanes = np.empty(LANES, np.float64)
    for i in range(first, last):
        row, out = x[i], y[i]
        r = 1.0 / np.sqrt(_run_squared_deviations(row, 0.0, lanes) / n + eps)
        rrms[i] = r
        for j in range(n):
            out[j] = t(row[j] * r * weight[j])


@njit(**SERIAL)
def rms_norm_forward_serial(x, weight, eps, y, rrms):
    """RMSNorm of each row of ``x``, written to ``y``; saves the reciprocal RMS.

    rrms_i = 1 / sqrt(sum_j x_ij^2 / D + eps),   y_ij = x_ij * rrms_i * weight_j

    x, y : (rows, D), float32 or float64.  weight : (D,).  rrms : (rows,) float64, written.
    """
    _rms_norm_rows(x, weight, eps, y, rrms, 0, x.shape[0])


@njit(**PARALLEL)
def rms_norm_forward_parallel(x, weight, eps, y, rrms):
    """:func:`rms_norm_forward_serial` with blocks of rows spread over threads."""
    n_blocks, rows_per_block = _row_blocks(x)
    for block in prange(n_blocks):
        first, last = _block_bounds(block, rows_per_block, x.shape[0])
        _rms_norm_rows(x, weight, eps, y, rrms, first, last)


@njit(**INLINE)
def _rms_norm_backward_block(dy, x, weight, rrms, dx, partials, param_grads, block):
    t = dx.dtype.type
    _, rows_per_block = _row_blocks(x)
    first, last = _block_bounds(block, rows_per_block, x.shape[0])
    partial_dweight = partials[block]
    n = x.shape[1]
    lanes = np.empty(LANES, np.float64)
    for i in range(first, last):
        r = rrms[i]
        x_row, dy_row, dx_row = x[i], dy[i], dx[i]
        lanes[:] = 0.0
        for start in range(0, n, LANES):
            x_chunk = x_row[start : start + LANES]
            dy_chunk = dy_row[start : start + LANES]
            weight_chunk = weight[start : start + LANES]
            for k in range(x_chunk.size):
                lanes[k] += dy_chunk[k] * np.float64(weight_chunk[k]) * x_chunk[k]
        coefficient = r * r * lanes_total(lanes) / n
        for j in range(n):
            dx_row[j] = t(r * (dy_row[j] * np.float64(weight[j]) - x_row[j] * coefficient))
            if param_grads:
                partial_dweight[j] += dy_row[j] * (x_row[j] * r)


@njit(**SERIAL)
def rms_norm_backward_serial(dy, x, weight, rrms, param_grads, dx, dweight):
    """Gradients of RMSNorm (see :func:`rms_norm_forward_serial`), two passes per row.

    g = dy * weight
    dx_ij = rrms_i * (g_ij - x_ij * rrms_i^2 * sum_j(g_ij * x_ij) / D)
    dweight_j = sum_i dy_ij * x_ij * rrms_i   (only if ``param_grads``)

    dy, x, dx : (rows, D).  weight, dweight : (D,).  rrms : (rows,) float64.
    """
    n_blocks, _ = _row_blocks(x)
    partials = np.zeros((n_blocks, x.shape[1] if param_grads else 0))
    for block in range(n_blocks):
        _rms_norm_backward_block(dy, x, weight, rrms, dx, partials, param_grads, block)
    if param_grads:
        _sum_blocks(partials, dweight)


@njit(**PARALLEL)
def rms_norm_backward_parallel(dy, x, weight, rrms, param_grads, dx, dweight):
    """:func:`rms_norm_backward_serial` with blocks of rows spread over threads."""
    n_blocks, _ = _row_blocks(x)
    partials = np.zeros((n_blocks, x.shape[1] if param_grads else 0))
    for block in prange(n_blocks):
        _rms_norm_backward_block(dy, x, weight, rrms, dx, partials, param_grads, block)
    if param_grads:
        _sum_blocks(partials, dweight)


# --------------------------------------------------------------------------------------------
# BatchNorm: statistics per channel of x (N, C) (the *_2d kernels) or (N, C, L) (the *_nd ones)
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _chan(count, mean, m2, other_count, other_mean, other_m2):
    """Mean and sum of squared deviations of the union of two sets of values (Chan et al.).

    delta = other_mean - mean,  mean += delta n_o / (n + n_o),
    m2 += other_m2 + delta^2 n n_o / (n + n_o)
    """
    total = count + other_count
    delta = other_mean - mean
    return (
        mean + delta * (other_count / total),
        m2 + other_m2 + delta * delta * (count * other_count / total),
    )


@njit(**INLINE)
def _block_moments_2d(x, first, last, mean, m2):
    """Mean and m2 of each column of rows ``first:last`` of ``x`` (N, C), Welford's way.

    mean_i = mean_{i-1} + (x_i - mean_{i-1}) / i
    m2_i = m2_{i-1} + (x_i - mean_{i-1}) (x_i - mean_i)
    """
    mean[:] = 0.0
    m2[:] = 0.0
    for i in range(first, last):
        row = x[i]
        inverse_count = 1.0 / (i - first + 1)
        for c in range(row.size):
            value = np.float64(row[c])
            delta = value - mean[c]
            mean[c] += delta * inverse_count
            m2[c] += delta * (value - mean[c])


@njit(**INLINE)
def _block_moments_nd(x, first, last, mean, m2):
    """Mean and m2 of each channel of samples ``first:last`` of ``x`` (N, C, L).

    Each run ``x[n, c]`` gets its two-pass moments (the run is in cache for the second pass),
    merged into the channel's moments with :func:`_chan`.
    """
    run_length = x.shape[2]
    lanes = np.empty(LANES, np.float64)
    mean[:] = 0.0
    m2[:] = 0.0
    for n in range(first, last):
        count = np.float64((n - first) * run_length)
        for c in range(x.shape[1]):
            run = x[n, c]
            run_mean = _run_sum(run, lanes) / run_length
            run_m2 = _run_squared_deviations(run, run_mean, lanes)
            mean[c], m2[c] = _chan(count, mean[c], m2[c], run_length, run_mean, run_m2)


@njit(**INLINE)
def _running_update(running, c, batch_value, momentum):
    """``running[c] = (1 - momentum) * running[c] + momentum * batch_value``.

    Computed as ``running + momentum * (batch_value - running)``: with two products, LLVM may
    fuse either into a multiply-add, and the serial and parallel kernels would round apart.
    """
    value = np.float64(running[c])
    running[c] = running.dtype.type(value + momentum * (batch_value - value))


@njit(**INLINE)
def _batch_statistics(partials, x, eps, running_mean, running_var, momentum, mean, invstd):
    """Merge the blocks' moments in block order; write mean and invstd; update running stats.

    partials : (2, blocks, C) float64, each block's mean and m2.
    var = m2 / count (biased) normalizes; m2 / (count - 1) (unbiased) enters running_var.
    """
    _, rows_per_block = _row_blocks(x)
    run_length = x.size // max(x.shape[0] * x.shape[1], 1)  # 1 for (N, C), L for (N, C, L)
    m2 = np.zeros(mean.size)
    mean[:] = 0.0
    count = 0.0
    for block in range(partials.shape[1]):
        first, last = _block_bounds(block, rows_per_block, x.shape[0])
        block_count = np.float64((last - first) * run_length)
        block_mean, block_m2 = partials[0, block], partials[1, block]
        for c in range(mean.size):
            mean[c], m2[c] = _chan(count, mean[c], m2[c], block_count, block_mean[c], block_m2[c])
        count += block_count
    for c in range(mean.size):
        invstd[c] = 1.0 / np.sqrt(m2[c] / count + eps)
        if running_mean.size:
            _running_update(running_mean, c, mean[c], momentum)
            _running_update(running_var, c, m2[c] / (count - 1.0), momentum)


@njit(**INLINE)
def _running_statistics(running_mean, running_var, eps, mean, invstd):
    for c in range(mean.size):
        mean[c] = running_mean[c]
        invstd[c] = 1.0 / np.sqrt(running_var[c] + eps)


@njit(**INLINE)
def _normalize_2d(x, weight, bias, mean, invstd, y, first, last):
    t = y.dtype.type
    for i in range(first, last):
        x_row, y_row = x[i], y[i]
        for c in range(x_row.size):
            y_row[c] = t((x_row[c] - mean[c]) * invstd[c]) * weight[c] + bias[c]


@njit(**INLINE)
def _normalize_nd(x, weight, bias, mean, invstd, y, first, last):
    t = y.dtype.type
    for n in range(first, last):
        for c in range(x.shape[1]):
            mu, r = mean[c], invstd[c]
            w, b = weight[c], bias[c]
            run, out = x[n, c], y[n, c]
            for j in range(run.size):
                out[j] = t((run[j] - mu) * r) * w + b


@njit(**SERIAL)
def batch_norm_2d_forward_serial(
    x, weight, bias, running_mean, running_var, training, momentum, eps, y, mean, invstd
):
    """BatchNorm of ``x`` (N, C) per column, written to ``y``; saves the statistics used.

    training: mean_c = sum_i x_ic / N,  var_c = sum_i (x_ic - mean_c)^2 / N  (Welford per
              block of rows, blocks merged with Chan's formula);
              running_mean_c = (1 - momentum) running_mean_c + momentum mean_c,
              running_var_c = (1 - momentum) running_var_c + momentum var_c N / (N - 1)
              (unbiased), unless ``running_mean`` is empty.
    eval:     mean_c = running_mean_c,  var_c = running_var_c.
    invstd_c = 1 / sqrt(var_c + eps),   y_ic = (x_ic - mean_c) invstd_c weight_c + bias_c

    x, y : (N, C), float32 or float64.  weight, bias, running_mean, running_var : (C,) of x's
    dtype (running statistics updated in place; empty arrays when absent, training only).
    momentum, eps : float.  mean, invstd : (C,) float64, written.  Training needs N >= 2.
    """
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    if training:
        partials = np.empty((2, n_blocks, x.shape[1]))
        for block in range(n_blocks):
            first, last = _block_bounds(block, rows_per_block, n_samples)
            _block_moments_2d(x, first, last, partials[0, block], partials[1, block])
        _batch_statistics(partials, x, eps, running_mean, running_var, momentum, mean, invstd)
    else:
        _running_statistics(running_mean, running_var, eps, mean, invstd)
    for block in range(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _normalize_2d(x, weight, bias, mean, invstd, y, first, last)


@njit(**PARALLEL)
def batch_norm_2d_forward_parallel(
    x, weight, bias, running_mean, running_var, training, momentum, eps, y, mean, invstd
):
    """:func:`batch_norm_2d_forward_serial` with blocks of rows spread over threads."""
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    if training:
        partials = np.empty((2, n_blocks, x.shape[1]))
        for block in prange(n_blocks):
            first, last = _block_bounds(block, rows_per_block, n_samples)
            _block_moments_2d(x, first, last, partials[0, block], partials[1, block])
        _batch_statistics(partials, x, eps, running_mean, running_var, momentum, mean, invstd)
    else:
        _running_statistics(running_mean, running_var, eps, mean, invstd)
    for block in prange(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _normalize_2d(x, weight, bias, mean, invstd, y, first, last)


@njit(**SERIAL)
def batch_norm_nd_forward_serial(
    x, weight, bias, running_mean, running_var, training, momentum, eps, y, mean, invstd
):
    """BatchNorm of ``x`` (N, C, L) per channel: :func:`batch_norm_2d_forward_serial` with
    the statistics of channel c taken over its N * L values.
    """
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    if training:
        partials = np.empty((2, n_blocks, x.shape[1]))
        for block in range(n_blocks):
            first, last = _block_bounds(block, rows_per_block, n_samples)
            _block_moments_nd(x, first, last, partials[0, block], partials[1, block])
        _batch_statistics(partials, x, eps, running_mean, running_var, momentum, mean, invstd)
    else:
        _running_statistics(running_mean, running_var, eps, mean, invstd)
    for block in range(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _normalize_nd(x, weight, bias, mean, invstd, y, first, last)


@njit(**PARALLEL)
def batch_norm_nd_forward_parallel(
    x, weight, bias, running_mean, running_var, training, momentum, eps, y, mean, invstd
):
    """:func:`batch_norm_nd_forward_serial` with blocks of samples spread over threads."""
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    if training:
        partials = np.empty((2, n_blocks, x.shape[1]))
        for block in prange(n_blocks):
            first, last = _block_bounds(block, rows_per_block, n_samples)
            _block_moments_nd(x, first, last, partials[0, block], partials[1, block])
        _batch_statistics(partials, x, eps, running_mean, running_var, momentum, mean, invstd)
    else:
        _running_statistics(running_mean, running_var, eps, mean, invstd)
    for block in prange(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _normalize_nd(x, weight, bias, mean, invstd, y, first, last)


@njit(**INLINE)
def _block_sums_2d(dy, x, mean, invstd, first, last, sum_dy, sum_dy_x_hat):
    """Column sums of dy and dy * x_hat over rows ``first:last`` of (N, C)."""
    sum_dy[:] = 0.0
    sum_dy_x_hat[:] = 0.0
    for i in range(first, last):
        x_row, dy_row = x[i], dy[i]
        for c in range(x_row.size):
            sum_dy[c] += dy_row[c]
            sum_dy_x_hat[c] += dy_row[c] * (x_row[c] - mean[c])
    for c in range(sum_dy_x_hat.size):  # invstd once per column, not per element
        sum_dy_x_hat[c] *= invstd[c]


@njit(**INLINE)
def _block_sums_nd(dy, x, mean, invstd, first, last, sum_dy, sum_dy_x_hat):
    """Channel sums of dy and dy * x_hat over samples ``first:last`` of (N, C, L)."""
    lanes_dy = np.empty(LANES, np.float64)
    lanes_dy_x_hat = np.empty(LANES, np.float64)
    sum_dy[:] = 0.0
    sum_dy_x_hat[:] = 0.0
    for n in range(first, last):
        for c in range(x.shape[1]):
            mu, r = mean[c], invstd[c]
            x_run, dy_run = x[n, c], dy[n, c]
            lanes_dy[:] = 0.0
            lanes_dy_x_hat[:] = 0.0
            for start in range(0, x_run.size, LANES):
                x_chunk = x_run[start : start + LANES]
                dy_chunk = dy_run[start : start + LANES]
                for k in range(x_chunk.size):
                    lanes_dy[k] += dy_chunk[k]
                    lanes_dy_x_hat[k] += dy_chunk[k] * ((x_chunk[k] - mu) * r)
            sum_dy[c] += lanes_total(lanes_dy)
            sum_dy_x_hat[c] += lanes_total(lanes_dy_x_hat)


@njit(**INLINE)
def _backward_coefficients(partials, weight, invstd, training, param_grads, count, dweight, dbias):
    """Add the blocks' sums in block order; write dweight, dbias; return dx's coefficients.

    Returns (4, C) float64: weight * invstd; the means of dy and dy * x_hat over the channel
    in training mode (through which the batch statistics pass the gradient), zeros in eval
    mode; and ``slope = invstd * mean(dy * x_hat)``, with which the (N, C) kernels compute
    ``x_hat * mean(dy * x_hat)`` as ``(x - mean) * slope``: four float64 coefficients loaded
    per element, not five (and one product per element, which LLVM fuses the same way in
    either kernel).
    """
    t = dweight.dtype.type
    coefficients = np.zeros((4, invstd.size))
    scale, mean_dy, mean_dy_x_hat = coefficients[0], coefficients[1], coefficients[2]
    slope = coefficients[3]
    for block in range(partials.shape[1]):
        block_dy, block_dy_x_hat = partials[0, block], partials[1, block]
        for c in range(invstd.size):
            mean_dy[c] += block_dy[c]
            mean_dy_x_hat[c] += block_dy_x_hat[c]
    for c in range(invstd.size):
        if param_grads:
            dweight[c] = t(mean_dy_x_hat[c])
            dbias[c] = t(mean_dy[c])
        scale[c] = invstd[c] * weight[c]
        if training:
            mean_dy[c] /= count
            mean_dy_x_hat[c] /= count
        else:
            mean_dy[c] = 0.0
            mean_dy_x_hat[c] = 0.0
        slope[c] = invstd[c] * mean_dy_x_hat[c]
    return coefficients


@njit(**INLINE)
def _dx_2d(dy, x, mean, coefficients, dx, first, last):
    t = dx.dtype.type
    scale, mean_dy, slope = coefficients[0], coefficients[1], coefficients[3]
    for i in range(first, last):
        x_row, dy_row, dx_row = x[i], dy[i], dx[i]
        for c in range(x_row.size):
            dx_row[c] = t((dy_row[c] - mean_dy[c] - (x_row[c] - mean[c]) * slope[c]) * scale[c])


@njit(**INLINE)
def _dx_nd(dy, x, mean, invstd, coefficients, dx, first, last):
    t = dx.dtype.type
    for n in range(first, last):
        for c in range(x.shape[1]):
            mu, r = mean[c], invstd[c]
            scale, mean_dy, mean_dy_x_hat = (
                coefficients[0, c],
                coefficients[1, c],
                coefficients[2, c],
            )
            x_run, dy_run, dx_run = x[n, c], dy[n, c], dx[n, c]
            for j in range(x_run.size):
                x_hat = (x_run[j] - mu) * r
                dx_run[j] = t(scale * (dy_run[j] - mean_dy - x_hat * mean_dy_x_hat))


@njit(**SERIAL)
def batch_norm_2d_backward_serial(
    dy, x, weight, mean, invstd, training, param_grads, dx, dweight, dbias
):
    """Gradients of BatchNorm of (N, C) (see :func:`batch_norm_2d_forward_serial`).

    x_hat = (x - mean) invstd;  dbias_c = sum_i dy_ic;  dweight_c = sum_i dy_ic x_hat_ic
    training: dx_ic = weight_c invstd_c (dy_ic - dbias_c / N - x_hat_ic dweight_c / N)
    eval:     dx_ic = weight_c invstd_c dy_ic
    One pass for the sums (skipped in eval mode without ``param_grads``), one for dx.

    dy, x, dx : (N, C).  weight, dweight, dbias : (C,).  mean, invstd : (C,) float64.
    """
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    partials = np.empty((2, n_blocks if training or param_grads else 0, x.shape[1]))
    for block in range(partials.shape[1]):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _block_sums_2d(dy, x, mean, invstd, first, last, partials[0, block], partials[1, block])
    coefficients = _backward_coefficients(
        partials, weight, invstd, training, param_grads, n_samples, dweight, dbias
    )
    for block in range(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _dx_2d(dy, x, mean, coefficients, dx, first, last)


@njit(**PARALLEL)
def batch_norm_2d_backward_parallel(
    dy, x, weight, mean, invstd, training, param_grads, dx, dweight, dbias
):
    """:func:`batch_norm_2d_backward_serial` with blocks of rows spread over threads."""
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    partials = np.empty((2, n_blocks if training or param_grads else 0, x.shape[1]))
    for block in prange(partials.shape[1]):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _block_sums_2d(dy, x, mean, invstd, first, last, partials[0, block], partials[1, block])
    coefficients = _backward_coefficients(
        partials, weight, invstd, training, param_grads, n_samples, dweight, dbias
    )
    for block in prange(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _dx_2d(dy, x, mean, coefficients, dx, first, last)


@njit(**SERIAL)
def batch_norm_nd_backward_serial(
    dy, x, weight, mean, invstd, training, param_grads, dx, dweight, dbias
):
    """Gradients of BatchNorm of (N, C, L): :func:`batch_norm_2d_backward_serial` with the
    sums of channel c taken over its N * L values.
    """
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    partials = np.empty((2, n_blocks if training or param_grads else 0, x.shape[1]))
    for block in range(partials.shape[1]):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _block_sums_nd(dy, x, mean, invstd, first, last, partials[0, block], partials[1, block])
    coefficients = _backward_coefficients(
        partials, weight, invstd, training, param_grads, n_samples * x.shape[2], dweight, dbias
    )
    for block in range(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _dx_nd(dy, x, mean, invstd, coefficients, dx, first, last)


@njit(**PARALLEL)
def batch_norm_nd_backward_parallel(
    dy, x, weight, mean, invstd, training, param_grads, dx, dweight, dbias
):
    """:func:`batch_norm_nd_backward_serial` with blocks of samples spread over threads."""
    n_samples = x.shape[0]
    n_blocks, rows_per_block = _row_blocks(x)
    partials = np.empty((2, n_blocks if training or param_grads else 0, x.shape[1]))
    for block in prange(partials.shape[1]):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _block_sums_nd(dy, x, mean, invstd, first, last, partials[0, block], partials[1, block])
    coefficients = _backward_coefficients(
        partials, weight, invstd, training, param_grads, n_samples * x.shape[2], dweight, dbias
    )
    for block in prange(n_blocks):
        first, last = _block_bounds(block, rows_per_block, n_samples)
        _dx_nd(dy, x, mean, invstd, coefficients, dx, first, last)


# --------------------------------------------------------------------------------------------
# data set standardization (z-score) per column of (samples, features)
# --------------------------------------------------------------------------------------------
@njit(**SERIAL)
def column_moments(x, mean, variance):
    """Mean and biased variance of each column of ``x`` (samples, features), Welford's way.

    x : float32 or float64.  mean, variance : (features,) float64, written.
    """
    _block_moments_2d(x, 0, x.shape[0], mean, variance)
    for c in range(variance.size):
        variance[c] /= x.shape[0]


@njit(**SERIAL)
def standardize_columns(x, mean, scale, y):
    """``y_ic = (x_ic - mean_c) / scale_c`` in float64, rounded to ``y``'s dtype.

    x, y : (samples, features), float32 or float64.  mean, scale : (features,) float64.
    """
    t = y.dtype.type
    for i in range(x.shape[0]):
        x_row, y_row = x[i], y[i]
        for c in range(x_row.size):
            y_row[c] = t((x_row[c] - mean[c]) / scale[c])
