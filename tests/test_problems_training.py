"""Known optima reached by training loops written here with optbench.optim (independent of
the runner): gradient descent on the quadratic at its optimal step, every registered optimizer
on the 2-D quadratic and Rosenbrock, Adam on the digits, the XOR network."""

import math
import time

import numpy as np
import pytest

from optbench import optim, problems, registry, runner
from optbench.spec import conforming_shape

# Each spec declares one reasonable setting per problem it converges on (spec.converges).
PROBLEMS = ("quadratic", "rosenbrock")
MAX_STEPS = 10_000
TOLERANCE = 3e-2


def descend(problem, optimizer, params, steps, shapes=None):
    """``steps`` full-batch steps; returns the distances to ``x_star`` after each step.
    ``shapes``: those of the arrays the optimizer steps, views of ``params``."""
    distances = np.empty(steps)
    for step in range(steps):
        _, grads = problem.loss_and_grad(params, None)
        if shapes is not None:
            grads = [g.reshape(shape) for g, shape in zip(grads, shapes, strict=True)]
        optimizer.step(grads)
        distances[step] = problem.distance_to_optimum(params)
    return distances


@pytest.mark.parametrize(("d", "kappa"), [(2, 10.0), (10, 100.0)])
def test_gradient_descent_at_the_optimal_step(d, kappa):
    """GD with lr = 2 / (L + mu) contracts ||x - x*|| by at least (kappa - 1) / (kappa + 1)
    per step (exactly in 2-D) and reaches 1e-8 within the steps that rate predicts."""
    problem = problems.make("quadratic", seed=1, d=d, kappa=kappa)
    params = problem.initial_params()
    start = problem.distance_to_optimum(params)
    optimizer = optim.SGD(params, lr=2 / (problem.L + problem.mu))
    rate = (kappa - 1) / (kappa + 1)
    needed = math.ceil(math.log(1e-8 / start) / math.log(rate))
    distances = descend(problem, optimizer, params, needed)
    bound = start * rate ** np.arange(1, needed + 1)
    assert np.all(distances <= bound * (1 + 1e-9) + 1e-15)
    if d == 2:  # both eigen-coordinates shrink by exactly the rate: the bound is attained
        np.testing.assert_allclose(distances, bound, rtol=1e-9, atol=1e-15)
    assert distances[-1] <= 1e-8
    assert problem.evaluate(params).train_loss <= 0.5 * kappa * 1e-16


def _setting(problem_name, info):
    try:
        return info.converges[problem_name]
    except KeyError:
        pytest.fail(f"declare a setting of {info.name!r} on {problem_name} in its converges")


@pytest.mark.parametrize("problem_name", PROBLEMS)
@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_every_optimizer_reaches_the_optimum(problem_name, info):
    problem = problems.make(problem_name)
    params = problem.initial_params()
    # an optimizer of matrices only (Muon) steps the problem's vectors as 1-row matrices
    shapes = [conforming_shape(p.shape, info.ndims) for p in params]
    views = [p.reshape(shape) for p, shape in zip(params, shapes, strict=True)]
    optimizer = optim.make(info, views, **_setting(problem_name, info))
    distances = descend(problem, optimizer, params, MAX_STEPS, shapes)
    assert distances[-1] < TOLERANCE, (
        f"{info.name} ends {distances[-1]:.3g} from the optimum of {problem_name}"
    )


def test_beale_and_saddle_escape():
    beale = problems.make("beale")
    params = beale.initial_params()
    assert descend(beale, optim.Adam(params, lr=3e-2), params, 3000)[-1] < 1e-6

    # gradient descent lingers at the saddle (y grows by 1.02 per step from 1e-3) and then
    # falls into the minimum; started exactly on the stable line it never leaves
    saddle = problems.make("saddle")
    params = saddle.initial_params()
    distances = descend(saddle, optim.SGD(params, lr=1e-2), params, 1000)
    assert np.all(distances[:200] > 1.3)
    assert distances[-1] < 1e-6
    assert saddle.evaluate(params).train_loss == pytest.approx(saddle.optimum)
    stuck = problems.make("saddle", offset=0.0)
    params = stuck.initial_params()
    descend(stuck, optim.SGD(params, lr=1e-2), params, 1000)
    assert np.abs(params[0]).max() < 1e-8  # converged to the saddle point (0, 0)


