"""The runner: record layout, agreement with a hand-written training loop, reproducibility,
schedules, divergence, early stopping and argument checks."""

import math

import numpy as np
import pandas as pd
import pytest

from optbench import optim, problems, registry, runner, schedules
from optbench.problems.base import Evaluation, Problem

BASE_COLUMNS = [
    "problem",
    "optimizer",
    "lr",
    "batch_size",
    "seed",
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
]
TAIL_COLUMNS = ["optimizer_options", "problem_options", "schedule"]


def without_time(frame):
    return frame.drop(columns="wall_time")


class NaNGradientAt(Problem):
    """Test-only: a 1-D bowl whose gradient is NaN at one step while the loss stays finite."""

    name = "nan_gradient"
    description = "f(x) = x^2 with a NaN gradient at call number `bad_call`"

    def __init__(self, seed=0, bad_call=3):
        super().__init__(seed)
        self.bad_call, self.calls = bad_call, 0

    def initial_params(self):
        return [np.ones(1)]

    def loss_and_grad(self, params, batch):
        self.calls += 1
        grad = 2 * params[0] if self.calls != self.bad_call else np.full(1, np.nan)
        return float(params[0][0] ** 2), [grad]

    def evaluate(self, params):
        return Evaluation(float(params[0][0] ** 2), None, None)


def test_record_of_a_closed_form_problem():
    record = runner.run("sgd", "quadratic", lr=0.05, steps=20, log_every=5, seed=3)
    assert list(record.columns) == BASE_COLUMNS + TAIL_COLUMNS
    assert record["step"].tolist() == [0, 5, 10, 15, 20]
    assert record["epoch"].tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]  # one step per epoch
    assert (record[["problem", "optimizer", "lr", "seed"]].iloc[0].tolist()) == [
        "quadratic",
        "sgd",
        0.05,
        3,
    ]
    assert math.isnan(record["train_loss"].iat[0]) and math.isnan(record["grad_norm"].iat[0])
    assert record["full_train_loss"].iat[0] == pytest.approx(2.0)  # f(x0) = 2 mu by design
    assert record["full_train_loss"].notna().all()  # no data: every logged step is evaluated
    assert record["test_loss"].isna().all() and record["test_accuracy"].isna().all()
    assert (np.diff(record["full_train_loss"]) < 0).all()
    assert (record["scheduled_lr"] == 0.05).all()
    assert record["wall_time"].iat[0] == 0.0 and (np.diff(record["wall_time"]) > 0).all()
    assert not record["diverged"].any()
    assert record.attrs["stop_reason"] == "budget"
    assert record[TAIL_COLUMNS].iloc[0].tolist() == ["{}", "{}", "constant"]


def test_record_of_a_data_problem_rows_and_evaluations():
    problem = problems.make("logistic_regression")
    assert problem.n_train == 750 and problem.steps_per_epoch(100) == 8
    record = runner.run("adam", problem, lr=0.01, batch_size=100, epochs=2, log_every=3)
    # multiples of 3, the epoch ends (8, 16), and the last step
    assert record["step"].tolist() == [0, 3, 6, 8, 9, 12, 15, 16]
    assert record["examples_seen"].tolist() == [0, 300, 600, 750, 850, 1150, 1450, 1500]
    np.testing.assert_allclose(record["epoch"], record["examples_seen"] / 750)
    evaluated = record["test_loss"].notna()
    assert record.loc[evaluated, "step"].tolist() == [0, 8, 16]
    assert record.loc[evaluated, "full_train_loss"].notna().all()
    assert record.loc[evaluated, "test_accuracy"].between(0, 1).all()
    assert record.loc[evaluated, "train_accuracy"].between(0, 1).all()
    assert record.loc[~evaluated, "train_accuracy"].isna().all()
    assert record["full_train_loss"].iat[-1] < record["full_train_loss"].iat[0]
    assert record["distance_to_optimum"].isna().all()  # minimizer unknown
    assert record["batch_size"].iat[0] == 100


def test_a_problem_evaluated_every_few_epochs_is_evaluated_then_and_at_the_end(monkeypatch):
    problem = problems.make("logistic_regression")
    monkeypatch.setattr(problem, "epochs_per_evaluation", 3)
    record = runner.run("adam", problem, lr=0.01, batch_size=100, steps=60, log_every=100)
    # epoch ends at multiples of 8 are logged; 24 and 48 are evaluated, and the last step
    assert record["step"].tolist() == [0, 8, 16, 24, 32, 40, 48, 56, 60]
    evaluated = record["test_loss"].notna()
    assert record.loc[evaluated, "step"].tolist() == [0, 24, 48, 60]


