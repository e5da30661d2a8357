"""AdaBelief in plain NumPy, one line per line of the paper's algorithm 1: the test oracle."""

import numpy as np


def adabelief(
    param, grad, state, step, *, lr, betas, eps, weight_decay, decoupled_weight_decay, maximize
):
    """``s_t = b2 s_{t-1} + (1 - b2) (g_t - m_t)^2 + eps``, the belief in the gradient, in
    place of Adam's ``v_t``; ``p -= lr / (1 - b1^t) * m_t / (sqrt(s_t / (1 - b2^t)) + eps)``."""
    beta1, beta2 = betas
    if step == 1:
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_var"] = np.zeros_like(param)
    g = -grad if maximize else grad.copy()
    if decoupled_weight_decay:
        param *= 1.0 - lr * weight_decay
    elif weight_decay != 0:
        g = g + weight_decay * param
    state["exp_avg"] = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    belief = g - state["exp_avg"]
    state["exp_avg_var"] = beta2 * state["exp_avg_var"] + (1.0 - beta2) * belief * belief + eps
    denom = np.sqrt(state["exp_avg_var"] / (1.0 - beta2**step)) + eps
    param -= lr / (1.0 - beta1**step) * state["exp_avg"] / denom
