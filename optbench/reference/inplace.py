"""In-place NumPy versions of the optimizers: every operation writes into the state, the
parameter or preallocated scratch buffers (``out=``), with no other temporaries.

Each ``update(param, grad, state, scratch, step, options)`` performs step ``step`` (1 first) on
one array; ``scratch`` is a list of buffers of the parameter's shape (the spec's
``inplace_scratch`` says how many). They implement the default options that the throughput
tables time; another value of an option that changes the math raises ``ValueError`` naming it.
They are the careful-NumPy peer of ``optbench throughput``, not a test oracle.
"""

import math

import numpy as np

from .optimizers import schedule_free_step

# options of the gradient transform every optbench optimizer has, and their neutral values
EXTRAS = {"clip_value": None, "l1": 0.0, "max_norm": None}


def require(options, **neutral):
    for name, value in neutral.items():
        if options.get(name, value) != value:
            raise ValueError(
                f"the in-place NumPy peer implements {name}={value!r} only, got {options[name]!r}"
            )


def _moments(exp_avg, exp_avg_sq, grad, scratch, beta1, beta2):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2, in place (scratch holds the products)."""
    np.multiply(exp_avg, beta1, out=exp_avg)
    np.multiply(grad, 1.0 - beta1, out=scratch)
    np.add(exp_avg, scratch, out=exp_avg)
    _square_average(exp_avg_sq, grad, scratch, beta2)


def _square_average(average, x, scratch, beta):
    """average = beta average + (1 - beta) x^2, in place (scratch holds the products)."""
    np.multiply(average, beta, out=average)
    np.multiply(x, x, out=scratch)
    np.multiply(scratch, 1.0 - beta, out=scratch)
    np.add(average, scratch, out=average)


def sgd(param, grad, state, scratch, step, o):
    """p -= lr g."""
    require(o, momentum=0.0, weight_decay=0.0, maximize=False)
    np.multiply(grad, o["lr"], out=scratch[0])
    np.subtract(param, scratch[0], out=param)


def adagrad(param, grad, state, scratch, step, o):
    """s += g^2;  p -= clr g / (sqrt(s) + eps),  clr = lr / (1 + (t - 1) lr_decay)."""
    require(o, weight_decay=0.0, maximize=False)
    if "sum" not in state:
        state["sum"] = np.full_like(param, o["initial_accumulator_value"])
    total, s = state["sum"], scratch[0]
    np.multiply(grad, grad, out=s)
    np.add(total, s, out=total)
    np.sqrt(total, out=s)
    np.add(s, o["eps"], out=s)
    np.divide(grad, s, out=s)
    np.multiply(s, o["lr"] / (1.0 + (step - 1) * o["lr_decay"]), out=s)
    np.subtract(param, s, out=param)


def adadelta(param, grad, state, scratch, step, o):
    """v = rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) g;  u = rho u + (1 - rho) d^2;
    p -= lr d."""
    require(o, weight_decay=0.0, maximize=False)
    if "square_avg" not in state:
        state["square_avg"] = np.zeros_like(param)
        state["acc_delta"] = np.zeros_like(param)
    v, u, s, d = state["square_avg"], state["acc_delta"], scratch[0], scratch[1]
    rho, eps = o["rho"], o["eps"]
    _square_average(v, grad, s, rho)
    np.add(v, eps, out=s)
    np.sqrt(s, out=s)
    np.add(u, eps, out=d)
    np.sqrt(d, out=d)
    np.divide(d, s, out=d)
    np.multiply(d, grad, out=d)
    np.multiply(u, rho, out=u)
    np.multiply(d, d, out=s)
    np.multiply(s, 1.0 - rho, out=s)
    np.add(u, s, out=u)
    np.multiply(d, o["lr"], out=d)
    np.subtract(param, d, out=param)


def rprop(param, grad, state, scratch, step, o):
    """With c = sign(g prev) in {-1, 0, 1}: s = clip(s (1 + a c + b c^2), min, max), where
    a = (etaplus - etaminus) / 2 and b = (etaplus + etaminus) / 2 - 1 give etaplus, etaminus
    or 1 without a mask; prev = g (1 - (c^2 - c) / 2), that is 0 where the sign flipped;
    p -= sign(prev) s."""
    require(o, maximize=False)
    if "prev" not in state:
        state["prev"] = np.zeros_like(param)
        state["step_size"] = np.full_like(param, o["lr"])
    prev, size, c, s = state["prev"], state["step_size"], scratch[0], scratch[1]
    etaminus, etaplus = o["etas"]
    low, high = o["step_sizes"]
    np.multiply(grad, prev, out=c)
    np.sign(c, out=c)
    np.multiply(c, c, out=s)
    np.subtract(s, c, out=prev)
    np.multiply(prev, -0.5, out=prev)
    np.add(prev, 1.0, out=prev)
    np.multiply(prev, grad, out=prev)
    np.multiply(s, (etaplus + etaminus) / 2.0 - 1.0, out=s)
    np.multiply(c, (etaplus - etaminus) / 2.0, out=c)
    np.add(c, s, out=c)
    np.add(c, 1.0, out=c)
    np.multiply(size, c, out=size)
    np.clip(size, low, high, out=size)
    np.sign(prev, out=c)
    np.multiply(c, size, out=c)
    np.subtract(param, c, out=param)


def asgd(param, grad, state, scratch, step, o):
    """p = p (1 - lambd eta) - eta g;  ax = p while mu = 1, else ax += mu (p - ax); eta and mu
    as torch schedules them (see the reference)."""
    require(o, weight_decay=0.0, maximize=False)
    if "ax" not in state:
        state["ax"] = np.zeros_like(param)
        state["eta"], state["mu"] = float(o["lr"]), 1.0
    ax, s = state["ax"], scratch[0]
    eta, mu = state["eta"], state["mu"]
    np.multiply(param, 1.0 - o["lambd"] * eta, out=param)
    np.multiply(grad, eta, out=s)
    np.subtract(param, s, out=param)
    if mu != 1.0:
        np.subtract(param, ax, out=s)
        np.multiply(s, mu, out=s)
        np.add(ax, s, out=ax)
    else:
        np.copyto(ax, param)
    lr = o["lr"]
    state["eta"] = lr / (1.0 + o["lambd"] * lr * step) ** o["alpha"]
    state["mu"] = 1.0 / max(1.0, step - o["t0"])


def adopt(param, grad, state, scratch, step, o):
    """Step 1: v = g^2. Then n = clip(g / max(sqrt(v), eps), (t - 1)^(1/4));
    m += (1 - b1) (n - m);  p -= lr m;  v = b2 v + (1 - b2) g^2."""
    require(o, weight_decay=0.0, maximize=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    m, v, s = state["exp_avg"], state["exp_avg_sq"], scratch[0]
    beta1, beta2 = o["betas"]
    if abs(1.0 - beta1) >= 0.5:
        raise ValueError(f"the in-place NumPy peer implements betas[0] > 0.5 only, got {beta1!r}")
    if step == 1:
        np.multiply(grad, grad, out=s)
        np.add(v, s, out=v)
        return
    limit = (step - 1.0) ** 0.25
    np.sqrt(v, out=s)
    np.maximum(s, o["eps"], out=s)
    np.divide(grad, s, out=s)
    np.clip(s, -limit, limit, out=s)
    np.subtract(s, m, out=s)
    np.multiply(s, 1.0 - beta1, out=s)
    np.add(m, s, out=m)
    np.multiply(m, o["lr"], out=s)
    np.subtract(param, s, out=param)
    _square_average(v, grad, s, beta2)


def ademamix(param, grad, state, scratch, step, o):
    """Adam's moments with beta1 and beta2, a slow average s = b3 s + (1 - b3) g;
    p -= lr (m / (1 - b1^t) + alpha s) / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    require(o, weight_decay=0.0, maximize=False, beta3_warmup=None, alpha_warmup=None)
    beta1, beta2, beta3 = o["betas"]
    if beta1 == 0:
        raise ValueError("the in-place NumPy peer implements betas[0] > 0 only, got 0")
    if "exp_avg_fast" not in state:
        for name in ("exp_avg_fast", "exp_avg_slow", "exp_avg_sq"):
            state[name] = np.zeros_like(param)
    fast, slow, v = state["exp_avg_fast"], state["exp_avg_slow"], state["exp_avg_sq"]
    s, d, u = scratch
    _moments(fast, v, grad, s, beta1, beta2)
    np.multiply(slow, beta3, out=slow)
    np.multiply(grad, 1.0 - beta3, out=s)
    np.add(slow, s, out=slow)
    np.sqrt(v, out=d)
    np.divide(d, math.sqrt(1.0 - beta2**step), out=d)
    np.add(d, o["eps"], out=d)
    np.divide(fast, 1.0 - beta1**step, out=u)
    np.multiply(slow, o["alpha"], out=s)
    np.add(u, s, out=u)
    np.divide(u, d, out=u)
    np.multiply(u, o["lr"], out=u)
    np.subtract(param, u, out=param)


