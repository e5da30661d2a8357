"""Fused, in-place optimizer update kernels.

Every algorithm is one pass over memory per step: each element of the parameter, its gradient
and its state is read once and written once, with no temporaries of parameter size.

Calling convention (shared by every ``*_serial`` / ``*_parallel`` pair)
------------------------------------------------------------------------
``kernel(work, param_addresses, grad_addresses, state, hyper, steps)``

work : int64 (n_items, 5)
    One row per contiguous chunk to update: ``array, start, stop, column, group``. Elements
    ``[start, stop)`` of array ``array`` map to state columns ``[column, column + stop - start)``
    and use hyperparameter row ``group``. Large arrays are split into several chunks so the
    parallel kernels can share them among threads.
param_addresses, grad_addresses : intp (n_arrays,)
    Data addresses of the C-contiguous parameter and gradient arrays (see ``_pointers``).
state : float32 or float64 (n_state, total_elements)
    The optimizer state of all arrays, one row per state buffer, arrays side by side; its dtype
    is the dtype of every parameter and gradient of the call.
hyper : float64 (n_groups, n_hyper)
    One row of hyperparameters per parameter group, in the order documented per algorithm.
    Scalars are computed in float64 (as Python floats are in PyTorch) and cast to the array
    dtype inside the kernel.
steps : int64 (n_arrays,)
    The step number of each array: the kernel adds 1 to each, then uses it as ``t`` (1 on the
    first step).

``*_serial`` runs on the calling thread; ``*_parallel`` spreads the chunks over Numba's threads.
Both give bitwise identical results: each element's update is independent of the others.
"""

import numpy as np
from numba import njit, prange

from ._config import INLINE, PARALLEL, SERIAL
from ._pointers import view


@njit(**INLINE)
def _count_step(steps):
    for array in range(steps.size):
        steps[array] += 1


@njit(**INLINE)
def _chunk(k, work, param_addresses, grad_addresses, state):
    """Views of chunk ``k``: (param, grad, state column, array index, group index)."""
    array, start, stop = work[k, 0], work[k, 1], work[k, 2]
    param = view(param_addresses[array], start, stop, state)
    grad = view(grad_addresses[array], start, stop, state)
    return param, grad, work[k, 3], array, work[k, 4]


@njit(**INLINE)
def _state_row(state, row, column, size):
    """Contiguous view of ``state[row, column:column + size]``.

    A unit-stride view indexed from 0 lets LLVM vectorize the update loops; indexing the row at
    ``column + j`` does not (the possibly negative index defeats it: measured 12x slower).
    """
    return view(state.ctypes.data + row * state.strides[0], column, column + size, state)


