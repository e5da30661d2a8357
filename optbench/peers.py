"""The implementations that :mod:`optbench.throughput` times against the kernels.

Optimizers, each over a list of parameter arrays with a ``step(grads)`` method:

* :class:`ReferenceOptimizer`: the NumPy oracle (``optbench.reference``), one array at a time,
  whole-array expressions with their temporaries;
* :class:`InplaceOptimizer`: a careful NumPy version: every operation writes into the state,
  the parameter or one or two preallocated scratch buffers (``out=``), no other temporaries;
* :func:`torch_optimizer`: ``torch.optim`` in its three implementations (``"for-loop"``,
  ``"foreach"``, ``"fused"``) over tensors sharing memory with the NumPy arrays.

Normalization layers, forward then backward, as functions ``call()`` built by
:func:`norm_call`: optbench's layers, the NumPy reference (``optbench.reference.nn``), a
careful in-place NumPy version, and torch's ATen kernels (``native_layer_norm`` and
``native_layer_norm_backward``, ``native_batch_norm`` and ``native_batch_norm_backward``,
called without autograd; RMSNorm: ``_fused_rms_norm`` forward and, as torch has no CPU kernel
for its backward, the composite tensor operations autograd would run).

The in-place versions implement the registry's default options (what the throughput tables
time); other option values raise ``ValueError`` naming the option.
"""

import numpy as np

from . import nn, registry
from .kernels.matrices import newton_schulz_into
from .reference import inplace
from .reference import nn as reference_nn
from .reference.optimizers import model_step
from .spec import conforming_shape

TORCH_IMPLEMENTATIONS = ("for-loop", "foreach", "fused")
NORMS = ("layer_norm", "batch_norm", "rms_norm")
_TORCH_FLAGS = {
    "for-loop": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}


def optimizer_options(optimizer):
    """The math options of an optbench optimizer's first parameter group (no ``params``)."""
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}


# --------------------------------------------------------------------------------------------
# NumPy reference
# --------------------------------------------------------------------------------------------
class ReferenceOptimizer:
    """The NumPy oracle of ``spec`` (a spec or a name) stepping each array of ``params``.

    ``options`` are the optimizer's group options (see :func:`optimizer_options`).
    """

    def __init__(self, spec, params, options):
        self.spec = registry.get(spec)
        self.options = dict(options)
        self.params = list(params)
        self.states = [{} for _ in self.params]
        self.count = 0

    def step(self, grads):
        self.count += 1
        options = [self.options] * len(self.params)
        coupled = self.spec.coupled
        model_step(
            self.spec.reference,
            self.params,
            grads,
            self.states,
            self.count,
            options,
            coupled=coupled,
        )


# --------------------------------------------------------------------------------------------
# in-place NumPy
# --------------------------------------------------------------------------------------------
class InplaceOptimizer:
    """The in-place NumPy version of ``spec`` (a spec or a name; ``spec.inplace_peer``) over
    ``params``.

    Each step updates every array with ``out=`` operations into its state, the parameter and
    ``spec.inplace_scratch`` scratch buffers of the largest array's size, allocated once: no
    temporaries.
    """

    def __init__(self, spec, params, options):
        spec = registry.get(spec)
        if spec.inplace_peer is None:
            raise ValueError(f"no in-place NumPy version of {spec.name!r}")
        inplace.require(options, **inplace.EXTRAS)
        self.update = spec.inplace_peer
        self.options = dict(options)
        self.params = list(params)
        self.states = [{} for _ in self.params]
        largest = max(p.size for p in self.params)
        dtype = self.params[0].dtype
        self.scratch = [np.empty(largest, dtype) for _ in range(spec.inplace_scratch)]
        self.count = 0
        # check the options before the first step, on an empty array of a shape it takes
        empty = np.empty(conforming_shape((0,), spec.ndims), dtype)
        scratch = [b[:0].reshape(empty.shape) for b in self.scratch]
        self.update(empty, empty, {}, scratch, 1, self.options)

    def step(self, grads):
        self.count += 1
        for param, grad, state in zip(self.params, grads, self.states, strict=True):
            scratch = [b[: param.size].reshape(param.shape) for b in self.scratch]
            self.update(param, grad, state, scratch, self.count, self.options)


