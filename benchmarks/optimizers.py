"""Optimizer steps for every registry entry x size x dtype x layout, and their peers.

``time_steps`` times ``common.steps_per_call(n_elements, n_arrays)`` consecutive steps per call
(see ``common``); the loop length depends on the parameters only. ``n_arrays`` is the number of
arrays holding the ``n_elements`` parameters (1: one flat array; 100: a model of 100 arrays of
the same total). ``peakmem_step`` is the process's peak resident memory (bytes) after building
the model and taking one step: interpreter and libraries + parameters, gradients, state and any
temporaries. ``Bandwidth.track_stream_fraction`` is the achieved memory rate of a step as a
fraction of its roofline, as ``optbench throughput`` measures it: the STREAM-style kernel of
the step's passes (``throughput.optimizer_passes``) over arrays of the same size, serial and
parallel, timed alternately with the step in the same process (a ratio stays meaningful on a
noisy machine): the median over samples of the roofline's time (the better of its serial and
parallel kernels) over the step's in the same sample. Peers
on the same grid: the NumPy reference (``optbench.reference``, one array at
a time) and ``torch.optim`` with ``foreach=True`` and with ``fused=True`` for the optimizers of
the same class name (skipped when torch is absent or lacks the combination).
"""

import functools
import time

import numpy as np

from optbench import bandwidth, optim, peers, registry, throughput
from optbench.spec import conforming_shape

from .common import DTYPES, LAYOUTS, SIZES, model, require_torch, steps_per_call

NAMES = list(registry.names())
GRID = (NAMES, list(SIZES), list(DTYPES), list(LAYOUTS))
GRID_NAMES = ("optimizer", "n_elements", "dtype", "n_arrays")


def takes_matrices_only(name):
    """Whether optimizer ``name`` steps 2-D arrays only (Muon): its models are matrices."""
    return registry.get(name).ndims == (2,)


def _empty(name, dtype="float64"):
    return np.zeros(conforming_shape((0,), registry.get(name).ndims), dtype)


def options(name, dtype="float64"):
    """The math options of optimizer ``name`` at its registry defaults (no ``params`` key)."""
    return peers.optimizer_options(optim.make(name, [_empty(name, dtype)]))


def state_arrays(name):
    """State arrays of parameter size per array of the benchmarks' models at the defaults
    (Adam: 2)."""
    spec, empty = registry.get(name), _empty(name)
    group = optim.make(spec, [empty]).param_groups[0]
    return len(spec.state_in_use(group, empty.shape))


def bytes_per_step(name, n_elements, dtype):
    """Bytes a step must move, as ``optbench throughput`` counts them: parameters read and
    written, gradients read, every state array read and written (``(3 + 2 s) * n_elements *
    itemsize`` with ``s = state_arrays``), or the spec's ``traffic`` where it declares one."""
    words = throughput.optimizer_words(optim.make(name, [_empty(name, dtype)]))
    return words * n_elements * np.dtype(dtype).itemsize


@functools.cache
def kernel_step(name, n_elements, dtype, n_arrays):
    """``(step, grads)`` of a warmed optbench optimizer over a fresh seeded model."""
    params, grads = model(n_elements, n_arrays, dtype, matrices=takes_matrices_only(name))
    optimizer = optim.make(name, params)
    optimizer.step(grads)  # compiles, or loads from Numba's cache
    return optimizer.step, grads


@functools.cache
def reference_step(name, n_elements, dtype, n_arrays):
    """``(step, grads)`` of the NumPy oracle (``peers.ReferenceOptimizer``), warmed."""
    params, grads = model(n_elements, n_arrays, dtype, matrices=takes_matrices_only(name))
    optimizer = peers.ReferenceOptimizer(registry.get(name), params, options(name, dtype))
    optimizer.step(grads)
    return optimizer.step, grads


@functools.cache
def torch_step(name, n_elements, dtype, n_arrays, implementation):
    """A warmed ``torch.optim`` optimizer's ``step`` (gradients already attached), or
    ``NotImplementedError`` where torch has no such optimizer or implementation."""
    torch = require_torch()
    params, grads = model(n_elements, n_arrays, dtype, matrices=takes_matrices_only(name))
    optimizer = peers.torch_optimizer(
        torch, registry.get(name), params, grads, options(name, dtype), implementation
    )
    if optimizer is None:
        raise NotImplementedError(f"torch.optim has no {implementation} peer of {name}")
    return optimizer.step


class OptimizerStep:
    params = GRID
    param_names = GRID_NAMES

    def setup(self, name, n_elements, dtype, n_arrays):
        self.step, self.grads = kernel_step(name, n_elements, dtype, n_arrays)
        self.steps = steps_per_call(n_elements, n_arrays)

    def time_steps(self, *_):
        step, grads = self.step, self.grads
        for _ in range(self.steps):
            step(grads)

    def peakmem_step(self, *_):
        self.step(self.grads)


class ReferenceStep:
    params = GRID
    param_names = GRID_NAMES

    def setup(self, name, n_elements, dtype, n_arrays):
        self.step, self.grads = reference_step(name, n_elements, dtype, n_arrays)
        self.steps = steps_per_call(n_elements, n_arrays)

    def time_steps(self, *_):
        step, grads = self.step, self.grads
        for _ in range(self.steps):
            step(grads)


class TorchStep:
    params = (*GRID, ["foreach", "fused"])
    param_names = (*GRID_NAMES, "implementation")

    def setup(self, name, n_elements, dtype, n_arrays, implementation):
        self.step = torch_step(name, n_elements, dtype, n_arrays, implementation)
        self.steps = steps_per_call(n_elements, n_arrays)

    def time_steps(self, *_):
        step = self.step
        for _ in range(self.steps):
            step()


class Bandwidth:
    params = GRID
    param_names = GRID_NAMES
    unit = "fraction of the roofline"
    samples = 7

    def setup(self, name, n_elements, dtype, n_arrays):
        self.step, self.grads = kernel_step(name, n_elements, dtype, n_arrays)
        self.steps = steps_per_call(n_elements, n_arrays)
        passes = throughput.optimizer_passes(optim.make(name, [_empty(name, dtype)]))
        self.roofline = [
            bandwidth.make_pattern_call(passes, n_elements, dtype, parallel)
            for parallel in (False, True)
        ]

    def track_stream_fraction(self, *_):
        # the bytes of a step and of its roofline are the same: the fraction is a time ratio,
        # paired sample by sample so that the machine's drift falls on both
        step, grads = self.step, self.grads
        fractions = []
        for _ in range(self.samples):
            start = time.perf_counter()
            for _ in range(self.steps):
                step(grads)
            step_time = (time.perf_counter() - start) / self.steps
            roofline_times = []
            for call in self.roofline:
                start = time.perf_counter()
                for _ in range(self.steps):
                    call()
                roofline_times.append((time.perf_counter() - start) / self.steps)
            fractions.append(min(roofline_times) / step_time)
        return float(np.median(fractions))
