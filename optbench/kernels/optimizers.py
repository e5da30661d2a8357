"""Fused, in-place optimizer update kernels.

Every algorithm is one pass over memory per step: each element of the parameter, its gradient
and its state is read once and written once, with no temporaries of parameter size.

Each algorithm is a chunk kernel, ``{name}_chunk(param, grad, state, column, common, hp,
step)``, that updates one contiguous run of one array (see ``drivers`` for the arguments and
for the serial and parallel drivers made from it); its spec in ``optbench.algorithms`` names
the values of ``hp`` and the rows of ``state``. The multi-array driver's tables:

work : int64 (n_items, 5)
    One row per contiguous chunk to update: ``array, start, stop, column, group``. Elements
    ``[start, stop)`` of array ``array`` map to state columns ``[column, column + stop - start)``
    and use hyperparameter row ``group``. Large arrays are split into several chunks so the
    parallel kernels can share them among threads.
param_addresses, grad_addresses : intp (n_arrays,)
    Data addresses of the C-contiguous parameter and gradient arrays (see ``_pointers``).
state : float32 or float64 (n_state, total_elements)
    The optimizer state of all arrays, one row per state buffer, arrays side by side; its dtype
    is the dtype of every parameter and gradient of the call. A chunk's state is the view
    ``state[row, column:column + size]``: contiguous and indexed from 0, so that LLVM
    vectorizes the update loops (indexing the row at ``column + j`` defeats it, the possibly
    negative index; measured 12x slower).
hyper : float64 (n_groups, COMMON + n_hyper)
    One row per parameter group: ``COMMON`` values shared by all algorithms, the gradient
    transform ``grad_scale, clip_value, l1, maximize`` (see ``gradient``) and
    ``flush_denormals`` (nonzero: the chunk runs with subnormals flushed to zero, see
    ``_fpenv``), then the algorithm's own hyperparameters (``hp``) in its spec's order.
    Scalars are computed in float64 (as Python floats are in PyTorch) and cast to the array
    dtype inside the kernel.
steps : int64 (n_arrays,)
    The step number of each array: the driver adds 1 to each, then passes it as ``t`` (1 on
    the first step).

Optional state rows
-------------------
A state row that only an option uses (SGD's momentum buffer, RMSprop's momentum buffer and
gradient average, Adam's and AdaBound's ``max_exp_avg_sq``) is left untouched without it, so
its pages are never mapped. SGD, RMSprop and AdaBound have one update loop per combination of
their options (``_*_loop``, inlined with the option as a constant): with the test inside a
single loop, LLVM if-converted it into AVX-512 masked loads and stores of the unused row, which
do not fault with an all-false mask but take a microcode assist on unmapped pages. AdaBound's
single-thread step of 1e7 float32 elements took 7.8 to 85 ms in 12 processes, depending on
which pages each had mapped; with one loop per option, 5.7 to 6.7 ms. Adam's single loop
compiles without masked accesses as it is; a second copy would add 0.7 s to its first
compilation. Each extra loop costs about 0.3 s of first compilation per dtype (Numba's typing
of the inlined copy), none once cached. ``tests/test_optim_codegen.py`` checks the machine
code of every algorithm.
"""

import math

import numpy as np
from numba import njit, prange

from ._config import REDUCTION, UNFUSED, UNFUSED_INLINE, UNFUSED_PARALLEL
from ._pointers import view

# Numba options of every chunk kernel, a plugin's included: no fast-math contraction, so that
# the serial and parallel drivers and the NumPy reference round every operation alike.
CHUNK_OPTIONS = UNFUSED


@njit(**UNFUSED_INLINE)
def gradient_options(common, t):
    """The gradient transform shared by every algorithm, from a group's common hyper values.

    common = (grad_scale, clip_value, l1, maximize); returns (factor, clip, l1) in dtype ``t``,
    with ``factor = -grad_scale`` when maximizing (an exact sign flip).
    """
    factor = -common[0] if common[3] != 0.0 else common[0]
    return t(factor), t(common[1]), t(common[2])


@njit(**UNFUSED_INLINE)
def gradient(grad, param, factor, clip, l1):
    """g = clip(factor * grad, -clip, clip) + l1 * sign(param)   (l1 term only when l1 != 0).

    ``factor`` carries the global-norm clipping scale (1 without ``clip_norm``) and the sign of
    ``maximize``; ``clip`` is ``inf`` without ``clip_value``. An unclipped gradient passes
    unchanged, NaN included.
    """
    g = clamp(factor * grad, -clip, clip)
    if l1 != 0:
        g = g + l1 * sign(param)
    return g


@njit(**UNFUSED_INLINE)
def clamp(x, low, high):
    """``x`` limited to ``[low, high]``; NaN stays NaN, as in ``torch.clamp``.

    Written with comparisons rather than ``np.minimum(np.maximum(...))``, whose NaN handling
    made Adam's loop 37% slower at 1e4 elements.
    """
    return high if x > high else (low if x < low else x)


@njit(**UNFUSED_INLINE)
def sign(x):
    """-1, 0 or 1 in the dtype of ``x``; NaN stays NaN."""
    one = type(x)(1.0)
    return one if x > 0 else (-one if x < 0 else x)


@njit(**UNFUSED_INLINE)
def lerp_coefficient(weight, t):
    """``(small, c)`` for ``torch.lerp(start, end, weight)`` in dtype ``t``: with the weight
    rounded to ``t``, ``small`` when ``|weight| < 1/2``; ``c`` is the weight, else ``1 - weight``
    computed in ``t`` (torch computes in the tensor's dtype)."""
    w = t(weight)
    small = abs(w) < t(0.5)
    return small, (w if small else t(1.0) - w)


@njit(**UNFUSED_INLINE)
def lerp(start, end, small, c):
    """torch's lerp: ``start + c (end - start)`` or ``end - (end - start) c`` (see
    lerp_coefficient)."""
    return start + c * (end - start) if small else end - (end - start) * c