def adan(param, grad, state, scratch, step, o):
    """d = g + neg_pre_grad;  m, diff, n: EMAs of g, d and (g + b2 d)^2;
    p -= lr / bc1 m / D + lr b2 / bc2 diff / D, D = sqrt(n) / sqrt(bc3) + eps;
    neg_pre_grad = -g."""
    require(o, weight_decay=0.0, maximize=False)
    if "exp_avg" not in state:
        for name in ("exp_avg", "exp_avg_sq", "exp_avg_diff"):
            state[name] = np.zeros_like(param)
        state["neg_pre_grad"] = np.negative(grad)
    m, n = state["exp_avg"], state["exp_avg_sq"]
    diff, neg = state["exp_avg_diff"], state["neg_pre_grad"]
    d, w, s = scratch
    beta1, beta2, beta3 = o["betas"]
    np.add(grad, neg, out=d)
    np.multiply(m, beta1, out=m)
    np.multiply(grad, 1.0 - beta1, out=s)
    np.add(m, s, out=m)
    np.multiply(diff, beta2, out=diff)
    np.multiply(d, 1.0 - beta2, out=s)
    np.add(diff, s, out=diff)
    np.multiply(d, beta2, out=w)
    np.add(w, grad, out=w)
    _square_average(n, w, s, beta3)
    np.sqrt(n, out=d)
    np.divide(d, math.sqrt(1.0 - beta3**step), out=d)
    np.add(d, o["eps"], out=d)
    np.divide(m, d, out=s)
    np.multiply(s, o["lr"] / (1.0 - beta1**step), out=s)
    np.subtract(param, s, out=param)
    np.divide(diff, d, out=s)
    np.multiply(s, o["lr"] * beta2 / (1.0 - beta2**step), out=s)
    np.subtract(param, s, out=param)
    np.negative(grad, out=neg)