def test_record_matches_a_hand_written_loop():
    """The runner adds bookkeeping only: losses, gradient norms and parameters are those of
    the plain loop over the same batches (the warm-up touches nothing of the run)."""
    problem = problems.make("logistic_regression", seed=4)
    params = problem.initial_params()
    opt = optim.SGD(params, lr=0.3, momentum=0.9)
    rng = runner.batch_order_rng(4)
    losses, norms = [], []
    for _ in range(2):
        for batch in problem.batches(64, rng):
            loss, grads = problem.loss_and_grad(params, batch)
            losses.append(loss)
            norms.append(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
            opt.step(grads)
    final = problem.evaluate(params)

    record = runner.run(
        "sgd",
        "logistic_regression",
        lr=0.3,
        batch_size=64,
        epochs=2,
        seed=4,
        optimizer_options={"momentum": 0.9},
    )
    trained = record[record["step"] > 0]
    assert trained["step"].tolist() == list(range(1, len(losses) + 1))
    np.testing.assert_array_equal(trained["train_loss"], losses)
    np.testing.assert_allclose(trained["grad_norm"], norms, rtol=1e-12)
    assert record["full_train_loss"].iat[-1] == final.train_loss
    assert record["test_loss"].iat[-1] == final.test_loss
    assert record["optimizer_options"].iat[0] == '{"momentum": 0.9}'


def test_same_seed_same_record_other_seed_other_record():
    options = {"dropout": 0.2, "hidden": "16"}
    kwargs = {"lr": 1e-3, "batch_size": 128, "epochs": 1, "problem_options": options}
    first = runner.run("adam", "digits_mlp", seed=1, **kwargs)
    again = runner.run("adam", "digits_mlp", seed=1, **kwargs)
    other = runner.run("adam", "digits_mlp", seed=2, **kwargs)
    pd.testing.assert_frame_equal(without_time(first), without_time(again))
    assert not np.array_equal(first["train_loss"][1:], other["train_loss"][1:])
    assert first["problem_options"].iat[0] == '{"dropout": 0.2, "hidden": "16"}'


def test_named_schedule_is_built_for_the_run_and_recorded():
    record = runner.run(
        "sgd",
        "rosenbrock",
        lr=1e-3,
        steps=40,
        schedule="cosine",
        schedule_options={"eta_min": 1e-4},
    )
    expected = schedules.CosineAnnealing(1e-3, T_max=40, eta_min=1e-4)
    trained = record[record["step"] > 0]
    np.testing.assert_allclose(trained["scheduled_lr"], [expected(t - 1) for t in trained["step"]])
    assert record["schedule"].iat[0] == "cosine(eta_min=0.0001)"
    assert (record["lr"] == 1e-3).all()


def test_schedule_object_is_used_as_given():
    ramp = schedules.Exponential(0.01, 0.5)
    record = runner.run("sgd", "quadratic", lr=0.01, steps=4, schedule=ramp)
    assert record["scheduled_lr"].tolist() == [0.01, 0.01, 0.005, 0.0025, 0.00125]
    assert record["schedule"].iat[0] == repr(ramp)


def test_divergence_above_the_bound_ends_the_run():
    # gradient descent on the kappa = 10 quadratic diverges for lr > 2 / L = 0.2
    record = runner.run("sgd", "quadratic", lr=0.5, steps=500, divergence_bound=1e3)
    assert record["diverged"].tolist() == [False] * (len(record) - 1) + [True]
    assert record["train_loss"].iat[-1] > 1e3 and record["train_loss"].iloc[1:-1].le(1e3).all()
    assert record["step"].iat[-1] < 500
    assert record.attrs["stop_reason"] == "diverged"
    assert math.isnan(record["full_train_loss"].iat[-1])  # the diverged step is not evaluated


def test_non_finite_loss_is_recorded_not_raised():
    with np.errstate(all="raise"):  # the runner must not turn overflow into an exception
        record = runner.run("sgd", "quadratic", lr=50.0, steps=5000)
    assert record["diverged"].iat[-1] and record["diverged"].sum() == 1
    assert not np.isfinite(record["train_loss"].iat[-1])
    assert record["step"].iat[-1] < 5000


def test_refused_non_finite_gradient_counts_as_divergence():
    record = runner.run(
        "adam",
        NaNGradientAt(bad_call=3),
        lr=0.1,
        steps=10,
        optimizer_options={"nonfinite": "raise"},
    )
    assert record["step"].tolist() == [0, 1, 2, 3]
    assert record["diverged"].tolist() == [False, False, False, True]
    assert np.isfinite(record["train_loss"].iat[-1]) and np.isnan(record["grad_norm"].iat[-1])


def test_a_schedule_rate_that_overflows_is_a_divergence():
    # lr * gamma**t: gamma**31 = 1e310 overflows a float (OverflowError) at step 32
    record = runner.run(
        "sgd",
        "quadratic",
        lr=1e-300,
        steps=100,
        schedule="exponential",
        schedule_options={"gamma": 1e10},
    )
    assert record["step"].iat[-1] == 32 and record["diverged"].sum() == 1
    assert record["diverged"].iat[-1] and record["scheduled_lr"].iat[-1] == math.inf
    assert record.attrs["stop_reason"] == "diverged"


def test_a_non_finite_scheduled_rate_is_a_divergence():
    record = runner.run(
        "sgd", "quadratic", lr=0.01, steps=10, schedule=lambda t: 0.01 if t < 3 else math.inf
    )
    assert record["step"].tolist() == [0, 1, 2, 3, 4]
    assert record["diverged"].tolist() == [False] * 4 + [True]
    assert np.isfinite(record["train_loss"].iat[-1])  # measured, the update not applied


def replay_early_stopping(losses, patience, min_delta):
    """Index of the check at which the documented rule stops (None: it never does)."""
    best, checks_without_improvement = losses[0], 0
    for index in range(1, len(losses)):
        if losses[index] < best - min_delta:
            best, checks_without_improvement = losses[index], 0
        else:
            checks_without_improvement += 1
        if checks_without_improvement == patience:
            return index
    return None


def test_early_stopping_on_the_test_loss():
    rule = runner.EarlyStopping("test_loss", patience=2, min_delta=1e-3)
    record = runner.run(
        "sgd", "logistic_regression", lr=0.5, batch_size=50, epochs=200, early_stopping=rule
    )
    assert record.attrs["stop_reason"] == "early_stopping"
    losses = record["test_loss"].dropna().to_numpy()
    assert 3 < len(losses) < 201
    # the rule, replayed on the evaluated test losses (step 0 included)
    assert replay_early_stopping(losses, patience=2, min_delta=1e-3) == len(losses) - 1


def test_early_stopping_on_train_loss_evaluates_the_last_row():
    rule = runner.EarlyStopping("train_loss", patience=3)
    record = runner.run(
        "sgd", "logistic_regression", lr=1.0, batch_size=10, epochs=50, early_stopping=rule
    )
    assert record.attrs["stop_reason"] == "early_stopping"
    assert record["test_loss"].notna().iat[-1]


def test_early_stopping_accuracy_maximizes_and_checks_availability():
    assert runner.EarlyStopping("test_accuracy").maximize
    assert not runner.EarlyStopping("test_loss").maximize
    with pytest.raises(ValueError, match="does not report"):
        runner.run("sgd", "quadratic", steps=5, early_stopping=runner.EarlyStopping("test_loss"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"monitor": "loss"}, "choose from train_loss, full_train_loss, test_loss, test_accuracy"),
        ({"patience": 0}, "patience"),
        ({"min_delta": -1.0}, "min_delta"),
        ({"mode": "up"}, "mode"),
    ],
)
def test_bad_early_stopping(kwargs, match):
    with pytest.raises(ValueError, match=match):
        runner.EarlyStopping(**kwargs)