# --------------------------------------------------------------------------------------------
# SGD
# hyper row: lr, momentum, dampening, weight_decay, nesterov
# state rows: momentum_buffer
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def sgd_chunk(param, grad, state, column, common, hp, step):
    """SGD with momentum, dampening and Nesterov, as ``torch.optim.SGD``.

    g = gradient (see gradient) + weight_decay * p
    b = g on the first step, else b = momentum * b + (1 - dampening) * g
    g = g + momentum * b if nesterov else b      (only when momentum != 0)
    p = p - lr * g
    """
    if param.dtype.type(hp[1]) != 0:
        _sgd_loop(param, grad, state, column, common, hp, step, True)
    else:
        _sgd_loop(param, grad, state, column, common, hp, step, False)


@njit(**UNFUSED_INLINE)
def heavy_ball(g, previous, first, momentum, one_minus_dampening, nesterov):
    """torch's SGD momentum for one element: ``(buffer, direction)`` with ``buffer = g`` on
    the first step, else ``momentum * previous + (1 - dampening) * g``, and the direction
    ``g + momentum * buffer`` (Nesterov) or ``buffer``. ``previous`` is read every step: a
    conditional read would be masked."""
    b = g if first else momentum * previous + one_minus_dampening * g
    return b, (g + momentum * b if nesterov else b)


