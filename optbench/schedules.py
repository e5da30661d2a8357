"""Learning-rate schedules: ``lr = schedule(step)`` for step = 0, 1, 2, ...

Each schedule is a small immutable object; :func:`apply` writes its value into every parameter
group of an optimizer before a step. Formulas follow ``torch.optim.lr_scheduler`` (closed forms,
so a schedule evaluated at step ``t`` equals torch's scheduler after ``t`` calls to ``step()``).
"""

import math
from dataclasses import dataclass

import numpy as np

from . import validation


@dataclass(frozen=True)
class Constant:
    """``lr(t) = lr``."""

    lr: float

    def __post_init__(self):
        validation.real("lr", self.lr)

    def __call__(self, step):
        return self.lr


@dataclass(frozen=True)
class StepDecay:
    """``lr(t) = lr * gamma ** floor(t / step_size)`` (torch ``StepLR``)."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.real("step_size", self.step_size, low_open=True)
        validation.real("gamma", self.gamma, low_open=True)

    def __call__(self, step):
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class Exponential:
    """``lr(t) = lr * gamma ** t`` (torch ``ExponentialLR``)."""

    lr: float
    gamma: float

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.real("gamma", self.gamma, low_open=True)

    def __call__(self, step):
        return self.lr * self.gamma**step


def _cosine(lr, eta_min, fraction):
    return eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * fraction)) / 2.0


@dataclass(frozen=True)
class CosineAnnealing:
    """``lr(t) = eta_min + (lr - eta_min) (1 + cos(pi t / T_max)) / 2`` (torch
    ``CosineAnnealingLR``, closed form); past ``T_max`` the cosine continues, as in torch."""

    lr: float
    T_max: int
    eta_min: float = 0.0

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.real("T_max", self.T_max, low_open=True)
        validation.real("eta_min", self.eta_min)

    def __call__(self, step):
        return _cosine(self.lr, self.eta_min, step / self.T_max)


@dataclass(frozen=True)
class WarmRestarts:
    """SGDR (Loshchilov & Hutter 2017; torch ``CosineAnnealingWarmRestarts``).

    Cycle ``i`` lasts ``T_i = T_0 * T_mult**i`` steps; within it ``lr = eta_min + (lr -
    eta_min)(1 + cos(pi T_cur / T_i)) / 2`` with ``T_cur`` the steps since the last restart.
    """

    lr: float
    T_0: int
    T_mult: int = 1
    eta_min: float = 0.0

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.real("T_0", self.T_0, low_open=True)
        validation.integer("T_mult", self.T_mult, 1)
        validation.real("eta_min", self.eta_min)

    def cycle(self, step):
        """``(T_cur, T_i)``: steps into the current cycle and its length."""
        if self.T_mult == 1:
            return step % self.T_0, self.T_0
        start, length = 0, self.T_0
        while step >= start + length:
            start, length = start + length, length * self.T_mult
        return step - start, length

    def __call__(self, step):
        t_cur, t_i = self.cycle(step)
        return _cosine(self.lr, self.eta_min, t_cur / t_i)


@dataclass(frozen=True)
class Cyclical:
    """Cyclical learning rates (Smith 2017; torch ``CyclicLR`` with equal up and down phases).

    The rate climbs linearly from ``base_lr`` to ``max_lr`` in ``step_size`` steps and back in
    as many. ``mode="triangular2"`` halves the amplitude every cycle.
    """

    base_lr: float
    max_lr: float
    step_size: int
    mode: str = "triangular"

    def __post_init__(self):
        validation.real("base_lr", self.base_lr)
        if not validation.real("max_lr", self.max_lr) >= self.base_lr:
            raise ValueError(f"max_lr must be >= base_lr, got {self.max_lr!r} < {self.base_lr!r}")
        validation.real("step_size", self.step_size, low_open=True)
        if self.mode not in ("triangular", "triangular2"):
            raise ValueError(f"mode must be 'triangular' or 'triangular2', got {self.mode!r}")

    def __call__(self, step):
        cycle = math.floor(1 + step / (2 * self.step_size))
        x = abs(step / self.step_size - 2 * cycle + 1)
        amplitude = 1.0 if self.mode == "triangular" else 0.5 ** (cycle - 1)
        return self.base_lr + (self.max_lr - self.base_lr) * max(0.0, 1.0 - x) * amplitude


@dataclass(frozen=True)
class OneCycle:
    """One-cycle policy (Smith & Topin 2019; torch ``OneCycleLR``, cosine annealing, two phases).

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``max_lr / div_factor / final_div_factor`` at the last step.
    """

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self):
        validation.real("max_lr", self.max_lr)
        validation.integer("total_steps", self.total_steps, 2)
        validation.real("pct_start", self.pct_start, 0.0, 1.0, low_open=True, high_open=True)
        validation.real("div_factor", self.div_factor, low_open=True)
        validation.real("final_div_factor", self.final_div_factor, low_open=True)

    def __call__(self, step):
        if not 0 <= step < self.total_steps:
            raise ValueError(f"step must be in [0, {self.total_steps}), got {step!r}")
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        peak = float(self.pct_start * self.total_steps) - 1.0
        last = self.total_steps - 1.0
        if step <= peak:
            start, end, fraction = initial, self.max_lr, step / peak
        else:
            start, end, fraction = self.max_lr, final, (step - peak) / (last - peak)
        return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1.0)


@dataclass(frozen=True)
class LinearDecay:
    """``lr(t) = lr (end_factor + (1 - end_factor)(1 - t / total_steps))`` for ``t <=
    total_steps``, ``lr end_factor`` after (torch ``LinearLR`` from 1 to ``end_factor``): with
    ``end_factor = 0`` the last step of a run of ``total_steps`` takes ``lr / total_steps``."""

    lr: float
    total_steps: int
    end_factor: float = 0.0

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.integer("total_steps", self.total_steps, 1)
        validation.real("end_factor", self.end_factor, 0.0, 1.0)

    def __call__(self, step):
        remaining = 1.0 - min(step, self.total_steps) / self.total_steps
        return self.lr * (self.end_factor + (1.0 - self.end_factor) * remaining)


@dataclass(frozen=True)
class WarmupStableDecay:
    """Warmup-stable-decay's stable and decay phases (Hu et al. 2024, "MiniCPM"): ``lr`` until
    the last ``decay_fraction`` of ``total_steps``, then down to ``lr final_factor`` at
    ``t = total_steps``, linearly or as ``1 - sqrt`` of the decay's progress ``s``:
    ``lr (final + (1 - final)(1 - s))`` or ``lr (final + (1 - final)(1 - sqrt(s)))``. The
    warm-up is the common :class:`Warmup` in front (``warmup`` or ``warmup_fraction``)."""

    lr: float
    total_steps: int
    decay_fraction: float = 0.2
    final_factor: float = 0.0
    shape: str = "linear"

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.integer("total_steps", self.total_steps, 1)
        validation.real("decay_fraction", self.decay_fraction, 0.0, 1.0, low_open=True)
        validation.real("final_factor", self.final_factor, 0.0, 1.0)
        validation.choice("shape", self.shape, ("linear", "sqrt"))

    @property
    def decay_start(self):
        """The first step of the decay phase."""
        return self.total_steps - max(1, round(self.decay_fraction * self.total_steps))

    def __call__(self, step):
        start = self.decay_start
        if step < start:
            return self.lr
        progress = min(step - start, self.total_steps - start) / (self.total_steps - start)
        if self.shape == "sqrt":
            progress = math.sqrt(progress)
        return self.lr * (self.final_factor + (1.0 - self.final_factor) * (1.0 - progress))


@dataclass(frozen=True)
class InverseSquareRoot:
    """``lr(t) = lr min(1, sqrt(timescale / t))``: constant for ``timescale`` steps, then
    proportional to ``1 / sqrt(t)`` (with a warm-up of ``timescale`` steps in front, the
    schedule of "Attention is all you need")."""

    lr: float
    timescale: int

    def __post_init__(self):
        validation.real("lr", self.lr)
        validation.integer("timescale", self.timescale, 1)

    def __call__(self, step):
        return self.lr * math.sqrt(self.timescale / max(step, self.timescale))


@dataclass(frozen=True)
class Warmup:
    """Linear warm-up in front of any schedule: ``lr(t) = inner(t) * f(t)`` with ``f`` rising
    linearly from ``start_factor`` at ``t = 0`` to 1 at ``t = steps`` (torch ``LinearLR``
    chained with the inner scheduler)."""

    inner: object
    steps: int
    start_factor: float = 1.0 / 3.0

    def __post_init__(self):
        validation.real("steps", self.steps, low_open=True)
        validation.real("start_factor", self.start_factor, 0.0, 1.0, low_open=True)

    def __call__(self, step):
        progress = min(step, self.steps) / self.steps
        return self.inner(step) * (self.start_factor + (1.0 - self.start_factor) * progress)


def apply(schedule, optimizer, step):
    """Set every parameter group's ``lr`` to ``schedule(step)``; return that value."""
    lr = schedule(step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


@dataclass(frozen=True)
class RangeTest:
    """The learning-rate range test's ramp (Smith 2017): ``lr(t) = min_lr (max_lr /
    min_lr) ** (t / (steps - 1))``, exponential from ``min_lr`` at ``t = 0`` to ``max_lr`` at
    ``t = steps - 1`` (equal steps in ``log lr``); held at ``max_lr`` after that."""

    min_lr: float
    max_lr: float
    steps: int

    def __post_init__(self):
        validation.real("min_lr", self.min_lr, low_open=True)
        if not validation.real("max_lr", self.max_lr) > self.min_lr:
            raise ValueError(f"max_lr must be > min_lr, got {self.max_lr!r} <= {self.min_lr!r}")
        validation.integer("steps", self.steps, 2)

    def __call__(self, step):
        fraction = min(step, self.steps - 1) / (self.steps - 1)
        return self.min_lr * (self.max_lr / self.min_lr) ** fraction


# --------------------------------------------------------------------------------------------
# schedules by name, for the runner, sweeps and the command line
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleOption:
    """One option of a named schedule: default (``None``: derived from the run's length, as
    ``help`` says), the type a command-line string is parsed into, and one line of help."""

    default: object
    type: type
    help: str

    def check_type(self, name, value):
        """Raise a ``TypeError`` naming the option if ``value`` is not of its type (an int
        is accepted for a float)."""
        if not (value is None or validation.has_type(value, self.type)):
            raise TypeError(f"schedule option {name} must be a {self.type.__name__}, got {value!r}")

    def parse(self, name, text):
        """The option's value from a command-line string, or a ``ValueError`` naming it."""
        if self.type is str:
            return text
        try:
            return self.type(text)
        except ValueError:
            raise ValueError(
                f"schedule option {name}={text!r}: expected a {self.type.__name__}"
            ) from None


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule by name: ``build(lr, total_steps, **options)`` returns the schedule object.

    ``lr`` is the run's nominal rate (the value a learning-rate sweep varies): the starting
    rate of decaying schedules, the peak of cyclical and one-cycle, the first rate of the
    range test. ``total_steps`` is the run's step budget, from which unset lengths are derived.
    """

    name: str
    description: str
    build: object
    options: dict


def _build_constant(lr, total_steps):
    return Constant(lr)


def _build_step(lr, total_steps, step_size=None, gamma=0.1):
    step_size = max(1, total_steps // 3) if step_size is None else step_size
    return StepDecay(lr, step_size, gamma)


def _build_exponential(lr, total_steps, gamma=None):
    gamma = 0.01 ** (1.0 / total_steps) if gamma is None else gamma
    return Exponential(lr, gamma)


def _build_cosine(lr, total_steps, T_max=None, eta_min=0.0):
    return CosineAnnealing(lr, total_steps if T_max is None else T_max, eta_min)


def _build_sgdr(lr, total_steps, T_0=None, T_mult=1, eta_min=0.0):
    T_0 = max(1, total_steps // 4) if T_0 is None else T_0
    return WarmRestarts(lr, T_0, T_mult, eta_min)


def _build_cyclical(lr, total_steps, step_size=None, div_factor=4.0, mode="triangular"):
    validation.real("div_factor", div_factor, low_open=True)
    step_size = max(1, total_steps // 4) if step_size is None else step_size
    return Cyclical(lr / div_factor, lr, step_size, mode)


def _build_one_cycle(lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    return OneCycle(lr, total_steps, pct_start, div_factor, final_div_factor)


def _build_range_test(lr, total_steps, max_lr=10.0):
    return RangeTest(lr, max_lr, total_steps)


def _build_linear(lr, total_steps, end_factor=0.0):
    return LinearDecay(lr, total_steps, end_factor)


def _build_wsd(lr, total_steps, decay_fraction=0.2, final_factor=0.0, shape="linear"):
    return WarmupStableDecay(lr, total_steps, decay_fraction, final_factor, shape)


def _build_inverse_sqrt(lr, total_steps, timescale=None):
    timescale = max(1, total_steps // 10) if timescale is None else timescale
    return InverseSquareRoot(lr, timescale)


_ETA_MIN = ScheduleOption(0.0, float, "floor of the cosine")

SCHEDULES = {
    info.name: info
    for info in (
        ScheduleInfo("constant", "lr(t) = lr", _build_constant, {}),
        ScheduleInfo(
            "step",
            "lr * gamma ** floor(t / step_size) (torch StepLR)",
            _build_step,
            {
                "step_size": ScheduleOption(None, int, "steps between decays (a third of the run)"),
                "gamma": ScheduleOption(0.1, float, "factor applied at each decay"),
            },
        ),
        ScheduleInfo(
            "exponential",
            "lr * gamma ** t (torch ExponentialLR)",
            _build_exponential,
            {
                "gamma": ScheduleOption(
                    None, float, "factor per step (default: 100-fold over the run)"
                )
            },
        ),
        ScheduleInfo(
            "cosine",
            "eta_min + (lr - eta_min)(1 + cos(pi t / T_max)) / 2 (torch CosineAnnealingLR)",
            _build_cosine,
            {
                "T_max": ScheduleOption(None, int, "half-period in steps (the whole run)"),
                "eta_min": _ETA_MIN,
            },
        ),
        ScheduleInfo(
            "sgdr",
            "cosine with warm restarts, cycle i lasts T_0 * T_mult**i steps "
            "(torch CosineAnnealingWarmRestarts)",
            _build_sgdr,
            {
                "T_0": ScheduleOption(None, int, "first cycle in steps (a quarter of the run)"),
                "T_mult": ScheduleOption(1, int, "growth factor of the cycle length"),
                "eta_min": _ETA_MIN,
            },
        ),
        ScheduleInfo(
            "cyclical",
            "triangular cycles between lr / div_factor and lr (torch CyclicLR)",
            _build_cyclical,
            {
                "step_size": ScheduleOption(None, int, "steps per half cycle (run / 4)"),
                "div_factor": ScheduleOption(4.0, float, "lr / base_lr"),
                "mode": ScheduleOption("triangular", str, "triangular or triangular2"),
            },
        ),
        ScheduleInfo(
            "one_cycle",
            "up from lr / div_factor to lr, then down to lr / div_factor / final_div_factor "
            "(torch OneCycleLR, cosine)",
            _build_one_cycle,
            {
                "pct_start": ScheduleOption(0.3, float, "fraction of the run spent rising"),
                "div_factor": ScheduleOption(25.0, float, "lr / initial rate"),
                "final_div_factor": ScheduleOption(1e4, float, "initial rate / final rate"),
            },
        ),
        ScheduleInfo(
            "linear",
            "lr (end_factor + (1 - end_factor)(1 - t / run)): linear decay, to zero by default "
            "(torch LinearLR)",
            _build_linear,
            {"end_factor": ScheduleOption(0.0, float, "lr factor reached at the run's end")},
        ),
        ScheduleInfo(
            "wsd",
            "warmup-stable-decay: lr, then down over the last decay_fraction of the run to "
            "lr * final_factor (warm-up: warmup or warmup_fraction)",
            _build_wsd,
            {
                "decay_fraction": ScheduleOption(0.2, float, "fraction of the run decaying"),
                "final_factor": ScheduleOption(0.0, float, "lr factor reached at the run's end"),
                "shape": ScheduleOption("linear", str, "decay: linear or sqrt (1 - sqrt)"),
            },
        ),
        ScheduleInfo(
            "inverse_sqrt",
            "lr min(1, sqrt(timescale / t)): constant, then 1 / sqrt(t)",
            _build_inverse_sqrt,
            {
                "timescale": ScheduleOption(
                    None, int, "steps before the decay starts (a tenth of the run)"
                )
            },
        ),
        ScheduleInfo(
            "range_test",
            "exponential ramp from lr to max_lr over the run (the LR range test)",
            _build_range_test,
            {"max_lr": ScheduleOption(10.0, float, "rate at the last step")},
        ),
    )
}

# Options every named schedule takes: a linear warm-up in front of it (see :class:`Warmup`).
WARMUP_OPTIONS = {
    "warmup": ScheduleOption(0, int, "linear warm-up steps in front of the schedule (0: none)"),
    "warmup_fraction": ScheduleOption(
        0.0, float, "warm-up as a fraction of the run, instead of warmup (0: none)"
    ),
    "warmup_start_factor": ScheduleOption(1.0 / 3.0, float, "warm-up's first factor"),
}


def schedule_options(name):
    """``{option: ScheduleOption}`` of the schedule called ``name``, warm-up options included."""
    return {**get_schedule(name).options, **WARMUP_OPTIONS}


def get_schedule(name):
    """The :class:`ScheduleInfo` called ``name``; a ``ValueError`` lists the choices."""
    try:
        return SCHEDULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}") from None


def make(name, lr, *, total_steps, **options):
    """The schedule called ``name`` at nominal rate ``lr`` for a run of ``total_steps`` steps.

    ``options`` are those of ``schedule_options(name)``; ``warmup=k`` (k > 0), or
    ``warmup_fraction=f`` (``k = max(1, round(f total_steps))``), wraps the result in
    :class:`Warmup`. Unknown options and bad values raise ``ValueError`` naming them.
    """
    info = get_schedule(name)
    valid = schedule_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"schedule {name} has no option {unknown[0]!r}; its options are: {', '.join(valid)}"
        )
    validation.integer("total_steps", total_steps, 1)
    for option, value in options.items():
        valid[option].check_type(option, value)
    warmup = options.pop("warmup", 0)
    fraction = options.pop("warmup_fraction", 0.0)
    validation.real("warmup_fraction", fraction, 0.0, 1.0, high_open=True)
    if fraction:
        if warmup:
            raise ValueError("give warmup or warmup_fraction, not both")
        warmup = max(1, round(fraction * total_steps))
    start_factor = options.pop("warmup_start_factor", WARMUP_OPTIONS["warmup_start_factor"].default)
    schedule = info.build(lr, total_steps, **options)
    if warmup:
        schedule = Warmup(schedule, warmup, start_factor)
    return schedule


# --------------------------------------------------------------------------------------------
# the learning-rate range test
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LRSuggestion:
    """What a range test found (see :func:`suggest_lr`).

    lr : the suggested rate, ``min_loss_lr / 10``.
    min_loss_lr : the rate at the minimum of the smoothed loss, before divergence.
    steepest_lr : the rate, below ``min_loss_lr``, where the smoothed loss falls fastest per
        unit of ``log lr``.
    divergence_lr : the rate at which the loss diverged, or ``None`` if the ramp ended first.
    lrs, smoothed_loss : the smoothed curve up to divergence.
    record : the runner's record of the test (``None`` from :func:`suggest_lr`).
    """

    lr: float
    min_loss_lr: float
    steepest_lr: float
    divergence_lr: float | None
    lrs: np.ndarray
    smoothed_loss: np.ndarray
    record: object = None


def suggest_lr(lrs, losses, *, window=None, divergence_factor=4.0):
    """Read a rate off an LR range test: loss ``losses[i]`` measured at rate ``lrs[i]``, the
    rates increasing (exponentially, as :class:`RangeTest` makes them).

    1. Smooth: ``s_j`` is the mean of ``window`` consecutive losses (odd; default about a
       tenth of the points, at least 3), placed at the rate of the window's centre. A centred
       mean does not lag behind the ramp as an exponential moving average does.
    2. Cut at divergence: the first ``j`` where ``s_j`` is not finite or exceeds
       ``divergence_factor * min(s_0..s_j)``; its rate is ``divergence_lr`` (a centred window
       sees a blow-up up to half a window early) and the curve ends just before it.
    3. ``min_loss_lr`` is the rate at the minimum of ``s``, and the suggestion is
       ``min_loss_lr / 10``: an order of magnitude below the rate where the loss stops
       falling, which is still on the descending part of the curve. ``steepest_lr`` (where
       ``ds/d(log lr)`` is most negative, left of the minimum) is reported too, but not
       suggested: on mini-batch losses its position is dominated by the noise of the flat
       start of the curve (it moved over two decades between seeds of a least-squares test
       problem whose minimum stayed within a factor 2).

    Needs at least 3 smoothed points before divergence; a ``ValueError`` says so otherwise.
    """
    lrs = np.asarray(lrs, np.float64)
    losses = np.asarray(losses, np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise ValueError(
            f"lrs and losses must be 1-D of equal length, got {lrs.shape} and {losses.shape}"
        )
    if not (np.all(np.isfinite(lrs)) and np.all(lrs > 0) and np.all(np.diff(lrs) > 0)):
        raise ValueError("lrs must be positive, finite and increasing")
    validation.real("divergence_factor", divergence_factor, 1.0, low_open=True)
    if window is None:
        window = max(3, len(losses) // 10 | 1)
    if validation.integer("window", window, 1) % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window!r}")
    if len(losses) < window + 2:
        raise ValueError(f"a range test needs at least {window + 2} points, got {len(losses)}")
    smoothed = np.convolve(losses, np.ones(window) / window, mode="valid")
    centres = lrs[window // 2 : len(lrs) - window // 2]
    running_min = np.fmin.accumulate(smoothed)
    diverged = ~np.isfinite(smoothed) | (smoothed > divergence_factor * running_min)
    end = int(np.argmax(diverged)) if diverged.any() else len(smoothed)
    if end < 3:
        raise ValueError(
            f"the loss diverged {end} smoothed points into the range test; it needs at least 3 "
            "(start from a smaller min_lr)"
        )
    smoothed, kept = smoothed[:end], centres[:end]
    lowest = int(np.argmin(smoothed))
    slope = np.gradient(smoothed[: lowest + 1], np.log(kept[: lowest + 1])) if lowest else [0.0]
    return LRSuggestion(
        lr=float(kept[lowest]) / 10.0,
        min_loss_lr=float(kept[lowest]),
        steepest_lr=float(kept[int(np.argmin(slope))]),
        divergence_lr=float(centres[end]) if end < len(centres) else None,
        lrs=kept,
        smoothed_loss=smoothed,
    )
