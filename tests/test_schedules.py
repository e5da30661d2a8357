"""Schedules against hand-computed values, recurrences and their defining properties."""

import math

import numpy as np
import pytest

from optbench import optim, runner, schedules


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


# --------------------------------------------------------------------------------------------
# schedules by name
# --------------------------------------------------------------------------------------------
def test_every_named_schedule_builds_with_defaults_from_the_run_length():
    for name in schedules.SCHEDULES:
        schedule = schedules.make(name, 0.1, total_steps=100)
        values = [schedule(t) for t in range(100)]
        assert all(v >= 0 and math.isfinite(v) for v in values), name


def test_named_schedules_derive_their_lengths():
    cosine = schedules.make("cosine", 0.1, total_steps=50)
    assert cosine == schedules.CosineAnnealing(0.1, T_max=50)
    assert schedules.make("exponential", 2.0, total_steps=10)(10) == pytest.approx(0.02)
    assert schedules.make("step", 1.0, total_steps=30) == schedules.StepDecay(1.0, 10, 0.1)
    assert schedules.make("sgdr", 1.0, total_steps=40, T_mult=2).T_0 == 10
    cyclical = schedules.make("cyclical", 0.4, total_steps=40)
    assert cyclical == schedules.Cyclical(0.1, 0.4, 10)
    assert schedules.make("one_cycle", 0.5, total_steps=20) == schedules.OneCycle(0.5, 20)
    assert schedules.make("range_test", 1e-5, total_steps=11, max_lr=1e-1)(10) == pytest.approx(
        1e-1
    )


