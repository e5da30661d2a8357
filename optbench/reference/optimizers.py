"""Reference optimizer updates: the ``torch.optim`` pseudo-code, one NumPy line per line.

Each function performs step ``step`` (1 on the first call) of one algorithm on one parameter
array, in place, with ``state`` a dict of NumPy arrays named as in ``torch.optim`` (created on
the first step). Scalars are Python floats, so under NumPy's promotion rules a float32 array
stays float32 and every scalar is rounded to float32 before use, as in the kernels.
"""

import math

import numpy as np


def _signed(grad, maximize):
    return -grad if maximize else grad.copy()


def lerp(start, end, weight):
    """``torch.lerp(start, end, weight)`` for a scalar weight, in the arrays' dtype:
    ``start + w (end - start)`` for ``|w| < 1/2``, else ``end - (end - start) (1 - w)``."""
    dtype = start.dtype.type
    w = dtype(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (dtype(1.0) - w)


def sgd(param, grad, state, step, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """SGD: ``b_t = mu b_{t-1} + (1 - tau) g_t`` (``b_1 = g_1``), ``p -= lr * b_t``.

    With ``nesterov`` the step direction is ``g_t + mu b_t``; with ``weight_decay`` the gradient
    gains ``weight_decay * p``.
    """
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    if momentum != 0:
        if step == 1:
            state["momentum_buffer"] = g.copy()
        else:
            state["momentum_buffer"] = momentum * state["momentum_buffer"] + (1.0 - dampening) * g
        buf = state["momentum_buffer"]
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


def adagrad(
    param,
    grad,
    state,
    step,
    *,
    lr,
    lr_decay,
    weight_decay,
    initial_accumulator_value,
    eps,
    maximize,
):
    """Adagrad: ``s_t = s_{t-1} + g_t^2``, ``p -= clr_t * g_t / (sqrt(s_t) + eps)``.

    ``clr_t = lr / (1 + (t - 1) lr_decay)``.
    """
    if step == 1:
        state["sum"] = np.full_like(param, initial_accumulator_value)
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    clr = lr / (1.0 + (step - 1) * lr_decay)
    state["sum"] = state["sum"] + g * g
    param -= clr * g / (np.sqrt(state["sum"]) + eps)


def adadelta(param, grad, state, step, *, lr, rho, eps, weight_decay, maximize):
    """Adadelta: ``v_t = rho v_{t-1} + (1 - rho) g_t^2``,
    ``d_t = sqrt(u_{t-1} + eps) / sqrt(v_t + eps) g_t``, ``u_t = rho u_{t-1} + (1 - rho) d_t^2``,
    ``p -= lr * d_t``."""
    if step == 1:
        state["square_avg"] = np.zeros_like(param)
        state["acc_delta"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    state["square_avg"] = rho * state["square_avg"] + (1.0 - rho) * g * g
    delta = np.sqrt(state["acc_delta"] + eps) / np.sqrt(state["square_avg"] + eps) * g
    state["acc_delta"] = rho * state["acc_delta"] + (1.0 - rho) * delta * delta
    param -= lr * delta


def rprop(param, grad, state, step, *, lr, etas, step_sizes, maximize):
    """Rprop: per element, the step size grows by ``etaplus`` while the gradient keeps its
    sign and shrinks by ``etaminus`` when it flips (that step is skipped and forgotten),
    within ``step_sizes``; ``p -= sign(g) * step_size``."""
    etaminus, etaplus = etas
    low, high = step_sizes
    if step == 1:
        state["prev"] = np.zeros_like(param)
        state["step_size"] = np.full_like(param, lr)
    g = _signed(grad, maximize)
    product = g * state["prev"]
    scale = np.where(product > 0, etaplus, np.where(product < 0, etaminus, 1.0))
    scale = np.where(np.isnan(product), np.nan, scale).astype(param.dtype)
    state["step_size"] = np.clip(state["step_size"] * scale, low, high)
    g = np.where(product < 0, 0.0, g).astype(param.dtype)
    param -= np.sign(g) * state["step_size"]
    state["prev"] = g


def asgd(param, grad, state, step, *, lr, lambd, alpha, t0, weight_decay, maximize):
    """ASGD: ``p = p (1 - lambd eta) - eta g``; ``ax = p`` while ``mu = 1``, else
    ``ax += mu (p - ax)``; then ``eta = lr / (1 + lambd lr t)^alpha`` and
    ``mu = 1 / max(1, t - t0)`` for the next step (``eta_1 = lr``, ``mu_1 = 1``)."""
    if step == 1:
        state["ax"] = np.zeros_like(param)
        state["eta"] = float(lr)
        state["mu"] = 1.0
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    eta, mu = state["eta"], state["mu"]
    param *= param.dtype.type(1.0 - lambd * eta)
    param -= param.dtype.type(eta) * g
    if mu != 1.0:
        state["ax"] += (param - state["ax"]) * param.dtype.type(mu)
    else:
        state["ax"] = param.copy()
    state["eta"] = lr / (1.0 + lambd * lr * step) ** alpha
    state["mu"] = 1.0 / max(1.0, step - t0)


def adopt(
    param, grad, state, step, *, lr, betas, eps, weight_decay, decoupled_weight_decay, maximize
):
    """ADOPT: step 1 sets ``v = g^2`` only; then ``n = clip(g / max(sqrt(v_{t-1}), eps), c_t)``
    with ``c_t = (t - 1)^(1/4)``, ``m = lerp(m, n, 1 - b1)``, ``p -= lr m`` and
    ``v_t = b2 v_{t-1} + (1 - b2) g^2``: the second moment of earlier gradients only."""
    beta1, beta2 = betas
    dtype = param.dtype.type
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if weight_decay != 0 and not decoupled_weight_decay:
        g = g + dtype(weight_decay) * param
    if step == 1:
        state["exp_avg_sq"] = state["exp_avg_sq"] + g * g
        return
    if decoupled_weight_decay:
        param *= dtype(1.0 - lr * weight_decay)
    denom = np.maximum(np.sqrt(state["exp_avg_sq"]), dtype(eps))
    limit = dtype((step - 1.0) ** 0.25)
    normed = np.clip(g / denom, -limit, limit)
    state["exp_avg"] = lerp(state["exp_avg"], normed, 1.0 - beta1)
    param -= dtype(lr) * state["exp_avg"]
    state["exp_avg_sq"] = dtype(beta2) * state["exp_avg_sq"] + dtype(1.0 - beta2) * g * g


def ademamix_schedules(step, *, betas, alpha, beta3_warmup, alpha_warmup):
    """This step's ``(alpha, beta3)``: ``alpha`` grows linearly from 0 over ``alpha_warmup``
    steps; the half-life ``f(b) = log(1/2) / log(b + 1e-8) - 1`` grows linearly from beta1's to
    beta3's over ``beta3_warmup`` steps, ``beta3 = 0.5 ** (1 / (f + 1))``."""
    beta1, _, beta3 = betas
    if alpha_warmup is not None and step < alpha_warmup:
        alpha = step / alpha_warmup * alpha
    if beta3_warmup is not None and step < beta3_warmup:
        a = step / beta3_warmup
        start = math.log(0.5) / math.log(beta1 + 1e-8) - 1.0
        end = math.log(0.5) / math.log(beta3 + 1e-8) - 1.0
        beta3 = 0.5 ** (1.0 / ((1.0 - a) * start + a * end + 1.0))
    return alpha, beta3


def ademamix(
    param,
    grad,
    state,
    step,
    *,
    lr,
    betas,
    alpha,
    beta3_warmup,
    alpha_warmup,
    eps,
    weight_decay,
    maximize,
):
    """AdEMAMix: a fast EMA ``m1`` (beta1, bias-corrected) and a slow one ``m2`` (beta3, not
    corrected) mixed as ``m1_hat + alpha m2``, over Adam's ``sqrt(v_hat) + eps``;
    ``p -= lr (update + weight_decay p)``."""
    beta1, beta2, _ = betas
    dtype = param.dtype.type
    if step == 1:
        for name in ("exp_avg_fast", "exp_avg_slow", "exp_avg_sq"):
            state[name] = np.zeros_like(param)
    alpha_t, beta3 = ademamix_schedules(
        step, betas=betas, alpha=alpha, beta3_warmup=beta3_warmup, alpha_warmup=alpha_warmup
    )
    g = _signed(grad, maximize)
    if beta1 != 0:
        state["exp_avg_fast"] = dtype(beta1) * state["exp_avg_fast"] + dtype(1.0 - beta1) * g
    else:
        state["exp_avg_fast"] = g.copy()
    state["exp_avg_slow"] = dtype(beta3) * state["exp_avg_slow"] + dtype(1.0 - beta3) * g
    state["exp_avg_sq"] = dtype(beta2) * state["exp_avg_sq"] + dtype(1.0 - beta2) * g * g
    bias_correction1 = 1.0 - beta1**step
    denom = np.sqrt(state["exp_avg_sq"]) / dtype(math.sqrt(1.0 - beta2**step)) + dtype(eps)
    fast = state["exp_avg_fast"] / dtype(bias_correction1)
    update = (fast + dtype(alpha_t) * state["exp_avg_slow"]) / denom
    update = update + dtype(weight_decay) * param
    param -= dtype(lr) * update


def adan(param, grad, state, step, *, lr, betas, eps, weight_decay, no_prox, maximize):
    """Adan: with ``d = g_t - g_{t-1}`` (0 at step 1), ``m`` the EMA of g (beta1), ``diff``
    of d (beta2), ``n`` of ``(g + beta2 d)^2`` (beta3); ``D = sqrt(n / bc3) + eps``,
    ``p -= lr / bc1 * m / D + lr beta2 / bc2 * diff / D``; then ``p /= 1 + lr wd`` (or, with
    ``no_prox``, ``p *= 1 - lr wd`` before the step); ``bc_i = 1 - beta_i^t``."""
    beta1, beta2, beta3 = betas
    dtype = param.dtype.type
    g = _signed(grad, maximize)
    if step == 1:
        for name in ("exp_avg", "exp_avg_sq", "exp_avg_diff"):
            state[name] = np.zeros_like(param)
        state["neg_pre_grad"] = -g
    d = g + state["neg_pre_grad"]
    state["exp_avg"] = dtype(beta1) * state["exp_avg"] + dtype(1.0 - beta1) * g
    state["exp_avg_diff"] = dtype(beta2) * state["exp_avg_diff"] + dtype(1.0 - beta2) * d
    w = d * dtype(beta2) + g
    state["exp_avg_sq"] = dtype(beta3) * state["exp_avg_sq"] + dtype(1.0 - beta3) * w * w
    denom = np.sqrt(state["exp_avg_sq"]) / dtype(math.sqrt(1.0 - beta3**step)) + dtype(eps)
    if no_prox:
        param *= dtype(1.0 - lr * weight_decay)
    param -= dtype(lr / (1.0 - beta1**step)) * (state["exp_avg"] / denom)
    param -= dtype(lr * beta2 / (1.0 - beta2**step)) * (state["exp_avg_diff"] / denom)
    if not no_prox:
        param /= dtype(1.0 + lr * weight_decay)
    state["neg_pre_grad"] = -g


def schedule_free_weights(step, scalars, *, lr, warmup_steps, r, weight_lr_power):
    """The authors' schedule for step ``step``: ``lr_t = lr min(1, t / warmup_steps)``,
    ``lr_max = max(lr_max, lr_t)``, ``w_t = t^r lr_max^weight_lr_power`` and the averaging
    weight ``c_t = w_t / sum_i w_i`` (0 while the sum is 0). Updates ``scalars`` (``lr_max``,
    ``weight_sum``) and returns ``(lr_t, c_t)``."""
    k = step - 1
    scheduled = lr * ((k + 1) / warmup_steps if k < warmup_steps else 1.0)
    lr_max = scalars["lr_max"] = max(scheduled, scalars["lr_max"])
    weight = (step**r) * (lr_max**weight_lr_power)
    weight_sum = scalars["weight_sum"] = scalars["weight_sum"] + weight
    return scheduled, (weight / weight_sum if weight_sum != 0 else 0.0)


def schedule_free_step(options, step, scalars):
    """:func:`schedule_free_weights` from a group's options (``lr``, ``warmup_steps``, ``r``,
    ``weight_lr_power``): a spec's ``prepare_step``."""
    return schedule_free_weights(
        step,
        scalars,
        lr=options["lr"],
        warmup_steps=options["warmup_steps"],
        r=options["r"],
        weight_lr_power=options["weight_lr_power"],
    )


def _schedule_free_start(param, state):
    state["z"] = param.copy()
    state["lr_max"], state["weight_sum"] = -1.0, 0.0


def schedule_free_sgd(
    param,
    grad,
    state,
    step,
    *,
    lr,
    momentum,
    weight_decay,
    warmup_steps,
    r,
    weight_lr_power,
    maximize,
):
    """Schedule-Free SGD on the training point y (the parameters): ``y = lerp(y, z, c_t) +
    lr_t (momentum (1 - c_t) - 1) g``, ``z -= lr_t g``; ``x``, the weights to evaluate, is
    ``lerp(y, z, 1 - 1 / momentum)``."""
    if step == 1:
        _schedule_free_start(param, state)
    dtype = param.dtype.type
    lr_t, ckp1 = schedule_free_weights(
        step, state, lr=lr, warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power
    )
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + dtype(weight_decay) * param
    param[...] = lerp(param, state["z"], ckp1) + dtype(lr_t * (momentum * (1.0 - ckp1) - 1.0)) * g
    state["z"] = state["z"] - dtype(lr_t) * g


def schedule_free_adamw(
    param,
    grad,
    state,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    warmup_steps,
    r,
    weight_lr_power,
    maximize,
):
    """Schedule-Free AdamW on the training point y: the gradient over Adam's bias-corrected
    ``sqrt(v) + eps``, plus ``weight_decay * y``, steps y and z as Schedule-Free SGD's does
    with ``beta1`` for the momentum."""
    beta1, beta2 = betas
    if step == 1:
        _schedule_free_start(param, state)
        state["exp_avg_sq"] = np.zeros_like(param)
    dtype = param.dtype.type
    lr_t, ckp1 = schedule_free_weights(
        step, state, lr=lr, warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power
    )
    g = _signed(grad, maximize)
    state["exp_avg_sq"] = dtype(beta2) * state["exp_avg_sq"] + dtype(1.0 - beta2) * g * g
    denom = np.sqrt(state["exp_avg_sq"] / dtype(1.0 - beta2**step)) + dtype(eps)
    normalized = g / denom
    if weight_decay != 0:
        normalized = normalized + dtype(weight_decay) * param
    step_y = dtype(lr_t * (beta1 * (1.0 - ckp1) - 1.0))
    param[...] = lerp(param, state["z"], ckp1) + step_y * normalized
    state["z"] = state["z"] - dtype(lr_t) * normalized


def trust_ratio(weights, update):
    """``||weights|| / ||update||`` (norms in float64), 1 where either is 0 or NaN."""
    norm_w = math.sqrt(float(np.sum(np.square(weights, dtype=np.float64))))
    norm_u = math.sqrt(float(np.sum(np.square(update, dtype=np.float64))))
    return norm_w / norm_u if norm_w > 0 and norm_u > 0 else 1.0


def lamb(
    param,
    grad,
    state,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    bias_correction,
    exclude_1d,
    maximize,
):
    """LAMB: Adam's direction plus decay, ``r = m_hat / (sqrt(v_hat) + eps) + wd p``, scaled per
    array by the trust ratio ``||p|| / ||r||``: ``p -= lr ratio r``. With ``exclude_1d`` a 1-D
    array has neither decay nor trust ratio; without ``bias_correction`` m and v are used
    as they are."""
    beta1, beta2 = betas
    dtype = param.dtype.type
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    excluded = exclude_1d and param.ndim <= 1
    g = _signed(grad, maximize)
    state["exp_avg"] = dtype(beta1) * state["exp_avg"] + dtype(1.0 - beta1) * g
    state["exp_avg_sq"] = dtype(beta2) * state["exp_avg_sq"] + dtype(1.0 - beta2) * g * g
    bc1 = 1.0 - beta1**step if bias_correction else 1.0
    bc2 = 1.0 - beta2**step if bias_correction else 1.0
    denom = np.sqrt(state["exp_avg_sq"] / dtype(bc2)) + dtype(eps)
    update = state["exp_avg"] / dtype(bc1) / denom
    if not excluded:
        update = update + dtype(weight_decay) * param
    ratio = 1.0 if excluded else trust_ratio(param, update)
    param -= dtype(lr * ratio) * update


def lars(
    param,
    grad,
    state,
    step,
    *,
    lr,
    momentum,
    dampening,
    weight_decay,
    nesterov,
    trust_coefficient,
    eps,
    exclude_1d,
    maximize,
):
    """LARS: ``g = (g + wd p) ratio`` with ``ratio = trust_coefficient ||p|| / (||g|| + wd ||p||
    + eps)`` per array (1 where a norm is 0 or NaN; 1 and no decay for a 1-D array with
    ``exclude_1d``), then SGD's momentum and ``p -= lr g``."""
    dtype = param.dtype.type
    excluded = exclude_1d and param.ndim <= 1
    decay = 0.0 if excluded else weight_decay
    g = _signed(grad, maximize)
    norm_p = math.sqrt(float(np.sum(np.square(param, dtype=np.float64))))
    norm_g = math.sqrt(float(np.sum(np.square(g, dtype=np.float64))))
    ratio = 1.0
    if norm_p > 0 and norm_g > 0 and not excluded:
        ratio = trust_coefficient * norm_p / (norm_g + decay * norm_p + eps)
    g = (g + dtype(decay) * param) * dtype(ratio)
    if momentum != 0:
        if step == 1:
            state["momentum_buffer"] = g.copy()
        else:
            state["momentum_buffer"] = (
                dtype(momentum) * state["momentum_buffer"] + dtype(1.0 - dampening) * g
            )
        g = g + dtype(momentum) * state["momentum_buffer"] if nesterov else state["momentum_buffer"]
    param -= dtype(lr) * g


def adafactor_shapes(shape):
    """``(row_var, col_var)`` shapes of Adafactor's factored second moment of an array of
    ``shape`` (2 or more dimensions; the last two are factored): its last, then its second
    last dimension reduced to 1."""
    return (*shape[:-1], 1), (*shape[:-2], 1, shape[-1])


def adafactor(param, grad, state, step, *, lr, beta2_decay, eps, d, weight_decay, maximize):
    """Adafactor, as ``torch.optim.Adafactor``.

    ``beta_t = 1 - t^beta2_decay``; an array of 2 or more dimensions keeps the means of
    ``g^2`` over its rows and columns, ``R = beta_t R + (1 - beta_t) mean_{-1}(g^2)`` and
    ``C = beta_t C + (1 - beta_t) mean_{-2}(g^2)``, whose product ``R C / max(mean(R), eps1)``
    estimates ``v``; a smaller one keeps ``v = beta_t v + (1 - beta_t) g^2``. Then
    ``u = g / sqrt(max(v, eps1^2))``, ``p = p (1 - lr lambda) - a u / max(1, rms(u) / d)``
    with ``a = max(eps2, rms(p_{t-1})) min(lr, t^-1/2)``. ``eps1=None`` is the dtype's
    machine epsilon. The maxima of Python floats keep torch's: a NaN norm gives ``eps2`` and
    1. An empty array is left as it is (torch divides 0 by 0 there).
    """
    g = _signed(grad, maximize)
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = float(np.finfo(param.dtype).eps)
    factored = param.ndim > 1
    if step == 1:
        if factored:
            row, column = adafactor_shapes(param.shape)
            state["row_var"] = np.zeros(row, param.dtype)
            state["col_var"] = np.zeros(column, param.dtype)
        else:
            state["variance"] = np.zeros_like(param)
    if param.size == 0:
        return
    weight = step**beta2_decay
    rho = min(lr, 1.0 / step**0.5)
    alpha = max(eps2, float(np.linalg.norm(param)) / param.size**0.5) * rho
    if weight_decay != 0:
        param *= 1.0 - lr * weight_decay
    squares = g * g
    if factored:
        row_mean = np.sum(squares, axis=-1, keepdims=True) / param.dtype.type(g.shape[-1])
        column_mean = np.sum(squares, axis=-2, keepdims=True) / param.dtype.type(g.shape[-2])
        state["row_var"] = lerp(state["row_var"], row_mean, weight)
        state["col_var"] = lerp(state["col_var"], column_mean, weight)
        row_scale = np.maximum(np.mean(state["row_var"], axis=-2, keepdims=True), eps1)
        estimate = state["row_var"] * state["col_var"] / row_scale
    else:
        state["variance"] = lerp(state["variance"], squares, weight)
        estimate = state["variance"]
    update = g / np.sqrt(np.maximum(estimate, eps1 * eps1))
    denom = max(1.0, float(np.linalg.norm(update)) / (update.size**0.5 * d))
    param -= (alpha / denom) * update


def newton_schulz(matrix, coefficients, steps, eps):
    """``steps`` quintic Newton-Schulz iterations towards the orthogonal factor of ``matrix``
    (2-D), in its dtype: ``X = M / max(||M||_F, eps)``, then ``A = X X^T``,
    ``X = a X + (b A + c A A) X``, on the wide orientation (``M^T`` for a tall matrix, the
    result transposed back). With Muon's coefficients the singular values end near 1 (within
    about 0.7 to 1.2), not at 1."""
    a, b, c = coefficients
    tall = matrix.shape[0] > matrix.shape[1]
    x = matrix.T if tall else matrix
    x = x / np.maximum(np.linalg.norm(x), x.dtype.type(eps))
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


def muon_lr(lr, adjust_lr_fn, shape):
    """Muon's learning rate for a matrix of ``shape`` (A, B): ``lr sqrt(max(1, A / B))`` for
    ``"original"`` (and None), ``0.2 lr sqrt(max(A, B))`` for ``"match_rms_adamw"`` (the
    update's rms then near AdamW's)."""
    rows, columns = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, columns))
    return lr * math.sqrt(max(1.0, rows / columns)) if columns else lr


def muon(
    param,
    grad,
    state,
    step,
    *,
    lr,
    weight_decay,
    momentum,
    nesterov,
    ns_coefficients,
    eps,
    ns_steps,
    adjust_lr_fn,
    maximize,
):
    """Muon, as ``torch.optim.Muon`` in the parameter's dtype (torch orthogonalizes in
    bfloat16): ``b_t = lerp(b_{t-1}, g_t, 1 - mu)``, ``u_t = lerp(g_t, b_t, mu)`` with
    ``nesterov`` (else ``b_t``), ``O_t`` = :func:`newton_schulz` of ``u_t``,
    ``p = p (1 - lr lambda) - muon_lr(lr) O_t``."""
    g = _signed(grad, maximize)
    if step == 1:
        state["momentum_buffer"] = np.zeros_like(param)
    state["momentum_buffer"] = lerp(state["momentum_buffer"], g, 1.0 - momentum)
    update = lerp(g, state["momentum_buffer"], momentum) if nesterov else state["momentum_buffer"]
    if update.size:
        update = newton_schulz(update, ns_coefficients, ns_steps, eps)
    param *= 1.0 - lr * weight_decay
    param -= muon_lr(lr, adjust_lr_fn, param.shape) * update


def muon_adamw(param, grad, state, step, *, adamw_betas, adamw_eps, **options):
    """:func:`muon` on a matrix, AdamW (decoupled decay) with ``adamw_betas`` and
    ``adamw_eps`` on any other array; both with the same ``lr`` and ``weight_decay``."""
    if param.ndim == 2:
        muon(param, grad, state, step, **options)
        return
    shared = {k: options[k] for k in ("lr", "weight_decay", "maximize")}
    adam(
        param,
        grad,
        state,
        step,
        betas=adamw_betas,
        eps=adamw_eps,
        amsgrad=False,
        decoupled_weight_decay=True,
        **shared,
    )


def prodigy_beta3(options):
    """Prodigy's beta3: ``sqrt(beta2)`` where the option is None."""
    beta3 = options["beta3"]
    return math.sqrt(options["betas"][1]) if beta3 is None else beta3


def prodigy_rates(options, d, k):
    """``(dlr, s_coef)`` of a Prodigy step after ``k`` steps at estimate ``d``: ``dlr = d lr
    bc`` (``bc = sqrt(1 - beta2^(k+1)) / (1 - beta1^(k+1))`` with ``use_bias_correction``,
    else 1) and the weight of g in s, ``(d / d0) dlr`` (``(d / d0) d`` with
    ``safeguard_warmup``)."""
    beta1, beta2 = options["betas"]
    correction = 1.0
    if options["use_bias_correction"]:
        correction = (1.0 - beta2 ** (k + 1)) ** 0.5 / (1.0 - beta1 ** (k + 1))
    dlr = d * options["lr"] * correction
    ratio = d / options["d0"]
    return dlr, ratio * d if options["safeguard_warmup"] else ratio * dlr


def prodigy_estimate(d, d_max, options, numerator, denominator):
    """The new ``(d, d_max)``: ``d_hat = d_coef numerator / denominator``; d jumps to d_hat
    while it is still d0; ``d_max = max(d_max, d_hat)``; ``d = min(d_max, d growth_rate)``."""
    d_hat = options["d_coef"] * numerator / denominator
    if d == options["d0"]:
        d = max(d, d_hat)
    d_max = max(d_max, d_hat)
    return min(d_max, d * options["growth_rate"]), d_max


def prodigy(params, grads, states, step, options):
    """Prodigy (Mishchenko and Defazio 2023), as the authors' ``prodigyopt.Prodigy``, over
    every array at once (``options[i]``: array i's group options; the shared scalars ``d``,
    ``d_max``, ``d_numerator`` and ``k`` are the first array's and are written to every state).

    With ``dlr = d lr bc`` and g (plus ``lambda p`` without ``decouple``):
    ``m = beta1 m + d (1 - beta1) g``, ``v = beta2 v + d^2 (1 - beta2) g^2``,
    ``s = beta3 s + (d / d0) dlr g``; ``N = beta3 N + sum (d / d0) dlr g . (p0 - p)``,
    ``D = sum |s|_1``; where ``D > 0``, d moves to ``d_coef N / D`` (see
    :func:`prodigy_estimate`) and ``p = p (1 - lambda dlr) - dlr m / (sqrt(v) + d eps)`` with
    the new d. A group with lr 0 is left as it is.
    """
    for param, state in zip(params, states, strict=True):
        if "p0" not in state:
            state.update(p0=param.copy(), s=np.zeros_like(param))
            state.update(exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
            state.update(d=options[0]["d0"], d_max=options[0]["d0"], d_numerator=0.0, k=0.0)
    first, shared = options[0], states[0]
    d, k = shared["d"], shared["k"]
    numerator, denominator = shared["d_numerator"] * prodigy_beta3(first), 0.0
    rates = [prodigy_rates(o, d, k)[0] for o in options]
    for param, grad, state, o in zip(params, grads, states, options, strict=True):
        if o["lr"] == 0:
            continue
        beta1, beta2 = o["betas"]
        g = _signed(grad, o["maximize"])
        if o["weight_decay"] != 0 and not o["decouple"]:
            g = g + o["weight_decay"] * param
        dlr, s_coef = prodigy_rates(o, d, k)
        difference = (state["p0"] - param).astype(np.float64)
        numerator += (d / o["d0"]) * dlr * float(np.sum(g.astype(np.float64) * difference))
        state["exp_avg"] = state["exp_avg"] * beta1 + d * (1.0 - beta1) * g
        state["exp_avg_sq"] = state["exp_avg_sq"] * beta2 + d * d * (1.0 - beta2) * g * g
        state["s"] = state["s"] * prodigy_beta3(o) + s_coef * g
        denominator += float(np.sum(np.abs(state["s"].astype(np.float64))))
    if denominator == 0:
        return
    d, d_max = prodigy_estimate(d, shared["d_max"], first, numerator, denominator)
    for param, state, o, dlr in zip(params, states, options, rates, strict=True):
        if o["lr"] == 0:
            continue
        denom = np.sqrt(state["exp_avg_sq"]) + d * o["eps"]
        if o["weight_decay"] != 0 and o["decouple"]:
            param += (-o["weight_decay"] * dlr) * param
        param += (-dlr) * (state["exp_avg"] / denom)
    for state in states:
        state.update(d=d, d_max=d_max, d_numerator=numerator, k=k + 1.0)


def rmsprop(
    param, grad, state, step, *, lr, alpha, eps, weight_decay, momentum, centered, maximize
):
    """RMSprop: ``v_t = alpha v_{t-1} + (1 - alpha) g_t^2``, ``p -= lr * g_t / (sqrt(v_t) + eps)``.

    ``centered`` subtracts the square of ``a_t = alpha a_{t-1} + (1 - alpha) g_t`` from ``v_t``
    under the root; ``momentum`` accumulates ``b_t = mu b_{t-1} + g_t / denom`` and steps by it.
    """
    if step == 1:
        state["square_avg"] = np.zeros_like(param)
        if momentum > 0:
            state["momentum_buffer"] = np.zeros_like(param)
        if centered:
            state["grad_avg"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    state["square_avg"] = alpha * state["square_avg"] + (1.0 - alpha) * g * g
    if centered:
        state["grad_avg"] = alpha * state["grad_avg"] + (1.0 - alpha) * g
        avg = state["square_avg"] - state["grad_avg"] * state["grad_avg"]
        denom = np.sqrt(avg) + eps
    else:
        denom = np.sqrt(state["square_avg"]) + eps
    if momentum > 0:
        state["momentum_buffer"] = momentum * state["momentum_buffer"] + g / denom
        param -= lr * state["momentum_buffer"]
    else:
        param -= lr * g / denom


def adam(
    param,
    grad,
    state,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    amsgrad,
    maximize,
    decoupled_weight_decay=False,
):
    """Adam (Kingma & Ba 2015) with L2 or decoupled (AdamW, Loshchilov & Hutter 2019) decay.

    L2: ``g += weight_decay * p``; decoupled: ``p *= 1 - lr * weight_decay`` first. Then
    ``m_t = b1 m + (1 - b1) g``, ``v_t = b2 v + (1 - b2) g^2`` (AMSGrad: ``v_max = max(v_max,
    v_t)`` replaces ``v_t`` below), ``p -= lr / (1 - b1^t) * m_t / (sqrt(v_t) / sqrt(1 - b2^t)
    + eps)``.
    """
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if decoupled_weight_decay:
        param *= 1.0 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * param
    state["exp_avg"] = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * g * g
    v = state["exp_avg_sq"]
    if amsgrad:
        state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        v = state["max_exp_avg_sq"]
    step_size = lr / (1.0 - beta1**step)
    bias_correction2_sqrt = (1.0 - beta2**step) ** 0.5
    param -= step_size * state["exp_avg"] / (np.sqrt(v) / bias_correction2_sqrt + eps)


def adamax(param, grad, state, step, *, lr, betas, eps, weight_decay, maximize):
    """Adamax: ``m_t = b1 m + (1 - b1) g``, ``u_t = max(b2 u, |g| + eps)``,
    ``p -= lr / (1 - b1^t) * m_t / u_t``."""
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_inf"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    state["exp_avg"] = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    state["exp_inf"] = np.maximum(beta2 * state["exp_inf"], np.abs(g) + eps)
    clr = lr / (1.0 - beta1**step)
    param -= clr * state["exp_avg"] / state["exp_inf"]


def radam(
    param, grad, state, step, *, lr, betas, eps, weight_decay, maximize, decoupled_weight_decay
):
    """RAdam: Adam's moments; while the variance estimate is untrustworthy (``rho_t <= 5``) an
    SGD-with-momentum step ``p -= lr * m_hat``, afterwards the rectified adaptive step
    ``p -= m_hat * lr * sqrt(1 - b2^t) / (sqrt(v_t) + eps) * r_t``, with ``rho_inf = 2 / (1 - b2)
    - 1``, ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)`` and
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``."""
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if decoupled_weight_decay:
        param *= 1.0 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * param
    state["exp_avg"] = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * g * g
    m_hat = state["exp_avg"] / (1.0 - beta1**step)
    bias_correction2 = 1.0 - beta2**step
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2**step / bias_correction2
    if rho_t > 5.0:
        rect = np.sqrt(
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        )
        adaptive = bias_correction2**0.5 / (np.sqrt(state["exp_avg_sq"]) + eps)
        param -= m_hat * lr * adaptive * rect
    else:
        param -= m_hat * lr


def lion(param, grad, state, step, *, lr, betas, weight_decay, maximize):
    """Lion: ``c = b1 m + (1 - b1) g``, ``p = p (1 - lr wd) - lr sign(c)``,
    ``m_t = b2 m + (1 - b2) g``."""
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    c = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    param *= 1.0 - lr * weight_decay
    param -= lr * np.sign(c)
    state["exp_avg"] = beta2 * state["exp_avg"] + (1.0 - beta2) * g


def global_grad_scale(grads, clip_norm):
    """``torch.nn.utils.clip_grad_norm_``'s factor: ``min(1, c / (||g||_2 + 1e-6))`` over all
    gradients (NaN when the norm is NaN), the norm taken in float64."""
    norm = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads))
    scale = clip_norm / (norm + 1e-6)
    return scale if scale < 1.0 or np.isnan(scale) else 1.0


def gradient_with_extras(param, grad, grad_scale=1.0, clip_value=None, l1=0.0, maximize=False):
    """``clip(grad_scale * grad, -clip_value, clip_value)``, then ``+ l1 * sign(p)`` (``-``
    when maximizing: the algorithm negates g, and the L1 term comes after that negation); a
    new array, or ``grad`` itself where none of them applies."""
    g = grad_scale * grad if grad_scale != 1.0 else grad
    if clip_value is not None:
        g = np.clip(g, -clip_value, clip_value)
    if l1 != 0:
        g = g - l1 * np.sign(param) if maximize else g + l1 * np.sign(param)
    return g


def step_with_extras(
    algorithm,
    param,
    grad,
    state,
    step,
    *,
    grad_scale=1.0,
    clip_value=None,
    l1=0.0,
    max_norm=None,
    maximize=False,
    **options,
):
    """One step of ``algorithm`` with the gradient transform and constraint every optimizer has.

    ``g = clip(grad_scale * grad, -clip_value, clip_value)``, negated if ``maximize``, then
    ``+ l1 * sign(p)``, then the algorithm (which adds its own weight decay). After the update,
    with ``max_norm = r``, every column ``w[:, c]`` of a 2-D parameter whose L2 norm exceeds
    ``r`` is rescaled to norm ``r``.
    """
    g = gradient_with_extras(param, grad, grad_scale, clip_value, l1, maximize)
    g = grad.copy() if g is grad else g
    algorithm(param, g, state, step, maximize=maximize, **options)
    constrain(param, max_norm)


def constrain(param, max_norm):
    """Rescale every column of a 2-D ``param`` whose L2 norm exceeds ``max_norm`` to it."""
    if max_norm is not None and param.ndim == 2:
        norms = np.sqrt(np.sum(np.square(param, dtype=np.float64), axis=0))
        over = norms > max_norm
        factors = (max_norm / norms[over]).astype(param.dtype)
        param[:, over] = param[:, over] * factors


def model_step(algorithm, params, grads, states, step, options, *, coupled=False, grad_scale=1.0):
    """One step of every array, with the extras of every optimizer (``options[i]``: array i's
    group options): ``algorithm`` array by array (:func:`step_with_extras`), or, where it is
    ``coupled`` (Prodigy), once over all arrays after each gradient's transform."""
    if not coupled:
        for param, grad, state, o in zip(params, grads, states, options, strict=True):
            step_with_extras(algorithm, param, grad, state, step, grad_scale=grad_scale, **o)
        return
    transformed, plain = [], []
    for param, grad, o in zip(params, grads, options, strict=True):
        extras = (o["clip_value"], o["l1"], o["maximize"])
        g = gradient_with_extras(param, grad, grad_scale, *extras)
        transformed.append(grad.copy() if g is grad else g)
        plain.append({k: v for k, v in o.items() if k not in ("clip_value", "l1", "max_norm")})
    algorithm(params, transformed, states, step, plain)
    for param, o in zip(params, options, strict=True):
        constrain(param, o["max_norm"])


def nadam(
    param,
    grad,
    state,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    momentum_decay,
    decoupled_weight_decay,
    maximize,
):
    """NAdam: ``mu_t = b1 (1 - 0.5 * 0.96^(t psi))``, ``P_t = prod mu_i``; Adam's moments;
    ``d = sqrt(v_t / (1 - b2^t)) + eps``;
    ``p -= lr (1 - mu_t) / (1 - P_t) * g / d + lr mu_{t+1} / (1 - P_t mu_{t+1}) * m_t / d``."""
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
        state["mu_product"] = 1.0
    g = _signed(grad, maximize)
    if decoupled_weight_decay:
        param *= 1.0 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * param
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    state["mu_product"] *= mu
    state["exp_avg"] = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * g * g
    denom = np.sqrt(state["exp_avg_sq"] / (1.0 - beta2**step)) + eps
    param -= lr * (1.0 - mu) / (1.0 - state["mu_product"]) * g / denom
    param -= lr * mu_next / (1.0 - state["mu_product"] * mu_next) * state["exp_avg"] / denom


def adabound(
    param,
    grad,
    state,
    step,
    *,
    lr,
    betas,
    final_lr,
    gamma,
    eps,
    weight_decay,
    amsbound,
    base_lr,
    maximize,
):
    """AdaBound: Adam's step ``lr sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v_t) + eps)`` clipped per
    element to ``[f (1 - 1/(gamma t + 1)), f (1 + 1/(gamma t))]``, ``f = final_lr lr / base_lr``,
    times ``m_t``."""
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
        if amsbound:
            state["max_exp_avg_sq"] = np.zeros_like(param)
    g = _signed(grad, maximize)
    if weight_decay != 0:
        g = g + weight_decay * param
    state["exp_avg"] = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * g * g
    v = state["exp_avg_sq"]
    if amsbound:
        state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        v = state["max_exp_avg_sq"]
    step_size = lr * (1.0 - beta2**step) ** 0.5 / (1.0 - beta1**step)
    bound = final_lr * lr / base_lr
    lower = bound * (1.0 - 1.0 / (gamma * step + 1.0))
    upper = bound * (1.0 + 1.0 / (gamma * step)) if gamma * step else np.inf
    rate = np.clip(step_size / (np.sqrt(v) + eps), lower, upper)
    param -= rate * state["exp_avg"]
