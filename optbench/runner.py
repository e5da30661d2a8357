"""Train one optimizer on one problem and record the run as a tidy table: :func:`run`.

::

    record = runner.run("adam", "digits_mlp", lr=1e-3, batch_size=32, epochs=5, seed=0)
    record.loc[record.test_loss.notna(), ["epoch", "test_loss", "test_accuracy"]]

The record has one row per logged step. Step ``t`` is the ``t``-th optimizer update; row 0
describes the initial parameters. Rows are written at step 0, at every multiple of
``log_every``, at the end of every epoch of a problem with data, at the last step, and at the
step where a run diverged. Columns:

===================  =============================================================================
problem              the problem's name
optimizer            the optimizer's name
lr                   the nominal learning rate of the run (a schedule's base or peak)
batch_size           mini-batch size (the training set's size for a full batch)
seed                 the run's seed
step                 optimizer updates done (0: the initial parameters)
epoch                passes over the training set done, ``examples_seen / n_train`` (fractional)
examples_seen        training examples used for gradients so far
scheduled_lr         the learning rate used by the update of this step (``lr`` at step 0)
train_loss           the mini-batch loss of this step, measured at the parameters the update
                     started from (NaN at step 0): cheap, noisy, recorded at every logged step
full_train_loss      loss on the whole training set at the parameters after the step, in eval
                     mode (no dropout, running BatchNorm statistics); only at evaluation points
test_loss            held-out loss at the parameters after the step; only at evaluation points,
                     NaN for problems without held-out data
test_accuracy        held-out accuracy in [0, 1]; at evaluation points, classifiers only
train_accuracy       the training set's accuracy in eval mode; as test_accuracy
distance_to_optimum  ``||x - x_star||_2`` at evaluation points, for problems whose minimizer
                     ``x_star`` is known (NaN for the others)
grad_norm            global L2 norm of this step's mini-batch gradient, sqrt(sum_i ||g_i||^2)
wall_time            seconds spent training up to and including this step: batch sampling,
                     loss and gradient, the schedule and the optimizer update; evaluation and
                     logging are excluded, and so is JIT compilation (a warm-up step on a twin
                     problem runs before the clock starts)
diverged             True on the row of the step at which the run diverged (its last row)
param_0, param_1     the parameters after the step, in eval mode (``record_params``, 2-D
                     problems; Schedule-Free's x)
layer_grad_norm_i    L2 norm of layer i's gradient, input layer first
                     (``record_layer_grad_norms``, problems with ``last_layer_grad_norms``)
optimizer_options    JSON of the optimizer options given (``{}``: the defaults)
problem_options      JSON of the problem options that differ from their defaults
schedule             ``constant``, a schedule name with its options, or the schedule's repr
===================  =============================================================================

Evaluation points are step 0, the end of every ``problem.epochs_per_evaluation``-th epoch
(every logged step for problems without data, whose epoch is one step), the last step, and a
step where early stopping fires.

Threads: a run uses Numba's threads (``numba.set_num_threads``) for the layers and one BLAS
thread for the matrix products. Two thread pools that each spin-wait after their work fight
for the cores: on 2 cores a ``modular_addition`` step at batch 32 took 16.6 ms with both at 2
threads, 3.8 ms with one BLAS thread, 4.2 ms with one Numba thread (see the README's speed
section).

A run diverges when the mini-batch loss is not finite or exceeds ``divergence_bound``, when
the schedule's learning rate is not finite (or overflows a float, ``scheduled_lr`` is then
``inf``), or when the optimizer refuses a non-finite gradient (``nonfinite="raise"``); the
update is not applied, the row is marked and the run ends: divergence is a result, never an
exception.

Reproducibility: the problem is built from ``seed`` (its data, initial point and dropout
masks) and the batch order comes from a generator seeded with the first child of
``numpy.random.SeedSequence(seed)``, so equal arguments give identical records, wall_time
excepted.
"""

import contextlib
import inspect
import json
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import optim, registry, schedules, validation
from .problems.base import Problem
from .spec import OptimizerSpec, conforming_shape

