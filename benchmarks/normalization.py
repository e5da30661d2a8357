"""Normalization layers, forward and backward, for each kernel x shape x dtype, and their peers.

Every ``time_*`` runs ``common.steps_per_call(x.size)`` calls of the layer per timed call (see
``common``). The forward is the training forward (it saves what the backward needs; BatchNorm
uses batch statistics and updates its running statistics); the backward times the gradient
with respect to the input, weight and bias from a context built in ``setup``. Layer and RMS
norm normalize over the last axis; BatchNorm over axis 1 (channels). Peers on the same grid:
the NumPy reference (``optbench.reference.nn``, which computes in float64 whatever the input
dtype) and ``torch.nn.functional`` with autograd (skipped when torch is absent).
"""

import functools
from dataclasses import dataclass

import numpy as np

from optbench import nn
from optbench.reference import nn as reference

from .common import DTYPES, SMOKE, normal, require_torch, steps_per_call

SHAPES = ((64, 256), (1024, 1024), (64, 64, 1024))[: 1 if SMOKE else None]
SHAPE_NAMES = ["x".join(map(str, shape)) for shape in SHAPES]


@dataclass(frozen=True)
class Layer:
    """A normalization layer as optbench, the reference and torch compute it.

    ``parameters(x)`` -> dict of the layer's arrays for input ``x``; every callable below takes
    ``(x, parameters)`` (the backward ones also ``dy`` or a context) in that convention.
    """

    parameter_axis: int  # the axis of x the weight and bias run along
    forward: callable
    backward: callable
    reference_forward: callable
    reference_backward: callable
    torch_forward: callable


def _last(x):
    return x.shape[-1]


LAYERS = {
    "layer_norm": Layer(
        -1,
        lambda x, p: nn.layer_norm(x, _last(x), p["weight"], p["bias"]),
        nn.layer_norm_backward,
        lambda x, p: reference.layer_norm(x, (_last(x),), p["weight"], p["bias"]),
        lambda dy, x, p: reference.layer_norm_backward(dy, x, (_last(x),), p["weight"]),
        lambda F, x, p: F.layer_norm(x, (_last(x),), p["weight"], p["bias"]),
    ),
    "rms_norm": Layer(
        -1,
        lambda x, p: nn.rms_norm(x, _last(x), p["weight"]),
        nn.rms_norm_backward,
        lambda x, p: reference.rms_norm(x, (_last(x),), p["weight"]),
        lambda dy, x, p: reference.rms_norm_backward(dy, x, (_last(x),), p["weight"]),
        lambda F, x, p: F.rms_norm(x, (_last(x),), p["weight"]),
    ),
    "batch_norm": Layer(
        1,
        lambda x, p: nn.batch_norm(x, p["mean"], p["var"], p["weight"], p["bias"]),
        nn.batch_norm_backward,
        lambda x, p: reference.batch_norm(x, p["mean"], p["var"], p["weight"], p["bias"]),
        lambda dy, x, p: reference.batch_norm_backward(dy, x, p["weight"]),
        lambda F, x, p: F.batch_norm(x, p["mean"], p["var"], p["weight"], p["bias"], True),
    ),
}
GRID = (list(LAYERS), SHAPE_NAMES, list(DTYPES))
GRID_NAMES = ("layer", "shape", "dtype")


@functools.cache
def inputs(layer, shape_name, dtype):
    """``(x, dy, parameters)`` for one grid point: seeded inputs, weight 1 + noise, bias noise,
    running mean 0 and variance 1 (fresh writeable arrays: BatchNorm updates the running ones)."""
    shape = SHAPES[SHAPE_NAMES.index(shape_name)]
    x, dy = normal(shape, dtype, seed=0), normal(shape, dtype, seed=1)
    size = shape[LAYERS[layer].parameter_axis]
    parameters = {
        "weight": 1 + 0.1 * normal((size,), dtype, seed=2),
        "bias": 0.1 * normal((size,), dtype, seed=3),
        "mean": np.zeros(size, dtype),
        "var": np.ones(size, dtype),
    }
    return x, dy, parameters


class _Grid:
    params = GRID
    param_names = GRID_NAMES

    def setup(self, layer, shape_name, dtype):
        self.layer = LAYERS[layer]
        self.x, self.dy, self.parameters = inputs(layer, shape_name, dtype)
        self.calls = steps_per_call(self.x.size)


class Normalization(_Grid):
    def setup(self, *grid):
        super().setup(*grid)
        _, self.ctx = self.layer.forward(self.x, self.parameters)  # compile or load from cache
        self.layer.backward(self.dy, self.ctx)

    def time_forward(self, *_):
        forward, x, parameters = self.layer.forward, self.x, self.parameters
        for _ in range(self.calls):
            forward(x, parameters)

    def time_backward(self, *_):
        backward, dy, ctx = self.layer.backward, self.dy, self.ctx
        for _ in range(self.calls):
            backward(dy, ctx)


class ReferenceNormalization(_Grid):
    def time_forward(self, *_):
        forward, x, parameters = self.layer.reference_forward, self.x, self.parameters
        for _ in range(self.calls):
            forward(x, parameters)

    def time_backward(self, *_):
        backward, dy = self.layer.reference_backward, self.dy
        x, parameters = self.x, self.parameters
        for _ in range(self.calls):
            backward(dy, x, parameters)


@functools.cache
def torch_graph(layer, shape_name, dtype):
    """``(functional, x, y, dy, parameters, leaves)`` as torch tensors: y is the output of a
    forward recorded by autograd, the leaves are x and the weight and bias."""
    torch = require_torch()
    x, dy, parameters = inputs(layer, shape_name, dtype)
    tensors = {name: torch.tensor(value) for name, value in parameters.items()}
    leaves = [torch.tensor(x).requires_grad_()]
    for name in ("weight", "bias"):
        if layer != "rms_norm" or name == "weight":
            leaves.append(tensors[name].requires_grad_())
    functional = torch.nn.functional
    y = LAYERS[layer].torch_forward(functional, leaves[0], tensors)
    dy = torch.tensor(dy)
    torch.autograd.grad(y, leaves, dy, retain_graph=True)  # torch's first call is slow
    return functional, leaves[0], y, dy, tensors, tuple(leaves)


class TorchNormalization(_Grid):
    def setup(self, layer, shape_name, dtype):
        super().setup(layer, shape_name, dtype)
        self.torch = require_torch()
        graph = torch_graph(layer, shape_name, dtype)
        self.functional, self.tx, self.ty, self.tdy, self.tensors, self.leaves = graph

    def time_forward(self, *_):
        forward, functional = self.layer.torch_forward, self.functional
        x, tensors = self.tx, self.tensors
        for _ in range(self.calls):
            forward(functional, x, tensors)

    def time_backward(self, *_):
        grad, y, dy, leaves = self.torch.autograd.grad, self.ty, self.tdy, self.leaves
        for _ in range(self.calls):
            grad(y, leaves, dy, retain_graph=True)
