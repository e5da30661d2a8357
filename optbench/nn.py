"""Layers for NumPy arrays with hand-written backward passes, in the manner of
``torch.nn.functional``.

Every layer is a pair of functions: the forward returns its output and a context, the backward
takes the gradient of the loss with respect to that output and the context, and returns the
gradients with respect to the forward's array arguments::

    from optbench import nn

    h, norm_ctx = nn.layer_norm(x, 128, weight, bias)
    a, relu_ctx = nn.relu(h)
    loss, loss_ctx = nn.cross_entropy(a @ w_out, labels)
    da = nn.cross_entropy_backward(1.0, loss_ctx) @ w_out.T
    dh = nn.relu_backward(da, relu_ctx)
    dx, dweight, dbias = nn.layer_norm_backward(dh, norm_ctx)

Arrays are float32 or float64, and outputs and gradients have the input's dtype; parameters
must have the input's dtype too. Every argument is checked before any array is read or
written; a bad one raises ``TypeError`` (type, dtype) or ``ValueError`` (shape, value) naming
it. A context holds references to the forward's input or output, not copies: change those
arrays in place before the backward pass and the gradients are wrong.

Numerics: normalization statistics and loss sums are accumulated in float64, with stable
algorithms (two-pass, Welford, Chan), so a float32 input with a mean of 1e6 and a standard
deviation of 1 is normalized to float32 accuracy; every reduction is bitwise reproducible
whatever the number of Numba threads. NaN and Inf propagate as in PyTorch. Random layers
(``dropout``, ``rrelu`` in training) draw one key per call from the ``numpy.random.Generator``
passed as ``rng``: the same generator state gives the same mask on any machine and any number
of threads.
"""

import functools
import math
from typing import NamedTuple

import numpy as np

from . import validation
from .kernels import activations, attention, convolution, losses, norms

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Below this many elements a layer runs on the calling thread: waking Numba's thread pool
# costs more than the second thread saves (measured on LayerNorm and BatchNorm, 2 threads).
# So does an input the kernels cut into a single block of rows (see kernels.norms).
PARALLEL_MIN_ELEMENTS = 1 << 15
# GELU costs about 10 ns an element (erf in float64): 2 threads took 32 us instead of 51 us
# for 4096 float32 elements, forward.
GELU_PARALLEL_MIN_ELEMENTS = 1 << 12
_UINT64_MAX = np.iinfo(np.uint64).max


# --------------------------------------------------------------------------------------------
# validation and plumbing
# --------------------------------------------------------------------------------------------
def _array(name, value):
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {value.dtype}")
    return value


def _like(name, value, dtype, shape):
    """``value`` as a C-contiguous array of ``dtype`` and ``shape``, or an error naming it."""
    _array(name, value)
    if value.dtype != dtype:
        raise TypeError(f"{name} has dtype {value.dtype}; expected {dtype}")
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
    return _contiguous(value)


def _parameter(name, value, dtype, shape):
    return None if value is None else _like(name, value, dtype, shape)


def _contiguous(value):
    # np.ascontiguousarray would turn a 0-d array into a 1-d one
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)


def _generator(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator in training mode, got {type(rng).__name__}"
        )
    return rng


def _stream_key(rng):
    """One uint64 drawn from ``rng``: the key of a counter-based random stream in the kernels."""
    return rng.integers(_UINT64_MAX, dtype=np.uint64, endpoint=True)


def _check_context(ctx, kind):
    if not isinstance(ctx, kind):
        raise TypeError(f"ctx must be a {kind.__name__}, got {type(ctx).__name__}")


