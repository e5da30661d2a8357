"""Reference layers: the textbook formulas, one NumPy expression per line, in float64.

The test oracle for ``optbench.nn``: each function converts its inputs to float64, applies the
formula in its docstring with whole-array NumPy operations and returns float64 results (the
caller compares them with the kernels' float32 or float64 output). Nothing here is fast or
memory-frugal. Random layers take their mask or slopes as an argument.
"""

import math

import numpy as np


def _f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


# --------------------------------------------------------------------------------------------
# normalization
# --------------------------------------------------------------------------------------------
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the trailing axes.

    mean and var (biased) are taken over the last ``len(normalized_shape)`` axes.
    """
    x, weight, bias = _f64(x, weight, bias)
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def layer_norm_backward(dy, x, normalized_shape, weight=None, eps=1e-5):
    """Gradients ``(dx, dweight, dbias)`` of :func:`layer_norm` (dweight, dbias always given).

    x_hat = (x - mean) / sqrt(var + eps),  g = dy * weight,  D = prod(normalized_shape)
    dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)   (means over a row)
    dweight = sum over rows of dy * x_hat,  dbias = sum over rows of dy
    """
    dy, x, weight = _f64(dy, x, weight)
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    rows = tuple(range(x.ndim - len(normalized_shape)))
    mean = x.mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
    x_hat = (x - mean) * rstd
    g = dy if weight is None else dy * weight
    dx = rstd * (
        g - g.mean(axis=axes, keepdims=True) - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)
    )
    return dx, (dy * x_hat).sum(axis=rows), dy.sum(axis=rows)


def rms_norm(x, normalized_shape, weight=None, eps=None):
    """``y = x / sqrt(mean(x^2) + eps) * weight`` over the trailing axes (eps: machine eps)."""
    eps = np.finfo(np.asarray(x).dtype).eps if eps is None else eps
    x, weight = _f64(x, weight)
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    y = x / np.sqrt((x**2).mean(axis=axes, keepdims=True) + eps)
    return y if weight is None else y * weight


def rms_norm_backward(dy, x, normalized_shape, weight=None, eps=None):
    """Gradients ``(dx, dweight)`` of :func:`rms_norm`.

    r = 1 / sqrt(mean(x^2) + eps),  g = dy * weight,  D = prod(normalized_shape)
    dx = r * g - x * r^3 * mean(g * x)   (means over a row)
    dweight = sum over rows of dy * x * r
    """
    eps = np.finfo(np.asarray(x).dtype).eps if eps is None else eps
    dy, x, weight = _f64(dy, x, weight)
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    rows = tuple(range(x.ndim - len(normalized_shape)))
    r = 1.0 / np.sqrt((x**2).mean(axis=axes, keepdims=True) + eps)
    g = dy if weight is None else dy * weight
    dx = r * g - x * r**3 * (g * x).mean(axis=axes, keepdims=True)
    return dx, (dy * x * r).sum(axis=rows)


def _channel_axes(x):
    """Axes reduced by BatchNorm, and the shape that broadcasts a (C,) vector against x."""
    return (0, *range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batch_norm(
    x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5
):
    """BatchNorm of x (N, C, ...): returns ``(y, new_running_mean, new_running_var)``.

    training: mean = E[x], var = E[(x - mean)^2] over axes 0, 2, ... (biased) normalize, and
        new_running_mean = (1 - momentum) running_mean + momentum mean,
        new_running_var = (1 - momentum) running_var + momentum var * M / (M - 1)
        (M values per channel: the unbiased variance); None running stats stay None.
    eval: mean = running_mean, var = running_var; running stats returned unchanged.
    y = (x - mean) / sqrt(var + eps) * weight + bias
    """
    x, running_mean, running_var, weight, bias = _f64(x, running_mean, running_var, weight, bias)
    axes, channel = _channel_axes(x)
    if training:
        mean = x.mean(axis=axes)
        var = ((x - mean.reshape(channel)) ** 2).mean(axis=axes)
        count = x.size // x.shape[1]
        if running_mean is not None:
            running_mean = (1 - momentum) * running_mean + momentum * mean
            running_var = (1 - momentum) * running_var + momentum * var * count / (count - 1)
    else:
        mean, var = running_mean, running_var
    y = (x - mean.reshape(channel)) / np.sqrt(var.reshape(channel) + eps)
    if weight is not None:
        y = y * weight.reshape(channel)
    if bias is not None:
        y = y + bias.reshape(channel)
    return y, running_mean, running_var


def batch_norm_backward(
    dy, x, weight=None, training=True, running_mean=None, running_var=None, eps=1e-5
):
    """Gradients ``(dx, dweight, dbias)`` of :func:`batch_norm` (dweight, dbias always given).

    mean, var: the batch statistics in training, running_mean and running_var in eval.
    x_hat = (x - mean) / sqrt(var + eps); sums over the M values of a channel (axes 0, 2, ...):
    dbias = sum dy,  dweight = sum dy * x_hat
    training: dx = weight / sqrt(var + eps) * (dy - dbias / M - x_hat * dweight / M)
    eval:     dx = weight / sqrt(var + eps) * dy
    """
    dy, x, weight, running_mean, running_var = _f64(dy, x, weight, running_mean, running_var)
    axes, channel = _channel_axes(x)
    if training:
        mean = x.mean(axis=axes)
        var = ((x - mean.reshape(channel)) ** 2).mean(axis=axes)
    else:
        mean, var = running_mean, running_var
    rstd = (1.0 / np.sqrt(var + eps)).reshape(channel)
    x_hat = (x - mean.reshape(channel)) * rstd
    dbias = dy.sum(axis=axes)
    dweight = (dy * x_hat).sum(axis=axes)
    scale = rstd if weight is None else rstd * weight.reshape(channel)
    if training:
        count = x.size // x.shape[1]
        mean_dy, mean_dy_x_hat = dbias / count, dweight / count
        dx = scale * (dy - mean_dy.reshape(channel) - x_hat * mean_dy_x_hat.reshape(channel))
    else:
        dx = scale * dy
    return dx, dweight, dbias


def standardize(train, data):
    """``(data - mean) / std`` with the column mean and population std of ``train``
    (a std of 0 replaced by 1).
    """
    train, data = _f64(train, data)
    mean = train.mean(axis=0)
    std = np.sqrt(((train - mean) ** 2).mean(axis=0))
    return (data - mean) / np.where(std == 0.0, 1.0, std)


# --------------------------------------------------------------------------------------------
# activations and dropout; the gradient conditions are PyTorch's (what a NaN input gets)
# --------------------------------------------------------------------------------------------
def relu(x):
    """``y = x if x > 0 else 0``, NaN kept."""
    (x,) = _f64(x)
    return np.where(x <= 0, 0.0, x)


def relu_backward(dy, x):
    """``dx = 0 if x <= 0 else dy``."""
    dy, x = _f64(dy, x)
    return np.where(x <= 0, 0.0, dy)


def leaky_relu(x, negative_slope=0.01):
    """``y = x if x > 0 else negative_slope * x``."""
    (x,) = _f64(x)
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(dy, x, negative_slope=0.01):
    """``dx = dy if x > 0 else negative_slope * dy``."""
    dy, x = _f64(dy, x)
    return np.where(x > 0, dy, negative_slope * dy)


def elu(x, alpha=1.0):
    """``y = alpha * (exp(x) - 1) if x <= 0 else x``."""
    (x,) = _f64(x)
    with np.errstate(over="ignore"):
        return np.where(x <= 0, alpha * np.expm1(x), x)


def elu_backward(dy, x, alpha=1.0):
    """``dx = dy * alpha * exp(x) if x <= 0 else dy``."""
    dy, x = _f64(dy, x)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x <= 0, dy * alpha * np.exp(x), dy)


def _per_channel(weight, x):
    """A PReLU weight of shape (1,) or (C,) broadcast against x (N, C, ...)."""
    if weight.size == 1:
        return weight.reshape(())
    return weight.reshape((1, weight.size) + (1,) * (x.ndim - 2))


def prelu(x, weight):
    """``y = x if x > 0 else weight[c] * x``, c = channel (axis 1) or one shared slope."""
    x, weight = _f64(x, weight)
    return np.where(x > 0, x, _per_channel(weight, x) * x)


def prelu_backward(dy, x, weight):
    """``(dx, dweight)``: ``dx = dy if x > 0 else weight[c] * dy``,
    ``dweight[c] = sum over x <= 0 in channel c of x * dy``.
    """
    dy, x, weight = _f64(dy, x, weight)
    dx = np.where(x > 0, dy, _per_channel(weight, x) * dy)
    contribution = np.where(x > 0, 0.0, x * dy)
    if weight.size == 1:
        return dx, contribution.sum().reshape(1)
    return dx, contribution.sum(axis=(0, *range(2, x.ndim)))


def rrelu(x, slopes):
    """``y = x * slope if x <= 0 else x``, one slope per element (drawn by the caller)."""
    x, slopes = _f64(x, slopes)
    return np.where(x <= 0, x * slopes, x)


def rrelu_backward(dy, x, slopes):
    """``dx = dy * slope if x <= 0 else dy``."""
    dy, x, slopes = _f64(dy, x, slopes)
    return np.where(x <= 0, dy * slopes, dy)


def sigmoid(x):
    """``y = 1 / (1 + exp(-x))``."""
    (x,) = _f64(x)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def sigmoid_backward(dy, y):
    """``dx = dy * y * (1 - y)``, from the output y."""
    dy, y = _f64(dy, y)
    return dy * y * (1.0 - y)


def tanh(x):
    """``y = tanh(x)``."""
    (x,) = _f64(x)
    return np.tanh(x)


def tanh_backward(dy, y):
    """``dx = dy * (1 - y^2)``, from the output y."""
    dy, y = _f64(dy, y)
    return dy * (1.0 - y * y)


_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _gelu_cdf_and_tanh(x, approximate):
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * (1.0 + np.tanh(inner)), np.tanh(inner)
    return 0.5 * (1.0 + _ERF(x / math.sqrt(2.0))), None


def gelu(x, approximate="none"):
    """``y = x Phi(x)``, Phi the normal distribution function (or its tanh approximation);
    -inf gives NaN (-inf times 0), as in torch."""
    (x,) = _f64(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return x * _gelu_cdf_and_tanh(x, approximate)[0]


def gelu_backward(dy, x, approximate="none"):
    """``dx = dy (Phi(x) + x phi(x))``, or the derivative of the tanh form."""
    dy, x = _f64(dy, x)
    with np.errstate(invalid="ignore", over="ignore"):
        cdf, tanh_inner = _gelu_cdf_and_tanh(x, approximate)
        if approximate == "tanh":
            slope = math.sqrt(2.0 / math.pi) * (1.0 + 3 * 0.044715 * x * x)
            return dy * (cdf + 0.5 * x * (1.0 - tanh_inner**2) * slope)
        return dy * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi))


def dropout(x, keep, p):
    """``y = x * keep / (1 - p)``, ``keep`` a boolean mask (drawn by the caller)."""
    (x,) = _f64(x)
    return x * np.where(keep, 1.0 / (1.0 - p), 0.0)


def dropout_backward(dy, keep, p):
    """``dx = dy * keep / (1 - p)``."""
    (dy,) = _f64(dy)
    return dy * np.where(keep, 1.0 / (1.0 - p), 0.0)


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy(logits, targets, reduction="mean"):
    """``loss_i = -log_softmax(logits_i)[targets_i]``, mean or sum over rows.

    ``log_softmax(z) = z - max(z) - log(sum(exp(z - max(z))))``.
    """
    (logits,) = _f64(logits)
    losses = -_log_softmax(logits)[np.arange(len(targets)), targets]
    return losses.mean() if reduction == "mean" else losses.sum()


def cross_entropy_backward(dloss, logits, targets, reduction="mean"):
    """``dlogits = (softmax(logits) - onehot(targets)) * dloss`` (/ N for the mean)."""
    (logits,) = _f64(logits)
    grad = np.exp(_log_softmax(logits))
    grad[np.arange(len(targets)), targets] -= 1.0
    return grad * (dloss / len(targets) if reduction == "mean" else dloss)


def mse_loss(prediction, target, reduction="mean"):
    """``mean((prediction - target)^2)`` or the sum."""
    prediction, target = _f64(prediction, target)
    squared = (prediction - target) ** 2
    return squared.mean() if reduction == "mean" else squared.sum()


def mse_loss_backward(dloss, prediction, target, reduction="mean"):
    """``dprediction = 2 * (prediction - target) * dloss`` (/ n for the mean)."""
    prediction, target = _f64(prediction, target)
    scale = dloss / prediction.size if reduction == "mean" else dloss
    return 2.0 * (prediction - target) * scale


# --------------------------------------------------------------------------------------------
# softmax, attention, embedding
# --------------------------------------------------------------------------------------------
def softmax(x, dim=-1):
    """``y = exp(x - max(x)) / sum(exp(x - max(x)))`` along ``dim``."""
    (x,) = _f64(x)
    shifted = np.exp(x - x.max(axis=dim, keepdims=True))
    return shifted / shifted.sum(axis=dim, keepdims=True)


def softmax_backward(dy, y, dim=-1):
    """``dx = y (dy - sum(y dy))``, the sum along ``dim``."""
    dy, y = _f64(dy, y)
    return y * (dy - (y * dy).sum(axis=dim, keepdims=True))


def _attention_scores(query, key, is_causal, scale):
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = scale * (query @ np.swapaxes(key, -1, -2))
    if is_causal:
        length, keys = scores.shape[-2:]
        seen = np.tril(np.ones((length, keys), dtype=bool))
        scores = np.where(seen, scores, -np.inf)
    return scores, scale


def scaled_dot_product_attention(query, key, value, is_causal=False, scale=None):
    """``softmax(scale q k^T) v`` over the last two axes, ``scale = 1 / sqrt(E)`` by default;
    with ``is_causal`` the scores above the diagonal are ``-inf``."""
    query, key, value = _f64(query, key, value)
    scores, _ = _attention_scores(query, key, is_causal, scale)
    return softmax(scores) @ value


def scaled_dot_product_attention_backward(dout, query, key, value, is_causal=False, scale=None):
    """``(dq, dk, dv)``: with ``p = softmax(s)``, ``dv = p^T dout``, ``dp = dout v^T``,
    ``ds = scale * p (dp - rowsum(p dp))``, ``dq = ds k``, ``dk = ds^T q``."""
    dout, query, key, value = _f64(dout, query, key, value)
    scores, scale = _attention_scores(query, key, is_causal, scale)
    probs = softmax(scores)
    dprobs = dout @ np.swapaxes(value, -1, -2)
    dscores = scale * softmax_backward(dprobs, probs)
    dvalue = np.swapaxes(probs, -1, -2) @ dout
    return dscores @ key, np.swapaxes(dscores, -1, -2) @ query, dvalue


def embedding(indices, weight):
    """``y[...] = weight[indices[...]]``."""
    (weight,) = _f64(weight)
    return weight[indices]


def embedding_backward(dy, indices, num_embeddings):
    """``dweight[v] = sum of dy`` over the positions where ``indices == v``."""
    (dy,) = _f64(dy)
    dweight = np.zeros((num_embeddings, dy.shape[-1]))
    np.add.at(dweight, np.asarray(indices).reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return dweight
