"""Schedules against hand-computed values, recurrences and their defining properties."""

import math

import numpy as np
import pytest

from optbench import optim, schedules


def test_step_and_exponential():
    step = schedules.StepDecay(0.1, step_size=3, gamma=0.5)
    assert [step(t) for t in range(7)] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    exponential = schedules.Exponential(2.0, gamma=0.5)
    assert [exponential(t) for t in range(4)] == [2.0, 1.0, 0.5, 0.25]


def test_cosine_matches_torch_recurrence():
    """torch documents eta_{t+1} = eta_min + (eta_t - eta_min)(1 + cos(pi (t+1)/T)) / (1 +
    cos(pi t / T)); the closed form must satisfy it."""
    cosine = schedules.CosineAnnealing(0.1, T_max=10, eta_min=0.01)
    eta = 0.1
    for t in range(9):
        eta = 0.01 + (eta - 0.01) * (1 + math.cos(math.pi * (t + 1) / 10)) / (
            1 + math.cos(math.pi * t / 10)
        )
        assert cosine(t + 1) == pytest.approx(eta, rel=1e-12)
    assert cosine(0) == 0.1
    assert cosine(10) == pytest.approx(0.01)


def test_warm_restarts_cycle_lengths():
    sgdr = schedules.WarmRestarts(1.0, T_0=2, T_mult=2)
    starts = [t for t in range(30) if sgdr.cycle(t)[0] == 0]
    assert starts == [0, 2, 6, 14]  # cycles of 2, 4, 8, 16 steps
    assert all(sgdr(t) == 1.0 for t in starts)
    assert sgdr(5) == pytest.approx((1 + math.cos(math.pi * 3 / 4)) / 2)
    flat = schedules.WarmRestarts(1.0, T_0=3)
    assert [flat.cycle(t) for t in range(7)] == [(0, 3), (1, 3), (2, 3)] * 2 + [(0, 3)]


@pytest.mark.parametrize("mode", ["triangular", "triangular2"])
def test_cyclical(mode):
    cyclic = schedules.Cyclical(0.1, 1.1, step_size=4, mode=mode)
    values = np.array([cyclic(t) for t in range(17)])
    np.testing.assert_allclose(values[:9], [0.1, 0.35, 0.6, 0.85, 1.1, 0.85, 0.6, 0.35, 0.1])
    peak = 1.1 if mode == "triangular" else 0.6
    assert values[12] == pytest.approx(peak)
    assert values[16] == pytest.approx(0.1)


def test_one_cycle_endpoints_and_peak():
    one = schedules.OneCycle(1.0, total_steps=100, pct_start=0.3)
    assert one(0) == pytest.approx(1.0 / 25)
    assert one(29) == pytest.approx(1.0)
    assert one(99) == pytest.approx(1.0 / 25 / 1e4)
    values = [one(t) for t in range(100)]
    assert np.all(np.diff(values[:30]) > 0) and np.all(np.diff(values[29:]) < 0)
    with pytest.raises(ValueError, match="step"):
        one(100)


def test_warmup_composes():
    warm = schedules.Warmup(schedules.Constant(0.3), steps=3, start_factor=0.1)
    np.testing.assert_allclose([warm(t) for t in range(5)], [0.03, 0.12, 0.21, 0.3, 0.3])


def test_apply_sets_every_group():
    params = [np.zeros(2), np.zeros(3)]
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 5.0}])
    lr = schedules.apply(schedules.Exponential(1.0, 0.5), opt, 3)
    assert lr == 0.125
    assert [g["lr"] for g in opt.param_groups] == [0.125, 0.125]


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: schedules.StepDecay(0.1, step_size=0), "step_size"),
        (lambda: schedules.Exponential(-1.0, 0.9), "lr"),
        (lambda: schedules.CosineAnnealing(0.1, T_max=0), "T_max"),
        (lambda: schedules.WarmRestarts(0.1, T_0=5, T_mult=0), "T_mult"),
        (lambda: schedules.Cyclical(1.0, 0.5, 4), "max_lr"),
        (lambda: schedules.Cyclical(0.1, 0.5, 4, mode="exp"), "mode"),
        (lambda: schedules.OneCycle(1.0, total_steps=100, pct_start=1.5), "pct_start"),
        (lambda: schedules.Warmup(schedules.Constant(1.0), steps=0), "steps"),
    ],
)
def test_bad_schedule_options(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()