# --------------------------------------------------------------------------------------------
# SGD
# hyper row: lr, momentum, dampening, weight_decay, nesterov, maximize
# state rows: momentum_buffer
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _sgd_chunk(param, grad, state, column, hp, step):
    """SGD with momentum, dampening and Nesterov, as ``torch.optim.SGD``.

    g = -grad if maximize else grad;  g += weight_decay * p
    b = g on the first step, else b = momentum * b + (1 - dampening) * g
    g = g + momentum * b if nesterov else b      (only when momentum != 0)
    p = p - lr * g
    """
    t = param.dtype.type
    lr, momentum, weight_decay = t(hp[0]), t(hp[1]), t(hp[3])
    one_minus_dampening = t(1.0 - hp[2])
    nesterov = hp[4] != 0.0
    sign = t(-1.0) if hp[5] != 0.0 else t(1.0)
    first = step == 1
    buf = _state_row(state, 0, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        if momentum != 0:
            b = g if first else momentum * buf[j] + one_minus_dampening * g
            buf[j] = b
            g = g + momentum * b if nesterov else b
        param[j] = param[j] - lr * g


@njit(**SERIAL)
def sgd_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _sgd_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def sgd_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _sgd_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# Adagrad
# hyper row: lr, lr_decay, weight_decay, eps, maximize
# state rows: sum
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _adagrad_chunk(param, grad, state, column, hp, step):
    """Adagrad, as ``torch.optim.Adagrad``.

    clr = lr / (1 + (t - 1) * lr_decay)
    g = -grad if maximize else grad;  g += weight_decay * p
    s = s + g * g
    p = p - clr * g / (sqrt(s) + eps)
    """
    t = param.dtype.type
    clr = t(hp[0] / (1.0 + (step - 1) * hp[1]))
    weight_decay, eps = t(hp[2]), t(hp[3])
    sign = t(-1.0) if hp[4] != 0.0 else t(1.0)
    total = _state_row(state, 0, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        s = total[j] + g * g
        total[j] = s
        param[j] = param[j] - clr * g / (np.sqrt(s) + eps)


@njit(**SERIAL)
def adagrad_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _adagrad_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def adagrad_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _adagrad_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# RMSprop
# hyper row: lr, alpha, eps, weight_decay, momentum, centered, maximize
# state rows: square_avg, momentum_buffer, grad_avg
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _rmsprop_chunk(param, grad, state, column, hp, step):
    """RMSprop, optionally centered and with momentum, as ``torch.optim.RMSprop``.

    g = -grad if maximize else grad;  g += weight_decay * p
    v = alpha * v + (1 - alpha) * g * g
    centered:  a = alpha * a + (1 - alpha) * g;  d = sqrt(v - a * a) + eps
    otherwise: d = sqrt(v) + eps
    momentum > 0: b = momentum * b + g / d;  p = p - lr * b
    otherwise:    p = p - lr * g / d
    """
    t = param.dtype.type
    lr, alpha, eps, weight_decay, momentum = t(hp[0]), t(hp[1]), t(hp[2]), t(hp[3]), t(hp[4])
    one_minus_alpha = t(1.0 - hp[1])
    centered = hp[5] != 0.0
    sign = t(-1.0) if hp[6] != 0.0 else t(1.0)
    square_avg = _state_row(state, 0, column, param.size)
    buf = _state_row(state, 1, column, param.size)
    grad_avg = _state_row(state, 2, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        v = alpha * square_avg[j] + one_minus_alpha * g * g
        square_avg[j] = v
        if centered:
            a = alpha * grad_avg[j] + one_minus_alpha * g
            grad_avg[j] = a
            denom = np.sqrt(v - a * a) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            b = momentum * buf[j] + g / denom
            buf[j] = b
            param[j] = param[j] - lr * b
        else:
            param[j] = param[j] - lr * g / denom


@njit(**SERIAL)
def rmsprop_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _rmsprop_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def rmsprop_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _rmsprop_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# Adam and AdamW
# hyper row: lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay
# state rows: exp_avg, exp_avg_sq, max_exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _adam_chunk(param, grad, state, column, hp, step):
    """Adam / AMSGrad, with L2 (Adam) or decoupled (AdamW) weight decay, as ``torch.optim``.

    g = -grad if maximize else grad
    decoupled: p = p * (1 - lr * weight_decay);  otherwise g += weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    amsgrad: v_max = max(v_max, v) and v_max replaces v below
    p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    amsgrad, decoupled = hp[5] != 0.0, hp[7] != 0.0
    sign = t(-1.0) if hp[6] != 0.0 else t(1.0)
    step_size = t(lr / (1.0 - beta1**step))
    bias_correction2_sqrt = t(np.sqrt(1.0 - beta2**step))
    decay = t(1.0 - lr * weight_decay) if decoupled else t(1.0)
    l2 = t(0.0) if decoupled else t(weight_decay)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    eps = t(eps)
    exp_avg = _state_row(state, 0, column, param.size)
    exp_avg_sq = _state_row(state, 1, column, param.size)
    max_exp_avg_sq = _state_row(state, 2, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        p = param[j]
        if decoupled:
            p = p * decay
        elif l2 != 0:
            g = g + l2 * p
        m = b1 * exp_avg[j] + one_minus_b1 * g
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        exp_avg[j] = m
        exp_avg_sq[j] = v
        if amsgrad:
            v = np.maximum(max_exp_avg_sq[j], v)
            max_exp_avg_sq[j] = v
        param[j] = p - step_size * m / (np.sqrt(v) / bias_correction2_sqrt + eps)


@njit(**SERIAL)
def adam_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _adam_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def adam_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _adam_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# Adamax
# hyper row: lr, beta1, beta2, eps, weight_decay, maximize
# state rows: exp_avg, exp_inf
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _adamax_chunk(param, grad, state, column, hp, step):
    """Adamax (Kingma & Ba 2015, section 7.1), as ``torch.optim.Adamax``.

    g = -grad if maximize else grad;  g += weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    u = max(beta2 * u, |g| + eps)
    p = p - (lr / (1 - beta1**t)) * m / u
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    sign = t(-1.0) if hp[5] != 0.0 else t(1.0)
    clr = t(lr / (1.0 - beta1**step))
    b1, one_minus_b1, b2 = t(beta1), t(1.0 - beta1), t(beta2)
    eps, l2 = t(eps), t(weight_decay)
    exp_avg = _state_row(state, 0, column, param.size)
    exp_inf = _state_row(state, 1, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        if l2 != 0:
            g = g + l2 * param[j]
        m = b1 * exp_avg[j] + one_minus_b1 * g
        u = np.maximum(b2 * exp_inf[j], np.abs(g) + eps)
        exp_avg[j] = m
        exp_inf[j] = u
        param[j] = param[j] - clr * m / u


@njit(**SERIAL)
def adamax_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _adamax_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def adamax_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _adamax_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# RAdam
# hyper row: lr, beta1, beta2, eps, weight_decay, maximize, decoupled_weight_decay
# state rows: exp_avg, exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _radam_chunk(param, grad, state, column, hp, step):
    """Rectified Adam (Liu et al. 2020), as ``torch.optim.RAdam``.

    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
    m_hat = m / (1 - beta1**t)
    rho_t > 5: r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
               p = p - m_hat * lr * (sqrt(1 - beta2**t) / (sqrt(v) + eps)) * r
    otherwise: p = p - m_hat * lr                       (SGD with momentum while warming up)
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    sign = t(-1.0) if hp[5] != 0.0 else t(1.0)
    decoupled = hp[6] != 0.0
    decay = t(1.0 - lr * weight_decay) if decoupled else t(1.0)
    l2 = t(0.0) if decoupled else t(weight_decay)
    bias_correction2 = 1.0 - beta2**step
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2**step / bias_correction2
    rectified = rho_t > 5.0
    rectification = 0.0
    if rectified:
        rectification = np.sqrt(
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        )
    rect, sqrt_bc2 = t(rectification), t(np.sqrt(bias_correction2))
    bias_correction1, lr = t(1.0 - beta1**step), t(lr)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    eps = t(eps)
    exp_avg = _state_row(state, 0, column, param.size)
    exp_avg_sq = _state_row(state, 1, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        p = param[j] * decay
        if l2 != 0:
            g = g + l2 * p
        m = b1 * exp_avg[j] + one_minus_b1 * g
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        exp_avg[j] = m
        exp_avg_sq[j] = v
        m_hat = m / bias_correction1
        if rectified:
            param[j] = p - m_hat * lr * (sqrt_bc2 / (np.sqrt(v) + eps)) * rect
        else:
            param[j] = p - m_hat * lr


@njit(**SERIAL)
def radam_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _radam_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def radam_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _radam_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# Lion
# hyper row: lr, beta1, beta2, weight_decay, maximize
# state rows: exp_avg
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _lion_chunk(param, grad, state, column, hp, step):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), algorithm 2.

    c = beta1 * m + (1 - beta1) * g
    p = p * (1 - lr * weight_decay) - lr * sign(c)        (sign(0) = 0, sign(NaN) = NaN)
    m = beta2 * m + (1 - beta2) * g
    """
    t = param.dtype.type
    lr, beta1, beta2, weight_decay = hp[0], hp[1], hp[2], hp[3]
    sign = t(-1.0) if hp[4] != 0.0 else t(1.0)
    decay = t(1.0 - lr * weight_decay)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    lr = t(lr)
    exp_avg = _state_row(state, 0, column, param.size)
    for j in range(param.size):
        g = sign * grad[j]
        m = exp_avg[j]
        c = b1 * m + one_minus_b1 * g
        direction = t(1.0) if c > 0 else (t(-1.0) if c < 0 else c)
        param[j] = param[j] * decay - lr * direction
        exp_avg[j] = b2 * m + one_minus_b2 * g


@njit(**SERIAL)
def lion_serial(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in range(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _lion_chunk(param, grad, state, column, hyper[group], steps[array])


@njit(**PARALLEL)
def lion_parallel(work, param_addresses, grad_addresses, state, hyper, steps):
    _count_step(steps)
    for k in prange(work.shape[0]):
        param, grad, column, array, group = _chunk(k, work, param_addresses, grad_addresses, state)
        _lion_chunk(param, grad, state, column, hyper[group], steps[array])


# --------------------------------------------------------------------------------------------
# Lookahead synchronization (not a step kernel: no gradients, called every k steps)
# --------------------------------------------------------------------------------------------
@njit(**SERIAL)
def lookahead_sync(work, param_addresses, slow, alpha):
    """Pull the slow weights towards the fast ones and restart the fast ones from them.

    slow = slow + alpha * (fast - slow);  fast = slow       (Zhang et al. 2019, algorithm 1)

    ``work`` and ``param_addresses`` are the step kernels' tables; ``slow`` is a flat array of
    all the slow weights of one dtype, in the same columns as the state table.
    """
    t = slow.dtype.type
    alpha = t(alpha)
    for k in range(work.shape[0]):
        array, start, stop, column = work[k, 0], work[k, 1], work[k, 2], work[k, 3]
        fast = view(param_addresses[array], start, stop, slow)
        weights = slow[column : column + stop - start]
        for j in range(fast.size):
            s = weights[j] + alpha * (fast[j] - weights[j])
            weights[j] = s
            fast[j] = s