class NewtonSchulzProducts:
    """The Newton-Schulz iterations of a Muon step alone, on each of ``grads`` (matrices), by
    NumPy on buffers allocated once: the matrix products a Muon step cannot avoid, its floor
    (``optbench throughput``'s ``numpy newton-schulz``)."""

    def __init__(self, grads, options):
        self.grads = list(grads)
        self.coefficients, self.steps = options["ns_coefficients"], options["ns_steps"]
        self.eps = options["eps"]
        self.buffers = [(np.empty_like(g), np.empty_like(g), {}) for g in self.grads]

    def step(self):
        for grad, (x, scratch, workspace) in zip(self.grads, self.buffers, strict=True):
            np.copyto(x, grad)
            if grad.shape[0] > grad.shape[1]:
                x, scratch = x.T, scratch.T
            newton_schulz_into(x, scratch, self.coefficients, self.steps, self.eps, workspace)


# --------------------------------------------------------------------------------------------
# torch.optim
# --------------------------------------------------------------------------------------------
def torch_optimizer(torch, spec, params, grads, options, implementation):
    """A ``torch.optim`` optimizer over tensors sharing memory with ``params``, with ``grads``
    attached, that has taken one step; ``None`` where torch has no such optimizer or
    implementation (Lion, AdaBound; ``fused`` for most algorithms).

    ``options`` are optbench's group options; those torch's class accepts are passed on.
    """
    import inspect

    if implementation not in TORCH_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {TORCH_IMPLEMENTATIONS}")
    torch_class = getattr(torch.optim, spec.torch_peer or "", None)
    if torch_class is None:
        return None
    accepted = inspect.signature(torch_class).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted}
    tensors = [torch.from_numpy(p).requires_grad_() for p in params]
    for tensor, grad in zip(tensors, grads, strict=True):
        tensor.grad = torch.from_numpy(grad)
    try:
        optimizer = torch_class(tensors, **kwargs, **_TORCH_FLAGS[implementation])
        optimizer.step()
    except (RuntimeError, ValueError, TypeError):
        return None
    return optimizer


# --------------------------------------------------------------------------------------------
# normalization layers: forward then backward
# --------------------------------------------------------------------------------------------
def _optbench_norm(name, x, dy, weight, bias, running):
    if name == "layer_norm":

        def call():
            _, ctx = nn.layer_norm(x, x.shape[-1], weight, bias)
            nn.layer_norm_backward(dy, ctx)

    elif name == "batch_norm":

        def call():
            _, ctx = nn.batch_norm(x, *running, weight, bias, True)
            nn.batch_norm_backward(dy, ctx)

    else:

        def call():
            _, ctx = nn.rms_norm(x, x.shape[-1], weight)
            nn.rms_norm_backward(dy, ctx)

    return call


def _reference_norm(name, x, dy, weight, bias, running):
    features = (x.shape[-1],)
    if name == "layer_norm":

        def call():
            reference_nn.layer_norm(x, features, weight, bias)
            reference_nn.layer_norm_backward(dy, x, features, weight)

    elif name == "batch_norm":

        def call():
            reference_nn.batch_norm(x, *running, weight, bias, True)
            reference_nn.batch_norm_backward(dy, x, weight, True)

    else:

        def call():
            reference_nn.rms_norm(x, features, weight)
            reference_nn.rms_norm_backward(dy, x, features, weight)

    return call