def test_noisy_quadratic_larger_batches_settle_lower():
    """SGD at a constant step stalls at a loss floor proportional to the gradient-noise
    variance: about noise^2 / b."""
    floors = {}
    for batch_size in (1, 10, 100):
        problem = problems.make("noisy_quadratic", seed=0, n_train=1000)
        params = problem.initial_params()
        optimizer = optim.SGD(params, lr=0.05)
        rng = np.random.default_rng(0)
        losses = []
        while len(losses) < 3000:
            for batch in problem.batches(batch_size, rng):
                _, grads = problem.loss_and_grad(params, batch)
                optimizer.step(grads)
                losses.append(problem.evaluate(params).train_loss)
        floors[batch_size] = np.mean(losses[1000:3000])
    assert floors[1] > 5 * floors[10] > 25 * floors[100]


def test_xor_is_solved():
    for seed in range(5):
        problem = problems.make("xor_mlp", seed=seed)
        params = problem.initial_params()
        optimizer = optim.Adam(params, lr=0.05)
        assert problem.evaluate(params).test_accuracy < 1.0
        for _ in range(300):
            for batch in problem.batches(None, np.random.default_rng(seed)):
                _, grads = problem.loss_and_grad(params, batch)
                optimizer.step(grads)
        evaluation = problem.evaluate(params)
        assert evaluation.test_accuracy == 1.0 and evaluation.train_loss < 0.05, seed


def test_logistic_regression_learns():
    problem = problems.make("logistic_regression", seed=0)
    params = problem.initial_params()
    optimizer = optim.Adam(params, lr=0.05)
    rng = np.random.default_rng(0)
    for _ in range(30):
        for batch in problem.batches(50, rng):
            _, grads = problem.loss_and_grad(params, batch)
            optimizer.step(grads)
    evaluation = problem.evaluate(params)
    majority = max(np.mean(problem.data.y_test), 1 - np.mean(problem.data.y_test))
    assert evaluation.test_accuracy > majority + 0.15
    assert evaluation.train_loss < 0.5 < math.log(2)


def train_digits(seed, epochs=20, batch_size=32, lr=1e-3, **options):
    """Adam on digits_mlp; returns the final evaluation."""
    problem = problems.make("digits_mlp", seed=seed, **options)
    params = problem.initial_params()
    optimizer = optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for batch in problem.batches(batch_size, rng):
            _, grads = problem.loss_and_grad(params, batch)
            optimizer.step(grads)
    return problem.evaluate(params)


def test_adam_on_digits_reaches_the_published_accuracy():
    """Adam (lr 1e-3, batch 32, 20 epochs) on the default network: median test accuracy over
    three seeds >= 96.5% (scikit-learn's MLPClassifier: 96.9-97.8%), in under a minute."""
    start = time.perf_counter()
    accuracies = [train_digits(seed).test_accuracy for seed in range(3)]
    elapsed = time.perf_counter() - start
    assert np.median(accuracies) >= 0.965, accuracies
    assert elapsed < 60, f"{elapsed:.1f} s"


def test_digits_options_train():
    """Every regularizer, normalization and activation still learns (8 epochs, seed 0:
    93-98% measured; the default network reaches 96-97% by then)."""
    for options in (
        {"norm": "batch"},
        {"norm": "layer", "dropout": 0.2},
        {"augment": True, "l2": 1e-4, "l1": 1e-5},
        {"activation": "tanh", "init": "glorot"},
        {"activation": "elu", "init": "lecun"},
    ):
        assert train_digits(0, epochs=8, **options).test_accuracy > 0.9, options


def _modular_addition_test_accuracy(optimizer, steps, **options):
    """Test accuracy at each evaluation of the README's grokking setting (batch 512, lr 1e-3,
    betas (0.9, 0.98)), trained as ``optbench run`` trains it."""
    record = runner.run(
        optimizer,
        "modular_addition",
        lr=1e-3,
        batch_size=512,
        steps=steps,
        optimizer_options={"betas": (0.9, 0.98), **options},
        log_every=10**9,
    )
    return record["test_accuracy"].dropna().tolist()


@pytest.mark.slow
def test_modular_addition_groks_with_weight_decay_alone():
    """The README's grokking setting (8 minutes for both runs on 2 cores): AdamW with weight decay 1
    generalizes within 4000 steps; Adam without weight decay does not."""
    with_decay = _modular_addition_test_accuracy("adamw", 4000, weight_decay=1.0)
    assert max(with_decay) >= 0.99, with_decay
    without = _modular_addition_test_accuracy("adam", 4000)
    assert max(without) < 0.5, without
