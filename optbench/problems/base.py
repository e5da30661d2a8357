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

``loss_and_grad(params, batch)`` is a function of its arguments only: the randomness of a
training step (augmentation, dropout mask) is drawn when the batch is made and travels in it,
so calling it twice on the same batch gives the same loss and gradients. Its one side effect is
the update of BatchNorm's running statistics, which only :meth:`Problem.evaluate` reads.

Problems of two variables (the 2-D quadratic, Rosenbrock, Beale, the saddle) set ``bounds`` to
the plotting window and implement :meth:`Problem.loss_grid`, for contour plots.
"""

import abc
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import validation

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Option:
    """A problem option: its default, the type a command-line string is parsed into, the values
    it may take and one line of help.

    ``choices`` (a tuple of allowed values) or the interval ``low``..``high`` (either end
    ``None`` for unbounded; ``low_open``/``high_open`` exclude the end) restrict the value;
    ``validate(value)`` may raise ``ValueError`` for checks no interval can express.
    """

    default: Any
    type: type
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    validate: Callable[[Any], None] | None = None

    def parse(self, name, text):
        """The option's value from a command-line string, or a ``ValueError`` naming it."""
        if self.type is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"problem option {name}={text!r}: expected true or false")
            return lowered in ("true", "1", "yes")
        try:
            value = self.type(text.strip()) if self.type is not str else text
        except ValueError:
            raise ValueError(
                f"problem option {name}={text!r}: expected {_article(self.type.__name__)}"
            ) from None
        return self.check(name, value)

    def check(self, name, value):
        """``value`` converted to the option's type (an int is accepted for a float), or a
        ``TypeError``/``ValueError`` naming the option."""
        value = self._typed(name, value)
        if self.choices is not None and value not in self.choices:
            choices = ", ".join(map(str, self.choices))
            raise ValueError(f"problem option {name}={value!r}: choose one of {choices}")
        if not self._in_range(value):
            raise ValueError(f"problem option {name}={value!r}: must be {self.interval()}")
        if self.validate is not None:
            try:
                self.validate(value)
            except ValueError as error:
                raise ValueError(f"problem option {name}={value!r}: {error}") from None
        return value

    def _typed(self, name, value):
        wanted = self.type
        if not validation.has_type(value, wanted):
            raise TypeError(
                f"problem option {name} must be {_article(wanted.__name__)}, "
                f"got {type(value).__name__} {value!r}"
            )
        if wanted is float and not math.isfinite(value):
            raise ValueError(f"problem option {name}={value!r}: must be a finite number")
        return wanted(value)

    def _in_range(self, value):
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def interval(self):
        """The allowed range in words, e.g. ``"in [0, 1)"`` or ``">= 1"``; ``""`` if any."""
        if self.low is None and self.high is None:
            return ""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"

    def describe(self):
        """One line for listings: type, default, allowed values and help."""
        allowed = f"one of {', '.join(map(str, self.choices))}" if self.choices else self.interval()
        parts = [f"{self.type.__name__}, default {self.default!r}"]
        if allowed:
            parts.append(allowed)
        return f"{self.help} ({'; '.join(parts)})"


def _article(noun):
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


class Evaluation(NamedTuple):
    """Losses of a parameter vector: the full training set, the held-out set (``None`` where a
    problem has none), the held-out accuracy and the training set's accuracy (``None`` for
    problems that do not classify)."""

    train_loss: float
    test_loss: float | None
    test_accuracy: float | None
    train_accuracy: float | None = None


class Batch(NamedTuple):
    """A mini-batch of a data set: inputs (rows), integer or 0/1 targets, and the seed of the
    step's random draws (dropout masks), ``None`` where the step draws nothing."""

    x: np.ndarray
    targets: np.ndarray
    key: int | None = None