_EVALUATION_COLUMNS = (
    "full_train_loss",
    "test_loss",
    "test_accuracy",
    "distance_to_optimum",
    "train_accuracy",
)
MONITORS = ("train_loss", "full_train_loss", "test_loss", "test_accuracy")
# Budget of a run given neither epochs nor steps.
DEFAULT_EPOCHS = 5  # problems with data
DEFAULT_STEPS = 1000  # problems without data (one step per epoch)
# Options of every optimizer (see optim.Optimizer), besides those of its own constructor.
_EXTRA_OPTIONS = ("clip_value", "l1", "max_norm", "clip_norm", "nonfinite")
# The largest seed: records keep the seed in an int64 column (Parquet, concatenated tables).
MAX_SEED = 2**63 - 1
# (problem type, config, optimizer class, options, batch size) already compiled in this process
_WARMED = set()


@dataclass(frozen=True)
class EarlyStopping:
    """Stop a run when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    consecutive checks.

    A check happens at every row where the monitored column has a value (every logged step for
    ``train_loss``, every evaluation point for the others). ``mode`` is ``"min"`` or ``"max"``;
    ``None`` means ``"max"`` for ``test_accuracy`` and ``"min"`` otherwise. A value improves on
    the best so far ``b`` if it is below ``b - min_delta`` (``"min"``) or above ``b +
    min_delta`` (``"max"``).
    """

    monitor: str = "test_loss"
    patience: int = 5
    min_delta: float = 0.0
    mode: str | None = None

    def __post_init__(self):
        if self.monitor not in MONITORS:
            raise ValueError(
                f"early stopping monitor {self.monitor!r} is not a column that can be "
                f"monitored; choose from {', '.join(MONITORS)}"
            )
        validation.integer("patience", self.patience, 1)
        validation.real("min_delta", self.min_delta)
        if self.mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or None, got {self.mode!r}")

    @property
    def maximize(self):
        return self.mode == "max" or (self.mode is None and self.monitor == "test_accuracy")


class _Stopper:
    """The state of one run's early stopping."""

    def __init__(self, rule):
        self.rule = rule
        self.best = None
        self.checks_without_improvement = 0

    def should_stop(self, value):
        if value is None or math.isnan(value):
            return False
        sign = -1.0 if self.rule.maximize else 1.0
        if self.best is None or sign * value < sign * self.best - self.rule.min_delta:
            self.best, self.checks_without_improvement = value, 0
            return False
        self.checks_without_improvement += 1
        return self.checks_without_improvement >= self.rule.patience


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def check_seed(seed):
    """``int(seed)``; ``ValueError`` unless ``seed`` is an integer in [0, :data:`MAX_SEED`]."""
    if not (validation.is_integer(seed) and 0 <= seed <= MAX_SEED):
        raise ValueError(f"seed must be an integer in [0, 2**63 - 1], got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------------------------
# optimizers and problems by name
# --------------------------------------------------------------------------------------------
def resolve_optimizer(optimizer):
    """The :class:`~optbench.spec.OptimizerSpec` of a name, a spec or an optimizer class."""
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        if optimizer.spec is None:
            raise TypeError("optimizer must be an optimizer class made from a spec, not the base")
        return optimizer.spec
    if isinstance(optimizer, str | OptimizerSpec):
        return registry.get(optimizer)
    raise TypeError(
        "optimizer must be a name, an OptimizerSpec or an optim.Optimizer subclass, "
        f"got {type(optimizer).__name__}"
    )


def optimizer_option_defaults(optimizer):
    """``{option: default}`` of an optimizer's constructor (``lr`` aside), the extras shared by
    every optimizer (``clip_value``, ``l1``, ``max_norm``, ``clip_norm``, ``nonfinite``)
    included."""
    spec = resolve_optimizer(optimizer)
    shared = inspect.signature(optim.Optimizer).parameters
    options = {h.name: h.default for h in spec.hyperparameters if h.in_signature and h.name != "lr"}
    options.update({name: shared[name].default for name in _EXTRA_OPTIONS})
    return options


def check_optimizer_options(optimizer, options):
    """Raise a ``ValueError``/``TypeError`` naming the first unknown option or bad value.

    Values are checked by building the optimizer over a one-element array, so the messages are
    the optimizer's own.
    """
    info = resolve_optimizer(optimizer)
    if not isinstance(options, dict):
        raise TypeError(f"optimizer_options must be a dict, got {type(options).__name__}")
    valid = optimizer_option_defaults(info)
    for name in options:
        if name == "lr":
            raise ValueError(f"give the learning rate as lr, not as an option of {info.name}")
        if name not in valid:
            raise ValueError(
                f"{info.name} has no option {name!r}; its options are: {', '.join(valid)}"
            )
    optim.make(info, [np.zeros(conforming_shape((1,), info.ndims))], **options)


def parse_optimizer_option(optimizer, name, text):
    """An optimizer option's value from a command-line string, typed by its default.

    Booleans take true/false (also 1/0, yes/no); pairs such as ``betas`` take ``"0.9,0.999"``;
    options that default to ``None`` take a number or ``none``.
    """
    info = resolve_optimizer(optimizer)
    defaults = optimizer_option_defaults(info)
    if name not in defaults:
        raise ValueError(
            f"{info.name} has no option {name!r}; its options are: {', '.join(defaults)}"
        )
    default, text = defaults[name], text.strip()

    def bad(expected):
        return ValueError(f"optimizer option {name}={text!r}: expected {expected}")

    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise bad("true or false")
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, tuple):
            values = tuple(float(part) for part in text.split(","))
            if len(values) != len(default):
                raise bad(f"{len(default)} comma-separated numbers")
            return values
        if default is None:
            return None if text.lower() == "none" else float(text)
        if isinstance(default, str):
            return text
        return type(default)(text)
    except ValueError as error:
        if str(error).startswith("optimizer option"):
            raise
        raise bad(f"a {'number' if default is None else type(default).__name__}") from None


