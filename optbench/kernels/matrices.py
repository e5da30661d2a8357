"""Muon's step on one matrix, in place: NumPy's BLAS for the Newton-Schulz products, every
other operation written into buffers kept between steps, so that a step costs the matrix
products and a few passes over the matrix (``MuonWithAdamW`` steps its other arrays with the
in-place AdamW here). The same operations, in the same order, as
``optbench.reference.optimizers.muon`` and ``adam``: the results agree to the last bits.
"""

import math

import numpy as np


def _buffers(workspace, name, shape, dtype, count):
    """``count`` buffers of ``shape`` kept in ``workspace`` under ``name`` (made anew when the
    shape or dtype changes)."""
    key = (name, np.dtype(dtype).str)
    buffers = workspace.get(key)
    if buffers is None or buffers[0].shape != shape:
        buffers = workspace[key] = [np.empty(shape, dtype) for _ in range(count)]
    return buffers


def lerp_into(start, end, weight, out):
    """``out = torch.lerp(start, end, weight)`` for a scalar weight, in place, rounded as
    ``optbench.reference.optimizers.lerp`` (``out`` may be ``start``, not ``end``)."""
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        np.subtract(end, start, out=out)
        np.multiply(out, w, out=out)
        np.add(start, out, out=out)
    else:
        np.subtract(end, start, out=out)
        np.multiply(out, start.dtype.type(1.0) - w, out=out)
        np.subtract(end, out, out=out)


def newton_schulz_into(x, scratch, coefficients, steps, eps, workspace):
    """``steps`` Newton-Schulz iterations on ``x`` (a wide matrix or the transpose of a tall
    one, written in place): ``x /= max(||x||_F, eps)``, then ``A = x x^T``,
    ``x = a x + (b A + c A A) x``; ``scratch`` has x's shape, the square products are kept in
    ``workspace``."""
    a, b, c = (x.dtype.type(k) for k in coefficients)
    rows = x.shape[0]
    gram, square = _buffers(workspace, "gram", (rows, rows), x.dtype, 2)
    np.divide(x, np.maximum(np.linalg.norm(x), x.dtype.type(eps)), out=x)
    for _ in range(steps):
        np.matmul(x, x.T, out=gram)
        np.matmul(gram, gram, out=square)
        np.multiply(square, c, out=square)
        np.multiply(gram, b, out=gram)
        np.add(gram, square, out=square)
        np.matmul(square, x, out=scratch)
        np.multiply(x, a, out=x)
        np.add(x, scratch, out=x)


def muon_lr(lr, adjust_lr_fn, shape):
    """Muon's learning rate for a matrix of ``shape`` (A, B): ``lr sqrt(max(1, A / B))`` for
    ``"original"`` (and None), ``0.2 lr sqrt(max(A, B))`` for ``"match_rms_adamw"``."""
    rows, columns = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, columns))
    return lr * math.sqrt(max(1.0, rows / columns)) if columns else lr


def muon_update(
    param,
    grad,
    state,
    step,
    workspace,
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
    **_,
):
    """One Muon step of the matrix ``param`` (see ``optbench.algorithms.MUON``)."""
    buffer = state["momentum_buffer"]
    update, work = _buffers(workspace, "muon", param.shape, param.dtype, 2)
    g = grad
    if maximize:
        g = np.negative(grad, out=work)
    lerp_into(buffer, g, 1.0 - momentum, out=update)
    np.copyto(buffer, update)
    if nesterov:
        lerp_into(g, buffer, momentum, out=update)
    if param.size:
        tall = param.shape[0] > param.shape[1]
        wide, scratch = (update.T, work.T) if tall else (update, work)
        newton_schulz_into(wide, scratch, ns_coefficients, ns_steps, eps, workspace)
    np.multiply(param, param.dtype.type(1.0 - lr * weight_decay), out=param)
    np.multiply(update, param.dtype.type(muon_lr(lr, adjust_lr_fn, param.shape)), out=update)
    np.subtract(param, update, out=param)


def adamw_update(param, grad, state, step, workspace, *, lr, betas, eps, weight_decay, maximize):
    """One AdamW step of ``param`` (decoupled decay), in place."""
    dtype = param.dtype.type
    beta1, beta2 = betas
    m, v = state["exp_avg"], state["exp_avg_sq"]
    scratch, step_ = _buffers(workspace, "adamw", param.shape, param.dtype, 2)
    g = np.negative(grad, out=step_) if maximize else grad
    np.multiply(param, dtype(1.0 - lr * weight_decay), out=param)
    np.multiply(m, dtype(beta1), out=m)
    np.multiply(g, dtype(1.0 - beta1), out=scratch)
    np.add(m, scratch, out=m)
    np.multiply(v, dtype(beta2), out=v)
    np.multiply(g, dtype(1.0 - beta2), out=scratch)
    np.multiply(scratch, g, out=scratch)
    np.add(v, scratch, out=v)
    np.sqrt(v, out=scratch)
    np.divide(scratch, dtype((1.0 - beta2**step) ** 0.5), out=scratch)
    np.add(scratch, dtype(eps), out=scratch)
    np.multiply(m, dtype(lr / (1.0 - beta1**step)), out=step_)
    np.divide(step_, scratch, out=step_)
    np.subtract(param, step_, out=param)


def muon_adamw_update(param, grad, state, step, workspace, *, adamw_betas, adamw_eps, **options):
    """Muon on a matrix, AdamW on any other array (see ``optbench.algorithms.MUON_ADAMW``)."""
    if param.ndim == 2:
        muon_update(param, grad, state, step, workspace, **options)
        return
    adamw_options = {k: options[k] for k in ("lr", "weight_decay", "maximize")}
    adamw_update(
        param, grad, state, step, workspace, betas=adamw_betas, eps=adamw_eps, **adamw_options
    )