def _schedule_free_point(param, z, step_direction, s, ckp1, y_step, lr_t):
    """y = lerp(y, z, c) + y_step d;  z -= lr_t d, in place (s is scratch)."""
    np.subtract(z, param, out=s)
    if abs(ckp1) < 0.5:
        np.multiply(s, ckp1, out=s)
        np.add(param, s, out=param)
    else:
        np.multiply(s, 1.0 - ckp1, out=s)
        np.subtract(z, s, out=param)
    np.multiply(step_direction, y_step, out=s)
    np.add(param, s, out=param)
    np.multiply(step_direction, lr_t, out=s)
    np.subtract(z, s, out=z)


def _schedule_free_weights(state, step, o, param):
    if "z" not in state:
        state["z"] = param.copy()
        state["lr_max"], state["weight_sum"] = -1.0, 0.0
    return schedule_free_step(o, step, state)


def schedule_free_sgd(param, grad, state, scratch, step, o):
    """y = lerp(y, z, c_t) + lr_t (momentum (1 - c_t) - 1) g;  z -= lr_t g."""
    require(o, weight_decay=0.0, maximize=False)
    lr_t, ckp1 = _schedule_free_weights(state, step, o, param)
    y_step = lr_t * (o["momentum"] * (1.0 - ckp1) - 1.0)
    _schedule_free_point(param, state["z"], grad, scratch[0], ckp1, y_step, lr_t)


