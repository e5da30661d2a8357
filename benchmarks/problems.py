"""One training step of every registry problem x batch size: gather the mini-batch, loss and
gradient, SGD update; and the training step of the networks compared with torch
(``TrainingStepVsTorch``).

``time_steps`` runs ``steps_per_call(batch)`` steps per timed call (see ``common``), on
mini-batches whose indices are drawn in ``setup`` from a fixed seed; the loop length depends on
the parameters only. Batch sizes above a problem's training set, below its smallest allowed
batch (2 with BatchNorm), or equal to another grid point (``full`` for a training set of 1,
32, 128 or 1024 examples; every size above 1 for the closed-form problems, which have no data)
are skipped. The SGD learning rate is tiny so that thousands of repeated steps stay finite.
In smoke mode (``common.SMOKE``) every grid point stays but a timed call is at most a few
steps.
"""

import functools
import itertools

import numpy as np

from optbench import optim
from optbench.problems import PROBLEMS
from optbench.torch_models import TRAINING_PROBLEMS, training_steps

from .common import SMOKE, require_torch, torch

BATCH_SIZES = [1, 32, 128, 1024, "full"]
EXAMPLES_PER_CALL = 1_000 if SMOKE else 20_000
MAX_STEPS_PER_CALL = 10 if SMOKE else 200
OPTIMIZER = "sgd"
LEARNING_RATE = 1e-6


def steps_per_call(batch_size):
    """``min(MAX_STEPS_PER_CALL, max(1, EXAMPLES_PER_CALL // batch_size))``."""
    return min(MAX_STEPS_PER_CALL, max(1, EXAMPLES_PER_CALL // batch_size))


def batch_size_of(problem, batch_size):
    """The number of examples per step, or ``NotImplementedError`` for a skipped grid point."""
    explicit = [b for b in BATCH_SIZES if b != "full"]
    if batch_size == "full" and problem.n_train in explicit:
        raise NotImplementedError(f"full batch is batch size {problem.n_train}")
    if batch_size != "full" and problem.n_train == 1 and batch_size > 1:
        raise NotImplementedError(f"{problem.name} has no data: one batch size")
    try:
        return problem.check_batch_size(batch_size)
    except ValueError as error:
        raise NotImplementedError(str(error)) from None


@functools.cache
def training_step(name, batch_size):
    """``(step, size)``: a warmed function doing one training step of problem ``name`` per
    call (cycling over pre-drawn batches), and the batch size it uses."""
    problem = PROBLEMS[name](seed=0)
    size = batch_size_of(problem, batch_size)
    params = problem.initial_params()
    optimizer = optim.make(OPTIMIZER, params, lr=LEARNING_RATE)
    rng = np.random.default_rng(1)
    if problem.n_train == 1:
        draws = [None]
    else:
        draws = [rng.permutation(problem.n_train)[:size] for _ in range(8)]
    indices = itertools.cycle(draws)

    def step():
        _, grads = problem.loss_and_grad(params, problem.batch(next(indices)))
        optimizer.step(grads)

    step()  # compiles, or loads from Numba's cache
    return step, size


class TrainingStep:
    params = (list(PROBLEMS), BATCH_SIZES)
    param_names = ("problem", "batch_size")

    def setup(self, name, batch_size):
        self.step, size = training_step(name, batch_size)
        self.steps = steps_per_call(size)

    def time_steps(self, *_):
        step = self.step
        for _ in range(self.steps):
            step()


STEPS_VS_TORCH = 2 if SMOKE else 20


@functools.cache
def training_steps_vs_torch(name):
    """``{implementation: step}`` of :func:`optbench.torch_models.training_steps` for problem
    ``name`` at batch 32, float32 (torch's only where it is installed)."""
    implementations = ("optbench", "torch") if torch is not None else ("optbench",)
    return training_steps(PROBLEMS[name](seed=0), 32, implementations)


class TrainingStepVsTorch:
    """One training step (forward, loss, backward, Adam) of the networks that ``optbench
    throughput`` compares with torch, batch 32, float32: optbench's, and the same network,
    loss and optimizer in torch (``torch.optim.Adam(fused=True)``). ``STEPS_VS_TORCH`` steps per
    timed call."""

    params = (list(TRAINING_PROBLEMS), ["optbench", "torch"])
    param_names = ("problem", "implementation")

    def setup(self, name, implementation):
        if implementation == "torch":
            require_torch()
        self.step = training_steps_vs_torch(name)[implementation]

    def time_steps(self, *_):
        step = self.step
        for _ in range(STEPS_VS_TORCH):
            step()