def resolve_problem_class(problem):
    """The :class:`~optbench.problems.base.Problem` subclass called ``problem`` (or given)."""
    if isinstance(problem, type) and issubclass(problem, Problem):
        return problem
    if not isinstance(problem, str):
        raise TypeError(
            f"problem must be a name, a Problem subclass or instance, got {type(problem).__name__}"
        )
    from . import problems

    return problems.get(problem)


def parse_problem_option(problem, name, text):
    """A problem option's value from a command-line string (:meth:`Option.parse`)."""
    cls = resolve_problem_class(problem)
    if name not in cls.options:
        valid = ", ".join(cls.options) or "none"
        raise ValueError(f"{cls.name} has no option {name!r}; its options are: {valid}")
    return cls.options[name].parse(name, text)


def build_problem(problem, seed=0, options=None):
    """A problem instance from a name or class (built with ``seed`` and ``options``), or the
    instance given (then ``options`` must be empty: it was built with its own)."""
    options = dict(options or {})
    if isinstance(problem, Problem):
        if options:
            raise ValueError("problem_options apply to a problem given by name or class")
        return problem
    return resolve_problem_class(problem)(seed=seed, **options)


def _changed_options(problem):
    return {k: v for k, v in problem.config.items() if v != problem.options[k].default}


def _json(options):
    return json.dumps(options, sort_keys=True, default=str)


def budget_steps(problem, batch_size, epochs, steps):
    """The steps of a run of ``problem`` at ``batch_size`` (an int) given ``epochs`` or
    ``steps`` (at most one; neither: ``DEFAULT_EPOCHS`` epochs, or ``DEFAULT_STEPS`` steps
    for a problem without data)."""
    per_epoch = problem.steps_per_epoch(batch_size)
    if epochs is not None and steps is not None:
        raise ValueError("give epochs or steps, not both")
    if steps is not None:
        return validation.integer("steps", steps, 1)
    if epochs is None:
        return DEFAULT_STEPS if problem.n_train == 1 else DEFAULT_EPOCHS * per_epoch
    return validation.integer("epochs", epochs, 1) * per_epoch


def _resolve_schedule(schedule, options, lr, total_steps):
    """(schedule object or None, its description for the record)."""
    options = dict(options or {})
    if schedule is None:
        if options:
            raise ValueError("schedule_options need a schedule")
        return None, "constant"
    if schedule == "constant" and not options:
        return None, "constant"
    if isinstance(schedule, str):
        built = schedules.make(schedule, lr, total_steps=total_steps, **options)
        described = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        return built, f"{schedule}({described})" if options else schedule
    if not callable(schedule):
        raise TypeError(f"schedule must be a name or a callable, got {type(schedule).__name__}")
    if options:
        raise ValueError("schedule_options apply to a schedule given by name")
    return schedule, repr(schedule)


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def _warm_up(problem, info, lr, options, batch_size):
    """One step on a twin of ``problem`` (same seed and options) so that every kernel the run
    calls is compiled before its clock starts; the run's own problem is not touched."""
    key = (type(problem), _json(problem.config), info, _json(options), batch_size)
    if key in _WARMED:
        return
    twin = type(problem)(seed=problem.seed, **problem.config)
    params = twin.initial_params()
    batch = next(iter(twin.batches(batch_size, np.random.default_rng(0))))
    try:
        _, grads = twin.loss_and_grad(params, batch)
        optim.make(info, _seen_by(info, twin, params), lr=lr, **options).step(
            _seen_by(info, twin, grads)
        )
    except FloatingPointError:
        pass  # a non-finite first gradient: the run will record the divergence
    _WARMED.add(key)