def test_named_schedule_with_warmup():
    warm = schedules.make("cosine", 0.3, total_steps=100, warmup=3, warmup_start_factor=0.1)
    assert warm == schedules.Warmup(schedules.CosineAnnealing(0.3, 100), 3, 0.1)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("cosin", {}, "unknown schedule 'cosin'; choose from constant, step, exponential"),
        ("cosine", {"T": 5}, "schedule cosine has no option 'T'; its options are: T_max"),
        ("cyclical", {"div_factor": 0.0}, "div_factor"),
        ("cyclical", {"mode": "sine"}, "mode"),
        ("cosine", {"warmup": -2}, "steps"),
        ("cosine", {"warmup": 0.5}, "warmup must be a int"),
        ("step", {"gamma": "0.5"}, "gamma must be a float"),
        ("linear", {"end_factor": 1.5}, "end_factor"),
        ("wsd", {"decay_fraction": 0.0}, "decay_fraction"),
        ("wsd", {"shape": "cosine"}, "shape"),
        ("inverse_sqrt", {"timescale": 0}, "timescale"),
        ("wsd", {"warmup_fraction": 1.0}, "warmup_fraction"),
        ("wsd", {"warmup_fraction": 0.1, "warmup": 5}, "warmup or warmup_fraction, not both"),
    ],
)
def test_bad_named_schedule(name, options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        schedules.make(name, 0.1, total_steps=100, **options)


def test_schedule_option_parse():
    options = schedules.schedule_options("sgdr")
    assert options["T_0"].parse("T_0", "7") == 7
    assert "warmup" in options
    with pytest.raises(ValueError, match="T_0='x': expected a int"):
        options["T_0"].parse("T_0", "x")


# --------------------------------------------------------------------------------------------
# the LR range test
# --------------------------------------------------------------------------------------------
def test_range_test_ramp_is_geometric():
    ramp = schedules.RangeTest(1e-6, 1.0, steps=7)
    values = np.array([ramp(t) for t in range(9)])
    np.testing.assert_allclose(values[:7], np.geomspace(1e-6, 1.0, 7), rtol=1e-12)
    assert values[7] == values[8] == 1.0  # held at the end
    for bad, match in [
        ((0.0, 1.0, 5), "min_lr"),
        ((1.0, 0.5, 5), "max_lr"),
        ((1e-3, 1, 1), "steps"),
    ]:
        with pytest.raises(ValueError, match=match):
            schedules.RangeTest(*bad)


def range_curve(lrs):
    """A range-test curve in ``u = log10(lr)``: a logistic fall of 0.9 centred at ``u = -3``
    (the steepest point), a parabolic rise from ``u = -2`` on, and a blow-up past 0.2."""
    u = np.log10(lrs)
    loss = 1.0 - 0.9 / (1.0 + np.exp(-2.0 * (u + 3.0))) + 0.1 * np.maximum(u + 2, 0) ** 2
    return np.where(lrs > 0.2, loss * np.exp(10 * (u - np.log10(0.2))), loss)


def synthetic_range_curve(rng, points=120):
    lrs = np.geomspace(1e-6, 10.0, points)
    return lrs, range_curve(lrs) + 0.01 * rng.standard_normal(points)


def test_suggest_lr_on_a_known_curve(rng):
    lrs, losses = synthetic_range_curve(rng)
    found = schedules.suggest_lr(lrs, losses)
    fine = np.geomspace(1e-6, 0.2, 100_000)
    lowest = fine[np.argmin(range_curve(fine))]
    assert lowest / 10**0.25 < found.min_loss_lr < lowest * 10**0.25
    assert found.lr == pytest.approx(found.min_loss_lr / 10)
    assert 10**-3.3 < found.steepest_lr < 10**-2.7
    # the blow-up starts at 0.2; a centred window of 11 points (0.29 decades either side)
    # sees it up to 5 points early
    assert 0.2 / 10**0.3 < found.divergence_lr < 0.5
    assert found.lrs[-1] < found.divergence_lr and len(found.lrs) == len(found.smoothed_loss)


def test_suggest_lr_without_divergence_and_bad_input(rng):
    lrs, losses = synthetic_range_curve(rng)
    keep = lrs < 0.1
    assert schedules.suggest_lr(lrs[keep], losses[keep]).divergence_lr is None
    with pytest.raises(ValueError, match="increasing"):
        schedules.suggest_lr(lrs[::-1], losses)
    with pytest.raises(ValueError, match="equal length"):
        schedules.suggest_lr(lrs, losses[1:])
    with pytest.raises(ValueError, match="window"):
        schedules.suggest_lr(lrs, losses, window=4)
    blow_up = np.r_[1.0, 1.0, 1.0, 1.0, np.inf, np.inf, np.inf, np.inf]
    with pytest.raises(ValueError, match="smaller min_lr"):
        schedules.suggest_lr(np.geomspace(1, 10, 8), blow_up, window=3)


def test_lr_range_test_through_the_runner():
    found = runner.lr_range_test(
        "sgd", "logistic_regression", min_lr=1e-5, max_lr=1e3, steps=80, batch_size=50
    )
    record = found.record
    trained = record[record["step"] > 0]
    np.testing.assert_allclose(
        trained["scheduled_lr"], np.geomspace(1e-5, 1e3, 80)[: len(trained)], rtol=1e-12
    )
    assert record["full_train_loss"].isna().all()  # no evaluations during a range test
    assert 1e-5 < found.lr < found.min_loss_lr <= 1e3
    # the suggestion trains: a short run at it lowers the loss far more than one at min_lr
    final = {
        lr: runner.run("sgd", "logistic_regression", lr=lr, batch_size=50, epochs=1)[
            "full_train_loss"
        ].iat[-1]
        for lr in (1e-5, found.lr)
    }
    start = np.log(2.0)  # the logistic loss at w = 0
    assert start - final[found.lr] > 10 * (start - final[1e-5])


# --------------------------------------------------------------------------------------------
# the protocol's schedules: linear decay, warmup-stable-decay, inverse square root
# --------------------------------------------------------------------------------------------
def test_linear_decay_reaches_its_end_factor_at_the_end_of_the_run():
    assert [schedules.make("linear", 1.0, total_steps=4)(t) for t in range(6)] == [
        1.0, 0.75, 0.5, 0.25, 0.0, 0.0,
    ]  # fmt: skip
    half = schedules.make("linear", 2.0, total_steps=10, end_factor=0.5)
    assert half(5) == pytest.approx(1.5) and half(10) == pytest.approx(1.0)


def test_linear_decay_matches_torch_linear_lr():
    torch = pytest.importorskip("torch")
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.3)
    scheduler = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0, end_factor=0.1, total_iters=20
    )
    ours = schedules.make("linear", 0.3, total_steps=20, end_factor=0.1)
    for t in range(25):
        assert ours(t) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12), t
        optimizer.step()
        scheduler.step()


def test_wsd_holds_then_decays_over_its_last_fraction():
    wsd = schedules.make("wsd", 1.0, total_steps=100, warmup_fraction=0.1)
    values = np.array([wsd(t) for t in range(101)])
    assert values[0] == pytest.approx(1 / 3) and values[10] == 1.0
    assert (values[10:80] == 1.0).all()  # stable until the last 20%
    assert values[90] == pytest.approx(0.5) and values[100] == 0.0
    assert (np.diff(values[80:]) < 0).all()
    sqrt = schedules.make("wsd", 1.0, total_steps=100, shape="sqrt", final_factor=0.1)
    assert sqrt(90) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.5)))
    assert sqrt(100) == pytest.approx(0.1)


def test_inverse_sqrt_is_constant_then_falls_as_one_over_sqrt_t():
    schedule = schedules.make("inverse_sqrt", 1.0, total_steps=1000, timescale=25)
    assert schedule(0) == schedule(25) == 1.0
    assert schedule(100) == pytest.approx(0.5) and schedule(400) == pytest.approx(0.25)
    assert schedules.make("inverse_sqrt", 1.0, total_steps=1000).timescale == 100


def test_warmup_fraction_is_a_share_of_the_run():
    warm = schedules.make("cosine", 0.3, total_steps=200, warmup_fraction=0.05)
    assert warm == schedules.Warmup(schedules.CosineAnnealing(0.3, 200), 10)
    assert schedules.make("linear", 1.0, total_steps=3, warmup_fraction=0.01).steps == 1
