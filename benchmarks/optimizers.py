"""Optimizer step time for every registry entry (see ``common`` for the loop per call)."""

import numpy as np

from optbench import registry

from .common import model, steps_per_call


class OptimizerStep:
    params = (
        [info.name for info in registry.OPTIMIZERS],
        [10_000, 1_000_000],
        ["float32", "float64"],
        [1, 100],
    )
    param_names = ("optimizer", "n_elements", "dtype", "n_arrays")

    def setup(self, name, n_elements, dtype, n_arrays):
        params, self.grads = model(n_elements, n_arrays, np.dtype(dtype))
        self.optimizer = registry.get(name).make(params)
        self.optimizer.step(self.grads)  # compile (or load from cache) outside the timing
        self.steps = steps_per_call(n_elements)

    def time_steps(self, name, n_elements, dtype, n_arrays):
        step, grads = self.optimizer.step, self.grads
        for _ in range(self.steps):
            step(grads)
