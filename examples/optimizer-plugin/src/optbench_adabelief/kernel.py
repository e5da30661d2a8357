"""The fused AdaBelief update of one contiguous run of one array (optbench's chunk convention).

``hp`` holds, in order: lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay (the spec's
``kernel_names``); ``state`` rows: exp_avg, exp_avg_var.
"""

import numpy as np
from numba import njit

from optbench.kernels.optimizers import CHUNK_OPTIONS, gradient, gradient_options


@njit(**CHUNK_OPTIONS)
def adabelief_chunk(param, grad, state, column, common, hp, step):
    """AdaBelief (Zhuang et al. 2020, algorithm 1).

    g = gradient (clipping, L1, maximize: optbench's common transform)
    decoupled: p = p * (1 - lr * weight_decay);  otherwise g += weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * (g - m)^2 + eps
    p = p - (lr / (1 - beta1**t)) * m / (sqrt(s / (1 - beta2**t)) + eps)
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    decoupled = hp[5] != 0.0
    factor, clip, l1 = gradient_options(common, t)
    decay = t(1.0 - lr * weight_decay) if decoupled else t(1.0)
    l2 = t(0.0) if decoupled else t(weight_decay)
    step_size = t(lr / (1.0 - beta1**step))
    bias_correction2 = t(1.0 - beta2**step)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    eps = t(eps)
    exp_avg = state[0, column : column + param.size]
    exp_avg_var = state[1, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        p = param[j] * decay
        if l2 != 0:
            g = g + l2 * p
        m = b1 * exp_avg[j] + one_minus_b1 * g
        d = g - m
        s = b2 * exp_avg_var[j] + one_minus_b2 * d * d + eps
        exp_avg[j] = m
        exp_avg_var[j] = s
        param[j] = p - step_size * m / (np.sqrt(s / bias_correction2) + eps)