class InplaceNorm:
    """A careful NumPy normalization layer, forward then backward, for 2-D ``x``.

    Statistics are reduced with ``keepdims`` into small preallocated arrays; every array of
    ``x``'s size is written with ``out=`` into the output, the input gradient, the normalized
    input (saved for the backward pass) or one scratch buffer. LayerNorm and RMSNorm normalize
    rows (last axis), BatchNorm columns (axis 0). Arithmetic is in ``x``'s dtype. ``eps``
    defaults as in :mod:`optbench.nn`: 1e-5, and the machine epsilon of x's dtype for RMSNorm.
    """

    def __init__(self, name, x, dy, weight, bias, running, eps=None, momentum=0.1):
        if name not in NORMS:
            raise ValueError(f"name must be one of {NORMS}, got {name!r}")
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D, got shape {x.shape}")
        self.name, self.x, self.dy, self.weight, self.bias = name, x, dy, weight, bias
        if eps is None:
            eps = float(np.finfo(x.dtype).eps) if name == "rms_norm" else 1e-5
        self.running, self.eps, self.momentum = running, eps, momentum
        self.axis = 0 if name == "batch_norm" else 1
        reduced = (1, x.shape[1]) if self.axis == 0 else (x.shape[0], 1)
        self.y, self.dx, self.x_hat = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        self.scratch = np.empty_like(x)
        self.mean, self.rstd = np.empty(reduced, x.dtype), np.empty(reduced, x.dtype)
        self.sum_g, self.sum_gx = np.empty(reduced, x.dtype), np.empty(reduced, x.dtype)
        self.dweight, self.dbias = np.empty(x.shape[1], x.dtype), np.empty(x.shape[1], x.dtype)

    def __call__(self):
        self.forward()
        self.backward()

    def forward(self):
        x, x_hat, mean, rstd, axis = self.x, self.x_hat, self.mean, self.rstd, self.axis
        count = x.shape[axis]
        if self.name == "rms_norm":
            np.multiply(x, x, out=x_hat)
            np.mean(x_hat, axis=axis, keepdims=True, out=rstd)
            np.add(rstd, self.eps, out=rstd)
            np.sqrt(rstd, out=rstd)
            np.divide(1.0, rstd, out=rstd)
            np.multiply(x, rstd, out=x_hat)
            np.multiply(x_hat, self.weight, out=self.y)
            return
        np.mean(x, axis=axis, keepdims=True, out=mean)
        np.subtract(x, mean, out=x_hat)
        np.multiply(x_hat, x_hat, out=self.y)  # y as scratch for the squared deviations
        np.mean(self.y, axis=axis, keepdims=True, out=rstd)
        if self.name == "batch_norm":
            running_mean, running_var = self.running
            running_mean *= 1.0 - self.momentum
            running_mean += self.momentum * mean[0]
            running_var *= 1.0 - self.momentum
            running_var += (self.momentum * count / (count - 1)) * rstd[0]
        np.add(rstd, self.eps, out=rstd)
        np.sqrt(rstd, out=rstd)
        np.divide(1.0, rstd, out=rstd)
        np.multiply(x_hat, rstd, out=x_hat)
        np.multiply(x_hat, self.weight, out=self.y)
        np.add(self.y, self.bias, out=self.y)

    def backward(self):
        dy, dx, x_hat, axis = self.dy, self.dx, self.x_hat, self.axis
        count = self.x.shape[axis]
        if self.name == "batch_norm":
            # dx = w rstd (dy - mean(dy) - x_hat mean(dy x_hat)); dbias, dweight are the sums
            np.sum(dy, axis=0, keepdims=True, out=self.sum_g)
            np.multiply(dy, x_hat, out=dx)
            np.sum(dx, axis=0, keepdims=True, out=self.sum_gx)
            self.dbias[:] = self.sum_g[0]
            self.dweight[:] = self.sum_gx[0]
            np.multiply(x_hat, self.sum_gx / count, out=dx)
            np.subtract(dy, dx, out=dx)
            np.subtract(dx, self.sum_g / count, out=dx)
            np.multiply(dx, self.rstd * self.weight, out=dx)
            return
        # LayerNorm / RMSNorm: g = dy w; dx = rstd (g - mean(g) - x_hat mean(g x_hat)),
        # RMSNorm without the mean(g) term; dweight = sum_rows dy x_hat, dbias = sum_rows dy
        np.multiply(dy, x_hat, out=dx)
        np.sum(dx, axis=0, out=self.dweight)
        if self.name == "layer_norm":
            np.sum(dy, axis=0, out=self.dbias)
        np.multiply(dy, self.weight, out=dx)  # g
        np.multiply(dx, x_hat, out=self.scratch)  # g x_hat
        np.mean(self.scratch, axis=1, keepdims=True, out=self.sum_gx)
        if self.name == "layer_norm":
            np.mean(dx, axis=1, keepdims=True, out=self.sum_g)
            np.subtract(dx, self.sum_g, out=dx)
        np.multiply(x_hat, self.sum_gx, out=self.scratch)
        np.subtract(dx, self.scratch, out=dx)
        np.multiply(dx, self.rstd, out=dx)