def test_record_params_follows_the_trajectory():
    record = runner.run("sgd", "rosenbrock", lr=1e-3, steps=3, record_params=True)
    problem = problems.make("rosenbrock")
    x = problem.initial_params()[0].copy()
    trajectory = [x.copy()]
    for _ in range(3):
        x -= 1e-3 * problem.loss_and_grad([x], None)[1][0]
        trajectory.append(x.copy())
    np.testing.assert_allclose(record[["param_0", "param_1"]], trajectory, rtol=1e-12)
    np.testing.assert_allclose(
        record["distance_to_optimum"], [np.linalg.norm(p - 1) for p in trajectory]
    )


def test_record_layer_grad_norms():
    record = runner.run(
        "sgd",
        "deep_sigmoid_mlp",
        lr=0.1,
        batch_size=256,
        steps=3,
        record_layer_grad_norms=True,
        problem_options={"depth": 4, "width": 8},
    )
    columns = [c for c in record.columns if c.startswith("layer_grad_norm_")]
    assert columns == [f"layer_grad_norm_{i}" for i in range(len(columns))] and len(columns) >= 5
    assert record[columns].iloc[0].isna().all()
    assert (record[columns].iloc[1:] > 0).all().all()


def test_optimizer_and_problem_given_as_objects():
    info = registry.get("adam")
    by_class = runner.run(optim.Adam, problems.make("quadratic"), steps=5)
    by_info = runner.run(info, problems.PROBLEMS["quadratic"], steps=5)
    by_name = runner.run("adam", "quadratic", steps=5)
    assert by_name["lr"].iat[0] == info.lr  # lr=None: the registry's rate
    for frame in (by_class, by_info):
        pd.testing.assert_frame_equal(without_time(frame), without_time(by_name))


