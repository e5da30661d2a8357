"""The interface every problem implements, and the mini-batch sampler they share.

A problem is built from a seed and its options; everything it does afterwards (data, initial
parameters, batch order, dropout masks) is a function of that seed, so that two runs with the
same seed give bit-identical losses. The runner sees only this interface::

    problem = PROBLEMS["digits_mlp"](seed=0, norm="batch")
    params = problem.initial_params()                # fresh arrays, the optimizer's to update
    for batch in problem.batches(32, np.random.default_rng(1)):   # one epoch
        loss, grads = problem.loss_and_grad(params, batch)
        optimizer.step(grads)
    problem.evaluate(params)                          # Evaluation(train_loss, test_loss, ...)
"""

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np


@dataclass(frozen=True)
class Option:
    """A problem option: its default, the type a command-line string is parsed into, the values
    it may take (``None``: any value of the type) and one line of help."""

    default: Any
    type: type
    help: str
    choices: tuple | None = None

    def parse(self, name, text):
        """The option's value from a command-line string, or a ``ValueError`` naming it."""
        if self.type is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"problem option {name}={text!r}: expected true or false")
            return lowered in ("true", "1", "yes")
        try:
            value = self.type(text)
        except ValueError:
            raise ValueError(
                f"problem option {name}={text!r}: expected a {self.type.__name__}"
            ) from None
        self.check(name, value)
        return value

    def check(self, name, value):
        if self.choices is not None and value not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise ValueError(f"problem option {name}={value!r}: choose one of {choices}")


class Evaluation(NamedTuple):
    """Losses of a parameter vector: the full training set, the held-out set (``None`` where a
    problem has none) and the held-out accuracy (``None`` for problems that do not classify)."""

    train_loss: float
    test_loss: float | None
    test_accuracy: float | None


class Problem(abc.ABC):
    """A training problem: a loss, its exact gradient, data and an initial point.

    Subclasses set the class attributes, build their data in ``__init__`` (from ``seed`` only)
    and implement the abstract methods. ``n_train`` is the number of training examples; a
    problem whose loss is a fixed function (Rosenbrock, the quadratic) has ``n_train == 1`` and
    a single batch, ``None``, per epoch. ``optimum`` is the minimal training loss where it is
    known exactly, else ``None``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[Mapping[str, Option]] = {}
    classifier: ClassVar[bool] = False

    n_train: int = 1
    optimum: float | None = None

    def __init__(self, seed=0, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise ValueError(f"{self.name} has no option {unknown[0]!r}; its options are: {valid}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.config = {name: option.default for name, option in self.options.items()}
        for name, value in options.items():
            self.options[name].check(name, value)
            self.config[name] = value

    @abc.abstractmethod
    def initial_params(self) -> list[np.ndarray]:
        """New, C-contiguous parameter arrays at the seeded initial point (and any internal
        buffers, such as BatchNorm's running statistics, reset)."""

    @abc.abstractmethod
    def loss_and_grad(self, params, batch) -> tuple[float, list[np.ndarray]]:
        """Training-mode loss on ``batch`` and its exact gradient, one array per parameter."""

    @abc.abstractmethod
    def evaluate(self, params) -> Evaluation:
        """Eval-mode losses (and accuracy) of ``params``; changes no state."""

    def batch(self, indices):
        """The training examples at ``indices``; problems with data override this."""
        return None

    def batches(self, batch_size, rng) -> Iterator[Any]:
        """One epoch of mini-batches: a new permutation of the training set drawn from ``rng``,
        cut into ``ceil(n_train / batch_size)`` batches (the last one may be smaller).
        ``batch_size=None`` means the full batch (gradient descent)."""
        size = self.check_batch_size(batch_size)
        if self.n_train == 1:
            yield self.batch(None)
            return
        order = rng.permutation(self.n_train)
        for start in range(0, self.n_train, size):
            yield self.batch(order[start : start + size])

    def steps_per_epoch(self, batch_size):
        size = self.check_batch_size(batch_size)
        return -(-self.n_train // size)

    def check_batch_size(self, batch_size):
        """``batch_size`` as an int in [1, n_train] (``None`` and ``"full"``: ``n_train``)."""
        if batch_size is None or batch_size == "full":
            return self.n_train
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"batch_size must be an int or 'full', got {batch_size!r}")
        if self.n_train == 1:
            return 1
        if not 1 <= batch_size <= self.n_train:
            raise ValueError(
                f"batch_size must be in [1, {self.n_train}] for {self.name}, got {batch_size}"
            )
        return int(batch_size)
