"""Loss kernels: softmax cross-entropy and mean squared error, forward and backward.

Losses are accumulated in float64 in a fixed order whatever the input dtype; gradients are
computed in float64 and rounded to the input dtype at the store.
"""

import numpy as np
from numba import njit

from ._config import SERIAL
from .norms import LANES, lanes_total


@njit(**SERIAL)
def cross_entropy_forward(logits, targets, row_max, exp_sum):
    """Softmax cross-entropy of each row; returns (first bad row or -1, sum of the losses).

    m_i = max_k z_ik,  s_i = sum_k exp(z_ik - m_i)  (no overflow for any finite logits)
    loss_i = m_i + log(s_i) - z_{i, t_i}

    logits : (N, K) float32 or float64.  targets : (N,) int64, each in [0, K); if one is not,
    nothing is computed and its row is returned first.  row_max, exp_sum : (N,) float64,
    written for the backward pass.
    """
    n_classes = logits.shape[1]
    for i in range(targets.size):
        if targets[i] < 0 or targets[i] >= n_classes:
            return i, 0.0
    total = 0.0
    for i in range(logits.shape[0]):
        row = logits[i]
        largest = np.float64(row[0])
        for k in range(1, n_classes):
            if row[k] > largest:
                largest = np.float64(row[k])
        total_exp = 0.0
        for k in range(n_classes):
            total_exp += np.exp(row[k] - largest)
        row_max[i] = largest
        exp_sum[i] = total_exp
        total += (largest - row[targets[i]]) + np.log(total_exp)
    return -1, total


@njit(**SERIAL)
def cross_entropy_backward(logits, targets, row_max, exp_sum, scale, dlogits):
    """``dlogits_ik = scale * (softmax_ik - [k == t_i])``, ``softmax_ik = exp(z_ik - m_i) / s_i``.

    ``z - m`` is exact for the logits near the maximum, which carry the probability mass.
    scale : float, ``dloss / N`` for the mean reduction, ``dloss`` for the sum.
    """
    t = dlogits.dtype.type
    for i in range(logits.shape[0]):
        row, out = logits[i], dlogits[i]
        largest, total_exp = row_max[i], exp_sum[i]
        for k in range(row.size):
            out[k] = t(scale * (np.exp(row[k] - largest) / total_exp))
        target = targets[i]
        out[target] = t(scale * (np.exp(row[target] - largest) / total_exp - 1.0))


@njit(**SERIAL)
def squared_error_sum(prediction, target):
    """``sum_j (prediction_j - target_j)^2`` in float64 over flat arrays, in fixed lanes."""
    lanes = np.zeros(LANES)
    for start in range(0, prediction.size, LANES):
        prediction_chunk = prediction[start : start + LANES]
        target_chunk = target[start : start + LANES]
        for k in range(prediction_chunk.size):
            difference = np.float64(prediction_chunk[k]) - target_chunk[k]
            lanes[k] += difference * difference
    return lanes_total(lanes)


@njit(**SERIAL)
def squared_error_backward(prediction, target, scale, dprediction):
    """``dprediction_j = 2 * scale * (prediction_j - target_j)`` over flat arrays.

    scale : float, ``dloss / n`` for the mean reduction, ``dloss`` for the sum.
    """
    t = dprediction.dtype.type
    twice_scale = 2.0 * scale
    for j in range(prediction.size):
        dprediction[j] = t(twice_scale * (np.float64(prediction[j]) - target[j]))