def _seen_by(info, problem, arrays):
    """The arrays as the optimizer takes them: a problem's hidden matrices 2-D and the rest 1-D
    for an optimizer of matrices (``spec.hidden_matrices``), else as they are."""
    return problem.as_matrices(arrays) if info.hidden_matrices else arrays


def _optional(value):
    return math.nan if value is None else float(value)


def _grad_norm(grads):
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads))


def _flat_params(params):
    return np.concatenate([np.ravel(p) for p in params])


def batch_order_rng(seed):
    """The generator that orders mini-batches: first child of ``SeedSequence(seed)``."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


def _batch_stream(problem, batch_size, rng):
    while True:
        yield from problem.batches(batch_size, rng)


def run(
    optimizer,
    problem,
    *,
    lr=None,
    batch_size=32,
    schedule=None,
    schedule_options=None,
    epochs=None,
    steps=None,
    seed=0,
    optimizer_options=None,
    problem_options=None,
    log_every=1,
    early_stopping=None,
    divergence_bound=None,
    record_params=False,
    record_layer_grad_norms=False,
    evaluate=True,
):
    """Train ``optimizer`` on ``problem`` and return the record (see the module docstring).

    Parameters
    ----------
    optimizer : str, OptimizerSpec or optim.Optimizer subclass
    problem : str, Problem subclass or Problem instance (used as built, with its own seed and
        random streams: ``seed`` then orders the batches only)
    lr : float >= 0, or None for the registry's ``lr`` of the optimizer
    batch_size : int in [1, n_train], or None / "full" for the whole training set
    schedule : None (constant ``lr``), a name of :data:`optbench.schedules.SCHEDULES` (built
        at ``lr`` for the run's length with ``schedule_options``), or a callable
        ``step -> lr`` used as given
    epochs, steps : the budget, at most one of them; neither: ``DEFAULT_EPOCHS`` epochs for
        problems with data, ``DEFAULT_STEPS`` steps for the others
    seed : int in [0, MAX_SEED]; builds the problem and orders the batches
    optimizer_options, problem_options : dicts of constructor options
    log_every : int >= 1, steps between logged rows
    early_stopping : EarlyStopping or None
    divergence_bound : float or None; a mini-batch loss above it ends the run as diverged
    record_params : add ``param_0, param_1`` (the problem must have 2 parameters)
    record_layer_grad_norms : add ``layer_grad_norm_<i>`` (the problem must expose
        ``last_layer_grad_norms``)
    evaluate : False skips evaluation altogether (``full_train_loss``, ``test_*`` stay NaN)

    Every argument is checked, with a ``ValueError``/``TypeError`` naming it, before training.
    """
    info = resolve_optimizer(optimizer)
    optimizer_options = dict(optimizer_options or {})
    check_optimizer_options(info, optimizer_options)
    lr = info.lr if lr is None else validation.real("lr", lr)
    log_every = validation.integer("log_every", log_every, 1)
    seed = check_seed(seed)
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be an EarlyStopping, got {early_stopping!r}")
    if divergence_bound is not None:
        validation.real("divergence_bound", divergence_bound, -math.inf)
    problem = build_problem(problem, int(seed), problem_options)
    size = problem.check_batch_size(batch_size)
    total_steps = budget_steps(problem, size, epochs, steps)
    schedule, schedule_name = _resolve_schedule(schedule, schedule_options, lr, total_steps)
    if record_layer_grad_norms and not hasattr(problem, "last_layer_grad_norms"):
        raise ValueError(f"record_layer_grad_norms: {problem.name} records no per-layer norms")
    params = problem.initial_params()
    if record_params and sum(p.size for p in params) != 2:
        raise ValueError(f"record_params needs a problem with 2 parameters, not {problem.name}")
    first_lr = lr if schedule is None else schedule(0)
    opt = optim.make(info, _seen_by(info, problem, params), lr=first_lr, **optimizer_options)

    # a diverging run overflows: that is recorded, not warned
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        _warm_up(problem, info, first_lr, optimizer_options, size)
        record = _train(
            problem,
            params,
            opt,
            schedule=schedule,
            batch_size=size,
            total_steps=total_steps,
            rng=batch_order_rng(int(seed)),
            log_every=log_every,
            stopper=None if early_stopping is None else _Stopper(early_stopping),
            divergence_bound=divergence_bound,
            record_params=record_params,
            record_layer_grad_norms=record_layer_grad_norms,
            evaluate=evaluate,
            lr=lr,
        )
    frame = pd.DataFrame(record.columns)
    frame.insert(0, "problem", problem.name)
    frame.insert(1, "optimizer", info.name)
    frame.insert(2, "lr", lr)
    # the size asked for: problems without data take every size and run their one batch
    frame.insert(3, "batch_size", int(batch_size) if validation.is_integer(batch_size) else size)
    frame.insert(4, "seed", int(seed))
    frame["optimizer_options"] = _json(optimizer_options)
    frame["problem_options"] = _json(_changed_options(problem))
    frame["schedule"] = schedule_name
    frame.attrs["stop_reason"] = record.stop_reason
    return frame


# the columns a run logs at every logged step, in the record's order
RECORD_COLUMNS = (
    "step",
    "epoch",
    "examples_seen",
    "scheduled_lr",
    "train_loss",
    "full_train_loss",
    "test_loss",
    "test_accuracy",
    "train_accuracy",
    "distance_to_optimum",
    "grad_norm",
    "wall_time",
    "diverged",
)


class _Record:
    """Column lists of a run's record, appended to row by row."""

    NAMES = RECORD_COLUMNS

    def __init__(self, record_params, record_layer_grad_norms):
        self.columns = {name: [] for name in self.NAMES}
        if record_params:
            self.columns["param_0"], self.columns["param_1"] = [], []
        self.layer_norms = [] if record_layer_grad_norms else None
        self.stop_reason = "budget"

    def add(self, values, params=None, layer_norms=None):
        for name in self.NAMES:
            self.columns[name].append(values[name])
        if "param_0" in self.columns:
            flat = _flat_params(params)
            self.columns["param_0"].append(float(flat[0]))
            self.columns["param_1"].append(float(flat[1]))
        if self.layer_norms is not None:
            self.layer_norms.append(layer_norms)

    def finish(self):
        if self.layer_norms is not None:
            count = max((len(n) for n in self.layer_norms if n is not None), default=0)
            for i in range(count):
                self.columns[f"layer_grad_norm_{i}"] = [
                    math.nan if n is None else float(n[i]) for n in self.layer_norms
                ]
        return self


def _train(
    problem,
    params,
    opt,
    *,
    schedule,
    batch_size,
    total_steps,
    rng,
    log_every,
    stopper,
    divergence_bound,
    record_params,
    record_layer_grad_norms,
    evaluate,
    lr,
):
    """The training loop of :func:`run`; returns the finished :class:`_Record`."""
    record = _Record(record_params, record_layer_grad_norms)
    n_train = problem.n_train
    per_epoch = problem.steps_per_epoch(batch_size)
    has_data = n_train > 1
    evaluation_period = problem.epochs_per_evaluation
    nan = math.nan

    known_optimum = getattr(problem, "x_star", None) is not None and hasattr(
        problem, "distance_to_optimum"
    )
    not_evaluated = dict.fromkeys(_EVALUATION_COLUMNS, nan)

    def evaluation():
        """The metrics of the weights to evaluate (the optimizer's eval mode: Schedule-Free's
        average x rather than its training point)."""
        if not evaluate:
            return not_evaluated
        with opt.evaluating():
            result = problem.evaluate(params)
            distance = problem.distance_to_optimum(params) if known_optimum else nan
        return {
            "full_train_loss": float(result.train_loss),
            "test_loss": nan if result.test_loss is None else float(result.test_loss),
            "test_accuracy": nan if result.test_accuracy is None else float(result.test_accuracy),
            "train_accuracy": _optional(getattr(result, "train_accuracy", None)),
            "distance_to_optimum": distance,
        }

    first = evaluation()
    if stopper is not None and evaluate and stopper.rule.monitor != "train_loss":
        if math.isnan(first[stopper.rule.monitor]):
            raise ValueError(
                f"early stopping monitors {stopper.rule.monitor}, which {problem.name} "
                "does not report"
            )
        stopper.should_stop(first[stopper.rule.monitor])
    record.add(
        {
            "step": 0,
            "epoch": 0.0,
            "examples_seen": 0,
            "scheduled_lr": lr,
            "train_loss": nan,
            "grad_norm": nan,
            "wall_time": 0.0,
            "diverged": False,
            **first,
        },
        params,
    )
    stream = _batch_stream(problem, batch_size, rng)
    clock = 0.0
    for step in range(1, total_steps + 1):
        start = time.perf_counter()
        batch = next(stream)
        try:
            step_lr = lr if schedule is None else schedules.apply(schedule, opt, step - 1)
        except OverflowError:  # e.g. gamma ** t of an exponential schedule
            step_lr = math.inf
        loss, grads = nan, None
        try:
            loss, grads = problem.loss_and_grad(params, batch)
            loss = float(loss)
            diverged = not (math.isfinite(loss) and math.isfinite(step_lr)) or (
                divergence_bound is not None and loss > divergence_bound
            )
            if not diverged:
                opt.step(_seen_by(opt.spec, problem, grads))
        except FloatingPointError:
            diverged = True
        clock += time.perf_counter() - start

        epochs_done, into_epoch = divmod(step, per_epoch)
        seen = epochs_done * n_train + min(into_epoch * batch_size, n_train)
        epoch_end = into_epoch == 0
        evaluated = epoch_end and epochs_done % evaluation_period == 0
        last = step == total_steps
        logged = diverged or last or step % log_every == 0 or (epoch_end and has_data)
        if not logged:
            continue
        values = {
            "step": step,
            "epoch": seen / n_train,
            "examples_seen": seen,
            "scheduled_lr": step_lr,
            "train_loss": loss,
            "grad_norm": nan if grads is None else _grad_norm(grads),
            "wall_time": clock,
            "diverged": diverged,
            **not_evaluated,
        }
        stop = False
        if not diverged:
            if last or evaluated:
                values.update(evaluation())
            if stopper is not None:
                stop = stopper.should_stop(values[stopper.rule.monitor])
                if stop and not (last or evaluated):
                    values.update(evaluation())
        layer_norms = getattr(problem, "last_layer_grad_norms", None) if grads is not None else None
        with opt.evaluating() if record_params else contextlib.nullcontext():
            record.add(values, params, layer_norms)
        if diverged:
            record.stop_reason = "diverged"
            break
        if stop:
            record.stop_reason = "early_stopping"
            break
    return record.finish()


def lr_range_test(
    optimizer,
    problem,
    *,
    min_lr=1e-6,
    max_lr=10.0,
    steps=100,
    batch_size=32,
    seed=0,
    optimizer_options=None,
    problem_options=None,
    window=None,
    divergence_factor=4.0,
):
    """Train with the rate rising exponentially from ``min_lr`` to ``max_lr`` over ``steps``
    steps (:class:`~optbench.schedules.RangeTest`), through :func:`run`, and read a rate off
    the mini-batch losses with :func:`~optbench.schedules.suggest_lr`. The run ends early if
    the loss becomes non-finite. Returns a :class:`~optbench.schedules.LRSuggestion` whose
    ``record`` is the runner's record.
    """
    ramp = schedules.RangeTest(min_lr, max_lr, steps)
    record = run(
        optimizer,
        problem,
        lr=min_lr,
        batch_size=batch_size,
        schedule=ramp,
        steps=steps,
        seed=seed,
        optimizer_options=optimizer_options,
        problem_options=problem_options,
        evaluate=False,
    )
    trained = record[record["step"] > 0]
    suggestion = schedules.suggest_lr(
        trained["scheduled_lr"].to_numpy(),
        trained["train_loss"].to_numpy(),
        window=window,
        divergence_factor=divergence_factor,
    )
    return replace(suggestion, record=record)