def _pick(kernels, x):
    """The serial or the parallel kernel of a pair, for the (rows, ...) view ``x``: parallel
    from PARALLEL_MIN_ELEMENTS elements, if the kernels cut the rows into several blocks (as
    ``kernels.norms._row_blocks``; the result is the same for either kernel)."""
    if x.size < PARALLEL_MIN_ELEMENTS:
        return kernels[0]
    rows = x.shape[0]
    row_size = max(x.size // max(rows, 1), 1)
    rows_per_block = max(-(-rows // norms.MAX_ROW_BLOCKS), -(-norms.MIN_BLOCK_ELEMENTS // row_size))
    return kernels[rows > rows_per_block]


def _pair(name):
    return getattr(norms, name + "_serial"), getattr(norms, name + "_parallel")


_LAYER_NORM_FORWARD = _pair("layer_norm_forward")
_LAYER_NORM_BACKWARD = _pair("layer_norm_backward")
_RMS_NORM_FORWARD = _pair("rms_norm_forward")
_RMS_NORM_BACKWARD = _pair("rms_norm_backward")
# BatchNorm kernels by the rank of the view: (N, C) or (N, C, L)
_BATCH_NORM_FORWARD = {2: _pair("batch_norm_2d_forward"), 3: _pair("batch_norm_nd_forward")}
_BATCH_NORM_BACKWARD = {2: _pair("batch_norm_2d_backward"), 3: _pair("batch_norm_nd_backward")}


@functools.lru_cache(maxsize=32)
def _filled(value, size, dtype):
    """Weight of ones or bias of zeros standing in for an absent parameter (kernels only read)."""
    return np.full(size, value, dtype)


_NO_ARRAY = {dtype: np.empty(0, dtype) for dtype in FLOAT_DTYPES}


def _normalized_shape(normalized_shape, x):
    if validation.is_integer(normalized_shape):
        shape = (int(normalized_shape),)
    elif isinstance(normalized_shape, tuple | list) and all(
        validation.is_integer(n) for n in normalized_shape
    ):
        shape = tuple(int(n) for n in normalized_shape)
    else:
        raise TypeError(
            f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
        )
    if not shape or min(shape) < 1:
        raise ValueError(f"normalized_shape must be non-empty and positive, got {shape}")
    if len(shape) > x.ndim or x.shape[x.ndim - len(shape) :] != shape:
        raise ValueError(f"normalized_shape {shape} is not the trailing shape of x {x.shape}")
    return shape


# --------------------------------------------------------------------------------------------
# LayerNorm and RMSNorm
# --------------------------------------------------------------------------------------------
class LayerNormContext(NamedTuple):
    """Saved by :func:`layer_norm`: the input as (rows, D), its row statistics (float64)."""

    x: np.ndarray
    shape: tuple
    normalized_shape: tuple
    weight: np.ndarray | None
    has_bias: bool
    mean: np.ndarray
    rstd: np.ndarray


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization over the trailing ``normalized_shape`` axes, as ``F.layer_norm``.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, with the mean and the biased variance
    of each row of ``D = prod(normalized_shape)`` elements (two passes over the row).

    Parameters
    ----------
    x : float32 or float64 array, shape (..., *normalized_shape)
    normalized_shape : int or tuple of ints
    weight, bias : arrays of shape ``normalized_shape`` and x's dtype, or None (1 and 0)
    eps : float >= 0

    Returns
    -------
    y : array like x
    ctx : LayerNormContext, for :func:`layer_norm_backward`
    """
    _array("x", x)
    shape = _normalized_shape(normalized_shape, x)
    weight = _parameter("weight", weight, x.dtype, shape)
    bias = _parameter("bias", bias, x.dtype, shape)
    eps = validation.real("eps", eps)
    features = math.prod(shape)
    rows = _contiguous(x).reshape(-1, features)
    y = np.empty(x.shape, x.dtype)
    mean, rstd = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    kernel = _pick(_LAYER_NORM_FORWARD, rows)
    kernel(
        rows,
        _filled(1.0, features, x.dtype) if weight is None else weight.reshape(-1),
        _filled(0.0, features, x.dtype) if bias is None else bias.reshape(-1),
        eps,
        y.reshape(rows.shape),
        mean,
        rstd,
    )
    return y, LayerNormContext(rows, x.shape, shape, weight, bias is not None, mean, rstd)


def layer_norm_backward(dy, ctx):
    """Gradients of :func:`layer_norm`: ``(dx, dweight, dbias)``, None for an absent parameter.

    With ``x_hat = (x - mean) * rstd`` and ``g = dy * weight``, per row:
    ``dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))``; summed over rows:
    ``dweight = sum(dy * x_hat)``, ``dbias = sum(dy)``.
    """
    _check_context(ctx, LayerNormContext)
    rows = ctx.x
    dy = _like("dy", dy, rows.dtype, ctx.shape)
    features = rows.shape[1]
    param_grads = ctx.weight is not None or ctx.has_bias
    dx = np.empty(ctx.shape, rows.dtype)
    dweight = np.empty(features if param_grads else 0, rows.dtype)
    dbias = np.empty(features if param_grads else 0, rows.dtype)
    kernel = _pick(_LAYER_NORM_BACKWARD, rows)
    kernel(
        dy.reshape(rows.shape),
        rows,
        _filled(1.0, features, rows.dtype) if ctx.weight is None else ctx.weight.reshape(-1),
        ctx.mean,
        ctx.rstd,
        param_grads,
        dx.reshape(rows.shape),
        dweight,
        dbias,
    )
    return (
        dx,
        None if ctx.weight is None else dweight.reshape(ctx.normalized_shape),
        dbias.reshape(ctx.normalized_shape) if ctx.has_bias else None,
    )


class RMSNormContext(NamedTuple):
    """Saved by :func:`rms_norm`: the input as (rows, D) and each row's 1 / RMS (float64)."""

    x: np.ndarray
    shape: tuple
    normalized_shape: tuple
    weight: np.ndarray | None
    rrms: np.ndarray


def rms_norm(x, normalized_shape, weight=None, eps=None):
    """RMS normalization over the trailing ``normalized_shape`` axes, as ``F.rms_norm``.

    ``y = x / sqrt(mean(x^2) + eps) * weight``, the mean over each row of
    ``D = prod(normalized_shape)`` elements.

    Parameters
    ----------
    x : float32 or float64 array, shape (..., *normalized_shape)
    normalized_shape : int or tuple of ints
    weight : array of shape ``normalized_shape`` and x's dtype, or None (1)
    eps : float >= 0, or None for the machine epsilon of x's dtype (as torch)

    Returns
    -------
    y : array like x
    ctx : RMSNormContext, for :func:`rms_norm_backward`
    """
    _array("x", x)
    shape = _normalized_shape(normalized_shape, x)
    weight = _parameter("weight", weight, x.dtype, shape)
    eps = float(np.finfo(x.dtype).eps) if eps is None else validation.real("eps", eps)
    features = math.prod(shape)
    rows = _contiguous(x).reshape(-1, features)
    y = np.empty(x.shape, x.dtype)
    rrms = np.empty(rows.shape[0])
    kernel = _pick(_RMS_NORM_FORWARD, rows)
    kernel(
        rows,
        _filled(1.0, features, x.dtype) if weight is None else weight.reshape(-1),
        eps,
        y.reshape(rows.shape),
        rrms,
    )
    return y, RMSNormContext(rows, x.shape, shape, weight, rrms)


def rms_norm_backward(dy, ctx):
    """Gradients of :func:`rms_norm`: ``(dx, dweight)``, dweight None without a weight.

    With ``r = rrms`` and ``g = dy * weight``, per row:
    ``dx = r * (g - x * r^2 * mean(g * x))``; summed over rows: ``dweight = sum(dy * x * r)``.
    """
    _check_context(ctx, RMSNormContext)
    rows = ctx.x
    dy = _like("dy", dy, rows.dtype, ctx.shape)
    features = rows.shape[1]
    param_grads = ctx.weight is not None
    dx = np.empty(ctx.shape, rows.dtype)
    dweight = np.empty(features if param_grads else 0, rows.dtype)
    kernel = _pick(_RMS_NORM_BACKWARD, rows)
    kernel(
        dy.reshape(rows.shape),
        rows,
        _filled(1.0, features, rows.dtype) if ctx.weight is None else ctx.weight.reshape(-1),
        ctx.rrms,
        param_grads,
        dx.reshape(rows.shape),
        dweight,
    )
    return dx, dweight.reshape(ctx.normalized_shape) if param_grads else None


# --------------------------------------------------------------------------------------------
# BatchNorm
# --------------------------------------------------------------------------------------------
class BatchNormContext(NamedTuple):
    """Saved by :func:`batch_norm`: the input as (N, C) or (N, C, L), the statistics used."""

    x: np.ndarray
    shape: tuple
    weight: np.ndarray | None
    has_bias: bool
    training: bool
    mean: np.ndarray
    invstd: np.ndarray


def _running_statistic(name, value, dtype, channels):
    if value is None:
        return None
    _like(name, value, dtype, channels)
    if not (value.flags.writeable and value.flags.c_contiguous):
        raise ValueError(f"{name} must be writeable and C-contiguous: it is updated in place")
    return value


def _check_no_overlap(x, running_mean, running_var, weight, bias):
    """The running statistics, written in place, must share no memory with the arrays read
    (an overlap would change ``x`` and the result) nor with each other."""
    for name, statistic in (("running_mean", running_mean), ("running_var", running_var)):
        for other_name, other in (("x", x), ("weight", weight), ("bias", bias)):
            if other is not None and np.may_share_memory(statistic, other):
                raise ValueError(f"{name} shares memory with {other_name}: it is updated in place")
    if np.may_share_memory(running_mean, running_var):
        raise ValueError("running_mean and running_var share memory: both are updated in place")


def _batch_counter(num_batches_tracked):
    if num_batches_tracked is None:
        return None
    if not (
        isinstance(num_batches_tracked, np.ndarray)
        and num_batches_tracked.dtype == np.int64
        and num_batches_tracked.shape == ()
    ):
        raise TypeError("num_batches_tracked must be a 0-d int64 numpy array (a counter)")
    if not num_batches_tracked.flags.writeable:
        raise ValueError("num_batches_tracked is read-only; it is incremented in place")
    return num_batches_tracked


def batch_norm(
    x,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=True,
    momentum=0.1,
    eps=1e-5,
    *,
    num_batches_tracked=None,
):
    """Batch normalization per channel (axis 1), as ``F.batch_norm`` and ``nn.BatchNorm*d``.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``; mean and var are per channel
    (axis 1), over the ``M = N * H * W`` values of the other axes.

    * training: the batch mean and *biased* variance normalize; the running statistics, if
      given, are updated in place with the batch mean and the *unbiased* variance:
      ``running = (1 - momentum) * running + momentum * batch``;
    * eval (``training=False``): ``running_mean`` and ``running_var`` normalize.

    Parameters
    ----------
    x : float32 or float64 array, shape (N, C) or (N, C, *spatial)
    running_mean, running_var : writeable arrays of shape (C,) and x's dtype, or both None
        (training only: nothing to update)
    weight, bias : arrays of shape (C,) and x's dtype, or None (1 and 0)
    training : bool
    momentum : float in [0, 1], or None for the cumulative average
        ``momentum = 1 / num_batches_tracked`` (as ``nn.BatchNorm*d(momentum=None)``)
    eps : float >= 0
    num_batches_tracked : 0-d int64 array or None
        Batch counter, incremented in place when training updates the running statistics;
        needed for ``momentum=None``.

    Returns
    -------
    y : array like x
    ctx : BatchNormContext, for :func:`batch_norm_backward`
    """
    _array("x", x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, C, ...), got {x.shape}")
    channels = x.shape[1:2]
    running_mean = _running_statistic("running_mean", running_mean, x.dtype, channels)
    running_var = _running_statistic("running_var", running_var, x.dtype, channels)
    weight = _parameter("weight", weight, x.dtype, channels)
    bias = _parameter("bias", bias, x.dtype, channels)
    training = validation.flag("training", training)
    momentum = None if momentum is None else validation.real("momentum", momentum, 0.0, 1.0)
    eps = validation.real("eps", eps)
    num_batches_tracked = _batch_counter(num_batches_tracked)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be arrays or both be None")
    tracking = running_mean is not None
    if not training and not tracking:
        raise ValueError("running_mean and running_var are needed in eval mode (training=False)")
    if training and tracking and momentum is None and num_batches_tracked is None:
        raise ValueError("momentum=None (cumulative average) needs num_batches_tracked")
    values_per_channel = x.shape[0] * math.prod(x.shape[2:])
    if training and values_per_channel < 2:
        raise ValueError(f"x needs more than 1 value per channel in training, got shape {x.shape}")

    factor = 0.0
    if training and tracking:
        if num_batches_tracked is not None:
            num_batches_tracked += 1
        factor = 1.0 / int(num_batches_tracked) if momentum is None else momentum
    n_samples, n_channels = x.shape[0], x.shape[1]
    run_length = math.prod(x.shape[2:])
    # (N, C) kernels for inputs without spatial extent: down columns, vectorized across them
    view_shape = (n_samples, n_channels) if run_length == 1 else (n_samples, n_channels, run_length)
    view = _contiguous(x).reshape(view_shape)
    if tracking:
        _check_no_overlap(view, running_mean, running_var, weight, bias)
    kernel = _pick(_BATCH_NORM_FORWARD[view.ndim], view)
    y = np.empty(x.shape, x.dtype)
    mean, invstd = np.empty(n_channels), np.empty(n_channels)
    kernel(
        view,
        _filled(1.0, n_channels, x.dtype) if weight is None else weight,
        _filled(0.0, n_channels, x.dtype) if bias is None else bias,
        running_mean if tracking else _NO_ARRAY[x.dtype],
        running_var if tracking else _NO_ARRAY[x.dtype],
        training,
        factor,
        eps,
        y.reshape(view.shape),
        mean,
        invstd,
    )
    return y, BatchNormContext(view, x.shape, weight, bias is not None, training, mean, invstd)


def batch_norm_backward(dy, ctx):
    """Gradients of :func:`batch_norm`: ``(dx, dweight, dbias)``, None for an absent parameter.

    With ``x_hat = (x - mean) * invstd`` and sums over a channel's M = N * L values:
    ``dbias = sum(dy)``, ``dweight = sum(dy * x_hat)``;
    training: ``dx = weight * invstd * (dy - dbias / M - x_hat * dweight / M)`` (the gradient
    flows through the batch statistics); eval: ``dx = weight * invstd * dy``.
    """
    _check_context(ctx, BatchNormContext)
    view = ctx.x
    dy = _like("dy", dy, view.dtype, ctx.shape)
    n_channels = view.shape[1]
    param_grads = ctx.weight is not None or ctx.has_bias
    dx = np.empty(ctx.shape, view.dtype)
    dweight = np.empty(n_channels if param_grads else 0, view.dtype)
    dbias = np.empty(n_channels if param_grads else 0, view.dtype)
    kernel = _pick(_BATCH_NORM_BACKWARD[view.ndim], view)
    kernel(
        dy.reshape(view.shape),
        view,
        _filled(1.0, n_channels, view.dtype) if ctx.weight is None else ctx.weight,
        ctx.mean,
        ctx.invstd,
        ctx.training,
        param_grads,
        dx.reshape(view.shape),
        dweight,
        dbias,
    )
    return dx, dweight if ctx.weight is not None else None, dbias if ctx.has_bias else None


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------
def _elementwise(kernel, x, *options):
    """``kernel(x, *options, y)`` over the flattened input; returns (contiguous x, y)."""
    x = _contiguous(x)
    y = np.empty(x.shape, x.dtype)
    kernel(x.reshape(-1), *options, y.reshape(-1))
    return x, y


def _elementwise_backward(kernel, saved, dy, *options):
    """``kernel(saved, dy, *options, dx)`` over flattened arrays; returns dx."""
    dy = _like("dy", dy, saved.dtype, saved.shape)
    dx = np.empty(saved.shape, saved.dtype)
    kernel(saved.reshape(-1), dy.reshape(-1), *options, dx.reshape(-1))
    return dx


class ReLUContext(NamedTuple):
    x: np.ndarray


class LeakyReLUContext(NamedTuple):
    x: np.ndarray
    negative_slope: float


class ELUContext(NamedTuple):
    x: np.ndarray
    alpha: float


class PReLUContext(NamedTuple):
    x: np.ndarray
    weight: np.ndarray


class RReLUContext(NamedTuple):
    x: np.ndarray
    lower: float
    upper: float
    training: bool
    key: np.uint64


class SigmoidContext(NamedTuple):
    y: np.ndarray


class TanhContext(NamedTuple):
    y: np.ndarray


def relu(x):
    """``y = max(x, 0)``; NaN stays NaN. Returns ``(y, ctx)``."""
    _array("x", x)
    x, y = _elementwise(activations.relu_forward, x)
    return y, ReLUContext(x)


def relu_backward(dy, ctx):
    """``dx = dy where x > 0, else 0``."""
    _check_context(ctx, ReLUContext)
    return _elementwise_backward(activations.relu_backward, ctx.x, dy)


def leaky_relu(x, negative_slope=0.01):
    """``y = x if x > 0 else negative_slope * x``. Returns ``(y, ctx)``."""
    _array("x", x)
    negative_slope = validation.real("negative_slope", negative_slope, -math.inf)
    x, y = _elementwise(activations.leaky_relu_forward, x, negative_slope)
    return y, LeakyReLUContext(x, negative_slope)


def leaky_relu_backward(dy, ctx):
    """``dx = dy if x > 0 else negative_slope * dy``."""
    _check_context(ctx, LeakyReLUContext)
    return _elementwise_backward(activations.leaky_relu_backward, ctx.x, dy, ctx.negative_slope)


def elu(x, alpha=1.0):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``. Returns ``(y, ctx)``."""
    _array("x", x)
    alpha = validation.real("alpha", alpha, -math.inf)
    x, y = _elementwise(activations.elu_forward, x, alpha)
    return y, ELUContext(x, alpha)


def elu_backward(dy, ctx):
    """``dx = dy if x > 0 else dy * alpha * exp(x)``."""
    _check_context(ctx, ELUContext)
    return _elementwise_backward(activations.elu_backward, ctx.x, dy, ctx.alpha)


def _channels_view(x, n_parameters):
    """(N, C, L) view of x for a per-channel parameter of ``n_parameters`` values (axis 1)."""
    if n_parameters == 1:
        return x.reshape(1, 1, x.size)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def prelu(x, weight):
    """``y = x if x > 0 else weight[c] * x``, c the channel (axis 1), as ``F.prelu``.

    ``weight`` has shape (1,) (one slope shared by all elements) or (C,) with
    ``C = x.shape[1]``, and x's dtype. Returns ``(y, ctx)``.
    """
    _array("x", x)
    _array("weight", weight)
    n_channels = 1 if x.ndim < 2 else x.shape[1]
    if weight.shape != (1,) and weight.shape != (n_channels,):
        raise ValueError(
            f"weight must have shape (1,) or ({n_channels},) for x of shape {x.shape}, "
            f"got {weight.shape}"
        )
    weight = _like("weight", weight, x.dtype, weight.shape)
    x = _contiguous(x)
    y = np.empty(x.shape, x.dtype)
    activations.prelu_forward(
        _channels_view(x, weight.size), weight, _channels_view(y, weight.size)
    )
    return y, PReLUContext(x, weight)


def prelu_backward(dy, ctx):
    """Gradients of :func:`prelu`: ``(dx, dweight)``.

    ``dx = dy if x > 0 else weight[c] * dy``; ``dweight[c] = sum over x <= 0 of x * dy``.
    """
    _check_context(ctx, PReLUContext)
    x, weight = ctx.x, ctx.weight
    dy = _like("dy", dy, x.dtype, x.shape)
    dx = np.empty(x.shape, x.dtype)
    dweight = np.empty(weight.shape, x.dtype)
    activations.prelu_backward(
        _channels_view(x, weight.size),
        _channels_view(dy, weight.size),
        weight,
        _channels_view(dx, weight.size),
        dweight,
    )
    return dx, dweight


def rrelu(x, lower=1.0 / 8, upper=1.0 / 3, training=False, rng=None):
    """Randomized leaky ReLU, as ``F.rrelu``: ``y = x if x > 0 else a * x``.

    Training: each element draws its own slope ``a ~ U(lower, upper)`` from a key drawn from
    ``rng`` (a ``numpy.random.Generator``, required); eval: ``a = (lower + upper) / 2``.
    Returns ``(y, ctx)``.
    """
    _array("x", x)
    lower = validation.real("lower", lower, -math.inf)
    upper = validation.real("upper", upper, lower)
    training = validation.flag("training", training)
    if not training:
        x, y = _elementwise(activations.leaky_relu_forward, x, (lower + upper) / 2)
        return y, RReLUContext(x, lower, upper, training, np.uint64(0))
    key = _stream_key(_generator(rng))
    x, y = _elementwise(activations.rrelu_train_forward, x, lower, upper, key)
    return y, RReLUContext(x, lower, upper, training, key)


def rrelu_backward(dy, ctx):
    """``dx = dy if x > 0 else a * dy``, with the slopes of the forward call."""
    _check_context(ctx, RReLUContext)
    if not ctx.training:
        mean_slope = (ctx.lower + ctx.upper) / 2
        return _elementwise_backward(activations.leaky_relu_backward, ctx.x, dy, mean_slope)
    return _elementwise_backward(
        activations.rrelu_train_backward, ctx.x, dy, ctx.lower, ctx.upper, ctx.key
    )


def sigmoid(x):
    """``y = 1 / (1 + exp(-x))``. Returns ``(y, ctx)``; the backward pass uses y."""
    _array("x", x)
    _, y = _elementwise(activations.sigmoid_forward, x)
    return y, SigmoidContext(y)


def sigmoid_backward(dy, ctx):
    """``dx = dy * (1 - y) * y``."""
    _check_context(ctx, SigmoidContext)
    return _elementwise_backward(activations.sigmoid_backward, ctx.y, dy)


def tanh(x):
    """``y = tanh(x)``. Returns ``(y, ctx)``; the backward pass uses y."""
    _array("x", x)
    _, y = _elementwise(activations.tanh_forward, x)
    return y, TanhContext(y)


def tanh_backward(dy, ctx):
    """``dx = dy * (1 - y^2)``."""
    _check_context(ctx, TanhContext)
    return _elementwise_backward(activations.tanh_backward, ctx.y, dy)


class GELUContext(NamedTuple):
    """Saved by :func:`gelu`: the input, the float64 erf (or tanh) of every element, and the
    form."""

    x: np.ndarray
    shape: np.ndarray
    approximate: str


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(x, approximate="none"):
    """``y = x Phi(x)`` with ``Phi`` the standard normal distribution function, as
    ``F.gelu``; ``approximate="tanh"`` takes ``Phi(x) ~ (1 + tanh(sqrt(2 / pi) (x + 0.044715
    x^3))) / 2``. Computed in float64 and rounded once: ``gelu(inf) = inf`` in both dtypes
    (torch's float32 CPU kernel gives NaN there, its float64 kernel inf). The context keeps
    the erf (or tanh) of every element in float64 (8 bytes an element) for the backward pass.
    Returns ``(y, ctx)``."""
    _array("x", x)
    approximate = validation.choice("approximate", approximate, GELU_APPROXIMATIONS)
    x = _contiguous(x)
    y, shape = np.empty(x.shape, x.dtype), np.empty(x.shape)
    parallel = x.size >= GELU_PARALLEL_MIN_ELEMENTS
    kernel = activations.gelu_forward_parallel if parallel else activations.gelu_forward
    kernel(x.reshape(-1), approximate == "tanh", y.reshape(-1), shape.reshape(-1))
    return y, GELUContext(x, shape, approximate)


def gelu_backward(dy, ctx):
    """``dx = dy (Phi(x) + x phi(x))`` (or the derivative of the tanh form)."""
    _check_context(ctx, GELUContext)
    x = ctx.x
    dy = _like("dy", dy, x.dtype, x.shape)
    dx = np.empty(x.shape, x.dtype)
    parallel = x.size >= GELU_PARALLEL_MIN_ELEMENTS
    kernel = activations.gelu_backward_parallel if parallel else activations.gelu_backward
    tanh_form = ctx.approximate == "tanh"
    kernel(x.reshape(-1), ctx.shape.reshape(-1), dy.reshape(-1), tanh_form, dx.reshape(-1))
    return dx


# --------------------------------------------------------------------------------------------
# dropout
# --------------------------------------------------------------------------------------------
class DropoutContext(NamedTuple):
    """Saved by :func:`dropout`: no mask, only the key that regenerates it."""

    shape: tuple
    dtype: np.dtype
    p: float
    active: bool
    key: np.uint64


def _drop_below(p):
    """Elements whose 53 random bits fall below this are dropped: probability p."""
    return np.uint64(round(p * 2.0**53))


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout, as ``F.dropout``: ``y = x * m / (1 - p)``, ``m = 0`` with probability p.

    The mask comes from a key drawn from ``rng`` (a ``numpy.random.Generator``, required when
    training with p > 0). In eval mode, or with p = 0, ``y`` is ``x`` itself (not a copy).
    A dropped NaN or Inf gives NaN, as in torch (``x * 0``).

    Parameters
    ----------
    x : float32 or float64 array
    p : float in [0, 1)
    training : bool
    rng : numpy.random.Generator

    Returns
    -------
    y : array like x
    ctx : DropoutContext, for :func:`dropout_backward`
    """
    _array("x", x)
    p = validation.real("p", p, 0.0, 1.0, high_open=True)
    training = validation.flag("training", training)
    if not training or p == 0.0:
        return x, DropoutContext(x.shape, x.dtype, p, False, np.uint64(0))
    key = _stream_key(_generator(rng))
    _, y = _elementwise(activations.dropout_forward, x, p, _drop_below(p), key)
    return y, DropoutContext(x.shape, x.dtype, p, True, key)


def dropout_backward(dy, ctx):
    """``dx = dy * m / (1 - p)`` with the forward call's mask (``dy`` itself when inactive)."""
    _check_context(ctx, DropoutContext)
    dy = _like("dy", dy, ctx.dtype, ctx.shape)
    if not ctx.active:
        return dy
    dx = np.empty(ctx.shape, ctx.dtype)
    activations.dropout_backward(dy.reshape(-1), ctx.p, _drop_below(ctx.p), ctx.key, dx.reshape(-1))
    return dx


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
_REDUCTIONS = ("mean", "sum")


def _reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


class CrossEntropyContext(NamedTuple):
    """Saved by :func:`cross_entropy`: logits, targets, each row's max and sum of
    ``exp(logits - max)`` (float64).
    """

    logits: np.ndarray
    targets: np.ndarray
    row_max: np.ndarray
    exp_sum: np.ndarray
    reduction: str


def cross_entropy(logits, targets, reduction="mean"):
    """Softmax cross-entropy, as ``F.cross_entropy`` with class-index targets.

    ``loss_i = logsumexp(logits_i) - logits_i[targets_i]``, computed as
    ``m + log(sum(exp(logits_i - m)))`` with ``m = max(logits_i)``: no overflow for any finite
    logits. The mean (or sum) over the N rows, in float64, rounded to the logits' dtype.

    Parameters
    ----------
    logits : float32 or float64 array, shape (N, K), N >= 1
    targets : integer array, shape (N,), values in [0, K)
    reduction : "mean" or "sum"

    Returns
    -------
    loss : scalar of the logits' dtype
    ctx : CrossEntropyContext, for :func:`cross_entropy_backward`
    """
    _array("logits", logits)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must have shape (N, K) with N, K >= 1, got {logits.shape}")
    if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets must be an integer numpy array, got {_describe(targets)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must have shape {logits.shape[:1]}, got {targets.shape}")
    reduction = _reduction(reduction)
    logits = _contiguous(logits)
    given = targets
    # a uint64 index >= 2**63 wraps to a negative one here: refused below as out of range
    targets = np.ascontiguousarray(targets, dtype=np.int64)
    row_max, exp_sum = np.empty(logits.shape[0]), np.empty(logits.shape[0])
    bad_row, total = losses.cross_entropy_forward(logits, targets, row_max, exp_sum)
    if bad_row >= 0:
        raise ValueError(
            f"targets[{bad_row}] = {given[bad_row]} is not a class index in [0, {logits.shape[1]})"
        )
    loss = total / logits.shape[0] if reduction == "mean" else total
    ctx = CrossEntropyContext(logits, targets, row_max, exp_sum, reduction)
    return logits.dtype.type(loss), ctx


def cross_entropy_backward(dloss, ctx):
    """``dlogits = (softmax(logits) - onehot(targets)) * dloss`` (divided by N for the mean)."""
    _check_context(ctx, CrossEntropyContext)
    dloss = _loss_gradient(dloss)
    logits = ctx.logits
    scale = dloss / logits.shape[0] if ctx.reduction == "mean" else dloss
    dlogits = np.empty(logits.shape, logits.dtype)
    losses.cross_entropy_backward(logits, ctx.targets, ctx.row_max, ctx.exp_sum, scale, dlogits)
    return dlogits


class MSELossContext(NamedTuple):
    prediction: np.ndarray
    target: np.ndarray
    reduction: str


def mse_loss(prediction, target, reduction="mean"):
    """Mean squared error, as ``F.mse_loss``: ``mean((prediction - target)^2)`` (or the sum).

    Both arrays have the same shape (no broadcasting) and dtype; the sum runs in float64.
    Returns ``(loss, ctx)``, the loss a scalar of the inputs' dtype.
    """
    _array("prediction", prediction)
    if prediction.size == 0:
        raise ValueError("prediction is empty")
    target = _like("target", target, prediction.dtype, prediction.shape)
    reduction = _reduction(reduction)
    prediction = _contiguous(prediction)
    total = losses.squared_error_sum(prediction.reshape(-1), target.reshape(-1))
    loss = total / prediction.size if reduction == "mean" else total
    return prediction.dtype.type(loss), MSELossContext(prediction, target, reduction)


def mse_loss_backward(dloss, ctx):
    """``dprediction = 2 * (prediction - target) * dloss`` (divided by n for the mean)."""
    _check_context(ctx, MSELossContext)
    dloss = _loss_gradient(dloss)
    prediction = ctx.prediction
    scale = dloss / prediction.size if ctx.reduction == "mean" else dloss
    dprediction = np.empty(prediction.shape, prediction.dtype)
    losses.squared_error_backward(
        prediction.reshape(-1), ctx.target.reshape(-1), scale, dprediction.reshape(-1)
    )
    return dprediction


def _loss_gradient(dloss):
    """The upstream gradient of a scalar loss: any real number (NaN and Inf propagate)."""
    if not validation.is_real(dloss):
        raise TypeError(f"dloss must be a real number, got {_describe(dloss)}")
    return float(dloss)


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype}"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------------
class Conv1dContext(NamedTuple):
    """Saved by :func:`conv1d`: the input's columns (C_in K, N L_out), its shape, the weight
    (C_out, C_in, K), whether there was a bias, the stride and the padding."""

    columns: np.ndarray
    x_shape: tuple
    weight: np.ndarray
    has_bias: bool
    stride: int
    padding: int


def conv1d(x, weight, bias=None, stride=1, padding=0):
    """1-D convolution (a cross-correlation), as ``F.conv1d`` with one group, no dilation.

    ``y[n, o, t] = bias[o] + sum over c, k of weight[o, c, k] x[n, c, t stride + k - padding]``
    (zeros in the padding), ``t < L_out = (L + 2 padding - K) // stride + 1``. The input's
    windows are gathered by a Numba kernel into columns (C_in K, N L_out), multiplied by the
    weight in one matrix product on NumPy's BLAS, and kept for the backward pass.

    Parameters
    ----------
    x : float32 or float64 array, shape (N, C_in, L)
    weight : array of x's dtype, shape (C_out, C_in, K)
    bias : array of x's dtype, shape (C_out,), or None
    stride : int >= 1
    padding : int >= 0, zeros on both ends

    Returns
    -------
    y : array of shape (N, C_out, L_out)
    ctx : Conv1dContext, for :func:`conv1d_backward`
    """
    _array("x", x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, C_in, L), got {x.shape}")
    samples, channels, length = x.shape
    _array("weight", weight)
    if weight.dtype != x.dtype:
        raise TypeError(f"weight has dtype {weight.dtype}; expected {x.dtype}")
    if weight.ndim != 3 or weight.shape[1] != channels or weight.shape[2] == 0:
        raise ValueError(
            f"weight must have shape (C_out, {channels}, K) with K >= 1, got {weight.shape}"
        )
    outputs, _, kernel_size = weight.shape
    bias = _parameter("bias", bias, x.dtype, (outputs,))
    stride = validation.integer("stride", stride, 1)
    padding = validation.integer("padding", padding, 0)
    if length + 2 * padding < kernel_size:
        raise ValueError(
            f"the kernel ({kernel_size}) is longer than the padded input "
            f"(L + 2 padding = {length + 2 * padding})"
        )
    steps = (length + 2 * padding - kernel_size) // stride + 1
    x, weight = _contiguous(x), _contiguous(weight)
    columns = np.empty((channels * kernel_size, samples * steps), x.dtype)
    convolution.unfold(x, kernel_size, stride, padding, columns)
    products = weight.reshape(outputs, -1) @ columns
    y = np.ascontiguousarray(products.reshape(outputs, samples, steps).transpose(1, 0, 2))
    if bias is not None:
        y += bias[:, None]
    return y, Conv1dContext(columns, x.shape, weight, bias is not None, stride, padding)


def conv1d_backward(dy, ctx):
    """Gradients of :func:`conv1d`: ``(dx, dweight, dbias)``, dbias None without a bias.

    ``dweight[o, c, k] = sum over n, t of dy[n, o, t] x[n, c, t stride + k - padding]`` (one
    product of dy with the saved columns), ``dbias[o] = sum over n, t of dy[n, o, t]`` (in
    float64), and dx scatters ``weight^T dy`` back onto the input's positions.
    """
    _check_context(ctx, Conv1dContext)
    samples, _, length = ctx.x_shape
    outputs, _, kernel_size = ctx.weight.shape
    steps = (length + 2 * ctx.padding - kernel_size) // ctx.stride + 1
    dtype = ctx.weight.dtype
    dy = _like("dy", dy, dtype, (samples, outputs, steps))
    flat_dy = np.ascontiguousarray(dy.transpose(1, 0, 2)).reshape(outputs, -1)
    dweight = (flat_dy @ ctx.columns.T).reshape(ctx.weight.shape)
    dbias = None
    if ctx.has_bias:
        dbias = np.sum(dy, axis=(0, 2), dtype=np.float64).astype(dtype)
    dcolumns = ctx.weight.reshape(outputs, -1).T @ flat_dy
    dx = np.empty(ctx.x_shape, dtype)
    convolution.fold(dcolumns, kernel_size, ctx.stride, ctx.padding, dx)
    return dx, dweight, dbias


# --------------------------------------------------------------------------------------------
# softmax, attention, embedding
# --------------------------------------------------------------------------------------------
# Below this many multiply-adds (B L S (E + Ev)) attention runs on the calling thread.
ATTENTION_PARALLEL_MIN_WORK = 1 << 20


class SoftmaxContext(NamedTuple):
    """Saved by :func:`softmax`: the output, and the axis it was taken over."""

    y: np.ndarray
    dim: int


def softmax(x, dim=-1):
    """``y = exp(x - max) / sum(exp(x - max))`` along axis ``dim``, as ``F.softmax``; computed
    in float64 and rounded once. Returns ``(y, ctx)``."""
    _array("x", x)
    dim = _axis("dim", dim, x.ndim)
    rows = np.ascontiguousarray(np.moveaxis(x, dim, -1))
    y = np.empty(rows.shape, x.dtype)
    if rows.size:
        attention.softmax_forward(rows.reshape(-1, rows.shape[-1]), y.reshape(-1, y.shape[-1]))
    y = np.moveaxis(y, -1, dim)
    return y, SoftmaxContext(y, dim)


def softmax_backward(dy, ctx):
    """``dx = y (dy - sum(y dy))``, the sum along the softmax's axis (in float64)."""
    _check_context(ctx, SoftmaxContext)
    y = ctx.y
    _array("dy", dy)
    if dy.dtype != y.dtype:
        raise TypeError(f"dy has dtype {dy.dtype}; expected {y.dtype}")
    if dy.shape != y.shape:
        raise ValueError(f"dy must have shape {y.shape}, got {dy.shape}")
    rows_y = np.ascontiguousarray(np.moveaxis(y, ctx.dim, -1))
    rows_dy = np.ascontiguousarray(np.moveaxis(dy, ctx.dim, -1))
    dx = np.empty(rows_y.shape, y.dtype)
    if dx.size:
        width = rows_y.shape[-1]
        attention.softmax_backward(
            rows_y.reshape(-1, width), rows_dy.reshape(-1, width), dx.reshape(-1, width)
        )
    return np.moveaxis(dx, -1, ctx.dim)


def _dims(shape):
    """``"2, 3, "`` for the leading axes (2, 3) of a shape message."""
    return "".join(f"{n}, " for n in shape)


def _axis(name, dim, ndim):
    if not validation.is_integer(dim):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if ndim == 0 or not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for an array of {ndim} dimensions")
    return int(dim) % ndim


class AttentionContext(NamedTuple):
    """Saved by :func:`scaled_dot_product_attention`: the inputs as stacks of matrices, the
    attention probabilities (B, L, S), the scale, the mask flag and the inputs' shapes."""

    query: np.ndarray
    key: np.ndarray
    value: np.ndarray
    probs: np.ndarray
    scale: float
    is_causal: bool
    shapes: tuple


def scaled_dot_product_attention(query, key, value, is_causal=False, scale=None):
    """Attention, as ``F.scaled_dot_product_attention`` without a mask array or dropout:
    ``out = softmax(scale query key^T) value`` over the last two axes, ``scale`` by default
    ``1 / sqrt(E)``; with ``is_causal``, query ``i`` attends to keys ``j <= i`` only.

    Products, softmax and sums run in float64 and are rounded once; the probabilities are kept
    (in the inputs' dtype) for the backward pass. Small stacks run on the calling thread.

    Parameters
    ----------
    query : float32 or float64 array, shape (..., L, E)
    key : array of query's dtype, shape (..., S, E), the same leading axes (no broadcasting)
    value : array of query's dtype, shape (..., S, Ev)
    is_causal : bool
    scale : float > 0 or None

    Returns
    -------
    out : array of shape (..., L, Ev)
    ctx : AttentionContext, for :func:`scaled_dot_product_attention_backward`
    """
    _array("query", query)
    if query.ndim < 2:
        raise ValueError(f"query must have shape (..., L, E), got {query.shape}")
    leading, (length, size) = query.shape[:-2], query.shape[-2:]
    _array("key", key)
    _array("value", value)
    for name, array in (("key", key), ("value", value)):
        if array.dtype != query.dtype:
            raise TypeError(f"{name} has dtype {array.dtype}; expected {query.dtype}")
    if key.shape[:-2] != leading or key.ndim != query.ndim or key.shape[-1] != size:
        raise ValueError(f"key must have shape ({_dims(leading)}S, {size}), got {key.shape}")
    if value.ndim != query.ndim or value.shape[:-1] != key.shape[:-1]:
        raise ValueError(
            f"value must have shape ({_dims(key.shape[:-1])}Ev), as key's (..., S, E), "
            f"got {value.shape}"
        )
    is_causal = validation.flag("is_causal", is_causal)
    if scale is None:
        scale = 1.0 / math.sqrt(size) if size else 1.0
    else:
        scale = validation.real("scale", scale, 0.0, low_open=True)
    batch = math.prod(leading)
    stacks = [_contiguous(a).reshape(batch, *a.shape[-2:]) for a in (query, key, value)]
    q, k, v = stacks
    probs = np.empty((q.shape[0], length, k.shape[1]), query.dtype)
    out = np.empty((q.shape[0], length, v.shape[2]), query.dtype)
    work = q.shape[0] * length * k.shape[1] * (size + v.shape[2])
    forward = (
        attention.attention_forward_parallel
        if work >= ATTENTION_PARALLEL_MIN_WORK
        else attention.attention_forward_serial
    )
    forward(q, k, v, scale, is_causal, probs, out)
    shapes = (query.shape, key.shape, value.shape)
    ctx = AttentionContext(q, k, v, probs, scale, is_causal, shapes)
    return out.reshape(*leading, length, v.shape[2]), ctx


def scaled_dot_product_attention_backward(dout, ctx):
    """Gradients ``(dquery, dkey, dvalue)`` of :func:`scaled_dot_product_attention`:
    ``dp = dout value^T``, ``ds = scale p (dp - rowsum(p dp))``, ``dquery = ds key``,
    ``dkey = ds^T query``, ``dvalue = p^T dout``, in float64, rounded once."""
    _check_context(ctx, AttentionContext)
    q, k, v = ctx.query, ctx.key, ctx.value
    query_shape, key_shape, value_shape = ctx.shapes
    out_shape = (*query_shape[:-1], value_shape[-1])
    dout = _like("dout", dout, q.dtype, out_shape).reshape(q.shape[0], q.shape[1], v.shape[2])
    dq, dk, dv = np.empty(q.shape, q.dtype), np.empty(k.shape, q.dtype), np.empty(v.shape, q.dtype)
    work = q.shape[0] * q.shape[1] * k.shape[1] * (q.shape[2] + v.shape[2])
    backward = (
        attention.attention_backward_parallel
        if work >= ATTENTION_PARALLEL_MIN_WORK
        else attention.attention_backward_serial
    )
    backward(q, k, v, ctx.probs, dout, ctx.scale, ctx.is_causal, dq, dk, dv)
    return dq.reshape(query_shape), dk.reshape(key_shape), dv.reshape(value_shape)


class EmbeddingContext(NamedTuple):
    """Saved by :func:`embedding`: the flat indices and the weight's shape and dtype."""

    indices: np.ndarray
    shape: tuple
    weight_shape: tuple
    dtype: np.dtype


def embedding(indices, weight):
    """``y[...] = weight[indices[...]]``, as ``F.embedding``: rows of ``weight (V, E)`` picked
    by an integer array of any shape, giving ``(*indices.shape, E)``. Returns ``(y, ctx)``."""
    _array("weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"weight must have shape (V, E), got {weight.shape}")
    if not isinstance(indices, np.ndarray) or not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"indices must be an integer numpy array, got {_describe(indices)}")
    flat = np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= weight.shape[0]):
        bad = int(np.flatnonzero((flat < 0) | (flat >= weight.shape[0]))[0])
        raise ValueError(
            f"indices hold {indices.reshape(-1)[bad]}, not a row index in [0, {weight.shape[0]})"
        )
    y = weight[flat].reshape(*indices.shape, weight.shape[1])
    return y, EmbeddingContext(flat, indices.shape, weight.shape, weight.dtype)


def embedding_backward(dy, ctx):
    """``dweight[v] = sum of dy`` over the positions holding index ``v`` (float64 sums, in
    order, rounded once); rows never picked get 0."""
    _check_context(ctx, EmbeddingContext)
    dy = _like("dy", dy, ctx.dtype, (*ctx.shape, ctx.weight_shape[1]))
    dweight = np.empty(ctx.weight_shape)
    attention.embedding_backward(ctx.indices, dy.reshape(-1, ctx.weight_shape[1]), dweight)
    return dweight.astype(ctx.dtype)