def schedule_free_adamw(param, grad, state, scratch, step, o):
    """v = b2 v + (1 - b2) g^2;  n = g / (sqrt(v / (1 - b2^t)) + eps);
    y = lerp(y, z, c_t) + lr_t (b1 (1 - c_t) - 1) n;  z -= lr_t n."""
    require(o, weight_decay=0.0, maximize=False)
    lr_t, ckp1 = _schedule_free_weights(state, step, o, param)
    if "exp_avg_sq" not in state:
        state["exp_avg_sq"] = np.zeros_like(param)
    v, s, n = state["exp_avg_sq"], scratch[0], scratch[1]
    beta1, beta2 = o["betas"]
    _square_average(v, grad, s, beta2)
    np.divide(v, 1.0 - beta2**step, out=n)
    np.sqrt(n, out=n)
    np.add(n, o["eps"], out=n)
    np.divide(grad, n, out=n)
    y_step = lr_t * (beta1 * (1.0 - ckp1) - 1.0)
    _schedule_free_point(param, state["z"], n, s, ckp1, y_step, lr_t)


def lamb(param, grad, state, scratch, step, o):
    """Adam's moments;  r = (m / bc1) / (sqrt(v / bc2) + eps);  p -= lr ||p|| / ||r|| r."""
    require(o, weight_decay=0.0, maximize=False, bias_correction=True, exclude_1d=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    m, v, s, r = state["exp_avg"], state["exp_avg_sq"], scratch[0], scratch[1]
    beta1, beta2 = o["betas"]
    _moments(m, v, grad, s, beta1, beta2)
    np.divide(v, 1.0 - beta2**step, out=r)
    np.sqrt(r, out=r)
    np.add(r, o["eps"], out=r)
    np.divide(m, 1.0 - beta1**step, out=s)
    np.divide(s, r, out=r)
    flat_p, flat_r = param.reshape(-1), r.reshape(-1)
    norm_p = math.sqrt(float(np.dot(flat_p, flat_p)))
    norm_r = math.sqrt(float(np.dot(flat_r, flat_r)))
    ratio = norm_p / norm_r if norm_p > 0 and norm_r > 0 else 1.0
    np.multiply(r, o["lr"] * ratio, out=r)
    np.subtract(param, r, out=param)


def lars(param, grad, state, scratch, step, o):
    """p -= lr ratio g, ratio = trust_coefficient ||p|| / (||g|| + eps)."""
    require(o, momentum=0.0, weight_decay=0.0, maximize=False, exclude_1d=False)
    flat_p, flat_g = param.reshape(-1), grad.reshape(-1)
    norm_p = math.sqrt(float(np.dot(flat_p, flat_p)))
    norm_g = math.sqrt(float(np.dot(flat_g, flat_g)))
    ratio = 1.0
    if norm_p > 0 and norm_g > 0:
        ratio = o["trust_coefficient"] * norm_p / (norm_g + o["eps"])
    np.multiply(grad, o["lr"] * ratio, out=scratch[0])
    np.subtract(param, scratch[0], out=param)


def adafactor(param, grad, state, scratch, step, o):
    """Adafactor: v (or its row and column factors) = lerp(v, g^2, t^beta2_decay);
    u = g / sqrt(max(v, eps1^2));  p -= max(eps2, rms(p)) min(lr, t^-1/2) u / max(1, rms(u) / d)."""
    require(o, weight_decay=0.0, maximize=False)
    if param.size == 0:
        return
    eps1, eps2 = o["eps"]
    eps1 = float(np.finfo(param.dtype).eps) if eps1 is None else eps1
    weight = step ** o["beta2_decay"]
    flat_p = param.reshape(-1)
    alpha = max(eps2, math.sqrt(float(np.dot(flat_p, flat_p)) / param.size))
    alpha *= min(o["lr"], step**-0.5)
    s, u = scratch
    np.multiply(grad, grad, out=s)
    if param.ndim > 1:
        if "row_var" not in state:
            state["row_var"] = np.zeros((*param.shape[:-1], 1), param.dtype)
            state["col_var"] = np.zeros((*param.shape[:-2], 1, param.shape[-1]), param.dtype)
        rows, columns = state["row_var"], state["col_var"]
        rows += weight * (np.mean(s, axis=-1, keepdims=True) - rows)
        columns += weight * (np.mean(s, axis=-2, keepdims=True) - columns)
        np.multiply(rows, columns, out=u)
        np.divide(u, np.maximum(np.mean(rows, axis=-2, keepdims=True), eps1), out=u)
    else:
        if "variance" not in state:
            state["variance"] = np.zeros_like(param)
        v = state["variance"]
        np.subtract(s, v, out=s)
        np.multiply(s, weight, out=s)
        np.add(v, s, out=v)
        np.copyto(u, v)
    np.maximum(u, eps1 * eps1, out=u)
    np.sqrt(u, out=u)
    np.divide(grad, u, out=u)
    flat_u = u.reshape(-1)
    denom = max(1.0, math.sqrt(float(np.dot(flat_u, flat_u)) / param.size) / o["d"])
    np.multiply(u, alpha / denom, out=u)
    np.subtract(param, u, out=param)


def rmsprop(param, grad, state, scratch, step, o):
    """v = alpha v + (1 - alpha) g^2;  p -= lr g / (sqrt(v) + eps)."""
    require(o, weight_decay=0.0, momentum=0.0, centered=False, maximize=False)
    if "square_avg" not in state:
        state["square_avg"] = np.zeros_like(param)
    v, s = state["square_avg"], scratch[0]
    _square_average(v, grad, s, o["alpha"])
    np.sqrt(v, out=s)
    np.add(s, o["eps"], out=s)
    np.divide(grad, s, out=s)
    np.multiply(s, o["lr"], out=s)
    np.subtract(param, s, out=param)


def adam(param, grad, state, scratch, step, o):
    """Adam / AdamW: p *= 1 - lr wd (decoupled); moments; p -= lr/bc1 m / (sqrt(v/bc2) + eps).

    As the reference: ``sqrt(v) / sqrt(bc2) + eps`` with ``bc_i = 1 - beta_i**t``.
    """
    require(o, amsgrad=False, maximize=False)
    if not o["decoupled_weight_decay"]:
        require(o, weight_decay=0.0)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    (beta1, beta2), s = o["betas"], scratch[0]
    if o["decoupled_weight_decay"] and o["weight_decay"] != 0:
        np.multiply(param, 1.0 - o["lr"] * o["weight_decay"], out=param)
    _moments(state["exp_avg"], state["exp_avg_sq"], grad, s, beta1, beta2)
    np.sqrt(state["exp_avg_sq"], out=s)
    np.divide(s, math.sqrt(1.0 - beta2**step), out=s)
    np.add(s, o["eps"], out=s)
    np.divide(state["exp_avg"], s, out=s)
    np.multiply(s, o["lr"] / (1.0 - beta1**step), out=s)
    np.subtract(param, s, out=param)


def adamax(param, grad, state, scratch, step, o):
    """m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps);  p -= lr/bc1 m / u."""
    require(o, weight_decay=0.0, maximize=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_inf"] = np.zeros_like(param)
    (beta1, beta2), s = o["betas"], scratch[0]
    m, u = state["exp_avg"], state["exp_inf"]
    np.multiply(m, beta1, out=m)
    np.multiply(grad, 1.0 - beta1, out=s)
    np.add(m, s, out=m)
    np.abs(grad, out=s)
    np.add(s, o["eps"], out=s)
    np.multiply(u, beta2, out=u)
    np.maximum(u, s, out=u)
    np.divide(m, u, out=s)
    np.multiply(s, o["lr"] / (1.0 - beta1**step), out=s)
    np.subtract(param, s, out=param)


def radam(param, grad, state, scratch, step, o):
    """RAdam: SGD with momentum while rho_t <= 5, then the rectified adaptive step."""
    require(o, weight_decay=0.0, maximize=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    (beta1, beta2), s = o["betas"], scratch[0]
    _moments(state["exp_avg"], state["exp_avg_sq"], grad, s, beta1, beta2)
    bias_correction2 = 1.0 - beta2**step
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2**step / bias_correction2
    np.divide(state["exp_avg"], 1.0 - beta1**step, out=s)
    if rho_t > 5.0:
        rect = math.sqrt(
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        )
        adaptive = scratch[1]
        np.sqrt(state["exp_avg_sq"], out=adaptive)
        np.add(adaptive, o["eps"], out=adaptive)
        np.divide(math.sqrt(bias_correction2), adaptive, out=adaptive)
        np.multiply(s, o["lr"], out=s)
        np.multiply(s, adaptive, out=s)
        np.multiply(s, rect, out=s)
    else:
        np.multiply(s, o["lr"], out=s)
    np.subtract(param, s, out=param)


def lion(param, grad, state, scratch, step, o):
    """c = b1 m + (1 - b1) g;  p = p (1 - lr wd) - lr sign(c);  m = b2 m + (1 - b2) g."""
    require(o, maximize=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
    (beta1, beta2), s, m = o["betas"], scratch[0], state["exp_avg"]
    np.multiply(m, beta1, out=s)
    np.multiply(grad, 1.0 - beta1, out=scratch[1])
    np.add(s, scratch[1], out=s)
    if o["weight_decay"] != 0:
        np.multiply(param, 1.0 - o["lr"] * o["weight_decay"], out=param)
    np.sign(s, out=s)
    np.multiply(s, o["lr"], out=s)
    np.subtract(param, s, out=param)
    np.multiply(m, beta2, out=m)
    np.multiply(grad, 1.0 - beta2, out=s)
    np.add(m, s, out=m)


def nadam(param, grad, state, scratch, step, o):
    """NAdam: p -= lr (1 - mu_t)/(1 - P_t) g/d + lr mu_{t+1}/(1 - P_t mu_{t+1}) m/d."""
    require(o, weight_decay=0.0, maximize=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
        state["mu_product"] = 1.0
    (beta1, beta2), psi = o["betas"], o["momentum_decay"]
    denom, s = scratch
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
    state["mu_product"] *= mu
    product = state["mu_product"]
    _moments(state["exp_avg"], state["exp_avg_sq"], grad, s, beta1, beta2)
    np.divide(state["exp_avg_sq"], 1.0 - beta2**step, out=denom)
    np.sqrt(denom, out=denom)
    np.add(denom, o["eps"], out=denom)
    np.divide(grad, denom, out=s)
    np.multiply(s, o["lr"] * (1.0 - mu) / (1.0 - product), out=s)
    np.subtract(param, s, out=param)
    np.divide(state["exp_avg"], denom, out=s)
    np.multiply(s, o["lr"] * mu_next / (1.0 - product * mu_next), out=s)
    np.subtract(param, s, out=param)


def adabound(param, grad, state, scratch, step, o):
    """AdaBound: p -= clip(eta / (sqrt(v) + eps), lower, upper) m."""
    require(o, weight_decay=0.0, amsbound=False, maximize=False)
    if "exp_avg" not in state:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
    (beta1, beta2), s = o["betas"], scratch[0]
    lr, gamma = o["lr"], o["gamma"]
    _moments(state["exp_avg"], state["exp_avg_sq"], grad, s, beta1, beta2)
    step_size = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
    bound = o["final_lr"] * lr / o["base_lr"]
    lower = bound * (1.0 - 1.0 / (gamma * step + 1.0))
    upper = bound * (1.0 + 1.0 / (gamma * step)) if gamma * step else math.inf
    np.sqrt(state["exp_avg_sq"], out=s)
    np.add(s, o["eps"], out=s)
    np.divide(step_size, s, out=s)
    np.clip(s, lower, upper, out=s)
    np.multiply(s, state["exp_avg"], out=s)
    np.subtract(param, s, out=param)


# update function and number of scratch buffers, by registry name