def test_default_budget():
    assert runner.run("sgd", "quadratic")["step"].iat[-1] == runner.DEFAULT_STEPS
    problem = problems.make("logistic_regression")
    record = runner.run("sgd", problem, batch_size=250, log_every=1000)
    assert record["step"].iat[-1] == runner.DEFAULT_EPOCHS * 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": "adamm"}, ValueError, "unknown optimizer 'adamm'; choose from sgd, "),
        ({"problem": "quadratik"}, ValueError, "unknown problem 'quadratik'; choose from quadr"),
        ({"optimizer": 3}, TypeError, "optimizer must be"),
        ({"lr": -1.0}, ValueError, "lr must be"),
        ({"lr": "0.1"}, TypeError, "lr must be a real number"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 5, "epochs": 1}, ValueError, "epochs or steps"),
        ({"log_every": 0}, ValueError, "log_every"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**63}, ValueError, r"seed must be an integer in \[0, 2\*\*63 - 1\]"),
        ({"seed": 1.0}, ValueError, "seed must be an integer"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"optimizer_options": {"momentum": 0.9}}, ValueError, "adam has no option 'momentum'"),
        ({"optimizer_options": {"lr": 0.1}}, ValueError, "give the learning rate as lr"),
        ({"optimizer_options": {"betas": (0.9, 1.5)}}, ValueError, "betas"),
        ({"problem_options": {"width": 3}}, ValueError, "quadratic has no option 'width'"),
        ({"schedule": "cosin"}, ValueError, "unknown schedule 'cosin'; choose from constant"),
        ({"schedule_options": {"T_max": 3}}, ValueError, "need a schedule"),
        ({"schedule": "cosine", "schedule_options": {"T": 3}}, ValueError, "no option 'T'"),
        ({"divergence_bound": math.inf}, ValueError, "divergence_bound"),
        ({"early_stopping": "test_loss"}, TypeError, "EarlyStopping"),
        ({"record_params": True, "problem": "logistic_regression"}, ValueError, "2 parameters"),
        ({"record_layer_grad_norms": True}, ValueError, "per-layer"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    arguments = {"optimizer": "adam", "problem": "quadratic", "steps": 3, **kwargs}
    with pytest.raises(error, match=match):
        runner.run(arguments.pop("optimizer"), arguments.pop("problem"), **arguments)


def test_option_parsing_by_default_type():
    parse = runner.parse_optimizer_option
    assert parse("sgd", "nesterov", "true") is True
    assert parse("sgd", "momentum", "0.9") == 0.9
    assert parse("adam", "betas", "0.8, 0.99") == (0.8, 0.99)
    assert parse("adam", "clip_norm", "none") is None and parse("adam", "clip_norm", "2") == 2.0
    assert parse("adam", "nonfinite", "skip") == "skip"


@pytest.mark.parametrize(
    ("optimizer", "name", "text", "match"),
    [
        ("adam", "betas", "0.9", "2 comma-separated numbers"),
        ("sgd", "nesterov", "maybe", "true or false"),
        ("sgd", "momentum", "fast", "momentum='fast': expected a float"),
        ("adam", "clip_norm", "big", "expected a number"),
        ("sgd", "mom", "1", "sgd has no option 'mom'; its options are: momentum, dampening"),
    ],
)
def test_bad_option_strings(optimizer, name, text, match):
    with pytest.raises(ValueError, match=match):
        runner.parse_optimizer_option(optimizer, name, text)


def test_an_optimizer_of_matrices_gets_the_hidden_matrices_alone(monkeypatch):
    seen = []
    make = runner.optim.make

    def spy(info, params, **options):
        seen.append([p.shape for p in params])
        return make(info, params, **options)

    monkeypatch.setattr(runner.optim, "make", spy)
    problem = problems.make("mnist1d_cnn", channels=3)
    record = runner.run("muon_adamw", problem, lr=1e-3, batch_size=16, steps=2, evaluate=False)
    assert record["train_loss"].iloc[1:].notna().all()
    # three convolutions as (C_out, C_in K); their biases, the head and its bias flat
    assert seen[-1] == [(3, 5), (3,), (3, 9), (3,), (3, 9), (3,), (150,), (10,)]
    runner.run("adam", problem, lr=1e-3, batch_size=16, steps=1, evaluate=False)
    assert seen[-1] == [p.shape for p in problem.initial_params()]