class Problem(abc.ABC):
    """A training problem: a loss, its exact gradient, data and an initial point.

    Subclasses set the class attributes, build their data in ``__init__`` (from ``seed`` only)
    and implement the abstract methods. ``n_train`` is the number of training examples; a
    problem whose loss is a fixed function (Rosenbrock, the quadratic) has ``n_train == 1`` and
    a single batch, ``None``, per epoch. ``optimum`` is the minimal training loss where it is
    known exactly, else ``None``; ``x_star`` the minimizer where known. ``min_batch_size`` is
    the smallest batch a training step accepts (2 with BatchNorm). The runner evaluates the
    full training and test sets every ``epochs_per_evaluation`` epochs (and after the last
    step): more than 1 where an epoch is a few steps and training takes thousands.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[Mapping[str, Option]] = {}
    classifier: ClassVar[bool] = False

    n_train: int = 1
    optimum: float | None = None
    x_star: np.ndarray | None = None
    min_batch_size: int = 1
    epochs_per_evaluation: ClassVar[int] = 1
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None

    def __init__(self, seed=0, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise ValueError(f"{self.name} has no option {unknown[0]!r}; its options are: {valid}")
        if not (validation.is_integer(seed) and seed >= 0):
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.config = {name: option.default for name, option in self.options.items()}
        for name, value in options.items():
            self.config[name] = self.options[name].check(name, value)

    def __repr__(self):
        options = "".join(f", {name}={value!r}" for name, value in self.config.items())
        return f"{type(self).__name__}(seed={self.seed}{options})"

    def rng(self, stream):
        """A new generator for one of the problem's independent random streams (data, initial
        parameters, per-batch draws), a function of ``(seed, stream)`` only."""
        return np.random.default_rng([self.seed, stream])

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

    def loss_grid(self, xs, ys):
        """The loss at every point of the grid ``xs`` x ``ys`` (1-D arrays), as an array of
        shape ``(len(ys), len(xs))`` (``numpy.meshgrid`` order: row i is ``y = ys[i]``), in
        float64. Only problems of two variables (``bounds`` set) have one."""
        raise ValueError(f"{self.name} is not a problem of two variables: it has no loss grid")

    def _grid(self, xs, ys):
        """The meshgrid of two 1-D float sequences, checked."""
        xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
        if xs.ndim != 1 or ys.ndim != 1:
            raise ValueError(f"xs and ys must be 1-D, got shapes {xs.shape} and {ys.shape}")
        return np.meshgrid(xs, ys)

    def batch(self, indices):
        """The training examples at ``indices``; problems with data override this."""
        return None

    def batches(self, batch_size, rng) -> Iterator[Any]:
        """One epoch of mini-batches: a new permutation of the training set drawn from ``rng``,
        cut into ``ceil(n_train / batch_size)`` batches (the last one may be smaller; one
        smaller than ``min_batch_size`` joins the batch before it). ``batch_size=None`` or
        ``"full"`` means the full batch (gradient descent). Arguments are checked now, not
        when the iteration starts."""
        size = self.check_batch_size(batch_size)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return self._epoch(size, rng)

    def _epoch(self, size, rng):
        if self.n_train == 1:
            yield self.batch(None)
            return
        order = rng.permutation(self.n_train)
        for start, stop in self._cuts(size):
            yield self.batch(order[start:stop])

    def _cuts(self, size):
        starts = list(range(0, self.n_train, size))
        if len(starts) > 1 and self.n_train - starts[-1] < self.min_batch_size:
            starts.pop()
        return list(zip(starts, [*starts[1:], self.n_train], strict=True))

    def matrix_positions(self):
        """Positions, in the parameter list, of the hidden weight matrices: the arrays an
        optimizer of matrices (Muon) takes, never the embeddings, the output layer, biases or
        gains. None by default; networks list theirs."""
        return ()

    def as_matrices(self, arrays):
        """``arrays`` (parameters or gradients, in the problem's order) as an optimizer of
        matrices sees them: every array of :meth:`matrix_positions` as a 2-D view, its first
        dimension kept and the others merged (a convolution's ``(C_out, C_in, K)`` filters as
        ``(C_out, C_in K)``), every other array as a 1-D view. The views share the arrays'
        memory (they must be C-contiguous), so stepping them steps the arrays."""
        matrices = set(self.matrix_positions())
        views = []
        for position, array in enumerate(arrays):
            shape = (array.shape[0], -1) if position in matrices else (-1,)
            view = array.reshape(shape)
            if not np.shares_memory(view, array):
                raise ValueError(
                    f"arrays[{position}] is not contiguous: it has no view of that shape"
                )
            views.append(view)
        return views

    def steps_per_epoch(self, batch_size):
        return len(self._cuts(self.check_batch_size(batch_size)))

    def check_batch_size(self, batch_size):
        """``batch_size`` as an int in [min_batch_size, n_train] (``None`` and ``"full"``:
        ``n_train``)."""
        if batch_size is None or (isinstance(batch_size, str) and batch_size == "full"):
            return self.n_train
        if not validation.is_integer(batch_size):
            raise TypeError(f"batch_size must be an int or 'full', got {batch_size!r}")
        if self.n_train == 1:
            if batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {batch_size}")
            return 1
        if not self.min_batch_size <= batch_size <= self.n_train:
            raise ValueError(
                f"batch_size must be in [{self.min_batch_size}, {self.n_train}] for "
                f"{self.name}{self._batch_size_reason()}, got {batch_size}"
            )
        return int(batch_size)

    def _batch_size_reason(self):
        return ""

    def _unpack(self, params, count):
        """``params`` as a list of ``count`` arrays, or a ``ValueError``."""
        if not isinstance(params, list | tuple) or len(params) != count:
            got = len(params) if isinstance(params, list | tuple) else type(params).__name__
            raise ValueError(f"{self.name} takes a list of {count} parameter arrays, got {got}")
        return params