@njit(**UNFUSED_INLINE)
def _sgd_loop(param, grad, state, column, common, hp, step, with_momentum):
    t = param.dtype.type
    lr, momentum, weight_decay = t(hp[0]), t(hp[1]), t(hp[3])
    one_minus_dampening = t(1.0 - hp[2])
    nesterov = hp[4] != 0.0
    factor, clip, l1 = gradient_options(common, t)
    first = step == 1
    buf = state[0, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        if with_momentum:
            buf[j], g = heavy_ball(g, buf[j], first, momentum, one_minus_dampening, nesterov)
        param[j] = param[j] - lr * g


# --------------------------------------------------------------------------------------------
# Adagrad
# hyper row: lr, lr_decay, weight_decay, eps
# state rows: sum
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adagrad_chunk(param, grad, state, column, common, hp, step):
    """Adagrad, as ``torch.optim.Adagrad``.

    clr = lr / (1 + (t - 1) * lr_decay)
    g = gradient (see gradient) + weight_decay * p
    s = s + g * g
    p = p - clr * g / (sqrt(s) + eps)
    """
    t = param.dtype.type
    clr = t(hp[0] / (1.0 + (step - 1) * hp[1]))
    weight_decay, eps = t(hp[2]), t(hp[3])
    factor, clip, l1 = gradient_options(common, t)
    total = state[0, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        s = total[j] + g * g
        total[j] = s
        param[j] = param[j] - clr * g / (np.sqrt(s) + eps)


# --------------------------------------------------------------------------------------------
# Adadelta
# hyper row: lr, rho, eps, weight_decay
# state rows: square_avg, acc_delta
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adadelta_chunk(param, grad, state, column, common, hp, step):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

    g = gradient (see gradient) + weight_decay * p
    v = rho * v + (1 - rho) * g * g
    d = sqrt(u + eps) / sqrt(v + eps) * g
    u = rho * u + (1 - rho) * d * d
    p = p - lr * d
    """
    t = param.dtype.type
    lr, rho, eps, weight_decay = t(hp[0]), t(hp[1]), t(hp[2]), t(hp[3])
    one_minus_rho = t(1.0 - hp[1])
    factor, clip, l1 = gradient_options(common, t)
    square_avg = state[0, column : column + param.size]
    acc_delta = state[1, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        v = rho * square_avg[j] + one_minus_rho * g * g
        square_avg[j] = v
        d = np.sqrt(acc_delta[j] + eps) / np.sqrt(v + eps) * g
        acc_delta[j] = rho * acc_delta[j] + one_minus_rho * d * d
        param[j] = param[j] - lr * d


# --------------------------------------------------------------------------------------------
# Rprop
# hyper row: lr, etaminus, etaplus, step_size_min, step_size_max
# state rows: prev, step_size
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def rprop_chunk(param, grad, state, column, common, hp, step):
    """Rprop (Riedmiller and Braun 1993), as ``torch.optim.Rprop``.

    g = gradient (see gradient);  s = lr on the first step
    g * prev > 0: s = clamp(s * etaplus, min, max)
    g * prev < 0: s = clamp(s * etaminus, min, max) and g = 0 (no step, no memory of g)
    p = p - sign(g) * s;  prev = g
    """
    t = param.dtype.type
    lr, etaminus, etaplus = t(hp[0]), t(hp[1]), t(hp[2])
    low, high = t(hp[3]), t(hp[4])
    one = t(1.0)
    factor, clip, l1 = gradient_options(common, t)
    first = step == 1
    prev = state[0, column : column + param.size]
    step_size = state[1, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        before = prev[j]
        product = g * before
        scale = etaplus if product > 0 else (etaminus if product < 0 else one)
        if product != product:  # a NaN gradient or memory: NaN step size, as in torch
            scale = product
        stored = step_size[j]  # read on the first step too: a conditional read would be masked
        size = clamp((lr if first else stored) * scale, low, high)
        g = t(0.0) if product < 0 else g
        step_size[j] = size
        prev[j] = g
        param[j] = param[j] - np.sign(g) * size  # sign() here gave masked float64 stores


# --------------------------------------------------------------------------------------------
# ASGD
# hyper row: lambd, weight_decay, eta, mu (eta and mu: prepare_step's values for this step)
# state rows: ax
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def asgd_chunk(param, grad, state, column, common, hp, step):
    """Averaged SGD (Polyak and Juditsky 1992), as ``torch.optim.ASGD``.

    g = gradient (see gradient) + weight_decay * p
    p = p * (1 - lambd * eta) - eta * g
    ax = p where mu = 1, else ax + (p - ax) * mu
    """
    t = param.dtype.type
    weight_decay = t(hp[1])
    shrink = t(1.0 - hp[0] * hp[2])  # rounded once, as torch's Python scalar
    eta, mu = t(hp[2]), t(hp[3])
    copy = hp[3] == 1.0
    factor, clip, l1 = gradient_options(common, t)
    ax = state[0, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        if weight_decay != 0:
            g = g + weight_decay * param[j]
        p = param[j] * shrink - eta * g
        param[j] = p
        average = ax[j]  # read in both cases: a conditional read would be masked
        ax[j] = p if copy else average + (p - average) * mu


# --------------------------------------------------------------------------------------------
# ADOPT
# hyper row: lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay
# state rows: exp_avg, exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adopt_chunk(param, grad, state, column, common, hp, step):
    """ADOPT (Taniguchi et al. 2024), as the authors' implementation with its clipping.

    g = gradient (see gradient); without decoupled decay g += weight_decay * p
    step 1: v = v + g * g, nothing else
    then:   decoupled: p = p * (1 - lr * weight_decay)
            n = clamp(g / max(sqrt(v), eps), -c, c),  c = (t - 1) ** 0.25
            m = lerp(m, n, 1 - beta1)   (torch's lerp: two formulas, by the weight)
            p = p - lr * m;  v = beta2 * v + (1 - beta2) * g * g
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    decoupled = hp[5] != 0.0
    factor, clip, l1 = gradient_options(common, t)
    l2 = t(0.0) if decoupled else t(weight_decay)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    if step == 1:
        for j in range(param.size):
            g = gradient(grad[j], param[j], factor, clip, l1)
            if l2 != 0:
                g = g + l2 * param[j]
            exp_avg_sq[j] = exp_avg_sq[j] + g * g
        return
    decay = t(1.0 - lr * weight_decay) if decoupled else t(1.0)
    small, w = lerp_coefficient(1.0 - beta1, t)
    limit = t((step - 1.0) ** 0.25)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    lr, eps = t(lr), t(eps)
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        p = param[j]
        if decoupled:
            p = p * decay
        elif l2 != 0:
            g = g + l2 * p
        v = exp_avg_sq[j]
        root = np.sqrt(v)
        n = clamp(g / (eps if root < eps else root), -limit, limit)
        m = exp_avg[j]
        m = lerp(m, n, small, w)
        exp_avg[j] = m
        exp_avg_sq[j] = b2 * v + one_minus_b2 * g * g
        param[j] = p - lr * m


# --------------------------------------------------------------------------------------------
# AdEMAMix
# hyper row: lr, beta1, beta2, beta3, alpha, beta3_warmup, alpha_warmup, eps, weight_decay
# state rows: exp_avg_fast, exp_avg_slow, exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED_INLINE)
def ademamix_schedules(hp, step):
    """This step's (alpha, beta3) in float64, as the authors' warm-ups compute them: alpha
    grows linearly from 0, beta3's half-life ``f(b) = log(1/2) / log(b + 1e-8) - 1`` linearly
    from beta1's, ``beta3 = 0.5 ** (1 / (f + 1))``; a warm-up of 0 steps is none."""
    beta1, beta3, alpha = hp[1], hp[3], hp[4]
    beta3_warmup, alpha_warmup = hp[5], hp[6]
    if step < alpha_warmup:
        alpha = step / alpha_warmup * alpha
    if step < beta3_warmup:
        a = step / beta3_warmup
        start = math.log(0.5) / math.log(beta1 + 1e-8) - 1.0
        end = math.log(0.5) / math.log(beta3 + 1e-8) - 1.0
        beta3 = 0.5 ** (1.0 / ((1.0 - a) * start + a * end + 1.0))
    return alpha, beta3


@njit(**UNFUSED)
def ademamix_chunk(param, grad, state, column, common, hp, step):
    """AdEMAMix (Pagliardini et al. 2024), as the authors' implementation.

    g = gradient (see gradient)
    m1 = beta1 * m1 + (1 - beta1) * g   (m1 = g when beta1 = 0)
    m2 = beta3_t * m2 + (1 - beta3_t) * g;  v = beta2 * v + (1 - beta2) * g * g
    p = p - lr * ((m1 / (1 - beta1**t) + alpha_t * m2) / (sqrt(v / (1 - beta2**t)) + eps)
                  + weight_decay * p)

    Computed as ``(c1 m1 + c2 m2) / (sqrt(v) + eps s)`` with ``s = sqrt(1 - beta2**t)``,
    ``c1 = s / (1 - beta1**t)`` and ``c2 = alpha_t s``: one division per element, as Adam's.
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[7], hp[8]
    alpha, beta3 = ademamix_schedules(hp, float(step))
    s = np.sqrt(1.0 - beta2**step)
    c1, c2 = t(s / (1.0 - beta1**step)), t(alpha * s)
    no_fast = beta1 == 0.0
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    b3, one_minus_b3 = t(beta3), t(1.0 - beta3)
    lr, eps, decay = t(lr), t(eps * s), t(weight_decay)
    factor, clip, l1 = gradient_options(common, t)
    fast = state[0, column : column + param.size]
    slow = state[1, column : column + param.size]
    exp_avg_sq = state[2, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        p = param[j]
        m1 = b1 * fast[j] + one_minus_b1 * g
        m1 = g if no_fast else m1
        m2 = b3 * slow[j] + one_minus_b3 * g
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        fast[j] = m1
        slow[j] = m2
        exp_avg_sq[j] = v
        update = (c1 * m1 + c2 * m2) / (np.sqrt(v) + eps)
        if decay != 0:
            update = update + decay * p
        param[j] = p - lr * update


# --------------------------------------------------------------------------------------------
# Adan
# hyper row: lr, beta1, beta2, beta3, eps, weight_decay, no_prox
# state rows: exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adan_chunk(param, grad, state, column, common, hp, step):
    """Adan (Xie et al. 2022), as the authors' implementation.

    g = gradient (see gradient);  d = g - g_prev  (0 on the first step: g_prev = g)
    m = beta1 * m + (1 - beta1) * g;  diff = beta2 * diff + (1 - beta2) * d
    w = g + beta2 * d;  n = beta3 * n + (1 - beta3) * w * w
    p = p - (lr / bc1) * m / D - (lr * beta2 / bc2) * diff / D,  D = sqrt(n / bc3) + eps
    weight decay: p = p / (1 + lr * wd) after the step, or p * (1 - lr * wd) before it with
    no_prox;  neg_pre_grad = -g;  bc_i = 1 - beta_i**t

    D is taken as ``(sqrt(n) + eps s) / s`` with ``s = sqrt(bc3)``, folded into the two step
    sizes: one division per element instead of three.
    """
    t = param.dtype.type
    lr, beta1, beta2, beta3, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
    no_prox = hp[6] != 0.0
    s = np.sqrt(1.0 - beta3**step)
    step_size = t(lr / (1.0 - beta1**step) * s)
    step_size_diff = t(lr * beta2 / (1.0 - beta2**step) * s)
    eps = t(eps * s)
    shrink = t(1.0 - lr * weight_decay)
    divide = t(1.0 + lr * weight_decay)
    before, after = weight_decay != 0 and no_prox, weight_decay != 0 and not no_prox
    first = step == 1
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    b3, one_minus_b3 = t(beta3), t(1.0 - beta3)
    factor, clip, l1 = gradient_options(common, t)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    exp_avg_diff = state[2, column : column + param.size]
    neg_pre_grad = state[3, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        stored = neg_pre_grad[j]  # read on the first step too: a conditional read would be masked
        d = g + (-g if first else stored)
        m = b1 * exp_avg[j] + one_minus_b1 * g
        diff = b2 * exp_avg_diff[j] + one_minus_b2 * d
        w = d * b2 + g
        n = b3 * exp_avg_sq[j] + one_minus_b3 * w * w
        exp_avg[j] = m
        exp_avg_diff[j] = diff
        exp_avg_sq[j] = n
        neg_pre_grad[j] = -g
        p = param[j]
        if before:
            p = p * shrink
        p = p - (step_size * m + step_size_diff * diff) / (np.sqrt(n) + eps)
        if after:
            p = p / divide
        param[j] = p


# --------------------------------------------------------------------------------------------
# Schedule-Free SGD and AdamW (the parameters hold y, the point where gradients are taken)
# hyper rows: momentum, weight_decay, lr_t, c_t  /  beta1, beta2, eps, weight_decay, lr_t, c_t
# (lr_t, c_t: prepare_step's warmed-up rate and averaging weight for this step)
# state rows: z  /  z, exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED_INLINE)
def schedule_free_point(y, stored_z, first, direction, small, c, y_step, z_step):
    """One element's new ``(y, z)``: ``z`` is ``y`` on the first step (``stored_z`` is read
    every step: a conditional read would be masked), ``y = lerp(y, z, c_t) + y_step d`` and
    ``z = z - z_step d`` for the step direction ``d``."""
    anchor = y if first else stored_z
    return lerp(y, anchor, small, c) + y_step * direction, anchor - z_step * direction


@njit(**UNFUSED)
def schedule_free_sgd_chunk(param, grad, state, column, common, hp, step):
    """Schedule-Free SGD (Defazio et al. 2024), as the authors' ``SGDScheduleFree``.

    g = gradient (see gradient) + weight_decay * y;  z = y on the first step
    y = lerp(y, z, c_t) + lr_t * (momentum * (1 - c_t) - 1) * g
    z = z - lr_t * g
    """
    t = param.dtype.type
    momentum, weight_decay, lr, ckp1 = hp[0], hp[1], hp[2], hp[3]
    small, c = lerp_coefficient(ckp1, t)
    y_step = t(lr * (momentum * (1.0 - ckp1) - 1.0))
    z_step, decay = t(lr), t(weight_decay)
    first = step == 1
    factor, clip, l1 = gradient_options(common, t)
    z = state[0, column : column + param.size]
    for j in range(param.size):
        y = param[j]
        g = gradient(grad[j], y, factor, clip, l1)
        if decay != 0:
            g = g + decay * y
        param[j], z[j] = schedule_free_point(y, z[j], first, g, small, c, y_step, z_step)


@njit(**UNFUSED)
def schedule_free_adamw_chunk(param, grad, state, column, common, hp, step):
    """Schedule-Free AdamW (Defazio et al. 2024), as the authors' ``AdamWScheduleFree``.

    g = gradient (see gradient);  v = beta2 * v + (1 - beta2) * g * g
    n = g / (sqrt(v / (1 - beta2**t)) + eps) + weight_decay * y;  z = y on the first step
    y = lerp(y, z, c_t) + lr_t * (beta1 * (1 - c_t) - 1) * n
    z = z - lr_t * n

    n is computed as ``g s / (sqrt(v) + eps s)``, ``s = sqrt(1 - beta2**t)``: one division.
    """
    t = param.dtype.type
    beta1, beta2, eps, weight_decay, lr, ckp1 = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
    s = np.sqrt(1.0 - beta2**step)
    small, c = lerp_coefficient(ckp1, t)
    y_step = t(lr * (beta1 * (1.0 - ckp1) - 1.0))
    z_step, decay = t(lr), t(weight_decay)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    scale, eps = t(s), t(eps * s)
    first = step == 1
    factor, clip, l1 = gradient_options(common, t)
    z = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    for j in range(param.size):
        y = param[j]
        g = gradient(grad[j], y, factor, clip, l1)
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        exp_avg_sq[j] = v
        n = g * scale / (np.sqrt(v) + eps)
        if decay != 0:
            n = n + decay * y
        param[j], z[j] = schedule_free_point(y, z[j], first, n, small, c, y_step, z_step)


# --------------------------------------------------------------------------------------------
# LAMB (a reduce pass, then the update)
# hyper row: lr, beta1, beta2, eps, weight_decay, bias_correction, exclude_1d
# state rows: exp_avg, exp_avg_sq;  sums: param_sq, update_sq
# --------------------------------------------------------------------------------------------
@njit(**REDUCTION)
def add_square(total, x):
    """``total + x * x`` in float64, its addition free to be reassociated: a loop summing
    squares with it keeps several vector accumulators (see ``_config.REDUCTION``; the same
    bits in the serial and parallel drivers, which share the compiled loop)."""
    return total + np.float64(x) * np.float64(x)


@njit(**UNFUSED_INLINE)
def lamb_coefficients(hp, step, ndim, t):
    """``(scale, eps, decay, excluded)``, the first three in dtype ``t``: the update is ``m scale
    / (sqrt(v) + eps) + decay p``, that is ``(m / bc1) / (sqrt(v / bc2) + eps) + weight_decay
    p`` with ``s = sqrt(bc2)`` folded in (one division); bias corrections 1 without
    ``bias_correction``; ``excluded``, a 1-D array with ``exclude_1d``, has no decay."""
    beta1, beta2, eps, weight_decay = hp[1], hp[2], hp[3], hp[4]
    corrected, excluded = hp[5] != 0.0, hp[6] != 0.0 and ndim <= 1
    bias_correction1 = 1.0 - beta1**step if corrected else 1.0
    s = np.sqrt(1.0 - beta2**step) if corrected else 1.0
    decay = t(0.0 if excluded else weight_decay)
    return t(s / bias_correction1), t(eps * s), decay, excluded


@njit(**UNFUSED)
def lamb_reduce(param, grad, state, column, common, hp, step, ndim, sums):
    """LAMB's first pass: the moments, and this run's sums of p^2 and of r^2 in float64.

    g = gradient (see gradient);  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g g
    r = (m / bc1) / (sqrt(v / bc2) + eps) + weight_decay p
    """
    t = param.dtype.type
    beta1, beta2 = hp[1], hp[2]
    scale, eps, decay, _ = lamb_coefficients(hp, step, ndim, t)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    factor, clip, l1 = gradient_options(common, t)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    param_sq, update_sq = 0.0, 0.0
    for j in range(param.size):
        p = param[j]
        g = gradient(grad[j], p, factor, clip, l1)
        m = b1 * exp_avg[j] + one_minus_b1 * g
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        exp_avg[j] = m
        exp_avg_sq[j] = v
        r = m * scale / (np.sqrt(v) + eps) + decay * p
        param_sq = add_square(param_sq, p)
        update_sq = add_square(update_sq, r)
    sums[0] = param_sq
    sums[1] = update_sq


@njit(**UNFUSED)
def lamb_chunk(param, grad, state, column, common, hp, step, ndim, totals):
    """LAMB (You et al. 2019): ``p = p - lr * ratio * r`` with the trust ratio ``||p|| / ||r||``
    of the whole array (1 where either norm is 0 or NaN, and for a 1-D array with
    ``exclude_1d``); r recomputed from the moments the reduce pass stored."""
    t = param.dtype.type
    scale, eps, decay, excluded = lamb_coefficients(hp, step, ndim, t)
    norm_p, norm_r = np.sqrt(totals[0]), np.sqrt(totals[1])
    ratio = norm_p / norm_r if norm_p > 0.0 and norm_r > 0.0 and not excluded else 1.0
    step_size = t(hp[0] * ratio)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    for j in range(param.size):
        p = param[j]
        r = exp_avg[j] * scale / (np.sqrt(exp_avg_sq[j]) + eps) + decay * p
        param[j] = p - step_size * r


# --------------------------------------------------------------------------------------------
# Prodigy (a reduce pass over every array; optbench.algorithms.prodigy_combine; the update)
# hyper row (every value derived): beta1, beta2, beta3, m_coef, v_coef, s_coef, l2, frozen,
#   then after combine: d_eps, step_size, decay_step
# state rows: p0, s, exp_avg, exp_avg_sq;  sums: dot (g . (p0 - p)), abs_s (sum |s|)
# --------------------------------------------------------------------------------------------
@njit(**REDUCTION)
def add_product(total, x, y):
    """``total + x * y`` in float64, reassociable as :func:`add_square`."""
    return total + np.float64(x) * np.float64(y)


@njit(**REDUCTION)
def add_abs(total, x):
    """``total + |x|`` in float64, reassociable as :func:`add_square`."""
    return total + abs(np.float64(x))


@njit(**UNFUSED)
def prodigy_reduce(param, grad, state, column, common, hp, step, ndim, sums):
    """Prodigy's first pass: p0 = p at the first step; g (plus ``l2 p``, the coupled decay);
    ``sum g (p0 - p)``; m = beta1 m + m_coef g; v = beta2 v + v_coef g g; s = beta3 s + s_coef
    g; ``sum |s|``. A frozen group (lr 0) keeps its moments and adds nothing."""
    t = param.dtype.type
    beta1, beta2, beta3 = t(hp[0]), t(hp[1]), t(hp[2])
    m_coef, v_coef, s_coef, l2 = t(hp[3]), t(hp[4]), t(hp[5]), t(hp[6])
    factor, clip, l1 = gradient_options(common, t)
    p0 = state[0, column : column + param.size]
    s = state[1, column : column + param.size]
    exp_avg = state[2, column : column + param.size]
    exp_avg_sq = state[3, column : column + param.size]
    if step == 1:
        for j in range(param.size):
            p0[j] = param[j]
    dot, abs_s = 0.0, 0.0
    if hp[7] == 0.0:
        for j in range(param.size):
            p = param[j]
            g = gradient(grad[j], p, factor, clip, l1)
            if l2 != 0:
                g = g + l2 * p
            dot = add_product(dot, g, p0[j] - p)
            exp_avg[j] = exp_avg[j] * beta1 + m_coef * g
            exp_avg_sq[j] = exp_avg_sq[j] * beta2 + v_coef * g * g
            moment = s[j] * beta3 + s_coef * g
            s[j] = moment
            abs_s = add_abs(abs_s, moment)
    sums[0] = dot
    sums[1] = abs_s


@njit(**UNFUSED)
def prodigy_chunk(param, grad, state, column, common, hp, step, ndim, totals):
    """Prodigy (Mishchenko and Defazio 2023): ``p = p + decay_step p`` (decoupled decay),
    ``p = p + step_size m / (sqrt(v) + d_eps)``, with ``step_size = -d lr`` of the step's
    start and ``d_eps`` the new ``d`` times eps; a frozen group (lr 0) is left as it is."""
    if hp[7] != 0.0:
        return
    t = param.dtype.type
    d_eps, step_size, decay_step = t(hp[8]), t(hp[9]), t(hp[10])
    exp_avg = state[2, column : column + param.size]
    exp_avg_sq = state[3, column : column + param.size]
    for j in range(param.size):
        p = param[j]
        if decay_step != 0:
            p = p + decay_step * p
        param[j] = p + step_size * (exp_avg[j] / (np.sqrt(exp_avg_sq[j]) + d_eps))


# --------------------------------------------------------------------------------------------
# LARS (a reduce pass, then the update)
# hyper row: lr, momentum, dampening, weight_decay, nesterov, trust_coefficient, eps, exclude_1d
# state rows: momentum_buffer;  sums: param_sq, grad_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def lars_reduce(param, grad, state, column, common, hp, step, ndim, sums):
    """LARS's first pass: this run's sums of p^2 and of g^2 (g after the gradient transform),
    in float64."""
    t = param.dtype.type
    factor, clip, l1 = gradient_options(common, t)
    param_sq, grad_sq = 0.0, 0.0
    for j in range(param.size):
        p = param[j]
        g = gradient(grad[j], p, factor, clip, l1)
        param_sq = add_square(param_sq, p)
        grad_sq = add_square(grad_sq, g)
    sums[0] = param_sq
    sums[1] = grad_sq


@njit(**UNFUSED)
def lars_chunk(param, grad, state, column, common, hp, step, ndim, totals):
    """LARS (You et al. 2017), SGD's momentum on the gradient scaled by the trust ratio.

    ratio = trust_coefficient ||p|| / (||g|| + weight_decay ||p|| + eps)  (1 where either
    norm is 0 or NaN, and for a 1-D array with exclude_1d, which also has no decay)
    g = (g + weight_decay * p) * ratio;  then SGD: momentum buffer, Nesterov, p = p - lr * g
    """
    if param.dtype.type(hp[1]) != 0:
        _lars_loop(param, grad, state, column, common, hp, step, ndim, totals, True)
    else:
        _lars_loop(param, grad, state, column, common, hp, step, ndim, totals, False)


@njit(**UNFUSED_INLINE)
def _lars_loop(param, grad, state, column, common, hp, step, ndim, totals, with_momentum):
    t = param.dtype.type
    excluded = hp[7] != 0.0 and ndim <= 1
    weight_decay = 0.0 if excluded else hp[3]
    norm_p, norm_g = np.sqrt(totals[0]), np.sqrt(totals[1])
    ratio = 1.0
    if norm_p > 0.0 and norm_g > 0.0 and not excluded:
        ratio = hp[5] * norm_p / (norm_g + weight_decay * norm_p + hp[6])
    lr, momentum, decay, scale = t(hp[0]), t(hp[1]), t(weight_decay), t(ratio)
    one_minus_dampening = t(1.0 - hp[2])
    nesterov = hp[4] != 0.0
    factor, clip, l1 = gradient_options(common, t)
    first = step == 1
    buf = state[0, column : column + param.size]
    for j in range(param.size):
        p = param[j]
        g = (gradient(grad[j], p, factor, clip, l1) + decay * p) * scale
        if with_momentum:
            buf[j], g = heavy_ball(g, buf[j], first, momentum, one_minus_dampening, nesterov)
        param[j] = p - lr * g


# --------------------------------------------------------------------------------------------
# RMSprop
# hyper row: lr, alpha, eps, weight_decay, momentum, centered
# state rows: square_avg, momentum_buffer, grad_avg
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def rmsprop_chunk(param, grad, state, column, common, hp, step):
    """RMSprop, optionally centered and with momentum, as ``torch.optim.RMSprop``.

    g = gradient (see gradient) + weight_decay * p
    v = alpha * v + (1 - alpha) * g * g
    centered:  a = alpha * a + (1 - alpha) * g;  d = sqrt(v - a * a) + eps
    otherwise: d = sqrt(v) + eps
    momentum > 0: b = momentum * b + g / d;  p = p - lr * b
    otherwise:    p = p - lr * g / d
    """
    centered, with_momentum = hp[5] != 0.0, param.dtype.type(hp[4]) > 0
    if centered:
        if with_momentum:
            _rmsprop_loop(param, grad, state, column, common, hp, True, True)
        else:
            _rmsprop_loop(param, grad, state, column, common, hp, True, False)
    elif with_momentum:
        _rmsprop_loop(param, grad, state, column, common, hp, False, True)
    else:
        _rmsprop_loop(param, grad, state, column, common, hp, False, False)


@njit(**UNFUSED_INLINE)
def _rmsprop_loop(param, grad, state, column, common, hp, centered, with_momentum):
    t = param.dtype.type
    lr, alpha, eps, weight_decay, momentum = t(hp[0]), t(hp[1]), t(hp[2]), t(hp[3]), t(hp[4])
    one_minus_alpha = t(1.0 - hp[1])
    factor, clip, l1 = gradient_options(common, t)
    square_avg = state[0, column : column + param.size]
    buf = state[1, column : column + param.size]
    grad_avg = state[2, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
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
        if with_momentum:
            b = momentum * buf[j] + g / denom
            buf[j] = b
            param[j] = param[j] - lr * b
        else:
            param[j] = param[j] - lr * g / denom


# --------------------------------------------------------------------------------------------
# Adam and AdamW
# hyper row: lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled_weight_decay
# state rows: exp_avg, exp_avg_sq, max_exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adam_chunk(param, grad, state, column, common, hp, step):
    """Adam / AMSGrad, with L2 (Adam) or decoupled (AdamW) weight decay, as ``torch.optim``.

    g = gradient (see gradient)
    decoupled: p = p * (1 - lr * weight_decay);  otherwise g += weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    amsgrad: v_max = max(v_max, v) and v_max replaces v below
    p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Computed as ``p - (step_size * s) * m / (sqrt(v) + eps * s)`` with ``s = sqrt(1 -
    beta2**t)``, the same value with one division per element instead of two and rounded a
    little differently (a serial step of 1e4-1e5 elements, in cache and bound by the divider,
    measured 1.4x faster in float32 and 1.6x in float64 than with two divisions).
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    amsgrad, decoupled = hp[5] != 0.0, hp[6] != 0.0
    factor, clip, l1 = gradient_options(common, t)
    bias_correction2_sqrt = np.sqrt(1.0 - beta2**step)
    step_size = t(lr / (1.0 - beta1**step) * bias_correction2_sqrt)
    decay = t(1.0 - lr * weight_decay) if decoupled else t(1.0)
    l2 = t(0.0) if decoupled else t(weight_decay)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    eps = t(eps * bias_correction2_sqrt)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    max_exp_avg_sq = state[2, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
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
        param[j] = p - step_size * m / (np.sqrt(v) + eps)


# --------------------------------------------------------------------------------------------
# Adamax
# hyper row: lr, beta1, beta2, eps, weight_decay
# state rows: exp_avg, exp_inf
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adamax_chunk(param, grad, state, column, common, hp, step):
    """Adamax (Kingma & Ba 2015, section 7.1), as ``torch.optim.Adamax``.

    g = gradient (see gradient) + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    u = max(beta2 * u, |g| + eps)
    p = p - (lr / (1 - beta1**t)) * m / u
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    factor, clip, l1 = gradient_options(common, t)
    clr = t(lr / (1.0 - beta1**step))
    b1, one_minus_b1, b2 = t(beta1), t(1.0 - beta1), t(beta2)
    eps, l2 = t(eps), t(weight_decay)
    exp_avg = state[0, column : column + param.size]
    exp_inf = state[1, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        if l2 != 0:
            g = g + l2 * param[j]
        m = b1 * exp_avg[j] + one_minus_b1 * g
        u = np.maximum(b2 * exp_inf[j], np.abs(g) + eps)
        exp_avg[j] = m
        exp_inf[j] = u
        param[j] = param[j] - clr * m / u


# --------------------------------------------------------------------------------------------
# RAdam
# hyper row: lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay
# state rows: exp_avg, exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def radam_chunk(param, grad, state, column, common, hp, step):
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
    factor, clip, l1 = gradient_options(common, t)
    decoupled = hp[5] != 0.0
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
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
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


# --------------------------------------------------------------------------------------------
# Lion
# hyper row: lr, beta1, beta2, weight_decay
# state rows: exp_avg
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def lion_chunk(param, grad, state, column, common, hp, step):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), algorithm 2.

    c = beta1 * m + (1 - beta1) * g
    p = p * (1 - lr * weight_decay) - lr * sign(c)        (sign(0) = 0, sign(NaN) = NaN)
    m = beta2 * m + (1 - beta2) * g
    """
    t = param.dtype.type
    lr, beta1, beta2, weight_decay = hp[0], hp[1], hp[2], hp[3]
    factor, clip, l1 = gradient_options(common, t)
    decay = t(1.0 - lr * weight_decay)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    lr = t(lr)
    exp_avg = state[0, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        m = exp_avg[j]
        c = b1 * m + one_minus_b1 * g
        param[j] = param[j] * decay - lr * sign(c)
        exp_avg[j] = b2 * m + one_minus_b2 * g


# --------------------------------------------------------------------------------------------
# NAdam
# hyper row: lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
#            grad_coefficient, avg_coefficient (both set by the optimizer before every step)
# state rows: exp_avg, exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def nadam_chunk(param, grad, state, column, common, hp, step):
    """NAdam (Dozat 2016) with torch's momentum schedule, as ``torch.optim.NAdam``.

    mu_t = beta1 (1 - 0.5 * 0.96**(t psi)),  P_t = mu_1 ... mu_t  (kept by the optimizer)
    grad_coefficient = lr (1 - mu_t) / (1 - P_t)
    avg_coefficient = lr mu_{t+1} / (1 - P_t mu_{t+1})
    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    d = sqrt(v / (1 - beta2**t)) + eps
    p = p - grad_coefficient * g / d - avg_coefficient * m / d
    """
    t = param.dtype.type
    lr, beta1, beta2, eps, weight_decay = hp[0], hp[1], hp[2], hp[3], hp[4]
    decoupled = hp[5] != 0.0
    factor, clip, l1 = gradient_options(common, t)
    decay = t(1.0 - lr * weight_decay) if decoupled else t(1.0)
    l2 = t(0.0) if decoupled else t(weight_decay)
    grad_coefficient, avg_coefficient = t(hp[6]), t(hp[7])
    bias_correction2 = t(1.0 - beta2**step)
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    eps = t(eps)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        p = param[j] * decay
        if l2 != 0:
            g = g + l2 * p
        m = b1 * exp_avg[j] + one_minus_b1 * g
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        exp_avg[j] = m
        exp_avg_sq[j] = v
        denom = np.sqrt(v / bias_correction2) + eps
        p = p - grad_coefficient * g / denom
        param[j] = p - avg_coefficient * m / denom


# --------------------------------------------------------------------------------------------
# AdaBound
# hyper row: lr, beta1, beta2, final_lr, gamma, eps, weight_decay, amsbound, base_lr
# state rows: exp_avg, exp_avg_sq, max_exp_avg_sq
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def adabound_chunk(param, grad, state, column, common, hp, step):
    """AdaBound / AMSBound (Luo et al. 2019): Adam whose per-element step is clipped to bounds
    that converge to SGD's.

    m, v (or v_max with amsbound) as in Adam;  d = sqrt(v) + eps
    eta = lr sqrt(1 - beta2**t) / (1 - beta1**t);  f = final_lr * lr / base_lr
    lower = f (1 - 1 / (gamma t + 1)),  upper = f (1 + 1 / (gamma t))
    p = p - clip(eta / d, lower, upper) * m
    """
    if hp[7] != 0.0:
        _adabound_loop(param, grad, state, column, common, hp, step, True)
    else:
        _adabound_loop(param, grad, state, column, common, hp, step, False)


@njit(**UNFUSED_INLINE)
def _adabound_loop(param, grad, state, column, common, hp, step, amsbound):
    t = param.dtype.type
    lr, beta1, beta2, final_lr, gamma = hp[0], hp[1], hp[2], hp[3], hp[4]
    eps, weight_decay, base_lr = hp[5], hp[6], hp[8]
    factor, clip, l1 = gradient_options(common, t)
    step_size = t(lr * np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step))
    bound = final_lr * lr / base_lr
    lower = t(bound * (1.0 - 1.0 / (gamma * step + 1.0)))
    upper = t(bound * (1.0 + 1.0 / (gamma * step)))
    b1, one_minus_b1 = t(beta1), t(1.0 - beta1)
    b2, one_minus_b2 = t(beta2), t(1.0 - beta2)
    eps, l2 = t(eps), t(weight_decay)
    exp_avg = state[0, column : column + param.size]
    exp_avg_sq = state[1, column : column + param.size]
    max_exp_avg_sq = state[2, column : column + param.size]
    for j in range(param.size):
        g = gradient(grad[j], param[j], factor, clip, l1)
        if l2 != 0:
            g = g + l2 * param[j]
        m = b1 * exp_avg[j] + one_minus_b1 * g
        v = b2 * exp_avg_sq[j] + one_minus_b2 * g * g
        exp_avg[j] = m
        exp_avg_sq[j] = v
        if amsbound:
            v = np.maximum(max_exp_avg_sq[j], v)
            max_exp_avg_sq[j] = v
        rate = clamp(step_size / (np.sqrt(v) + eps), lower, upper)
        param[j] = param[j] - rate * m


# --------------------------------------------------------------------------------------------
# Lookahead synchronization (not a step kernel: no gradients, called every k steps)
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
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


# --------------------------------------------------------------------------------------------
# Gradient statistics for clip_norm and the non-finite policies (one read of every gradient)
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED_INLINE)
def _chunk_sum_of_squares(grad):
    """Sum of squares of a chunk in float64, in a fixed order whatever the machine or threads.

    Eight accumulators take elements ``j = 0, 1, ..., 7 (mod 8)``; they are added in order
    at the end, then the remainder. Fixed lanes let LLVM vectorize without reassociation.
    """
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    body = grad.size - grad.size % 8
    for j in range(0, body, 8):
        x0, x1, x2, x3 = (
            np.float64(grad[j]),
            np.float64(grad[j + 1]),
            np.float64(grad[j + 2]),
            np.float64(grad[j + 3]),
        )
        x4, x5, x6, x7 = (
            np.float64(grad[j + 4]),
            np.float64(grad[j + 5]),
            np.float64(grad[j + 6]),
            np.float64(grad[j + 7]),
        )
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
        s4 += x4 * x4
        s5 += x5 * x5
        s6 += x6 * x6
        s7 += x7 * x7
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(body, grad.size):
        total += np.float64(grad[j]) * np.float64(grad[j])
    return total


@njit(**UNFUSED_INLINE)
def _chunk_statistics(k, work, grad_addresses, like, sum_of_squares, nonfinite):
    array, start, stop = work[k, 0], work[k, 1], work[k, 2]
    grad = view(grad_addresses[array], start, stop, like)
    total = _chunk_sum_of_squares(grad)
    sum_of_squares[k] = total
    bad = False
    if not np.isfinite(total):  # a NaN/Inf element, or squares past float64's range
        for j in range(grad.size):
            if not np.isfinite(grad[j]):
                bad = True
                break
    nonfinite[k] = bad


@njit(**UNFUSED)
def grad_statistics_serial(work, grad_addresses, like, sum_of_squares, nonfinite):
    """Per work chunk: the float64 sum of squares of the gradient and whether it holds NaN/Inf.

    The chunks are fixed by the work table, so the partial sums (and their sum, taken in chunk
    order by the caller) are bitwise identical for any number of threads.
    """
    for k in range(work.shape[0]):
        _chunk_statistics(k, work, grad_addresses, like, sum_of_squares, nonfinite)


@njit(**UNFUSED_PARALLEL)
def grad_statistics_parallel(work, grad_addresses, like, sum_of_squares, nonfinite):
    for k in prange(work.shape[0]):
        _chunk_statistics(k, work, grad_addresses, like, sum_of_squares, nonfinite)


# --------------------------------------------------------------------------------------------
# max_norm: rescale the columns of 2-D parameters after the update
# --------------------------------------------------------------------------------------------
@njit(**UNFUSED)
def max_norm_columns(param_addresses, shapes, radii, like):
    """Each column ``w[:, c]`` of a 2-D parameter whose L2 norm exceeds ``r`` becomes ``r``.

    w[:, c] <- w[:, c] * (r / ||w[:, c]||)     only where ||w[:, c]|| > r

    ``shapes`` holds (rows, columns) per array, columns = 0 for arrays to leave alone (not
    2-D, or no max_norm in their group); ``radii`` holds ``r`` per array. Column norms are
    accumulated in float64 row by row, a fixed order. Columns at or below ``r`` are untouched.
    """
    t = like.dtype.type
    for array in range(shapes.shape[0]):
        rows, cols = shapes[array, 0], shapes[array, 1]
        if cols == 0:
            continue
        weights = view(param_addresses[array], 0, rows * cols, like)
        norms = np.zeros(cols)
        for i in range(rows):
            for c in range(cols):
                x = np.float64(weights[i * cols + c])
                norms[c] += x * x
        radius = radii[array]
        scale = np.empty(cols, like.dtype)
        for c in range(cols):
            norm = np.sqrt(norms[c])
            scale[c] = t(radius / norm) if norm > radius else t(1.0)
        for i in range(rows):
            for c in range(cols):
                if scale[c] != 1:
                    weights[i * cols + c] = weights[i * cols + c] * scale[c]