def _torch_norm(torch, name, x, dy, weight, bias, running):
    aten = torch.ops.aten
    tx, tdy, tw, tb = (torch.from_numpy(a) for a in (x, dy, weight, bias))
    features = [x.shape[-1]]
    if name == "layer_norm":

        def call():
            _, mean, rstd = aten.native_layer_norm(tx, features, tw, tb, 1e-5)
            aten.native_layer_norm_backward(
                tdy, tx, features, mean, rstd, tw, tb, [True, True, True]
            )

    elif name == "batch_norm":
        trm, trv = (torch.from_numpy(a) for a in running)

        def call():
            _, mean, invstd = aten.native_batch_norm(tx, tw, tb, trm, trv, True, 0.1, 1e-5)
            aten.native_batch_norm_backward(
                tdy, tx, tw, trm, trv, mean, invstd, True, 1e-5, [True, True, True]
            )

    else:
        # the fused forward has a CPU kernel, the fused backward does not: the backward is
        # torch's composite, the operations autograd runs for F.rms_norm
        fused = getattr(aten, "_fused_rms_norm", None)
        if fused is None:
            return None

        def call():
            _, rstd = fused(tx, features, tw, None)
            x_hat = tx * rstd
            g = tdy * tw
            dx = (g - x_hat * (g * x_hat).mean(dim=-1, keepdim=True)) * rstd
            dweight = (tdy * x_hat).sum(dim=0)
            return dx, dweight

    return call


NORM_IMPLEMENTATIONS = ("optbench", "numpy reference", "numpy in-place", "torch")


def norm_call(implementation, name, x, dy, torch=None):
    """A no-argument function running layer ``name`` forward then backward on ``x`` (2-D).

    Weight of ones and bias of zeros of x's dtype (RMSNorm: weight only); BatchNorm in training
    mode with running statistics (updated by every call). ``None`` when the implementation is
    unavailable (torch not given, or without the kernel).
    """
    if name not in NORMS:
        raise ValueError(f"name must be one of {NORMS}, got {name!r}")
    features = x.shape[-1]
    weight, bias = np.ones(features, x.dtype), np.zeros(features, x.dtype)
    running = (np.zeros(features, x.dtype), np.ones(features, x.dtype))
    if name == "rms_norm":
        bias = None
    if implementation == "optbench":
        return _optbench_norm(name, x, dy, weight, bias, running)
    if implementation == "numpy reference":
        return _reference_norm(name, x, dy, weight, bias, running)
    if implementation == "numpy in-place":
        return InplaceNorm(name, x, dy, weight, np.zeros(features, x.dtype), running)
    if implementation == "torch":
        if torch is None:
            return None
        return _torch_norm(torch, name, x, dy, weight, np.zeros(features, x.dtype), running)
    raise ValueError(
        f"implementation must be one of {NORM_IMPLEMENTATIONS}, got {implementation!r}"
    )
