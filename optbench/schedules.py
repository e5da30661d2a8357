"""Learning-rate schedules: ``lr = schedule(step)`` for step = 0, 1, 2, ...

Each schedule is a small immutable object; :func:`apply` writes its value into every parameter
group of an optimizer before a step. Formulas follow ``torch.optim.lr_scheduler`` (closed forms,
so a schedule evaluated at step ``t`` equals torch's scheduler after ``t`` calls to ``step()``).
"""

import math
from dataclasses import dataclass


def _positive(name, value):
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _non_negative(name, value):
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class Constant:
    """``lr(t) = lr``."""

    lr: float

    def __post_init__(self):
        _non_negative("lr", self.lr)

    def __call__(self, step):
        return self.lr


@dataclass(frozen=True)
class StepDecay:
    """``lr(t) = lr * gamma ** floor(t / step_size)`` (torch ``StepLR``)."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _non_negative("lr", self.lr)
        _positive("step_size", self.step_size)
        _positive("gamma", self.gamma)

    def __call__(self, step):
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class Exponential:
    """``lr(t) = lr * gamma ** t`` (torch ``ExponentialLR``)."""

    lr: float
    gamma: float

    def __post_init__(self):
        _non_negative("lr", self.lr)
        _positive("gamma", self.gamma)

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
        _non_negative("lr", self.lr)
        _positive("T_max", self.T_max)
        _non_negative("eta_min", self.eta_min)

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
        _non_negative("lr", self.lr)
        _positive("T_0", self.T_0)
        if not (isinstance(self.T_mult, int) and self.T_mult >= 1):
            raise ValueError(f"T_mult must be an integer >= 1, got {self.T_mult!r}")
        _non_negative("eta_min", self.eta_min)

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
        _non_negative("base_lr", self.base_lr)
        if not self.max_lr >= self.base_lr:
            raise ValueError(f"max_lr must be >= base_lr, got {self.max_lr!r} < {self.base_lr!r}")
        _positive("step_size", self.step_size)
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
        _non_negative("max_lr", self.max_lr)
        if not (isinstance(self.total_steps, int) and self.total_steps >= 2):
            raise ValueError(f"total_steps must be an integer >= 2, got {self.total_steps!r}")
        if not 0.0 < self.pct_start < 1.0:
            raise ValueError(f"pct_start must be in (0, 1), got {self.pct_start!r}")
        _positive("div_factor", self.div_factor)
        _positive("final_div_factor", self.final_div_factor)

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
class Warmup:
    """Linear warm-up in front of any schedule: ``lr(t) = inner(t) * f(t)`` with ``f`` rising
    linearly from ``start_factor`` at ``t = 0`` to 1 at ``t = steps`` (torch ``LinearLR``
    chained with the inner scheduler)."""

    inner: object
    steps: int
    start_factor: float = 1.0 / 3.0

    def __post_init__(self):
        _positive("steps", self.steps)
        if not 0.0 < self.start_factor <= 1.0:
            raise ValueError(f"start_factor must be in (0, 1], got {self.start_factor!r}")

    def __call__(self, step):
        progress = min(step, self.steps) / self.steps
        return self.inner(step) * (self.start_factor + (1.0 - self.start_factor) * progress)


def apply(schedule, optimizer, step):
    """Set every parameter group's ``lr`` to ``schedule(step)``; return that value."""
    lr = schedule(step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
